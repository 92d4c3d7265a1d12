"""Diagonal Fisher information: empirical (per-example gradients) and from Adam's moments.

Chaudhari et al. use the diagonal of the empirical Fisher information

.. math::

  \\operatorname{diag} I = E[g \\odot g] - E[g] \\odot E[g]

as a proxy for the Hessian spectrum of networks too large for an exact Hessian (All-CNN-BN on
CIFAR-10, ICLR 2017 Fig. 3c; thesis Fig. 3.4c), computed "from the element-wise first and second
moments of the gradients that Adam maintains". :func:`adam_fisher_diagonal` does that with the
bias-corrected moments ``ν̂ − μ̂²``; :func:`empirical_fisher_diagonal` computes the exact
per-example version. Note that Adam's two moments average over different windows when
``b1 ≠ b2``.

References:
  Chaudhari et al., *Entropy-SGD: biasing gradient descent into wide valleys*, ICLR 2017,
  §5.1 (iv).
  Chaudhari, *A picture of the energy landscape of deep neural networks*, PhD thesis, UCLA
  2018, §3.3.1 (iv).
  Kingma & Ba, *Adam: a method for stochastic optimization*, ICLR 2015.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from entropix._src import validation
from entropix.landscape import dataset

PyTree = Any


def _example_stats(loss_fn, params, batch):
    def one(example):
        single = jax.tree_util.tree_map(lambda leaf: leaf[None], example)
        return jax.grad(loss_fn)(params, single)

    grads = jax.vmap(one)(batch)
    mean = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), grads)
    second = jax.tree_util.tree_map(lambda g: jnp.mean(g * g, axis=0), grads)
    return mean, second


def _empirical(loss_fn, params, batches, centered):
    mean, second = dataset.batch_mean(
        lambda p, batch: _example_stats(loss_fn, p, batch), batches, params
    )
    if not centered:
        return second
    return jax.tree_util.tree_map(lambda s, m: jnp.maximum(s - m * m, 0.0), second, mean)


_empirical_jit = jax.jit(_empirical, static_argnums=(0, 3))


def empirical_fisher_diagonal(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    batches: Any,
    *,
    centered: bool = False,
) -> PyTree:
    """Diagonal empirical Fisher from per-example gradients (vmapped).

    .. math::

      F_{ii} = \\frac1N \\sum_{k=1}^N (\\partial_i \\ell_k)^2
      \\quad\\text{or, with ``centered=True``,}\\quad
      \\frac1N \\sum_k (\\partial_i \\ell_k)^2
      - \\Big(\\frac1N \\sum_k \\partial_i \\ell_k\\Big)^2 .

    Every leaf of a batch must carry a leading example axis; the per-example loss is
    ``loss_fn(params, example[None])`` (a batch of one).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the point ``w``, any pytree.
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).
      centered: subtract the squared dataset-mean gradient (the variance form
        ``E g² − (E g)²`` of the papers); both means are over all examples (batches of equal
        size).

    Returns:
      A pytree like ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: jnp.mean(b @ w)          # per-example gradient = x_k
      >>> x = jnp.array([[1.0, 2.0], [3.0, 0.0]])
      >>> landscape.empirical_fisher_diagonal(loss_fn, jnp.zeros(2), [x]).tolist()
      [5.0, 2.0]
    """
    return _empirical_jit(loss_fn, params, dataset.prepare_batches(batches), bool(centered))


def find_adam_state(opt_state: Any) -> optax.ScaleByAdamState:
    """Returns the first ``optax.ScaleByAdamState`` inside an optimizer state (e.g. a chain).

    Args:
      opt_state: any optax state.

    Returns:
      The ``ScaleByAdamState`` (``ValueError`` if there is none).

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from entropix import landscape
      >>> opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
      >>> type(landscape.find_adam_state(opt.init(jnp.zeros(2)))).__name__
      'ScaleByAdamState'
    """
    if isinstance(opt_state, optax.ScaleByAdamState):
        return opt_state
    found = [
        s
        for s in jax.tree_util.tree_leaves(
            opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState)
        )
        if isinstance(s, optax.ScaleByAdamState)
    ]
    if not found:
        raise ValueError(
            "`adam_state` holds no optax.ScaleByAdamState: pass the state of optax.adam / "
            "optax.scale_by_adam (or a chain containing one)."
        )
    return found[0]


def adam_fisher_diagonal(
    adam_state: Any,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    count: int | jax.Array | None = None,
) -> PyTree:
    """Diagonal Fisher estimate ``ν̂ − μ̂²`` from Adam's bias-corrected moments.

    .. math::

      \\hat μ = \\frac{μ}{1 - b_1^t}, \\qquad \\hat ν = \\frac{ν}{1 - b_2^t}, \\qquad
      \\operatorname{diag} I \\approx \\max(\\hat ν - \\hat μ^2, 0).

    Args:
      adam_state: an ``optax.ScaleByAdamState`` or any optimizer state containing one.
      b1: Adam's first-moment decay (must match the optimizer).
      b2: Adam's second-moment decay (must match the optimizer).
      count: the step count ``t`` (default: the state's ``count``).

    Returns:
      A pytree like the parameters (zeros before the first update).

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from entropix import landscape
      >>> opt = optax.adam(1e-3, b1=0.5, b2=0.5)
      >>> state = opt.init(jnp.zeros(1))
      >>> for g in [1.0, 3.0]:
      ...     _, state = opt.update(jnp.array([g]), state)
      >>> fisher = landscape.adam_fisher_diagonal(state, b1=0.5, b2=0.5)  # weights 1/3, 2/3
      >>> round(float(fisher[0]), 4)  # variance of {1 (w=1/3), 3 (w=2/3)} = 8/9
      0.8889
    """
    b1 = validation.check_fraction("b1", b1, allow_zero=True)
    b2 = validation.check_fraction("b2", b2, allow_zero=True)
    if b1 >= 1.0:
        raise ValueError(f"`b1` must be < 1, got b1={b1}.")
    if b2 >= 1.0:
        raise ValueError(f"`b2` must be < 1, got b2={b2}.")
    state = find_adam_state(adam_state)
    t = state.count if count is None else count
    t = jnp.asarray(t)

    def one(mu, nu):
        dtype = mu.dtype
        tt = t.astype(dtype)
        c1 = 1 - jnp.asarray(b1, dtype) ** tt
        c2 = 1 - jnp.asarray(b2, dtype) ** tt
        mu_hat = jnp.where(c1 > 0, mu / jnp.where(c1 > 0, c1, 1), 0)
        nu_hat = jnp.where(c2 > 0, nu / jnp.where(c2 > 0, c2, 1), 0)
        return jnp.maximum(nu_hat - mu_hat**2, 0)

    return jax.tree_util.tree_map(one, state.mu, state.nu)
