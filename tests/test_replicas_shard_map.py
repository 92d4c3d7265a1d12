"""`replica_mean` over a device-mesh axis and a vmap axis, on every supported jax release.

jax releases before 0.6 do not tell which axes of an enclosing ``shard_map`` are mesh axes; there
every axis is reduced by the gathered mean, and the value and the gradient must not change. One
device suffices: the mesh axis has size 1, the vmap axis carries the replicas.
"""

import jax
import jax.numpy as jnp
import numpy as np

import entropix


def _shard_map(fn, **kwargs):
    # Collectives over a vmap axis inside shard_map need the replication check off.
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fn, check_vma=False, **kwargs)
    from jax.experimental.shard_map import shard_map  # jax < 0.6.1

    return shard_map(fn, check_rep=False, **kwargs)


def test_replica_mean_over_a_device_mesh_and_a_vmap_axis():
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("devices",))
    spec = jax.sharding.PartitionSpec("devices")
    stacked = jnp.arange(12.0).reshape(1, 4, 3) ** 2  # devices x replicas per device x params
    weights = jnp.arange(12.0).reshape(1, 4, 3) - 5.0

    def per_device(block):
        mean = jax.vmap(
            lambda w: entropix.replica_mean(w, ("devices", "replicas")), axis_name="replicas"
        )
        return mean(block[0])[None]

    averaged = _shard_map(per_device, mesh=mesh, in_specs=spec, out_specs=spec)
    value = jax.jit(averaged)(stacked)
    grad = jax.jit(jax.grad(lambda s: jnp.sum(weights * averaged(s))))(stacked)

    np.testing.assert_allclose(value, np.broadcast_to(np.mean(stacked, (0, 1)), (1, 4, 3)))
    # d/dw_a sum_b c_b · mean(w) = mean over replicas of c, for every replica a.
    np.testing.assert_allclose(grad, np.broadcast_to(np.mean(weights, (0, 1)), (1, 4, 3)))
