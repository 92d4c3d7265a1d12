"""Shared helpers of the model tests: random inputs and cheap random variables."""

import jax
import jax.numpy as jnp
import numpy as np

KEY = jax.random.key(0)


def normal(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def fake_variables(model, x, seed=0):
    """Random variables with ``model.init``'s structure, built without compiling ``init``.

    Compiling the initializers (threefry, truncated normal) costs seconds on a busy CPU;
    shapes from ``jax.eval_shape`` plus NumPy values cost nothing. BN statistics start as in Flax.
    """
    shapes = jax.eval_shape(lambda x: model.init(KEY, x, train=False), x)
    rng = np.random.default_rng(seed)

    def fill(path, s):
        name = jax.tree_util.keystr(path)
        if "batch_stats" in name:
            return jnp.ones(s.shape, s.dtype) if "var" in name else jnp.zeros(s.shape, s.dtype)
        fan_in = int(np.prod(s.shape[:-1])) or 1
        return jnp.asarray(rng.normal(size=s.shape) / np.sqrt(fan_in), s.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)
