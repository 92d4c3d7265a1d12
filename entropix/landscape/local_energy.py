"""Local energy: flatness under multiplicative Gaussian weight noise.

Pittorino et al. measure the flatness of a minimum ``w`` by the *local energy*

.. math::

  δE(w, σ) = E_{z \\sim \\mathcal N(0, I)}\\, E(w + σ\\, z \\odot w) - E(w),

for the training error (and optionally the loss) ``E`` over a grid of noise levels ``σ``:
"local entropy is expensive to compute, we compute the cheap local energy"; flatter minima
(smaller ``δE``) generalize better. The expectation is a Monte-Carlo average over
``num_samples`` draws of ``z`` with *common random numbers*: the same ``z`` for every ``σ``, so
the curve is smooth in ``σ`` and ``δE(w, 0) = 0`` exactly. Because the noise is multiplicative,
``δE`` is invariant under function-preserving rescalings (``W₁ → c W₁``, ``W₂ → W₂ / c`` around
a ReLU), unlike additive-noise flatness.

Facts used by the tests: for ``E(w) = ½ (w − m)ᵀ A (w − m)``,
``δE(w, σ) = (σ²/2) Σ_i A_ii w_i²`` exactly.

References:
  Pittorino, Lucibello, Feinauer, Perugini, Baldassi, Demyanenko & Zecchina, *Entropic gradient
  descent algorithms and wide flat minima*, ICLR 2021 (and the slides of the same title).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from entropix._src import validation
from entropix.landscape import dataset, lanczos

PyTree = Any
_NORM_NAMES = ("norm", "bn")


def is_normalization_param(path: Sequence[Any], leaf: Any = None) -> bool:
    """True when a parameter path names a normalization layer (BatchNorm, LayerNorm, ``bn``).

    Meant as the ``skip`` predicate of :func:`local_energy`: a path entry whose name contains
    ``"norm"`` or ``"bn"`` (case-insensitive), e.g. Flax's ``BatchNorm_0``, ``LayerNorm_1``.

    Args:
      path: a key path from ``jax.tree_util.tree_map_with_path``.
      leaf: the parameter (unused).

    Returns:
      Whether to skip the parameter.

    Examples:
      >>> import jax
      >>> from entropix import landscape
      >>> params = {"BatchNorm_0": {"scale": 1.0}, "Dense_0": {"kernel": 2.0}}
      >>> jax.tree_util.tree_map_with_path(landscape.is_normalization_param, params)
      {'BatchNorm_0': {'scale': True}, 'Dense_0': {'kernel': False}}
    """
    del leaf
    for entry in path:
        name = getattr(entry, "key", getattr(entry, "name", getattr(entry, "idx", entry)))
        name = str(name).lower()
        if any(token in name for token in _NORM_NAMES):
            return True
    return False


class LocalEnergy(NamedTuple):
    """Output of :func:`local_energy`.

    Attributes:
      sigmas: the noise levels ``σ``, shape ``(num_sigmas,)``.
      loss: ``δE`` of the loss at each ``σ``.
      loss_stderr: Monte-Carlo standard error of ``loss`` (over the ``num_samples`` draws).
      loss_at_params: the unperturbed dataset loss ``E(w)``.
      error: ``δE`` of ``error_fn`` (``None`` without ``error_fn``).
      error_stderr: its standard error.
      error_at_params: the unperturbed ``error_fn`` value.
      num_perturbed: number of perturbed parameters (after ``skip``).
    """

    sigmas: jax.Array
    loss: jax.Array
    loss_stderr: jax.Array
    loss_at_params: jax.Array
    error: jax.Array | None
    error_stderr: jax.Array | None
    error_at_params: jax.Array | None
    num_perturbed: int


def _metrics(fns, params, batch):
    return tuple(fn(params, batch) for fn in fns)


def _curves(fns, params, sigmas, keys, mask, batches):
    flat, unravel = ravel_pytree(params)
    evaluate = lambda p: dataset.batch_mean(  # noqa: E731
        lambda q, b: _metrics(fns, q, b), batches, p
    )
    base = evaluate(params)

    def per_sample(key):
        z = jax.random.normal(key, flat.shape, flat.dtype) * mask

        def per_sigma(sigma):
            return evaluate(unravel(flat + sigma * z * flat))

        return jax.lax.map(per_sigma, sigmas)

    values = jax.lax.map(per_sample, keys)  # tuple of (num_samples, num_sigmas)
    return base, values


_curves_jit = jax.jit(_curves, static_argnums=0)


def local_energy(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    batches: Any,
    sigmas: Any,
    *,
    error_fn: Callable[[PyTree, PyTree], jax.Array] | None = None,
    num_samples: int = 16,
    key: jax.Array | None = None,
    skip: Callable[[Any, Any], bool] | None = None,
) -> LocalEnergy:
    """Local energy ``δE(w, σ)`` of the loss (and the training error) over a grid of ``σ``.

    .. math::

      δE(w, σ) = \\frac1S \\sum_{s=1}^S E(w + σ z_s \\odot w) - E(w), \\qquad
      z_s \\sim \\mathcal N(0, I),

    with the same ``z_s`` for every ``σ`` (common random numbers). Each evaluation of ``E`` is
    the mean over ``batches``; the cost is ``S × len(sigmas)`` passes over the data.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the point ``w``, any pytree.
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).
      sigmas: the noise levels ``σ ≥ 0``, a sequence or 1-D array.
      error_fn: optional ``error_fn(params, batch) -> scalar``, e.g. the batch's
        misclassification rate (the slides' training error).
      num_samples: Monte-Carlo draws ``S`` of ``z``.
      key: PRNG key (default ``jax.random.key(0)``); the same key gives the same ``z``.
      skip: optional predicate ``skip(path, leaf) -> bool`` (as in
        ``jax.tree_util.tree_map_with_path``); skipped parameters are not perturbed, e.g.
        :func:`is_normalization_param` for BatchNorm/LayerNorm parameters.

    Returns:
      A :class:`LocalEnergy`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * jnp.sum(b * w**2)     # A = diag(b), m = 0
      >>> w = jnp.array([1.0, 2.0])
      >>> le = landscape.local_energy(loss_fn, w, [jnp.array([1.0, 1.0])], [0.0, 0.1],
      ...                             num_samples=2000, key=jax.random.key(0))
      >>> float(le.loss[0])                                   # common random numbers
      0.0
      >>> bool(abs(le.loss[1] - 0.025) < 4 * le.loss_stderr[1])  # (σ²/2) Σ A_ii w_i² = 0.025
      True
    """
    num_samples = validation.check_static_int("num_samples", num_samples)
    sigmas = jnp.atleast_1d(jnp.asarray(sigmas))
    if sigmas.ndim != 1 or sigmas.size == 0:
        raise ValueError(f"`sigmas` must be a non-empty 1-D sequence, got shape {sigmas.shape}.")
    if bool(jnp.any(sigmas < 0)):
        raise ValueError(f"`sigmas` must be non-negative, got sigmas={sigmas.tolist()}.")
    flat, _ = ravel_pytree(params)
    if flat.size == 0:
        raise ValueError("`params` has no parameters.")
    sigmas = sigmas.astype(flat.dtype)
    if skip is None:
        mask = jnp.ones_like(flat)
    else:
        mask_tree = jax.tree_util.tree_map_with_path(
            lambda path, leaf: jnp.full(jnp.shape(leaf), 0.0 if skip(path, leaf) else 1.0),
            params,
        )
        mask = ravel_pytree(mask_tree)[0].astype(flat.dtype)
    num_perturbed = int(jnp.sum(mask))
    if num_perturbed == 0:
        raise ValueError("`skip` excludes every parameter: nothing to perturb.")
    key = lanczos._default_key(key)
    keys = jax.random.split(key, num_samples)
    fns = (loss_fn,) if error_fn is None else (loss_fn, error_fn)
    base, values = _curves_jit(fns, params, sigmas, keys, mask, dataset.prepare_batches(batches))

    def summarize(b, v):
        delta = v - b
        mean = jnp.mean(delta, axis=0)
        if num_samples > 1:
            se = jnp.std(delta, axis=0, ddof=1) / jnp.sqrt(num_samples)
        else:
            se = jnp.zeros_like(mean)
        return mean, se

    loss, loss_se = summarize(base[0], values[0])
    if error_fn is None:
        error = error_se = error_base = None
    else:
        error, error_se = summarize(base[1], values[1])
        error_base = base[1]
    return LocalEnergy(
        sigmas=sigmas,
        loss=loss,
        loss_stderr=loss_se,
        loss_at_params=base[0],
        error=error,
        error_stderr=error_se,
        error_at_params=error_base,
        num_perturbed=num_perturbed,
    )
