"""Replica optimizers on 8 host CPU devices (run in their own process by test_multidevice)."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec

import entropix

ROOT = pathlib.Path(__file__).resolve().parents[2]
found = importlib.util.spec_from_file_location("parle_mesh", ROOT / "scripts" / "parle_mesh.py")
parle_mesh = importlib.util.module_from_spec(found)
found.loader.exec_module(parle_mesh)

AXIS = parle_mesh.AXIS

pytestmark = pytest.mark.skipif(
    jax.device_count() < 8, reason="needs XLA_FLAGS=--xla_force_host_platform_device_count=8"
)


def test_parle_vmap_equals_shard_map():
    mesh_params, _ = parle_mesh.run_shard_map()
    vmap_params = parle_mesh.run_vmap()
    assert parle_mesh.max_difference(mesh_params, vmap_params) <= 1e-6
    _, start, _, _ = parle_mesh.build()
    moved = parle_mesh.max_difference(vmap_params, start)
    spread = float(jnp.max(jnp.abs(vmap_params["w1"] - vmap_params["w1"].mean(0))))
    assert moved > 1e-2 and spread > 1e-4  # the comparison is not between trivial results


def count_collectives(jaxpr, inside_scan=False, counts=None):
    """Counts all-reduce primitives in a jaxpr, split by whether they sit inside a scan body."""
    counts = counts if counts is not None else {"in_scan": 0, "outside": 0}
    for eqn in jaxpr.eqns:
        if eqn.primitive.name.startswith("psum"):
            counts["in_scan" if inside_scan else "outside"] += 1
        in_scan = inside_scan or eqn.primitive.name == "scan"
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    count_collectives(inner, in_scan, counts)
    return counts


def sharded(tree, mesh):
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(AXIS)))


def test_parle_communicates_once_per_outer_step():
    opt, params, data, step = parle_mesh.build()
    mesh = jax.make_mesh((8,), (AXIS,))
    state = jax.vmap(opt.init)(params)
    args = sharded((params, state, *data), mesh)
    jaxpr = jax.make_jaxpr(parle_mesh.mesh_step(step, mesh))(*args)
    counts = count_collectives(jaxpr.jaxpr)
    # One all-reduce per parameter leaf, outside the inner-loop scan: once per outer step.
    assert counts == {"in_scan": 0, "outside": len(jax.tree.leaves(params))}, counts


def test_elastic_sgd_communicates_every_step():
    opt = entropix.elastic_sgd(0.1, elastic_coupling=1.0, axis_name=AXIS)
    mesh = jax.make_mesh((8,), (AXIS,))
    params = jnp.ones((8, 4))
    grads = jnp.ones((8, 5, 4))
    state = jax.vmap(opt.init)(params)

    def run(p, s, g):
        def body(carry, grad):
            p, s = carry
            updates, s = opt.update(grad, s, p)
            return (optax.apply_updates(p, updates), s), None

        return jax.lax.scan(body, (p, s), g)[0]

    fn = parle_mesh.mesh_step(run, mesh)
    counts = count_collectives(jax.make_jaxpr(fn)(*sharded((params, state, grads), mesh)).jaxpr)
    assert counts["in_scan"] == 1 and counts["outside"] == 0, counts


def test_step_form_parle_on_mesh_equals_vmap():
    opt, params, (inputs, labels), _ = parle_mesh.build(compiled=False)
    mesh = jax.make_mesh((8,), (AXIS,))

    def loss(p, x, y):
        logits = jnp.tanh(x @ p["w1"]) @ p["w2"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))

    def one(p, s, x, y, k):
        updates, s = opt.update(jax.grad(loss)(p, x[k], y[k]), s, p)
        return optax.apply_updates(p, updates), s

    def run(step_fn, params, state, inputs, labels):
        for k in range(2 * parle_mesh.NUM_INNER):
            params, state = step_fn(params, state, inputs, labels, k % parle_mesh.NUM_INNER)
        return params

    vstep = jax.jit(jax.vmap(one, axis_name=AXIS, in_axes=(0, 0, 0, 0, None)), static_argnums=4)
    reference = run(vstep, params, jax.vmap(opt.init)(params), inputs, labels)
    sstep = {
        k: parle_mesh.mesh_step(lambda p, s, x, y, k=k: one(p, s, x, y, k), mesh)
        for k in range(parle_mesh.NUM_INNER)
    }
    state = jax.vmap(opt.init)(params)
    mesh_params = run(
        lambda p, s, x, y, k: sstep[k](p, s, x, y),
        *sharded((params, state, inputs, labels), mesh),
    )
    assert parle_mesh.max_difference(mesh_params, reference) <= 1e-6


def test_parle_with_data_parallel_axis():
    # 4 replicas × 2 data shards: each replica's minibatch is split over the data axis and its
    # gradient averaged there; the result equals 4 vmapped replicas on whole minibatches.
    num_replicas, num_data, num_inner = 4, 2, 3
    opt = entropix.parle(
        0.5, num_inner_steps=num_inner, coupling=0.1, elastic_coupling=1.0, compiled=True
    )
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    # Replicas start apart, so the elastic force depends on the mean over the replica axis.
    params = jax.random.normal(keys[0], (num_replicas, 5))
    inputs = jax.random.normal(keys[1], (num_replicas, num_inner, 8, 5))
    targets = jax.random.normal(keys[2], (num_replicas, num_inner, 8))

    def loss(w, x, y):
        return jnp.mean((jnp.tanh(x @ w) - y) ** 2)

    def step(w, s, x, y, data_axis=None):
        def grad(w, i):
            g = jax.grad(loss)(w, x[i], y[i])
            return g if data_axis is None else jax.lax.pmean(g, data_axis)

        updates, s = opt.update(grad(w, 0), s, w, grad_fn=grad)
        return w + updates, s

    state = jax.vmap(opt.init)(params)
    reference, _ = jax.vmap(step, axis_name=AXIS)(params, state, inputs, targets)

    mesh = jax.make_mesh((num_replicas, num_data), (AXIS, "data"))
    replica_spec, data_spec = PartitionSpec(AXIS), PartitionSpec(AXIS, None, "data")

    def local(w, s, x, y):
        w, s, x, y = jax.tree.map(lambda b: b[0], (w, s, x, y))
        out = step(w, s, x, y, data_axis="data")
        return jax.tree.map(lambda b: b[None], out)

    fn = jax.jit(
        jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(replica_spec, replica_spec, data_spec, data_spec),
            out_specs=replica_spec,
            check_vma=False,
        )
    )
    place = lambda tree, spec: jax.device_put(tree, NamedSharding(mesh, spec))  # noqa: E731
    mesh_params, _ = fn(
        place(params, replica_spec),
        place(state, replica_spec),
        place(inputs, data_spec),
        place(targets, data_spec),
    )
    np.testing.assert_allclose(np.asarray(mesh_params), np.asarray(reference), atol=1e-6)
