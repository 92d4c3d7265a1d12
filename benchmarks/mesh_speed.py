"""Parle outer-step time: 8 replicas vmapped on one device vs shard_map over 8 host devices.

Run by ``benchmarks/speed.py`` in its own process (the device count is fixed when JAX starts):

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python benchmarks/mesh_speed.py

Prints markdown table rows. On a CPU the 8 "devices" share the machine's cores, so this
measures the overhead of the sharded program and its collectives, not a speed-up.
"""

from __future__ import annotations

import importlib.util
import pathlib
import statistics
import sys
import time

import jax

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_parle_mesh():
    found = importlib.util.spec_from_file_location("parle_mesh", ROOT / "scripts" / "parle_mesh.py")
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def median_seconds(fn, args, repeats):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(repeats: int = 7) -> int:
    if jax.device_count() < 8:
        print("needs XLA_FLAGS=--xla_force_host_platform_device_count=8", file=sys.stderr)
        return 1
    from jax.sharding import NamedSharding, PartitionSpec

    pm = load_parle_mesh()
    opt, params, data, step = pm.build()
    state = jax.vmap(opt.init)(params)
    vmapped = jax.jit(jax.vmap(step, axis_name=pm.AXIS))
    mesh = jax.make_mesh((pm.NUM_REPLICAS,), (pm.AXIS,))
    placed = jax.device_put((params, state, *data), NamedSharding(mesh, PartitionSpec(pm.AXIS)))
    sharded = pm.mesh_step(step, mesh)
    t_vmap = median_seconds(vmapped, (params, state, *data), repeats)
    t_mesh = median_seconds(sharded, placed, repeats)
    print(f"| Parle, 8 replicas, vmap on one device | {t_vmap * 1e3:.2f} | 1.00 |")
    print(
        f"| Parle, 8 replicas, shard_map on 8 host devices | {t_mesh * 1e3:.2f} | "
        f"{t_mesh / t_vmap:.2f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
