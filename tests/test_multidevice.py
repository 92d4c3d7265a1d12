"""Runs the multi-device and multi-process checks in processes of their own."""

import os
import pathlib
import socket
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(args, extra_env):
    env = {**os.environ, **extra_env}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_eight_host_devices_suite():
    result = run(
        ["-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", "tests/multidevice"],
        {
            "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
            "ENTROPIX_MULTIDEVICE": "1",
        },
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_four_devices_each():
    result = run(["scripts/parle_mesh.py", "--launch", "2", "--port", str(free_port())], {})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert output.count("max |multi-process − vmap|") == 2, output[-2000:]
