"""Parle on a device mesh: the same per-replica code under vmap, shard_map and multiple processes.

Single process, 8 host CPU devices (vmap vs shard_map)::

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python scripts/parle_mesh.py

Two processes × 4 CPU devices each, CPU collectives over loopback (the multi-host path)::

    python scripts/parle_mesh.py --launch 2

Each run prints the largest difference between the mesh result and the vmap result on one
device and exits non-zero if it exceeds 1e-6.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

NUM_REPLICAS, NUM_INNER, NUM_OUTER, BATCH = 8, 4, 3, 16
AXIS = "replicas"


def build(num_inner=NUM_INNER, compiled=True):
    """Returns (params, batches, step) with replicas on the leading axis of every array."""
    import jax
    import jax.numpy as jnp

    import entropix

    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    params = {
        "w1": jnp.tile(jax.random.normal(keys[0], (1, 6, 16)) * 0.4, (NUM_REPLICAS, 1, 1)),
        "w2": jnp.tile(jax.random.normal(keys[1], (1, 16, 3)) * 0.4, (NUM_REPLICAS, 1, 1)),
    }
    inputs = jax.random.normal(keys[2], (NUM_REPLICAS, num_inner, BATCH, 6))
    labels = jax.random.randint(keys[3], (NUM_REPLICAS, num_inner, BATCH), 0, 3)
    opt = entropix.parle(
        0.5,
        num_inner_steps=num_inner,
        coupling=0.1,
        elastic_coupling=1.0,
        noise=1e-3,
        axis_name=AXIS,
        compiled=compiled,
    )

    def loss(p, x, y):
        logits = jnp.tanh(x @ p["w1"]) @ p["w2"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))

    grad = jax.grad(loss)

    def one_replica_outer_step(p, s, x, y):
        """One Parle outer step for one replica: L gradients, one pmean."""
        updates, s = opt.update(grad(p, x[0], y[0]), s, p, grad_fn=lambda q, i: grad(q, x[i], y[i]))
        return jax.tree.map(jnp.add, p, updates), s

    return opt, params, (inputs, labels), one_replica_outer_step


def run_vmap(num_outer=NUM_OUTER):
    import jax

    opt, params, (inputs, labels), step = build()
    state = jax.vmap(opt.init)(params)
    vstep = jax.jit(jax.vmap(step, axis_name=AXIS))
    for _ in range(num_outer):
        params, state = vstep(params, state, inputs, labels)
    return params


def mesh_step(step, mesh):
    """Wraps the per-replica step for shard_map: each device holds a (1, ...) block."""
    import jax
    from jax.sharding import PartitionSpec

    def local(*blocks):
        squeezed = jax.tree.map(lambda b: b[0], blocks)
        return jax.tree.map(lambda b: b[None], step(*squeezed))

    spec = PartitionSpec(AXIS)
    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=spec))


def run_shard_map(num_outer=NUM_OUTER, arrays_from=None):
    """Parle on a mesh over all devices; ``arrays_from`` places host arrays on the mesh."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    opt, params, data, step = build()
    mesh = jax.make_mesh((NUM_REPLICAS,), (AXIS,))
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    place = arrays_from or (lambda tree: jax.device_put(tree, sharding))
    state = place(jax.vmap(opt.init)(params))
    params, data = place(params), place(data)
    sstep = mesh_step(step, mesh)
    for _ in range(num_outer):
        params, state = sstep(params, state, *data)
    return params, mesh


def max_difference(a, b):
    import jax
    import numpy as np

    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def worker(process_id, num_processes, port):
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        f"127.0.0.1:{port}", num_processes=num_processes, process_id=process_id
    )
    from jax.experimental import multihost_utils
    from jax.sharding import NamedSharding, PartitionSpec

    assert jax.device_count() == NUM_REPLICAS, jax.device_count()
    mesh = jax.make_mesh((NUM_REPLICAS,), (AXIS,))
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    per_process = NUM_REPLICAS // num_processes

    def from_host(tree):
        # Every process builds the same host data and contributes its own replicas.
        start = process_id * per_process
        return jax.tree.map(
            lambda x: jax.make_array_from_process_local_data(
                sharding, x[start : start + per_process], x.shape
            ),
            tree,
        )

    params, _ = run_shard_map(arrays_from=from_host)
    gathered = multihost_utils.process_allgather(params, tiled=True)
    with jax.default_device(jax.local_devices()[0]):
        reference = run_vmap()
    difference = max_difference(gathered, reference)
    print(f"process {process_id}: max |multi-process − vmap| = {difference:.3g}", flush=True)
    jax.distributed.shutdown()
    return difference


def launch(num_processes, port):
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={NUM_REPLICAS // num_processes}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--process-id",
                str(i),
                "--num-processes",
                str(num_processes),
                "--port",
                str(port),
            ],
            env=env,
        )
        for i in range(num_processes)
    ]
    codes = [p.wait(timeout=300) for p in procs]
    return max(codes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launch", type=int, default=0, help="number of processes to launch")
    parser.add_argument("--process-id", type=int, default=None)
    parser.add_argument("--num-processes", type=int, default=2)
    parser.add_argument("--port", type=int, default=12355)
    args = parser.parse_args()
    if args.launch:
        sys.exit(launch(args.launch, args.port))
    if args.process_id is not None:
        difference = worker(args.process_id, args.num_processes, args.port)
    else:
        params, _ = run_shard_map()
        difference = max_difference(params, run_vmap())
        print(f"max |shard_map − vmap| = {difference:.3g}")
    sys.exit(0 if difference <= 1e-6 else 1)


if __name__ == "__main__":
    main()
