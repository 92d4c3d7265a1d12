"""BatchNorm statistics for weights that were never trained with them (anchors, replica means)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from entropix.models.mlp import BN_MOMENTUM


def recompute_batch_stats(
    model: nn.Module,
    params: Any,
    inputs: jax.Array,
    rng: jax.Array | None = None,
    *,
    momentum: float = BN_MOMENTUM,
) -> dict[str, Any]:
    r"""Precise BatchNorm statistics at ``params``: mean of per-minibatch means and variances.

    The running averages that training maintains belong to the weights the gradients were taken
    at: the Entropy-SGD walker x′, each Parle replica. The weights one evaluates (the anchor x,
    the replica mean) have none of their own, and averaging the replicas' statistics is only an
    approximation. Recomputing them costs one forward pass per minibatch.

    Each minibatch is run in training mode from zero statistics, so the updated value is
    ``(1 − momentum) · batch statistic``; the result is the mean of the batch statistics over
    the minibatches (biased variances, as Flax's BatchNorm).

    Args:
      model: a Flax module taking ``(x, *, train)``.
      params: the weights to evaluate.
      inputs: stacked minibatches ``(num_batches, batch, …)``, e.g. ``shuffle_epoch(...)[0]``.
      rng: dropout key, needed if the model has dropout (training mode keeps it active, as it is
        when the running averages are accumulated during training).
      momentum: the modules' BatchNorm momentum (0.9 for every model of this package).

    Returns:
      ``{"batch_stats": ...}`` for ``model.apply({"params": params, **state}, x, train=False)``;
      ``{}`` for a model without BatchNorm.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix.models import small_fc
      >>> model = small_fc()
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 49)), train=False)["params"]
      >>> state = recompute_batch_stats(model, params, jnp.ones((3, 8, 49)))
      >>> state["batch_stats"]["BatchNorm_0"]["var"].shape
      (64,)
    """
    shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), inputs[0])
    if "batch_stats" not in shapes:
        return {}
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes["batch_stats"])
    keys = None if rng is None else jax.random.split(rng, inputs.shape[0])

    def batch_statistics(args):
        x, key = args
        rngs = {} if key is None else {"dropout": key}
        _, updates = model.apply(
            {"params": params, "batch_stats": zeros},
            x,
            train=True,
            rngs=rngs,
            mutable=["batch_stats"],
        )
        return jax.tree.map(lambda s: s / (1.0 - momentum), updates["batch_stats"])

    per_batch = jax.lax.map(batch_statistics, (inputs, keys))
    return {"batch_stats": jax.tree.map(lambda s: jnp.mean(s, axis=0), per_batch)}
