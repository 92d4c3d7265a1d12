"""Hashable flat-vector layout of a parameter pytree (so jitted functions cache across calls)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree


class Layout:
    """Unravels a flat vector (``ravel_pytree`` order) into the pytree of ``params``.

    Two layouts of pytrees with the same structure, shapes and dtypes compare equal, so a
    jitted function taking a layout as a static argument compiles once per model, not per call.
    """

    def __init__(self, params: Any):
        leaves, self.treedef = jax.tree_util.tree_flatten(params)
        self.shapes = tuple(tuple(np.shape(leaf)) for leaf in leaves)
        self.dtypes = tuple(jnp.result_type(leaf) for leaf in leaves)
        self.sizes = tuple(int(np.prod(s)) for s in self.shapes)
        self.size = sum(self.sizes)
        self.dtype = jnp.result_type(*self.dtypes) if self.dtypes else jnp.float32

    def _key(self):
        return (self.treedef, self.shapes, self.dtypes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __call__(self, flat: jax.Array) -> Any:
        leaves, start = [], 0
        for shape, dtype, size in zip(self.shapes, self.dtypes, self.sizes, strict=True):
            leaves.append(jnp.reshape(flat[start : start + size], shape).astype(dtype))
            start += size
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


def ravel(params: Any) -> tuple[jax.Array, Layout]:
    """``ravel_pytree`` with a hashable :class:`Layout` as the unravel function."""
    flat, _ = ravel_pytree(params)
    return flat, Layout(params)
