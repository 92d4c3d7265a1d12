"""Runs a benchmark script and publishes its markdown output in ``benchmarks/README.md``.

    python benchmarks/publish.py data_speed.py --header
    python benchmarks/publish.py landscape_speed.py --quick

Each script's output replaces its own section (between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``), headed by the exact command, the date and the machine, so every table
in the README is regenerated, never typed in.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def machine() -> str:
    import jax

    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} CPU cores, JAX {jax.__version__} ({jax.default_backend()})"


def header(command: str) -> str:
    return f"`{command}` — {datetime.date.today()}, {machine()}."


def write_section(name: str, text: str) -> None:
    """Replaces (or appends) the README section ``name`` with ``text``."""
    path = HERE / "README.md"
    content = path.read_text() if path.exists() else "# Benchmarks\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in content:
        before, rest = content.split(start, 1)
        content = before + block + rest.split(end, 1)[1]
    else:
        content = content.rstrip() + "\n\n" + block + "\n"
    path.write_text(content)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    script, *args = argv
    command = " ".join(["python", f"benchmarks/{script}", *args])
    out = subprocess.run(
        [sys.executable, str(HERE / script), *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        print(out.stdout + out.stderr, file=sys.stderr)
        return out.returncode
    write_section(pathlib.Path(script).stem, header(command) + "\n\n" + out.stdout)
    print(out.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
