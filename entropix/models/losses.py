"""Losses, metrics and ``loss_fn(params, batch)`` builders for the benchmark networks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

Batch = tuple[jax.Array, jax.Array] | Mapping[str, jax.Array]
LossFn = Callable[[jax.Array, jax.Array], jax.Array]

# Key pairs accepted for dict batches, first match wins (ours, tfds, common JAX examples).
_BATCH_KEYS = (("x", "y"), ("image", "label"), ("inputs", "targets"))


def unpack_batch(batch: Batch) -> tuple[jax.Array, jax.Array]:
    """Returns ``(inputs, targets)`` of a pair or a dict (x/y, image/label, inputs/targets).

    Args:
      batch: the batch.

    Returns:
      The pair ``(inputs, targets)``.

    Examples:
      >>> unpack_batch({"image": 1, "label": 2})
      (1, 2)
    """
    if isinstance(batch, Mapping):
        for x_key, y_key in _BATCH_KEYS:
            if x_key in batch and y_key in batch:
                return batch[x_key], batch[y_key]
        raise KeyError(
            f"batch has keys {sorted(batch)}; expected one of the pairs {list(_BATCH_KEYS)}."
        )
    x, y = batch
    return x, y


def cross_entropy_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels over all leading axes.

    Works for classifiers (``(B, C)`` logits, ``(B,)`` labels) and language models
    (``(B, T, V)`` logits, ``(B, T)`` labels; ``exp`` of the result is the perplexity).

    Args:
      logits: unnormalized log-probabilities, classes on the last axis.
      labels: integer labels with the shape of ``logits`` minus the last axis.

    Returns:
      Scalar mean loss (nats).

    Examples:
      >>> import jax.numpy as jnp
      >>> float(cross_entropy_loss(jnp.zeros((2, 4)), jnp.array([0, 3])))  # log 4
      1.3862943649291992
    """
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of positions whose arg-max logit equals the label.

    Args:
      logits: scores, classes on the last axis.
      labels: integer labels.

    Returns:
      Scalar accuracy in [0, 1].

    Examples:
      >>> import jax.numpy as jnp
      >>> float(accuracy(jnp.array([[0.0, 1.0], [2.0, 1.0]]), jnp.array([1, 1])))
      0.5
    """
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def error_rate(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Classification error ``1 − accuracy`` (the papers report it in %).

    Args:
      logits: scores, classes on the last axis.
      labels: integer labels.

    Returns:
      Scalar error in [0, 1].

    Examples:
      >>> import jax.numpy as jnp
      >>> float(error_rate(jnp.array([[0.0, 1.0], [2.0, 1.0]]), jnp.array([1, 1])))
      0.5
    """
    return 1.0 - accuracy(logits, labels)


def perplexity(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-token perplexity ``exp(mean cross-entropy)`` (PTB-LSTM, char-LSTM tables).

    Args:
      logits: ``(..., V)`` next-token logits.
      labels: ``(...)`` next-token ids.

    Returns:
      Scalar perplexity.

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(perplexity(jnp.zeros((1, 3, 7)), jnp.zeros((1, 3), jnp.int32))), 4)
      7.0
    """
    return jnp.exp(cross_entropy_loss(logits, labels))


def committee_logistic_loss(outputs: jax.Array, labels: jax.Array, scale: float = 4.0) -> jax.Array:
    """Logistic loss ``mean log(1 + exp(−scale·y·ŷ))`` of the committee-machine student (labels ±1).

    Args:
      outputs: real outputs ŷ of ``CommitteeMachine(activation="tanh")``.
      labels: targets in {−1, +1}.
      scale: margin scale (4 in the teacher–student toy, ``entropix.toys.committee``).

    Returns:
      Scalar mean loss.

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(committee_logistic_loss(jnp.zeros(3), jnp.ones(3))), 6)  # log 2
      0.693147
    """
    return jnp.mean(jax.nn.softplus(-scale * labels * outputs))


def committee_error(outputs: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of sign errors ``mean(sign(ŷ) ≠ y)`` for ±1 labels.

    Args:
      outputs: real outputs ŷ.
      labels: targets in {−1, +1}.

    Returns:
      Scalar error in [0, 1].

    Examples:
      >>> import jax.numpy as jnp
      >>> float(committee_error(jnp.array([0.3, -0.2]), jnp.array([1.0, 1.0])))
      0.5
    """
    return jnp.mean(jnp.sign(outputs) != labels)


def l2_penalty(params: Any) -> jax.Array:
    """Returns ``½‖params‖²`` over every leaf (the papers' ℓ2 regularization, times λ).

    Args:
      params: a pytree of arrays.

    Returns:
      Scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(l2_penalty({"w": jnp.array([3.0, 4.0])}))
      12.5
    """
    leaves = jax.tree.leaves(params)
    return 0.5 * sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)


def make_loss_fn(
    model: nn.Module,
    *,
    train: bool = False,
    loss: LossFn = cross_entropy_loss,
    model_state: Mapping[str, Any] | None = None,
    weight_decay: float = 0.0,
) -> Callable[..., jax.Array]:
    """Builds a pure ``loss_fn(params, batch, rng=None) -> scalar`` for the optimizers.

    In train mode dropout is active (pass ``rng``; a model with dropout and no ``rng`` raises)
    and batch normalization normalizes with the batch statistics; the updated running averages
    are discarded, so the function stays pure (use ``make_stateful_loss_fn`` to keep them).
    In eval mode the running averages in ``model_state`` are used and the result is
    deterministic.

    Args:
      model: a Flax module whose ``__call__`` takes ``(x, *, train)``.
      train: training-mode behaviour of dropout and batch normalization.
      loss: ``loss(outputs, targets)``, e.g. ``cross_entropy_loss`` or ``committee_logistic_loss``.
      model_state: non-parameter collections (``{"batch_stats": ...}``); needed in eval mode for BN.
      weight_decay: coefficient λ of the added ``λ/2 ‖params‖²``.

    Returns:
      ``loss_fn(params, batch, rng=None)`` with ``batch = (x, y)`` or a dict.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix.models import small_mnistfc
      >>> model = small_mnistfc()
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 784)), train=False)["params"]
      >>> loss_fn = make_loss_fn(model)
      >>> loss_fn(params, (jnp.zeros((2, 784)), jnp.array([0, 1]))).shape
      ()
    """
    state = dict(model_state or {})

    def loss_fn(params: Any, batch: Batch, rng: jax.Array | None = None) -> jax.Array:
        x, y = unpack_batch(batch)
        rngs = {"dropout": rng} if rng is not None else {}
        variables = {"params": params, **state}
        if train:
            outputs, _ = model.apply(variables, x, train=True, rngs=rngs, mutable=["batch_stats"])
        else:
            outputs = model.apply(variables, x, train=False, rngs=rngs)
        value = loss(outputs, y)
        if weight_decay:
            value = value + weight_decay * l2_penalty(params)
        return value

    return loss_fn


def make_stateful_loss_fn(
    model: nn.Module, *, loss: LossFn = cross_entropy_loss, weight_decay: float = 0.0
) -> Callable[..., tuple[jax.Array, dict[str, Any]]]:
    """Builds a train-mode ``loss_fn(params, model_state, batch, rng) -> (loss, new_model_state)``.

    For ``jax.value_and_grad(loss_fn, has_aux=True)``: the auxiliary output carries the updated
    BatchNorm running averages (``{}`` for models without state).

    Args:
      model: a Flax module whose ``__call__`` takes ``(x, *, train)``.
      loss: ``loss(outputs, targets)``.
      weight_decay: coefficient λ of the added ``λ/2 ‖params‖²``.

    Returns:
      The loss function.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix.models import small_fc
      >>> model = small_fc()
      >>> v = model.init(jax.random.key(0), jnp.zeros((1, 49)), train=False)
      >>> loss_fn = make_stateful_loss_fn(model)
      >>> batch = (jnp.ones((4, 49)), jnp.arange(4))
      >>> state = {"batch_stats": v["batch_stats"]}
      >>> value, state = loss_fn(v["params"], state, batch, jax.random.key(1))
      >>> sorted(state)
      ['batch_stats']
    """

    def loss_fn(
        params: Any, model_state: Mapping[str, Any], batch: Batch, rng: jax.Array | None
    ) -> tuple[jax.Array, dict[str, Any]]:
        x, y = unpack_batch(batch)
        rngs = {"dropout": rng} if rng is not None else {}
        outputs, new_state = model.apply(
            {"params": params, **model_state}, x, train=True, rngs=rngs, mutable=["batch_stats"]
        )
        value = loss(outputs, y)
        if weight_decay:
            value = value + weight_decay * l2_penalty(params)
        return value, dict(new_state)

    return loss_fn


def make_metrics_fn(
    model: nn.Module,
    *,
    model_state: Mapping[str, Any] | None = None,
    metrics: Mapping[str, LossFn] | None = None,
) -> Callable[[Any, Batch], dict[str, jax.Array]]:
    """Builds an eval-mode ``metrics_fn(params, batch) -> {name: value}``.

    Args:
      model: a Flax module whose ``__call__`` takes ``(x, *, train)``.
      model_state: non-parameter collections (BatchNorm running averages).
      metrics: ``{name: fn(outputs, targets)}``; default loss (cross-entropy) and error.

    Returns:
      The metrics function (jit it).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix.models import small_mnistfc
      >>> model = small_mnistfc()
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 784)), train=False)["params"]
      >>> sorted(make_metrics_fn(model)(params, (jnp.zeros((2, 784)), jnp.array([0, 1]))))
      ['error', 'loss']
    """
    chosen = dict(metrics or {"loss": cross_entropy_loss, "error": error_rate})
    state = dict(model_state or {})

    def metrics_fn(params: Any, batch: Batch) -> dict[str, jax.Array]:
        x, y = unpack_batch(batch)
        outputs = model.apply({"params": params, **state}, x, train=False)
        return {name: fn(outputs, y) for name, fn in chosen.items()}

    return metrics_fn
