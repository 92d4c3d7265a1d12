"""Eigenvalue density by stochastic Lanczos quadrature (SLQ).

For a unit probe ``v`` and the ``m``-step Lanczos tridiagonal ``T = S diag(θ) Sᵀ`` started at
``v``, Gauss quadrature gives

.. math::

  v^\\top g(A)\\, v \\approx \\sum_{j=1}^m τ_j\\, g(θ_j), \\qquad τ_j = S_{1j}^2,

exactly for polynomials ``g`` of degree ``≤ 2m − 1``. Averaging over random probes with
``E[v vᵀ] = I/d`` estimates the spectral density ``φ(t) = (1/d) Σ_i δ(t − λ_i)``, which is
reported Gaussian-broadened on a grid:

.. math::

  φ_σ(t) = \\frac1P \\sum_{p=1}^P \\sum_{j=1}^m τ^{(p)}_j\\, \\mathcal N(t; θ^{(p)}_j, σ^2).

Its moments satisfy ``∫ t φ_σ = tr(A)/d`` and ``∫ t² φ_σ = tr(A²)/d + σ²`` in expectation.

References:
  Golub & Meurant, *Matrices, moments and quadrature with applications*, 2010.
  Lin, Saad & Yang, *Approximating spectral densities of large matrices*, SIAM Review 2016.
  Ghorbani, Krishnan & Xiao, *An investigation into neural net optimization via Hessian
  eigenvalue density*, ICML 2019.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from entropix._src import validation
from entropix.landscape import hvp, lanczos

PyTree = Any


class SpectralDensity(NamedTuple):
    """Output of :func:`slq_density`.

    Attributes:
      grid: evaluation points ``t``, shape ``(num_points,)``.
      density: the broadened density ``φ_σ(t)`` on ``grid`` (integrates to ≈ 1).
      nodes: Ritz values ``θ`` per probe, shape ``(num_probes, order)``.
      weights: quadrature weights ``τ`` per probe, shape ``(num_probes, order)``; each row sums
        to 1.
      sigma: the Gaussian broadening width.
    """

    grid: jax.Array
    density: jax.Array
    nodes: jax.Array
    weights: jax.Array
    sigma: float


def _probe(key, dim, dtype, kind):
    if kind == "rademacher":
        return jax.random.rademacher(key, (dim,), dtype)
    return jax.random.normal(key, (dim,), dtype)


def density_moments(nodes: Any, weights: Any, max_order: int = 4) -> jax.Array:
    """Moments ``(1/P) Σ_p Σ_j τ_pj θ_pj^k`` for ``k = 0..max_order`` (estimates of ``tr(A^k)/d``).

    Args:
      nodes: Ritz values, shape ``(num_probes, order)`` (or ``(order,)``).
      weights: quadrature weights of the same shape.
      max_order: the highest moment.

    Returns:
      Array of shape ``(max_order + 1,)``.
    """
    max_order = validation.check_static_int("max_order", max_order, minimum=0)
    nodes = jnp.atleast_2d(jnp.asarray(nodes))
    weights = jnp.atleast_2d(jnp.asarray(weights))
    powers = nodes[..., None] ** jnp.arange(max_order + 1)
    return jnp.mean(jnp.sum(weights[..., None] * powers, axis=1), axis=0)


def broadened_density(nodes: Any, weights: Any, grid: Any, sigma: float) -> jax.Array:
    """Gaussian-broadened density ``(1/P) Σ_p Σ_j τ_pj N(t; θ_pj, σ²)`` on ``grid``."""
    sigma = validation.check_positive_finite("sigma", sigma)
    nodes = jnp.ravel(jnp.asarray(nodes))
    num_probes = max(1, int(np.prod(np.shape(weights)[:-1])) if np.ndim(weights) > 1 else 1)
    weights = jnp.ravel(jnp.asarray(weights)) / num_probes
    grid = jnp.asarray(grid)
    z = (grid[:, None] - nodes[None, :]) / sigma
    return jnp.sum(weights * jnp.exp(-0.5 * z**2), axis=1) / (sigma * jnp.sqrt(2 * jnp.pi))


def slq_density(
    operator: Any,
    *,
    order: int = 80,
    num_probes: int = 10,
    key: jax.Array | None = None,
    sigma: float | None = None,
    grid: Any = None,
    num_points: int = 1000,
    probe: str = "rademacher",
) -> SpectralDensity:
    """Spectral density of a symmetric operator by stochastic Lanczos quadrature.

    Args:
      operator: a :class:`~entropix.landscape.LinearOperator` or a dense symmetric matrix.
      order: Lanczos steps ``m`` per probe (``≤ d``); moments up to ``2m − 1`` are exact per probe.
      num_probes: number of random probes ``P``.
      key: PRNG key (default ``jax.random.key(0)``).
      sigma: broadening width; default ``(θ_max − θ_min) / 200`` (at least ``1e-12``).
      grid: evaluation points; default ``num_points`` points on
        ``[θ_min − 5σ, θ_max + 5σ]``.
      num_points: size of the default grid.
      probe: ``"rademacher"`` (default) or ``"gaussian"``; probes are normalized to unit norm.

    Returns:
      A :class:`SpectralDensity` (grid, density, nodes, weights, sigma).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import landscape
      >>> A = jnp.diag(jnp.linspace(0.0, 1.0, 100))
      >>> dens = landscape.slq_density(A, order=20, num_probes=4, key=jax.random.key(0))
      >>> m = landscape.density_moments(dens.nodes, dens.weights, 1)
      >>> round(float(m[0]), 6), round(float(m[1]), 6)  # tr(A)/d, Rademacher probes: exact here
      (1.0, 0.5)
    """
    op = hvp.as_operator(operator)
    order = validation.check_static_int("order", order)
    num_probes = validation.check_static_int("num_probes", num_probes)
    num_points = validation.check_static_int("num_points", num_points, minimum=2)
    if order > op.dim:
        raise ValueError(f"`order` must be <= the dimension d={op.dim}, got order={order}.")
    if probe not in ("rademacher", "gaussian"):
        raise ValueError(f"`probe` must be 'rademacher' or 'gaussian', got probe={probe!r}.")
    key = lanczos._default_key(key)
    all_nodes, all_weights = [], []
    for p in range(num_probes):
        k_probe, k_lanczos = jax.random.split(jax.random.fold_in(key, p))
        v = _probe(k_probe, op.dim, op.dtype, probe)
        t = lanczos.lanczos_tridiagonal(op, order, key=k_lanczos, start=v)
        theta, s = lanczos.tridiagonal_eigh(t)
        all_nodes.append(theta)
        all_weights.append(s[0, :] ** 2)
    nodes = jnp.stack(all_nodes)
    weights = jnp.stack(all_weights)
    lo, hi = float(nodes.min()), float(nodes.max())
    if sigma is None:
        sigma = max((hi - lo) / 200.0, 1e-12)
    sigma = validation.check_positive_finite("sigma", sigma)
    if grid is None:
        grid = jnp.linspace(lo - 5 * sigma, hi + 5 * sigma, num_points, dtype=nodes.dtype)
    grid = jnp.asarray(grid)
    density = broadened_density(nodes, weights, grid, sigma)
    return SpectralDensity(grid, density, nodes, weights, float(sigma))


def hessian_density(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    batches: Any,
    *,
    order: int = 80,
    num_probes: int = 10,
    key: jax.Array | None = None,
    sigma: float | None = None,
    grid: Any = None,
    num_points: int = 1000,
) -> SpectralDensity:
    """Eigenvalue density of the dataset-loss Hessian by stochastic Lanczos quadrature.

    Costs ``order × num_probes`` Hessian-vector products (each one per batch) and
    ``O(order · d)`` memory. See :func:`slq_density`.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the point ``w``, any pytree.
      batches: a list of batches or a stacked pytree.
      order: Lanczos order ``m`` per probe.
      num_probes: number of Rademacher probes.
      key: PRNG key.
      sigma: broadening width (default ``(θ_max − θ_min)/200``).
      grid: evaluation points (default: ``num_points`` on the node range ± 5σ).
      num_points: size of the default grid.

    Returns:
      A :class:`SpectralDensity`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * jnp.sum(b * w**2)
      >>> batches = [jnp.linspace(-1.0, 3.0, 40)]
      >>> dens = landscape.hessian_density(loss_fn, jnp.zeros(40), batches, order=10, num_probes=2)
      >>> round(float(landscape.density_moments(dens.nodes, dens.weights, 1)[1]), 4)
      1.0
    """
    op = hvp.hessian_operator(loss_fn, params, batches)
    return slq_density(
        op,
        order=order,
        num_probes=num_probes,
        key=key,
        sigma=sigma,
        grid=grid,
        num_points=num_points,
    )
