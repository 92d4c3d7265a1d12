"""Exact Hessian spectrum of small models and the summary statistics the papers report.

Chaudhari et al. (ICLR 2017, Fig. 1; thesis Fig. 3.1, 3.4) compute the full eigenspectrum of the
Hessian of the training loss at the end of training and report the fraction of near-zero
eigenvalues (``|λ| < 10⁻⁴`` for the 47,658-parameter small-LeNet: ≈ 94 %), the largest positive
eigenvalue (≈ 40), the most negative one (≈ −0.46) and the index (negative eigenvalues).

The dense Hessian is built column block by column block from vmapped Hessian-vector products,
so the working memory beyond the ``d × d`` result is ``chunk_size`` HVPs. Above ``max_params``
the exact path refuses; use :func:`entropix.landscape.hessian_eigenvalues` (Lanczos) and
:func:`entropix.landscape.hessian_density` (stochastic Lanczos quadrature) instead.

References:
  Chaudhari et al., *Entropy-SGD: biasing gradient descent into wide valleys*, ICLR 2017, §5.1.
  Chaudhari, *A picture of the energy landscape of deep neural networks*, PhD thesis, UCLA
  2018, §3.3.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from entropix._src import validation
from entropix.landscape import hvp

PyTree = Any


def _dense(op: hvp.LinearOperator, chunk_size: int) -> jax.Array:
    d = op.dim
    num_chunks = -(-d // chunk_size)
    starts = jnp.arange(num_chunks) * chunk_size

    def columns(start):
        idx = start + jnp.arange(chunk_size)
        basis = (idx[:, None] == jnp.arange(d)[None, :]).astype(op.dtype)
        return jax.vmap(op)(basis)

    blocks = jax.lax.map(columns, starts)  # (num_chunks, chunk_size, d)
    rows = blocks.reshape(num_chunks * chunk_size, d)[:d]
    return 0.5 * (rows + rows.T)


_dense_jit = jax.jit(_dense, static_argnums=1)


def _check_size(d: int, max_params: int) -> None:
    if d > max_params:
        raise ValueError(
            f"The exact Hessian has {d} × {d} entries ({d} parameters > max_params={max_params}); "
            f"it needs {d * d * 4 / 2**30:.2f} GiB in float32 and an O(d³) eigendecomposition. "
            "Use the matrix-free paths instead: entropix.landscape.hessian_eigenvalues (Lanczos "
            "top-k / bottom-k) and entropix.landscape.hessian_density (stochastic Lanczos "
            "quadrature), or raise max_params if you have the memory."
        )


def hessian_matrix(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    batches: Any,
    *,
    max_params: int = 10_000,
    chunk_size: int = 128,
) -> jax.Array:
    """Dense Hessian of the dataset loss in flat (``ravel_pytree``) coordinates.

    .. math::

      H_{ij} = \\frac{\\partial^2 f}{\\partial w_i \\partial w_j}, \\qquad
      f(w) = \\frac1n \\sum_j \\ell(w; B_j),

    built from ``ceil(d / chunk_size)`` blocks of ``chunk_size`` vmapped Hessian-vector products
    and symmetrized.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the point ``w``, any pytree.
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).
      max_params: refuse (``ValueError``) above this many parameters.
      chunk_size: number of Hessian columns computed together (memory ``chunk_size`` HVPs).

    Returns:
      The symmetric ``(d, d)`` Hessian.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * w @ b @ w
      >>> A = jnp.array([[2.0, 1.0], [1.0, 3.0]])
      >>> landscape.hessian_matrix(loss_fn, jnp.zeros(2), [A]).tolist()
      [[2.0, 1.0], [1.0, 3.0]]
    """
    max_params = validation.check_static_int("max_params", max_params)
    chunk_size = validation.check_static_int("chunk_size", chunk_size)
    op = hvp.hessian_operator(loss_fn, params, batches)
    _check_size(op.dim, max_params)
    return _dense_jit(op, min(chunk_size, op.dim))


def hessian_spectrum(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    batches: Any,
    *,
    max_params: int = 10_000,
    chunk_size: int = 128,
    eigenvectors: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """All eigenvalues of the dataset-loss Hessian (exact; for small models).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the point ``w``, any pytree.
      batches: a list of batches or a stacked pytree.
      max_params: refuse above this many parameters (suggesting the Lanczos path).
      chunk_size: number of Hessian columns computed together.
      eigenvectors: also return the eigenvectors (columns, flat coordinates).

    Returns:
      Eigenvalues in ascending order, shape ``(d,)`` (and eigenvectors ``(d, d)`` if asked).

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * jnp.sum(b * w**2)
      >>> landscape.hessian_spectrum(loss_fn, jnp.zeros(3), [jnp.array([3.0, -1.0, 2.0])]).tolist()
      [-1.0, 2.0, 3.0]
    """
    matrix = hessian_matrix(loss_fn, params, batches, max_params=max_params, chunk_size=chunk_size)
    if eigenvectors:
        return jnp.linalg.eigh(matrix)
    return jnp.linalg.eigvalsh(matrix)


class SpectrumSummary(NamedTuple):
    """The Hessian-spectrum statistics reported by Chaudhari et al. (ICLR 2017, Fig. 1).

    Attributes:
      num_eigenvalues: number of eigenvalues (or total weight for a density).
      threshold: the near-zero threshold ``τ``.
      fraction_near_zero: fraction with ``|λ| < τ``.
      largest: the largest eigenvalue.
      most_negative: the smallest eigenvalue (the most negative when negative).
      index: fraction of eigenvalues ``< −τ`` (negative beyond the threshold).
      num_negative: number of eigenvalues ``< −τ`` (weighted count for a density).
    """

    num_eigenvalues: float
    threshold: float
    fraction_near_zero: float
    largest: float
    most_negative: float
    index: float
    num_negative: float


def spectrum_summary(
    eigenvalues: Any, *, threshold: float = 1e-4, weights: Any = None
) -> SpectrumSummary:
    """Near-zero fraction, extreme eigenvalues and index of a spectrum.

    .. math::

      \\text{fraction} = \\frac{\\#\\{i : |λ_i| < τ\\}}{d}, \\qquad
      \\text{index} = \\frac{\\#\\{i : λ_i < −τ\\}}{d}.

    With ``weights`` (e.g. the quadrature weights of a stochastic Lanczos density, see
    :func:`entropix.landscape.slq_density`) the counts are weighted; the result is then an
    estimate whose resolution is limited by the Lanczos order. A
    :class:`~entropix.landscape.SpectralDensity` can be passed directly (its nodes and weights
    are used).

    Args:
      eigenvalues: array of eigenvalues (any shape; flattened), or a ``SpectralDensity``.
      threshold: the near-zero threshold ``τ`` (the papers use 10⁻⁴, 10⁻² or 10⁻⁵).
      weights: optional non-negative weights, same shape as ``eigenvalues``.

    Returns:
      A :class:`SpectrumSummary` of Python floats.

    Examples:
      >>> from entropix import landscape
      >>> s = landscape.spectrum_summary([-0.5, 0.0, 1e-6, 40.0], threshold=1e-4)
      >>> s.fraction_near_zero, s.largest, s.most_negative, s.index
      (0.5, 40.0, -0.5, 0.25)
    """
    threshold = validation.check_non_negative_finite("threshold", threshold)
    if hasattr(eigenvalues, "nodes") and hasattr(eigenvalues, "weights"):
        if weights is not None:
            raise ValueError("Pass `weights` only with an array of eigenvalues, not a density.")
        eigenvalues, weights = eigenvalues.nodes, eigenvalues.weights
    lam = np.asarray(eigenvalues, dtype=np.float64).ravel()
    if lam.size == 0:
        raise ValueError("`eigenvalues` is empty.")
    if weights is None:
        w = np.ones_like(lam)
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != lam.shape:
            raise ValueError(
                f"`weights` must match `eigenvalues`, got shapes {w.shape} and {lam.shape}."
            )
        if np.any(w < 0):
            raise ValueError("`weights` must be non-negative.")
        if not np.any(w > 0):
            raise ValueError("`weights` are all zero: give at least one eigenvalue a weight.")
    total = float(w.sum())
    negative = float(w[lam < -threshold].sum())
    support = lam[w > 0]
    return SpectrumSummary(
        num_eigenvalues=total,
        threshold=threshold,
        fraction_near_zero=float(w[np.abs(lam) < threshold].sum() / total),
        largest=float(support.max()),
        most_negative=float(support.min()),
        index=negative / total,
        num_negative=negative,
    )
