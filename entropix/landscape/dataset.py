"""Dataset-level averages of per-batch quantities.

Every diagnostic in :mod:`entropix.landscape` measures the *training* loss
``f(w) = (1/n) Σ_j loss_fn(w, batch_j)`` averaged over a fixed set of ``n`` batches. Batches are
given either

* as a Python ``list`` (or any iterator / generator) of batches, each a pytree, or
* as one *stacked* pytree whose leaves all carry a leading batch-group axis of length ``n``
  (e.g. ``(x, y)`` with ``x.shape == (n, batch, ...)``), as produced by :func:`stack_batches`.

A tuple, dict or array is always read as a stacked pytree, so a single batch ``(x, y)`` must be
passed as ``[(x, y)]``. A list whose batches all have the same shapes is stacked once, so the
average runs as one ``jax.lax.scan`` inside ``jit``; batches of different shapes (a ragged last
batch) are kept as a tuple and summed by an unrolled loop. Each batch gets the same weight
``1/n``: use batches of equal size for an exact dataset mean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


class StackedBatches(NamedTuple):
    """Batches stacked along a leading batch-group axis (a pytree of arrays)."""

    tree: PyTree


class BatchList(NamedTuple):
    """Batches of different shapes, kept as a tuple and summed by an unrolled loop."""

    batches: tuple


Batches = StackedBatches | BatchList


def _leading_dim(tree: PyTree) -> int:
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError(
            "`batches` has no array leaves: pass a list of batches or a stacked pytree."
        )
    dims = {np.shape(leaf)[0] if np.ndim(leaf) > 0 else None for leaf in leaves}
    if None in dims or len(dims) != 1:
        shapes = [np.shape(leaf) for leaf in leaves]
        raise ValueError(
            "A stacked `batches` pytree needs the same leading batch-group axis on every leaf, got "
            f"leaf shapes {shapes}. Pass a Python list of batches instead (a single batch as "
            "`[batch]`)."
        )
    (dim,) = dims
    if dim < 1:
        raise ValueError("`batches` has an empty batch-group axis (0 batches).")
    return int(dim)


def stack_batches(batches: Iterable[PyTree]) -> StackedBatches:
    """Stacks a sequence of equally shaped batches along a new leading axis.

    Args:
      batches: an iterable of pytrees with identical structure and leaf shapes.

    Returns:
      A :class:`StackedBatches` holding the stacked pytree.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> batches = [(jnp.ones((4, 3)), jnp.zeros(4)) for _ in range(5)]
      >>> landscape.stack_batches(batches).tree[0].shape
      (5, 4, 3)
    """
    batches = list(batches)
    if not batches:
        raise ValueError("`batches` is empty: pass at least one batch.")
    return StackedBatches(jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *batches))


def prepare_batches(batches: Any) -> Batches:
    """Normalizes the accepted ``batches`` forms to :class:`StackedBatches` or :class:`BatchList`.

    Args:
      batches: a list / iterator of batches, a stacked pytree (leading batch-group axis),
        or an already prepared :class:`StackedBatches` / :class:`BatchList`.

    Returns:
      The prepared batches (an iterator is consumed once and materialized).

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> same = [(jnp.ones((4, 3)), jnp.ones(4))] * 2
      >>> type(landscape.prepare_batches(same)).__name__
      'StackedBatches'
      >>> ragged = [(jnp.ones((4, 3)), jnp.ones(4)), (jnp.ones((2, 3)), jnp.ones(2))]
      >>> type(landscape.prepare_batches(ragged)).__name__
      'BatchList'
    """
    if isinstance(batches, (StackedBatches, BatchList)):
        return batches
    if batches is None:
        raise ValueError("`batches` is None: pass a list of batches or a stacked pytree.")
    is_listlike = isinstance(batches, list) or (
        isinstance(batches, Iterator | Iterable)
        and not isinstance(batches, (tuple, Mapping, np.ndarray, jax.Array, str, bytes))
    )
    if is_listlike:
        items = list(batches)
        if not items:
            raise ValueError("`batches` is empty: pass at least one batch.")
        structures = {jax.tree_util.tree_structure(b) for b in items}
        if len(structures) != 1:
            raise ValueError(
                f"All batches must share one pytree structure, got {len(structures)} structures."
            )
        shapes = {
            tuple((np.shape(leaf), jnp.result_type(leaf)) for leaf in jax.tree_util.tree_leaves(b))
            for b in items
        }
        if len(shapes) == 1:
            return stack_batches(items)
        return BatchList(tuple(items))
    _leading_dim(batches)
    return StackedBatches(batches)


def num_batches(batches: Batches) -> int:
    """Number of batches in prepared ``batches``."""
    if isinstance(batches, BatchList):
        return len(batches.batches)
    return _leading_dim(batches.tree)


def batch_mean(fn: Callable[..., PyTree], batches: Batches, *args: Any) -> PyTree:
    """Mean over batches of ``fn(*args, batch)`` (traceable; use inside ``jit``).

    Args:
      fn: a function ``fn(*args, batch) -> pytree`` of arrays.
      batches: prepared batches (see :func:`prepare_batches`).
      *args: leading arguments passed to ``fn``.

    Returns:
      ``(1/n) Σ_j fn(*args, batch_j)``, accumulated in a ``jax.lax.scan`` for stacked batches
      (memory of one term, not ``n``).

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> batches = landscape.prepare_batches(jnp.array([[1.0, 2.0], [3.0, 4.0]]))
      >>> float(landscape.batch_mean(lambda w, b: jnp.sum(w * b), batches, jnp.ones(2)))
      5.0
    """
    if isinstance(batches, BatchList):
        total = None
        for batch in batches.batches:
            value = fn(*args, batch)
            total = value if total is None else jax.tree_util.tree_map(jnp.add, total, value)
        n = len(batches.batches)
        return jax.tree_util.tree_map(lambda t: t / n, total)
    tree = batches.tree
    n = _leading_dim(tree)
    first = jax.tree_util.tree_map(lambda leaf: leaf[0], tree)
    init = fn(*args, first)
    if n == 1:
        return init
    rest = jax.tree_util.tree_map(lambda leaf: leaf[1:], tree)

    def body(acc, batch):
        return jax.tree_util.tree_map(jnp.add, acc, fn(*args, batch)), None

    total, _ = jax.lax.scan(body, init, rest)
    return jax.tree_util.tree_map(lambda t: t / n, total)


def _loss_and_grad(loss_fn, params, batches):
    return batch_mean(jax.value_and_grad(loss_fn), batches, params)


_loss_and_grad_jit = jax.jit(_loss_and_grad, static_argnums=0)


def full_loss_and_grad(
    loss_fn: Callable[[PyTree, PyTree], jax.Array], params: PyTree, batches: Any
) -> tuple[jax.Array, PyTree]:
    """Dataset loss ``f(w) = (1/n) Σ_j loss_fn(w, batch_j)`` and its gradient.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the parameters, any pytree.
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).

    Returns:
      ``(loss, grad)`` with ``grad`` a pytree like ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
      >>> batches = [(jnp.eye(2), jnp.ones(2))] * 3
      >>> loss, grad = landscape.full_loss_and_grad(loss_fn, jnp.zeros(2), batches)
      >>> float(loss)
      1.0
    """
    return _loss_and_grad_jit(loss_fn, params, prepare_batches(batches))
