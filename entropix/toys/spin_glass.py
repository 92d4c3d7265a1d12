r"""Spherical 3-spin glass in a random magnetic field (thesis Ch. 2, §2.4.1).

Hamiltonian on the sphere ``S^{N−1}(√N)`` (``Var H(σ) = N`` without field):

.. math::
  \tilde H(σ) = -\frac1N \sum_{ijk} J_{ijk} σ_i σ_j σ_k - h^\top σ,
  \qquad J_{ijk} \sim \mathcal N(0, 1),\; h_i \sim \mathcal N(0, ν^2).

The field trivializes the landscape: for ``ν`` above the critical field ``ν_c = √(p(p−2)) = √3``
gradient descent from every start reaches the same minimum, while for ``ν ≈ 0`` it finds
exponentially many distinct ones. The module provides the loss, Euclidean and Riemannian
gradients and Hessian, batched projected gradient descent, the clustering of minima, and the
complexity curves ``Θ_k`` of Auffinger, Ben Arous and Černý.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "SpinGlass",
    "complexity",
    "complexity_e_inf",
    "complexity_i1",
    "complexity_zero",
    "distinct_minima",
    "make_spin_glass",
    "mean_cosine_distance",
    "project_to_sphere",
    "projected_gradient_descent",
    "random_sphere_points",
    "riemannian_gradient",
    "riemannian_hessian",
    "riemannian_index",
    "spin_glass_energy",
    "spin_glass_gradient",
]


class SpinGlass(NamedTuple):
    """A 3-spin glass instance.

    Attributes:
      couplings: ``J``, shape ``(N, N, N)``, iid standard normal.
      field: ``h``, shape ``(N,)``.
    """

    couplings: jax.Array
    field: jax.Array


def make_spin_glass(
    key: jax.Array,
    num_spins: int,
    field_std: float = 0.0,
    *,
    field_key: jax.Array | None = None,
    dtype=None,
) -> SpinGlass:
    """Draws ``J ~ N(0,1)^{N×N×N}`` and ``h ~ N(0, ν² I)``.

    Args:
      key: PRNG key for the couplings (and for the field if ``field_key`` is ``None``).
      num_spins: ``N``.
      field_std: ``ν ≥ 0``. Regimes (``p = 3``, ``J = 1``): ``1/N`` exponential,
        ``√3(1 − 1/N)^{1/2}`` polynomial, ``3`` trivial.
      field_key: optional separate key for the field direction (keeps ``J`` fixed across
        regimes).
      dtype: floating dtype (default: JAX's default float).

    Returns:
      A :class:`SpinGlass`.

    Examples:
      >>> import jax
      >>> sg = make_spin_glass(jax.random.key(0), 20, field_std=3.0)
      >>> sg.couplings.shape, sg.field.shape
      ((20, 20, 20), (20,))
    """
    if num_spins < 2:
        raise ValueError(f"`num_spins` must be >= 2, got {num_spins!r}.")
    if field_std < 0:
        raise ValueError(f"`field_std` must be >= 0, got {field_std!r}.")
    dtype = jnp.result_type(float) if dtype is None else dtype
    kj, kh = jax.random.split(key)
    if field_key is not None:
        kh = field_key
    couplings = jax.random.normal(kj, (num_spins,) * 3, dtype)
    field = field_std * jax.random.normal(kh, (num_spins,), dtype)
    return SpinGlass(couplings, field)


def _symmetrized(couplings: jax.Array) -> jax.Array:
    """``J_ijk + J_jik + J_jki``: the tensor whose contraction gives the gradient."""
    return couplings + jnp.transpose(couplings, (1, 0, 2)) + jnp.transpose(couplings, (2, 0, 1))


def spin_glass_energy(sigma: jax.Array, spin_glass: SpinGlass) -> jax.Array:
    r"""``H̃(σ) = −N⁻¹ Σ J_ijk σ_iσ_jσ_k − hᵀσ`` (divide by ``N`` for the energy per spin).

    Args:
      sigma: configuration(s), shape ``(..., N)``.
      spin_glass: the instance.

    Returns:
      Energies, shape ``(...)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sg = make_spin_glass(jax.random.key(0), 10)
      >>> e = spin_glass_energy(jnp.ones(10), sg)
    """
    n = sigma.shape[-1]
    bulk = jnp.einsum("ijk,...i,...j,...k->...", spin_glass.couplings, sigma, sigma, sigma)
    return -bulk / n - sigma @ spin_glass.field


def spin_glass_gradient(sigma: jax.Array, spin_glass: SpinGlass) -> jax.Array:
    r"""Euclidean gradient ``(∇H̃)_i = −N⁻¹ Σ_jk (J_ijk + J_jik + J_jki) σ_jσ_k − h_i``.

    Args:
      sigma: configuration(s), shape ``(..., N)``.
      spin_glass: the instance.

    Returns:
      Gradients, shape ``(..., N)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sg = make_spin_glass(jax.random.key(0), 10)
      >>> g = spin_glass_gradient(jnp.ones(10), sg)
    """
    n = sigma.shape[-1]
    sym = _symmetrized(spin_glass.couplings)
    return -jnp.einsum("ijk,...j,...k->...i", sym, sigma, sigma) / n - spin_glass.field


def project_to_sphere(sigma: jax.Array) -> jax.Array:
    """Rescales ``σ`` onto the sphere of radius ``√N`` (last axis).

    Args:
      sigma: shape ``(..., N)``.

    Returns:
      ``√N σ/‖σ‖``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(jnp.linalg.norm(project_to_sphere(jnp.ones(4))))
      2.0
    """
    n = sigma.shape[-1]
    return jnp.sqrt(n) * sigma / jnp.linalg.norm(sigma, axis=-1, keepdims=True)


def random_sphere_points(key: jax.Array, num_points: int, num_spins: int, dtype=None):
    """Uniform random points on ``S^{N−1}(√N)``, shape ``(num_points, N)``.

    Args:
      key: PRNG key.
      num_points: number of points.
      num_spins: ``N``.
      dtype: floating dtype (default: JAX's default float).

    Returns:
      The points.

    Examples:
      >>> import jax
      >>> random_sphere_points(jax.random.key(0), 3, 5).shape
      (3, 5)
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    return project_to_sphere(jax.random.normal(key, (num_points, num_spins), dtype))


def riemannian_gradient(sigma: jax.Array, grad: jax.Array) -> jax.Array:
    r"""Projection on the tangent plane, ``g − (gᵀσ/N) σ``.

    Args:
      sigma: points on the sphere, shape ``(..., N)``.
      grad: Euclidean gradients, same shape.

    Returns:
      Tangent gradients.

    Examples:
      >>> import jax.numpy as jnp
      >>> riemannian_gradient(jnp.array([1.0, 1.0]), jnp.array([1.0, 1.0]))
      Array([0., 0.], dtype=float32)
    """
    n = sigma.shape[-1]
    return grad - (jnp.sum(grad * sigma, axis=-1, keepdims=True) / n) * sigma


def riemannian_hessian(sigma: jax.Array, spin_glass: SpinGlass) -> jax.Array:
    r"""Riemannian Hessian ``P(∇²H̃ − (∇H̃ᵀσ/N) I)P`` with ``P = I − σσᵀ/N``.

    Args:
      sigma: one point on the sphere, shape ``(N,)``.
      spin_glass: the instance.

    Returns:
      ``(N, N)`` matrix (``σ`` is in its kernel).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sg = make_spin_glass(jax.random.key(0), 6)
      >>> riemannian_hessian(project_to_sphere(jnp.ones(6)), sg).shape
      (6, 6)
    """
    n = sigma.shape[-1]
    hess = jax.jacfwd(lambda s: spin_glass_gradient(s, spin_glass))(sigma)
    grad = spin_glass_gradient(sigma, spin_glass)
    proj = jnp.eye(n, dtype=sigma.dtype) - jnp.outer(sigma, sigma) / n
    return proj @ (hess - (grad @ sigma / n) * jnp.eye(n, dtype=sigma.dtype)) @ proj


def riemannian_index(sigma: jax.Array, spin_glass: SpinGlass, tol: float = 1e-6) -> jax.Array:
    """Index (number of negative tangent-space Hessian eigenvalues) of a critical point.

    The normal direction ``σ`` (a zero eigenvalue of :func:`riemannian_hessian`) is excluded by
    shifting it to a positive eigenvalue, so round-off cannot count it.

    Args:
      sigma: one point, shape ``(N,)``.
      spin_glass: the instance.
      tol: eigenvalues below ``−tol · max(1, max|λ|)`` count as negative.

    Returns:
      Integer index (0 for a local minimum).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sg = make_spin_glass(jax.random.key(0), 6)
      >>> int(riemannian_index(project_to_sphere(jnp.ones(6)), sg)) >= 0
      True
    """
    n = sigma.shape[-1]
    hess = riemannian_hessian(sigma, spin_glass)
    scale = jnp.maximum(1.0, jnp.max(jnp.abs(hess)))
    eig = jnp.linalg.eigvalsh(hess + scale * jnp.outer(sigma, sigma) / n)
    return jnp.sum(eig < -tol * jnp.maximum(1.0, jnp.max(jnp.abs(eig))))


def projected_gradient_descent(
    sigma0: jax.Array,
    spin_glass: SpinGlass,
    *,
    learning_rate: float = 0.1,
    tol: float = 1e-4,
    max_steps: int = 5000,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""Batched projected gradient descent on the sphere (thesis §2.4.1).

    ``σ ← √N (σ − η ∇_tan H̃)/‖σ − η ∇_tan H̃‖`` until ``‖∇_tan H̃‖² ≤ tol`` (each run stops
    separately) or ``max_steps``.

    Args:
      sigma0: starting points on the sphere, shape ``(R, N)``.
      spin_glass: the instance.
      learning_rate: ``η`` (thesis: 0.1).
      tol: stopping threshold on the squared tangent-gradient norm (thesis: ``10⁻⁴``).
      max_steps: iteration cap.

    Returns:
      ``(sigma, num_steps, converged)`` with shapes ``(R, N)``, ``(R,)``, ``(R,)``.

    Examples:
      >>> import jax
      >>> sg = make_spin_glass(jax.random.key(0), 20, field_std=3.0)
      >>> s0 = random_sphere_points(jax.random.key(1), 4, 20)
      >>> sigma, steps, ok = projected_gradient_descent(s0, sg)
    """
    n = sigma0.shape[-1]
    sym = _symmetrized(spin_glass.couplings).reshape(n, n * n)
    field = spin_glass.field

    def tangent_grad(s):
        outer = (s[:, :, None] * s[:, None, :]).reshape(s.shape[0], n * n)
        g = -(outer @ sym.T) / n - field
        return riemannian_gradient(s, g)

    def cond(carry):
        _, _, done, it = carry
        return jnp.logical_and(it < max_steps, ~jnp.all(done))

    def body(carry):
        s, steps, done, it = carry
        g = tangent_grad(s)
        done = done | (jnp.sum(g * g, axis=-1) <= tol)
        new = project_to_sphere(s - learning_rate * g)
        s = jnp.where(done[:, None], s, new)
        steps = steps + (~done).astype(steps.dtype)
        return s, steps, done, it + 1

    r = sigma0.shape[0]
    init = (sigma0, jnp.zeros(r, jnp.int32), jnp.zeros(r, bool), jnp.asarray(0))
    s, steps, _, _ = jax.lax.while_loop(cond, body, init)
    g = tangent_grad(s)
    return s, steps, jnp.sum(g * g, axis=-1) <= tol


def distinct_minima(sigmas, overlap: float = 0.99) -> np.ndarray:
    """Greedy clustering of configurations by overlap ``σ·σ'/N > overlap`` (NumPy).

    Args:
      sigmas: points on the sphere, shape ``(R, N)``.
      overlap: two points are the same minimum if their overlap exceeds this.

    Returns:
      Cluster label of every point (``labels.max() + 1`` distinct minima).

    Examples:
      >>> import numpy as np
      >>> labels = distinct_minima(np.array([[1.0, 0.0], [1.0, 0.001], [0.0, 1.0]]) * np.sqrt(2))
      >>> labels.tolist()
      [0, 0, 1]
    """
    s = np.asarray(sigmas, dtype=np.float64)
    n = s.shape[-1]
    q = s @ s.T / n
    labels = -np.ones(len(s), dtype=int)
    reps: list[int] = []
    for i in range(len(s)):
        for c, r in enumerate(reps):
            if q[i, r] > overlap:
                labels[i] = c
                break
        else:
            labels[i] = len(reps)
            reps.append(i)
    return labels


def mean_cosine_distance(sigmas) -> float:
    """Mean pairwise cosine distance ``1 − σ·σ'/(‖σ‖‖σ'‖)`` over distinct pairs (NumPy).

    Thesis §2.4.1 reports 1.16 (exponential regime) vs 0.02 (trivial regime) at ``N = 100``.

    Args:
      sigmas: shape ``(R, N)``, ``R ≥ 2``.

    Returns:
      The mean distance.

    Examples:
      >>> import numpy as np
      >>> mean_cosine_distance(np.array([[1.0, 0.0], [0.0, 1.0]]))
      1.0
    """
    s = np.asarray(sigmas, dtype=np.float64)
    s = s / np.linalg.norm(s, axis=-1, keepdims=True)
    c = s @ s.T
    r = len(s)
    return float((r * r - np.sum(c) - r + np.trace(c)) / (r * (r - 1)) + 0.0)


def complexity_e_inf(p: int = 3) -> float:
    """Threshold energy ``E_∞ = 2√((p−1)/p)`` (``1.632993`` for ``p = 3``).

    Args:
      p: interaction order.

    Returns:
      ``E_∞``.

    Examples:
      >>> round(complexity_e_inf(3), 6)
      1.632993
    """
    return 2.0 * float(np.sqrt((p - 1) / p))


def complexity_i1(u, p: int = 3):
    r"""``I₁(u) = (2/E_∞²) ∫_u^{−E_∞} √(z² − E_∞²) dz`` in closed form, for ``u ≤ −E_∞``.

    .. math::
      I_1(u) = -\frac{u}{E_∞^2}\sqrt{u^2 - E_∞^2} - \log\big(-u + \sqrt{u^2 - E_∞^2}\big)
               + \log E_∞.

    Args:
      u: energy per spin (array or float), ``u ≤ −E_∞``.
      p: interaction order.

    Returns:
      ``I₁(u)``.

    Examples:
      >>> round(float(complexity_i1(-1.7)), 7)
      0.0157693

    References:
      A. Auffinger, G. Ben Arous, J. Černý, *Random matrices and complexity of spin glasses*,
      CPAM 2013; thesis Lemma 2.2 (printed ``−u²/E_∞²`` is an OCR artifact).
    """
    e = complexity_e_inf(p)
    u = jnp.asarray(u)
    root = jnp.sqrt(jnp.maximum(u * u - e * e, 0.0))
    return -(u / e**2) * root - jnp.log(-u + root) + jnp.log(e)


def complexity(u, p: int = 3, k: int | None = None):
    r"""Complexity ``Θ(u)`` of all critical points, or ``Θ_k(u)`` of those of index ``k``.

    ``lim N⁻¹ log E crt_N(u) = Θ(u)``, with ``E_∞ = 2√((p−1)/p)``:

    .. math::
      Θ(u) = \begin{cases} ½\log(p-1) - \frac{p-2}{4(p-1)}u^2 - I_1(u) & u ≤ -E_∞ \\
             ½\log(p-1) - \frac{p-2}{4(p-1)}u^2 & -E_∞ ≤ u ≤ 0 \\ ½\log(p-1) & u > 0
             \end{cases}

    .. math::
      Θ_k(u) = \begin{cases} ½\log(p-1) - \frac{p-2}{4(p-1)}u^2 - (k+1) I_1(u) & u ≤ -E_∞ \\
               ½\log(p-1) - \frac{p-2}{p} & u > -E_∞ \end{cases}

    For ``p = 3``: ``Θ_0`` vanishes at ``u = −E₀ = −1.656998``; ``Θ_k(−E_∞) = 0.013240``.

    Args:
      u: energy per spin.
      p: interaction order ``≥ 3``.
      k: index (``None`` for all critical points).

    Returns:
      ``Θ(u)`` or ``Θ_k(u)``.

    Examples:
      >>> round(float(complexity(-1.656998, 3, k=0)), 5)
      0.0

    References:
      Auffinger, Ben Arous, Černý 2013; thesis Lemma 2.2 and Fig. 2.1.
    """
    e = complexity_e_inf(p)
    u = jnp.asarray(u, dtype=jnp.result_type(float))
    base = 0.5 * jnp.log(p - 1.0)
    quad = (p - 2.0) / (4.0 * (p - 1.0)) * u**2
    below = u <= -e
    i1 = jnp.where(below, complexity_i1(jnp.where(below, u, -e), p), 0.0)
    if k is None:
        return jnp.where(u > 0, base, base - quad - i1)
    return jnp.where(below, base - quad - (k + 1) * i1, base - (p - 2.0) / p)


def complexity_zero(p: int = 3, k: int = 0) -> float:
    """Energy ``u < −E_∞`` where ``Θ_k`` vanishes (``k = 0``: ``−E₀``, the ground state).

    Bisection in float64 NumPy.

    Args:
      p: interaction order.
      k: index.

    Returns:
      The zero (``−1.656998`` for ``p = 3, k = 0``).

    Examples:
      >>> round(complexity_zero(3, 0), 6)
      -1.656998
    """
    e = complexity_e_inf(p)

    def theta(u):
        root = np.sqrt(u * u - e * e)
        i1 = -(u / e**2) * root - np.log(-u + root) + np.log(e)
        return 0.5 * np.log(p - 1.0) - (p - 2.0) / (4.0 * (p - 1.0)) * u * u - (k + 1) * i1

    lo, hi = -e - 10.0, -e
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if theta(mid) < 0:
            lo = mid
        else:
            hi = mid
    return float(0.5 * (lo + hi))
