"""Gradient-noise (diffusion) matrix ``D(x)`` of SGD, its spectrum, rank and temperature.

With per-example gradients ``g_k = ∇f_k(x)`` (``k = 1..N``) and ``g = (1/N) Σ_k g_k``
(thesis Ch. 6, Lemma 6.3, eqs. 6.4–6.7, two misprints corrected):

.. math::

  D_{w} = \\frac1N \\sum_k g_k g_k^\\top - g g^\\top, \\qquad
  \\operatorname{Var}(∇f_b) = \\frac{D_w}{b} \\quad\\text{(minibatches with replacement)},

  D_{wo} = \\frac{1}{N-1} \\sum_k g_k g_k^\\top - \\frac{N}{N-1} g g^\\top, \\qquad
  \\operatorname{Var}(∇f_b) = \\frac1b\\Big(1 - \\frac bN\\Big) D_{wo}
  \\quad\\text{(without replacement)}

(the thesis's eq. 6.5 prints the coefficient ``1 − 1/(N−1)``; the correct one is ``N/(N−1)``,
as exact enumeration of all ``C(N, b)`` minibatches confirms). SGD with learning rate ``η`` and
batch ``b`` is then a diffusion at temperature ``β⁻¹ = η/(2b)`` (``(η/(2b))(1 − b/N)`` without
replacement; eq. 6.7 prints ``1 − β/N`` for ``1 − b/N``). Since ``D_w = (1/N) G_cᵀ G_c`` with
``G_c`` the centered ``N × d`` gradient matrix, the nonzero eigenvalues of ``D`` are those of
the ``N × N`` Gram matrix ``(1/N) G_c G_cᵀ`` (used when ``N < d``), and
``rank(D) ≤ min(d, N − 1)``: use at least ``d`` examples or the reported rank only reflects the
sample count. The rank counts
eigenvalues above ``λ_max × d × eps`` (NumPy's ``matrix_rank`` default, as in the thesis) and is
reported as a fraction of ``d`` (thesis Fig. 6.1–6.2: 0.3 %–2 %).

References:
  Chaudhari & Soatto, *Stochastic gradient descent performs variational inference, converges to
  limit cycles for deep networks*, ICLR 2018.
  Chaudhari, *A picture of the energy landscape of deep neural networks*, PhD thesis, UCLA
  2018, Ch. 6 (Lemma 6.3, §6.3.1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from entropix._src import validation
from entropix.landscape import dataset

PyTree = Any


def _example_grads(loss_fn, params, batch):
    def one(example):
        single = jax.tree_util.tree_map(lambda leaf: leaf[None], example)
        return ravel_pytree(jax.grad(loss_fn)(params, single))[0]

    return jax.vmap(one)(batch)


_example_grads_jit = jax.jit(_example_grads, static_argnums=0)


def per_example_gradients(
    loss_fn: Callable[[PyTree, PyTree], jax.Array], params: PyTree, batches: Any
) -> jax.Array:
    """Per-example gradients as an ``(N, d)`` matrix in flat (``ravel_pytree``) coordinates.

    Every leaf of a batch must carry a leading example axis; the per-example loss is
    ``loss_fn(params, example[None])``. Memory ``N × d``.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the point ``x``, any pytree.
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).

    Returns:
      The ``(N, d)`` matrix of per-example gradients, batches concatenated in order.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: jnp.mean(b @ w)
      >>> landscape.per_example_gradients(loss_fn, jnp.zeros(2), [jnp.eye(2)]).tolist()
      [[1.0, 0.0], [0.0, 1.0]]
    """
    prepared = dataset.prepare_batches(batches)
    if isinstance(prepared, dataset.BatchList):
        blocks = [_example_grads_jit(loss_fn, params, b) for b in prepared.batches]
        return jnp.concatenate(blocks, axis=0)
    n = dataset.num_batches(prepared)
    blocks = [
        _example_grads_jit(
            loss_fn, params, jax.tree_util.tree_map(lambda leaf, j=j: leaf[j], prepared.tree)
        )
        for j in range(n)
    ]
    return jnp.concatenate(blocks, axis=0)


def _check_grads(grads):
    grads = jnp.asarray(grads)
    if grads.ndim != 2 or grads.shape[0] < 2:
        raise ValueError(
            f"`grads` must be an (N, d) matrix of per-example gradients with N >= 2, got shape "
            f"{grads.shape}."
        )
    return grads


def noise_covariance(grads: Any, *, replacement: bool = True) -> jax.Array:
    """Gradient-noise covariance ``D`` (``d × d``) from per-example gradients.

    .. math::

      D_w = \\frac1N G^\\top G - g g^\\top, \\qquad
      D_{wo} = \\frac{1}{N-1} G^\\top G - \\frac{N}{N-1} g g^\\top = \\frac{N}{N-1} D_w .

    ``Var(∇f_b) = D_w / b`` for minibatches of size ``b`` drawn with replacement and
    ``(1/b)(1 − b/N) D_wo`` without replacement (the latter is exactly the covariance over all
    ``C(N, b)`` subsets).

    Args:
      grads: ``(N, d)`` per-example gradients (see :func:`per_example_gradients`).
      replacement: ``True`` for ``D_w`` (sampling with replacement), ``False`` for ``D_wo``.

    Returns:
      The ``(d, d)`` matrix ``D``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> G = jnp.array([[1.0], [3.0]])
      >>> landscape.noise_covariance(G).tolist()
      [[1.0]]
      >>> landscape.noise_covariance(G, replacement=False).tolist()
      [[2.0]]
    """
    grads = _check_grads(grads)
    n = grads.shape[0]
    centered = grads - jnp.mean(grads, axis=0)
    d_w = centered.T @ centered / n
    return d_w if replacement else d_w * (n / (n - 1))


def minibatch_gradient_covariance(grads: Any, batch_size: int, *, replacement: bool = True):
    """Covariance of the minibatch gradient ``∇f_b``: ``D_w/b`` or ``(1/b)(1 − b/N) D_wo``.

    Args:
      grads: ``(N, d)`` per-example gradients.
      batch_size: ``b``.
      replacement: minibatches drawn with (``True``) or without replacement.

    Returns:
      The ``(d, d)`` covariance of the minibatch mean gradient.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> G = jnp.array([[1.0], [3.0]])
      >>> landscape.minibatch_gradient_covariance(G, 2, replacement=False).tolist()  # b = N
      [[0.0]]
    """
    grads = _check_grads(grads)
    n = grads.shape[0]
    b = validation.check_static_int("batch_size", batch_size)
    if not replacement and b > n:
        raise ValueError(f"`batch_size` must be <= N={n} without replacement, got {b}.")
    cov = noise_covariance(grads, replacement=replacement)
    return cov / b if replacement else cov * (1 - b / n) / b


def sgd_temperature(
    learning_rate: float, batch_size: int, *, num_examples: int | None = None
) -> float:
    """SGD temperature ``β⁻¹ = η/(2b)``, or ``(η/(2b))(1 − b/N)`` without replacement.

    Args:
      learning_rate: ``η``.
      batch_size: ``b``.
      num_examples: ``N`` for sampling without replacement (``None``: with replacement).

    Returns:
      The temperature as a float.

    Examples:
      >>> from entropix import landscape
      >>> landscape.sgd_temperature(0.1, 128)
      0.000390625
    """
    eta = validation.check_positive_finite("learning_rate", learning_rate)
    b = validation.check_static_int("batch_size", batch_size)
    temp = eta / (2 * b)
    if num_examples is not None:
        n = validation.check_static_int("num_examples", num_examples)
        if b > n:
            raise ValueError(f"`batch_size` must be <= num_examples={n}, got batch_size={b}.")
        temp *= 1 - b / n
    return temp


class NoiseSpectrum(NamedTuple):
    """Output of :func:`noise_spectrum`.

    Attributes:
      eigenvalues: eigenvalues of ``D`` in descending order (the ``min(N, d)`` from the Gram
        matrix when ``N < d``; the remaining ``d − N`` are exactly 0).
      dim: ``d``.
      num_examples: ``N``.
      rank: number of eigenvalues ``> tolerance``.
      rank_fraction: ``rank / d`` (the thesis reports it in %).
      tolerance: ``λ_max × d × eps`` (``eps`` of the gradients' dtype, or as given).
      mean: mean of all ``d`` eigenvalues (``tr(D)/d``).
      std: standard deviation of all ``d`` eigenvalues (zeros included).
      temperature: ``η/(2b)`` when ``learning_rate`` and ``batch_size`` are given, else ``None``.
    """

    eigenvalues: jax.Array
    dim: int
    num_examples: int
    rank: int
    rank_fraction: float
    tolerance: float
    mean: float
    std: float
    temperature: float | None


def noise_spectrum(
    grads: Any,
    *,
    replacement: bool = True,
    tolerance: float | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
) -> NoiseSpectrum:
    """Spectrum, rank and eigenvalue statistics of the gradient-noise matrix ``D``.

    Uses the ``N × N`` Gram matrix ``(c/N) G_c G_cᵀ`` when ``N < d`` (``c = 1`` with replacement,
    ``N/(N−1)`` without), else the ``d × d`` matrix ``D`` itself.

    Args:
      grads: ``(N, d)`` per-example gradients (see :func:`per_example_gradients`).
      replacement: ``D_w`` (``True``) or ``D_wo`` (``False``).
      tolerance: rank threshold; default ``λ_max × d × eps`` (``eps`` of ``grads.dtype``).
      learning_rate: optional ``η`` for the temperature ``η/(2b)``.
      batch_size: optional ``b`` for the temperature.

    Returns:
      A :class:`NoiseSpectrum`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> G = jnp.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
      >>> s = landscape.noise_spectrum(G, learning_rate=0.1, batch_size=1)
      >>> s.eigenvalues.tolist(), s.rank, round(s.rank_fraction, 4), s.temperature
      ([1.0, 0.0], 1, 0.3333, 0.05)
    """
    grads = _check_grads(grads)
    n, d = grads.shape
    scale = 1.0 if replacement else n / (n - 1)
    centered = grads - jnp.mean(grads, axis=0)
    if n < d:
        gram = scale * (centered @ centered.T) / n
        eig = jnp.linalg.eigvalsh(0.5 * (gram + gram.T))
    else:
        cov = scale * (centered.T @ centered) / n
        eig = jnp.linalg.eigvalsh(0.5 * (cov + cov.T))
    eig = jnp.clip(eig[::-1], 0.0, None)
    lam_max = float(eig[0])
    if tolerance is None:
        tolerance = lam_max * d * float(jnp.finfo(grads.dtype).eps)
    tolerance = validation.check_non_negative_finite("tolerance", tolerance)
    rank = int(jnp.sum(eig > tolerance))
    total = float(jnp.sum(eig))
    mean = total / d
    second = float(jnp.sum(eig**2)) / d
    std = max(second - mean**2, 0.0) ** 0.5
    temperature = None
    if learning_rate is not None or batch_size is not None:
        if learning_rate is None or batch_size is None:
            raise ValueError("Pass both `learning_rate` and `batch_size` for the temperature.")
        temperature = sgd_temperature(
            learning_rate, batch_size, num_examples=None if replacement else n
        )
    return NoiseSpectrum(
        eigenvalues=eig,
        dim=d,
        num_examples=n,
        rank=rank,
        rank_fraction=rank / d,
        tolerance=tolerance,
        mean=mean,
        std=std,
        temperature=temperature,
    )


def gradient_diversity(grads: Any, *, squared: bool = True) -> jax.Array:
    """Gradient diversity: ``Σ_k ‖g_k‖² / ‖Σ_k g_k‖²`` (Yin et al.) or the thesis' unsquared form.

    The thesis (§6.4.4.3) prints ``Σ_k ‖g_k‖ / ‖∇f‖``; Yin et al. (2018) define the squared
    ratio ``Σ_k ‖g_k‖² / ‖Σ_k g_k‖²``. ``squared=False`` returns ``Σ_k ‖g_k‖ / ‖(1/N) Σ_k g_k‖``.

    Args:
      grads: ``(N, d)`` per-example gradients.
      squared: which definition.

    Returns:
      A scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> float(landscape.gradient_diversity(jnp.array([[1.0, 0.0], [0.0, 1.0]])))
      1.0
    """
    grads = _check_grads(grads)
    norms = jnp.linalg.norm(grads, axis=1)
    if squared:
        return jnp.sum(norms**2) / jnp.sum(jnp.sum(grads, axis=0) ** 2)
    return jnp.sum(norms) / jnp.linalg.norm(jnp.mean(grads, axis=0))
