"""On-device batching for the optimizers: shuffled epochs, stacked ``(L, batch, …)`` groups,
per-replica shards (split-data Parle) and effective-epoch accounting.

Data is any pytree of arrays with a common leading (example) axis, typically ``(x, y)``.
Put it on the device once (``jax.device_put``); every function here then gathers on the
device, so no host → device copy happens per step.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


def _num_examples(data: PyTree) -> int:
    sizes = {leaf.shape[0] for leaf in jax.tree.leaves(data)}
    if len(sizes) != 1:
        raise ValueError(f"data leaves disagree on the number of examples: {sorted(sizes)}.")
    return sizes.pop()


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive int.")


def steps_per_epoch(num_examples: int, batch_size: int, drop_remainder: bool = True) -> int:
    """Number of minibatches in one pass over ``num_examples``.

    Args:
      num_examples: dataset size.
      batch_size: minibatch size.
      drop_remainder: drop the last incomplete batch (what ``shuffle_epoch`` does).

    Returns:
      Steps per epoch.

    Examples:
      >>> steps_per_epoch(60_000, 128), steps_per_epoch(60_000, 128, drop_remainder=False)
      (468, 469)
    """
    _check_positive("batch_size", batch_size)
    if drop_remainder:
        return num_examples // batch_size
    return math.ceil(num_examples / batch_size)


def effective_epochs(gradient_evaluations: int | float, steps_per_epoch: int) -> float:
    """Effective epochs = minibatch gradient evaluations / steps per epoch (the papers' x-axis).

    For Entropy-SGD this is ``outer epochs × L``; compare every optimizer on it, never on
    outer steps. For replica methods pass the evaluations of one replica (the papers' wall-clock
    view) or of all replicas (total compute), and say which.

    Args:
      gradient_evaluations: number of minibatch gradients computed.
      steps_per_epoch: minibatches per epoch of the (per-replica) training set.

    Returns:
      The effective number of epochs.

    Examples:
      >>> effective_epochs(gradient_evaluations=5 * 468 * 20, steps_per_epoch=468)  # 5 epochs, L=20
      100.0
    """
    _check_positive("steps_per_epoch", steps_per_epoch)
    return gradient_evaluations / steps_per_epoch


@functools.partial(jax.jit, static_argnames=("batch_size",))
def shuffle_epoch(key: jax.Array, data: PyTree, batch_size: int) -> PyTree:
    """One shuffled epoch as stacked minibatches ``(steps, batch_size, …)``, on device.

    A ``jax.random.permutation`` of the examples, the last incomplete batch dropped
    (``steps = n // batch_size``). Feed the result to ``jax.lax.scan`` or index it per step.

    Args:
      key: PRNG key of this epoch.
      data: pytree of arrays with a common leading axis of n examples.
      batch_size: minibatch size (static).

    Returns:
      The pytree with leaves of shape ``(n // batch_size, batch_size, …)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> xb, yb = shuffle_epoch(jax.random.key(0), (jnp.zeros((10, 3)), jnp.arange(10)), 4)
      >>> xb.shape, yb.shape
      ((2, 4, 3), (2, 4))
    """
    n = _num_examples(data)
    _check_positive("batch_size", batch_size)
    steps = n // batch_size
    if steps == 0:
        raise ValueError(f"batch_size={batch_size} exceeds the {n} examples.")
    order = jax.random.permutation(key, n)[: steps * batch_size]
    return jax.tree.map(
        lambda a: jnp.take(a, order, axis=0).reshape(steps, batch_size, *a.shape[1:]), data
    )


def group_batches(batches: PyTree, group_size: int) -> PyTree:
    """Regroups stacked minibatches ``(steps, batch, …)`` into ``(steps // L, L, batch, …)``.

    Each group is the stack of L minibatches one compiled outer step of Entropy-SGD / Parle
    consumes in its ``lax.scan`` inner loop; an incomplete last group is dropped.

    Args:
      batches: pytree of ``(steps, batch, …)`` arrays (e.g. from ``shuffle_epoch``).
      group_size: L.

    Returns:
      The regrouped pytree.

    Examples:
      >>> import jax.numpy as jnp
      >>> group_batches(jnp.zeros((10, 4, 3)), 3).shape
      (3, 3, 4, 3)
    """
    _check_positive("group_size", group_size)
    steps = _num_examples(batches)
    groups = steps // group_size
    if groups == 0:
        raise ValueError(f"group_size={group_size} exceeds the {steps} minibatches available.")
    return jax.tree.map(
        lambda a: a[: groups * group_size].reshape(groups, group_size, *a.shape[1:]), batches
    )


def epoch_minibatch_groups(
    key: jax.Array, data: PyTree, batch_size: int, group_size: int
) -> PyTree:
    """A shuffled epoch as ``(steps // L, L, batch, …)`` groups for compiled inner loops.

    Args:
      key: PRNG key of this epoch.
      data: pytree of arrays with a common leading axis.
      batch_size: minibatch size.
      group_size: L, the minibatches per outer step.

    Returns:
      The grouped pytree.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> g = epoch_minibatch_groups(jax.random.key(0), jnp.zeros((100, 2)), 8, 5)
      >>> g.shape
      (2, 5, 8, 2)
    """
    return group_batches(shuffle_epoch(key, data, batch_size), group_size)


@functools.partial(jax.jit, static_argnames=("batch_size", "num_batches"))
def sample_minibatches(key: jax.Array, data: PyTree, batch_size: int, num_batches: int) -> PyTree:
    """``num_batches`` independent minibatches ``(num_batches, batch, …)``, each sampled without
    replacement.

    The papers' "Ξ ← sample minibatch" at every inner step, when epochs are not tracked.

    Args:
      key: PRNG key.
      data: pytree of arrays with a common leading axis.
      batch_size: minibatch size (static).
      num_batches: number of minibatches, e.g. L (static).

    Returns:
      The stacked minibatches.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sample_minibatches(jax.random.key(0), jnp.arange(10), 3, 4).shape
      (4, 3)
    """
    n = _num_examples(data)
    keys = jax.random.split(key, num_batches)
    index = jax.vmap(lambda k: jax.random.choice(k, n, (batch_size,), replace=False))(keys)
    return jax.tree.map(lambda a: jnp.take(a, index, axis=0), data)


def replica_shards(
    key: jax.Array, num_examples: int, num_replicas: int, fraction: float
) -> jax.Array:
    """Example indices of each replica for split-data training (thesis ch. 5.5).

    Every replica gets ``m = ceil(fraction · n)`` distinct examples and every example belongs
    to at least one replica: a random permutation is cut into ``num_replicas`` equally spaced,
    overlapping windows of length m (cyclically). E.g. n = 3 replicas with 50% each cover the
    data 1.5 times; 6 with 25% likewise.

    Args:
      key: PRNG key of the permutation.
      num_examples: n.
      num_replicas: number of replicas.
      fraction: fraction of the data each replica sees, at least ``1 / num_replicas``.

    Returns:
      int32 array ``(num_replicas, m)``; gather with ``shard_data``.

    Examples:
      >>> import jax
      >>> replica_shards(jax.random.key(0), 12, 3, 0.5).shape
      (3, 6)
    """
    _check_positive("num_replicas", num_replicas)
    _check_positive("num_examples", num_examples)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction={fraction} must lie in (0, 1].")
    if fraction * num_replicas < 1.0 - 1e-12:
        raise ValueError(
            f"num_replicas={num_replicas} × fraction={fraction} < 1: some examples would belong "
            "to no replica; raise fraction to at least 1/num_replicas."
        )
    size = math.ceil(fraction * num_examples - 1e-9)
    order = jax.random.permutation(key, num_examples)
    starts = (jnp.arange(num_replicas) * num_examples) // num_replicas
    window = (starts[:, None] + jnp.arange(size)[None, :]) % num_examples
    return order[window].astype(jnp.int32)


def shard_data(data: PyTree, shards: jax.Array) -> PyTree:
    """Gathers per-replica datasets ``(num_replicas, m, …)`` from ``replica_shards`` indices.

    Vmap ``shuffle_epoch`` over the leading axis (with one key per replica) to get every
    replica's epoch of minibatches.

    Args:
      data: pytree of arrays with a common leading axis.
      shards: ``(num_replicas, m)`` indices.

    Returns:
      The sharded pytree.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> shards = replica_shards(jax.random.key(0), 10, 2, 0.5)
      >>> shard_data(jnp.arange(10.0), shards).shape
      (2, 5)
    """
    return jax.tree.map(lambda a: jnp.take(a, shards, axis=0), data)


def replica_epochs(key: jax.Array, sharded: PyTree, batch_size: int) -> PyTree:
    """One shuffled epoch per replica: ``(num_replicas, steps, batch, …)`` (independent orders).

    Args:
      key: PRNG key, split once per replica.
      sharded: pytree of ``(num_replicas, m, …)`` arrays (``shard_data``).
      batch_size: per-replica minibatch size.

    Returns:
      The stacked per-replica minibatches.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sharded = shard_data(jnp.arange(12.0), replica_shards(jax.random.key(0), 12, 3, 0.5))
      >>> replica_epochs(jax.random.key(1), sharded, 2).shape
      (3, 3, 2)
    """
    num_replicas = jax.tree.leaves(sharded)[0].shape[0]
    keys = jax.random.split(key, num_replicas)
    return jax.vmap(lambda k, d: shuffle_epoch(k, d, batch_size))(keys, sharded)


def make_group_grad_fn(
    loss_fn: Callable[..., jax.Array], group: PyTree, key: jax.Array | None = None
) -> Callable[[PyTree, jax.Array], PyTree]:
    """``grad_fn(params, i)`` over a stacked group ``(L, batch, …)``, for compiled inner loops.

    The compiled form of the two-loop optimizers calls ``grad_fn(params, i)`` inside its
    ``lax.scan``; this returns the gradient of ``loss_fn`` on minibatch ``i`` of ``group``.
    With ``key``, minibatch i gets ``jax.random.fold_in(key, i)`` as its ``rng`` (dropout), so
    every inner step draws fresh masks.

    Args:
      loss_fn: ``loss_fn(params, batch)`` or, with ``key``, ``loss_fn(params, batch, rng)``
        (e.g. ``entropix.models.make_loss_fn(model, train=True)``).
      group: pytree of ``(L, batch, …)`` arrays (one group of ``epoch_minibatch_groups``).
      key: optional PRNG key for stochastic layers.

    Returns:
      ``grad_fn(params, i)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> loss = lambda w, batch: jnp.mean((batch[0] * w - batch[1]) ** 2)
      >>> group = (jnp.ones((2, 3)), jnp.stack([jnp.zeros(3), jnp.ones(3)]))
      >>> grad_fn = make_group_grad_fn(loss, group)
      >>> float(grad_fn(1.0, 0)), float(grad_fn(1.0, 1))
      (2.0, 0.0)
    """
    grad = jax.grad(loss_fn)

    def grad_fn(params: PyTree, index: jax.Array) -> PyTree:
        batch = jax.tree.map(lambda a: a[index], group)
        if key is None:
            return grad(params, batch)
        return grad(params, batch, jax.random.fold_in(key, index))

    return grad_fn


def language_model_batches(
    inputs: jax.Array, targets: jax.Array, batch_size: int, seq_len: int
) -> tuple[jax.Array, jax.Array]:
    """Cuts a token stream into BPTT windows ``(num_windows, batch, seq_len)`` (Zaremba et al.).

    The stream is split into ``batch_size`` contiguous rows; window k holds positions
    ``[k·T, (k+1)·T)`` of every row, so row b of window k+1 continues row b of window k and the
    LSTM state can be carried from one window to the next. The tail that does not fill a
    window is dropped.

    Args:
      inputs: 1-D input ids (``Dataset.x_train``).
      targets: 1-D next ids (``Dataset.y_train``), same length.
      batch_size: number of parallel streams.
      seq_len: T, the unroll length (35 for PTB, 50 for char-LSTM).

    Returns:
      ``(x, y)`` windows.

    Examples:
      >>> import jax.numpy as jnp
      >>> x, y = language_model_batches(jnp.arange(20), jnp.arange(1, 21), 2, 3)
      >>> x.shape, x[1, 0].tolist(), x[0, 1].tolist()
      ((3, 2, 3), [3, 4, 5], [10, 11, 12])
    """
    _check_positive("batch_size", batch_size)
    _check_positive("seq_len", seq_len)
    if len(inputs) != len(targets):
        raise ValueError(f"inputs ({len(inputs)}) and targets ({len(targets)}) differ in length.")
    row = len(inputs) // batch_size
    windows = row // seq_len
    if windows == 0:
        raise ValueError(
            f"{len(inputs)} tokens are too few for batch_size={batch_size} × seq_len={seq_len}."
        )

    def cut(a):
        a = jnp.asarray(a)[: batch_size * row].reshape(batch_size, row)[:, : windows * seq_len]
        return a.reshape(batch_size, windows, seq_len).transpose(1, 0, 2)

    return cut(inputs), cut(targets)
