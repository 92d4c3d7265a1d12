r"""SGD's steady-state potential ``Φ`` near a critical point: linearized theory and estimates.

Near a critical point (shifted to ``x = 0``) with Hessian ``F`` and gradient-noise (diffusion)
matrix ``D = D(0)``, SGD with learning rate ``η`` and batch size ``b`` is the Ornstein–Uhlenbeck
process (thesis eq. 6.46)

.. math::

  dX = -F X\,dt + \sqrt{2β^{-1} D}\, dB(t), \qquad β^{-1} = \frac{η}{2b}\ \text{(eq. 6.6)}.

Its stationary density is Gaussian with covariance ``β⁻¹ C``, where ``C`` solves the continuous
Lyapunov equation

.. math::

  F C + C F^\top = 2 D,

so ``ρ^{ss} ∝ e^{-βΦ}`` with the quadratic potential ``Φ(x) = ½ xᵀ U x``, ``U = C⁻¹``. With
``Q := F C − D`` (antisymmetric, because ``F C + C Fᵀ = 2D`` is symmetric) the Hessian splits as
(Lemma 6.44, eq. 6.47)

.. math::

  F = (D + Q)\, U ,

and the drift ``−F x = −D ∇Φ − Q ∇Φ`` is a gradient part plus a rotation ``−Q U x`` orthogonal to
``∇Φ = U x``: the probability current of the steady state (Remark 6.45). Facts used throughout:

* ``Q = 0`` (detailed balance) iff ``F D = D F`` for a symmetric ``F`` (then ``C = F⁻¹ D``);
* ``U ∝ F``, i.e. ``Φ ∝ f``, iff ``D ∝ I`` (the linear case of Lemma 6.27, eq. 6.34);
* the stationary angular momentum is ``E[x ẋᵀ − ẋ xᵀ] = F Σ − Σ Fᵀ = 2β⁻¹ Q`` for
  ``Σ = β⁻¹ C``: in 2-D, ``E[x₁ẋ₂ − x₂ẋ₁] = 2β⁻¹ Q₁₂`` (:func:`angular_momentum` measures it).

**Discrete SGD.** For the linear recursion ``x ← x − η(F x + ξ)`` with minibatch noise
``Cov(ξ) = 2β⁻¹ D/η`` the stationary covariance ``Σ`` solves ``Σ = (I − ηF) Σ (I − ηF)ᵀ +
2ηβ⁻¹D``, i.e. ``F Σ + Σ Fᵀ − η F Σ Fᵀ = 2β⁻¹ D``: the continuous answer ``β⁻¹C`` up to a relative
``O(η λ_max(F))`` bias (``discrete=True`` in :func:`sgd_stationary_covariance` solves it exactly).

**Minibatches without replacement.** A minibatch of ``b`` distinct examples drawn uniformly from
``N`` has gradient covariance ``(1/b)(1 − b/N) D_wo = (1/b)·(N − b)/(N − 1)·D_w`` (exact: the
variance of a sample mean without replacement carries the finite-population factor
``(N − b)/(N − 1)``, and ``D_wo = N/(N − 1) · D_w``). The temperature is therefore
``β⁻¹ = (η/(2b))(1 − b/N)`` with ``D = D_wo`` (thesis eq. 6.7, where ``1 − β/N`` is a misprint
for ``1 − b/N``), equivalently ``(η/(2b))·(N − b)/(N − 1)`` with ``D = D_w``. This holds for
independent minibatches at every step; reshuffled epochs correlate the noise across the steps of
an epoch (the minibatch gradients of one epoch average to the full gradient) and are not
covered.

**Large models.** :func:`projected_linearization` restricts ``F`` and ``D`` to the span of the
top-``k`` Hessian eigenvectors (Lanczos on Hessian-vector products; per-example gradients
projected batch by batch), so the ``k × k`` theory above applies to networks with ``d`` in the
tens of thousands without ever forming a ``d × d`` matrix.

References:
  Chaudhari & Soatto, *Stochastic gradient descent performs variational inference, converges to
  limit cycles for deep networks*, ICLR 2018 (`arXiv:1710.11029
  <https://arxiv.org/abs/1710.11029>`_).
  Chaudhari, *A picture of the energy landscape of deep neural networks*, PhD thesis, UCLA
  2018, Ch. 6: eq. 6.6–6.7, Lemma 6.27, Example 6.43, Lemma 6.44, Remark 6.45.
  Kwon, Ao & Thouless, *Structure of stochastic dynamics near fixed points*, PNAS 2005.
  Mandt, Hoffman & Blei, *A variational analysis of stochastic gradient algorithms*, ICML 2016.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from entropix._src import validation
from entropix.landscape import dataset, hvp, lanczos, noise

PyTree = Any

#: Largest dimension for which a non-symmetric ``F`` is solved by the ``d² × d²`` Kronecker system.
MAX_KRONECKER_DIM = 48


def _square(name: str, matrix: Any) -> jax.Array:
    matrix = jnp.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"`{name}` must be a square (d, d) matrix, got shape {matrix.shape}.")
    if not jnp.issubdtype(matrix.dtype, jnp.floating):
        matrix = matrix.astype(jnp.promote_types(matrix.dtype, jnp.float32))
    return matrix


def _pair(hessian: Any, diffusion: Any) -> tuple[jax.Array, jax.Array]:
    f = _square("hessian", hessian)
    d = _square("diffusion", diffusion)
    if f.shape != d.shape:
        raise ValueError(
            f"`hessian` and `diffusion` must have the same shape, got {f.shape} and {d.shape}."
        )
    dtype = jnp.promote_types(f.dtype, d.dtype)
    d = d.astype(dtype)
    return f.astype(dtype), 0.5 * (d + d.T)


def _is_symmetric(f: jax.Array) -> bool:
    a = np.asarray(f)
    return bool(np.allclose(a, a.T, rtol=0.0, atol=1e3 * np.finfo(a.dtype).eps * np.abs(a).max()))


_SINGULAR = (
    "`hessian` makes the equation singular: λ_i + λ_j = 0 for a pair of its eigenvalues (e.g. a "
    "zero eigenvalue), or λ_i + λ_j = η λ_i λ_j (a learning rate at the stability limit). The "
    "stationary covariance does not exist; restrict F and D to the non-degenerate subspace "
    "(e.g. projected_linearization) or lower the learning rate."
)


@jax.jit
def _eigen_solve(f: jax.Array, rhs: jax.Array, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    lam, v = jnp.linalg.eigh(0.5 * (f + f.T))
    denom = lam[:, None] + lam[None, :] - step * lam[:, None] * lam[None, :]
    x = v @ ((v.T @ rhs @ v) / denom) @ v.T
    gap = jnp.min(jnp.abs(denom)) / jnp.maximum(jnp.max(jnp.abs(lam)), jnp.finfo(f.dtype).tiny)
    return 0.5 * (x + x.T), gap


@jax.jit
def _kronecker_solve(f: jax.Array, rhs: jax.Array, step: jax.Array) -> jax.Array:
    n = f.shape[0]
    eye = jnp.eye(n, dtype=f.dtype)
    # Row-major vec: vec(F X) = (F ⊗ I) vec X, vec(X Fᵀ) = (I ⊗ F) vec X, vec(F X Fᵀ) = (F ⊗ F).
    system = jnp.kron(f, eye) + jnp.kron(eye, f) - step * jnp.kron(f, f)
    x = jnp.linalg.solve(system, rhs.reshape(-1)).reshape(n, n)
    return 0.5 * (x + x.T)


def _solve(f: jax.Array, rhs: jax.Array, step: float) -> jax.Array:
    """Solves ``F X + X Fᵀ − step·F X Fᵀ = rhs`` exactly (``step = 0``: Lyapunov)."""
    n = f.shape[0]
    step = jnp.asarray(step, f.dtype)
    if _is_symmetric(f):
        x, gap = _eigen_solve(f, rhs, step)
        if float(gap) <= 1e3 * float(jnp.finfo(f.dtype).eps):
            raise ValueError(_SINGULAR)
        return x
    if n > MAX_KRONECKER_DIM:
        raise ValueError(
            f"a non-symmetric `hessian` is solved by a d²×d² system and needs d <= "
            f"{MAX_KRONECKER_DIM}, got d={n}; symmetrize it or project it on a subspace first."
        )
    x = _kronecker_solve(f, rhs, step)
    if not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(_SINGULAR)
    return x


def lyapunov_covariance(hessian: Any, diffusion: Any) -> jax.Array:
    r"""Solves the Lyapunov equation ``F C + C Fᵀ = 2D`` exactly.

    ``β⁻¹ C`` is the stationary covariance of ``dX = −F X dt + sqrt(2β⁻¹D) dB`` when every
    eigenvalue of ``F`` has a positive real part. A symmetric ``F = V Λ Vᵀ`` is solved in its
    eigenbasis, ``C = V [2 (VᵀDV)_{ij} / (λ_i + λ_j)] Vᵀ``; a general ``F`` by the Kronecker system
    ``(F ⊗ I + I ⊗ F) vec C = 2 vec D`` (``d ≤ 48``). The solution is unique whenever
    ``λ_i + λ_j ≠ 0`` for all pairs (at a saddle it exists but is not a covariance).

    Args:
      hessian: ``F``, shape ``(d, d)`` (the Hessian; any real matrix is accepted).
      diffusion: ``D``, shape ``(d, d)``, symmetric (its symmetric part is used).

    Returns:
      ``C``, shape ``(d, d)``, symmetric.

    Raises:
      ValueError: shapes differ, or ``F`` has eigenvalues with ``λ_i + λ_j = 0``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> F = jnp.array([[2.0, 1.0], [1.0, 1.0]])
      >>> D = jnp.diag(jnp.array([1.0, 0.1]))
      >>> [[round(float(c), 4) for c in row] for row in landscape.lyapunov_covariance(F, D)]
      [[0.7, -0.4], [-0.4, 0.5]]
    """
    f, d = _pair(hessian, diffusion)
    return _solve(f, 2.0 * d, 0.0)


class LinearizedPotential(NamedTuple):
    """Output of :func:`linearized_potential` (thesis Lemma 6.44).

    Attributes:
      covariance: ``C`` with ``F C + C Fᵀ = 2D``; the stationary covariance is ``β⁻¹ C``.
      curvature: ``U = C⁻¹`` (pseudo-inverse if ``C`` is singular), ``Φ(x) = ½ xᵀ U x``.
      antisymmetric: ``Q = F C − D`` (``Q = −Qᵀ``), with ``F = (D + Q) U``.
      residual: relative Lyapunov residual ``‖F C + C Fᵀ − 2D‖_F / ‖2D‖_F``.
    """

    covariance: jax.Array
    curvature: jax.Array
    antisymmetric: jax.Array
    residual: jax.Array


def _pinv_sym(c: jax.Array) -> jax.Array:
    lam, v = jnp.linalg.eigh(c)
    cutoff = jnp.max(jnp.abs(lam)) * c.shape[0] * jnp.finfo(c.dtype).eps
    inv = jnp.where(jnp.abs(lam) > cutoff, 1.0 / jnp.where(lam == 0, 1.0, lam), 0.0)
    return (v * inv) @ v.T


@jax.jit
def _potential_parts(f: jax.Array, d: jax.Array, c: jax.Array) -> LinearizedPotential:
    q = f @ c - d
    q = 0.5 * (q - q.T)  # exact in exact arithmetic; removes the rounding
    two_d = 2.0 * d
    residual = jnp.linalg.norm(f @ c + c @ f.T - two_d) / jnp.maximum(
        jnp.linalg.norm(two_d), jnp.finfo(f.dtype).tiny
    )
    return LinearizedPotential(
        covariance=c, curvature=_pinv_sym(c), antisymmetric=q, residual=residual
    )


def linearized_potential(hessian: Any, diffusion: Any) -> LinearizedPotential:
    r"""Stationary covariance, potential curvature ``U`` and rotation ``Q`` at a critical point.

    With ``C`` from :func:`lyapunov_covariance`, ``U = C⁻¹`` and ``Q = F C − D``:

    .. math::

      F = (D + Q)\,U, \qquad Q = -Q^\top, \qquad Φ(x) = \tfrac12 x^\top U x
      \quad\text{(thesis Lemma 6.44, eq. 6.47)}.

    ``Q = 0`` iff ``[F, D] = 0`` (symmetric ``F``); ``U ∝ F`` iff ``D ∝ I`` (Lemma 6.27).

    Args:
      hessian: ``F``, shape ``(d, d)``.
      diffusion: ``D``, shape ``(d, d)``, symmetric positive semi-definite.

    Returns:
      A :class:`LinearizedPotential`.

    Raises:
      ValueError: as :func:`lyapunov_covariance`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> F = jnp.array([[2.0, 1.0], [1.0, 1.0]])
      >>> p = landscape.linearized_potential(F, jnp.diag(jnp.array([1.0, 0.1])))
      >>> round(float(p.antisymmetric[0, 1]), 4), round(float(p.antisymmetric[1, 0]), 4)
      (-0.3, 0.3)
      >>> bool(jnp.allclose((jnp.diag(jnp.array([1.0, 0.1])) + p.antisymmetric) @ p.curvature, F,
      ...                   atol=1e-5))
      True
    """
    f, d = _pair(hessian, diffusion)
    return _potential_parts(f, d, _solve(f, 2.0 * d, 0.0))


class PotentialMismatch(NamedTuple):
    """How far SGD's potential ``Φ = ½ xᵀUx`` is from the loss ``f = ½ xᵀFx``.

    Output of :func:`potential_mismatch`.

    Attributes:
      angle: angle between ``U`` and ``F`` as matrices, ``arccos(⟨U, F⟩_F / (‖U‖_F ‖F‖_F))`` in
        radians; 0 iff ``Φ ∝ f``, i.e. ``D ∝ I``.
      commutator: ``‖F D − D F‖_F / (‖F‖_F ‖D‖_F)``; 0 iff ``Q = 0`` (detailed balance) for a
        symmetric ``F``.
      rotation: ``‖Q‖_F / ‖D‖_F``, the size of the antisymmetric part relative to the diffusion.
      current_fraction: ``E‖Q U x‖² / E‖F x‖² = tr(Q U Qᵀ) / tr(F C Fᵀ)``, the stationary mean
        squared norm of the rotational (current) part of the drift over that of the whole drift
        (independent of the temperature; meaningful for a stable ``F``).
    """

    angle: jax.Array
    commutator: jax.Array
    rotation: jax.Array
    current_fraction: jax.Array


def potential_mismatch(
    hessian: Any, diffusion: Any, *, potential: LinearizedPotential | None = None
) -> PotentialMismatch:
    r"""Measures of how far SGD's steady state is from the Gibbs measure ``e^{−βf/c}`` of the loss.

    Args:
      hessian: ``F``, shape ``(d, d)``.
      diffusion: ``D``, shape ``(d, d)``.
      potential: the :func:`linearized_potential` of ``(F, D)`` if already computed.

    Returns:
      A :class:`PotentialMismatch`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> F = jnp.array([[2.0, 1.0], [1.0, 1.0]])
      >>> m = landscape.potential_mismatch(F, 0.3 * jnp.eye(2))   # isotropic noise: Φ ∝ f
      >>> [round(float(v), 4) for v in (m.angle, m.commutator, m.current_fraction)]
      [0.0, 0.0, 0.0]
    """
    f, d = _pair(hessian, diffusion)
    p = linearized_potential(f, d) if potential is None else potential
    return _mismatch_parts(f, d, p)


@jax.jit
def _mismatch_parts(f: jax.Array, d: jax.Array, p: LinearizedPotential) -> PotentialMismatch:
    u, q, c = p.curvature, p.antisymmetric, p.covariance
    tiny = jnp.finfo(f.dtype).tiny
    u_hat = u / jnp.maximum(jnp.linalg.norm(u), tiny)
    f_hat = f / jnp.maximum(jnp.linalg.norm(f), tiny)
    # 2 arcsin(‖û − f̂‖/2) = arccos⟨û, f̂⟩, without arccos' loss of precision near 0.
    angle = 2.0 * jnp.arcsin(jnp.clip(jnp.linalg.norm(u_hat - f_hat) / 2.0, 0.0, 1.0))
    commutator = jnp.linalg.norm(f @ d - d @ f) / jnp.maximum(
        jnp.linalg.norm(f) * jnp.linalg.norm(d), tiny
    )
    rotation = jnp.linalg.norm(q) / jnp.maximum(jnp.linalg.norm(d), tiny)
    current = jnp.trace(q @ u @ q.T) / jnp.maximum(jnp.trace(f @ c @ f.T), tiny)
    return PotentialMismatch(
        angle=angle, commutator=commutator, rotation=rotation, current_fraction=current
    )


def sgd_stationary_covariance(
    hessian: Any,
    diffusion: Any,
    *,
    learning_rate: float,
    batch_size: int,
    num_examples: int | None = None,
    discrete: bool = False,
) -> jax.Array:
    r"""Predicted covariance of SGD's iterates around a minimum: ``β⁻¹ C``.

    ``β⁻¹ = η/(2b)`` with ``D = D_w`` (minibatches with replacement), or ``(η/(2b))(1 − b/N)`` with
    ``D = D_wo`` (independent minibatches of ``b`` distinct examples; pass ``num_examples=N``):
    :func:`~entropix.landscape.sgd_temperature` and
    :func:`~entropix.landscape.noise_covariance` with ``replacement=num_examples is None``.
    ``discrete=True`` solves the exact equation of the linear recursion,
    ``F Σ + Σ Fᵀ − η F Σ Fᵀ = 2β⁻¹ D``, instead of its ``η → 0`` limit (for a loss with state
    independent noise it is then exact for every stable ``η``).

    Args:
      hessian: ``F``, shape ``(d, d)``.
      diffusion: ``D`` (``D_w`` with replacement, ``D_wo`` without), shape ``(d, d)``.
      learning_rate: ``η``.
      batch_size: ``b``.
      num_examples: ``N`` when minibatches are drawn without replacement; ``None`` otherwise.
      discrete: solve the discrete-time equation (``O(η)`` correction included).

    Returns:
      The ``(d, d)`` covariance ``Σ``.

    Raises:
      ValueError: as :func:`lyapunov_covariance`, or ``batch_size > num_examples``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> F, D = jnp.eye(1) * 2.0, jnp.eye(1) * 4.0
      >>> round(float(landscape.sgd_stationary_covariance(
      ...     F, D, learning_rate=0.1, batch_size=5)[0, 0]), 6)
      0.02
      >>> round(float(landscape.sgd_stationary_covariance(
      ...     F, D, learning_rate=0.1, batch_size=5, discrete=True)[0, 0]), 6)
      0.022222
    """
    f, d = _pair(hessian, diffusion)
    temperature = noise.sgd_temperature(learning_rate, batch_size, num_examples=num_examples)
    step = float(learning_rate) if discrete else 0.0
    return _solve(f, 2.0 * temperature * d, step)


class IterateCovariance(NamedTuple):
    """Output of :func:`iterate_covariance`.

    Attributes:
      mean: the center used, shape ``(d,)``.
      covariance: the pooled second moment about ``mean``, shape ``(d, d)``.
      standard_error: element-wise standard error of ``covariance`` from the spread of the
        per-chain estimates (independent chains), shape ``(d, d)``; NaN for one chain.
      num_chains: number of chains ``M``.
      num_samples: samples per chain after burn-in.
    """

    mean: jax.Array
    covariance: jax.Array
    standard_error: jax.Array
    num_chains: int
    num_samples: int


def _chains(trajectory: Any, burn_in: int) -> jax.Array:
    """A ``(T, d)`` or ``(M, T, d)`` trajectory as ``(M, T − burn_in, d)`` chains."""
    x = jnp.asarray(trajectory)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(
            f"`trajectory` must have shape (T, d) or (M, T, d), got shape {jnp.shape(trajectory)}."
        )
    burn_in = validation.check_static_int("burn_in", burn_in, minimum=0)
    if burn_in >= x.shape[1] - 1:
        raise ValueError(
            f"`burn_in` must leave at least 2 samples per chain, got burn_in={burn_in} for "
            f"T={x.shape[1]}."
        )
    return x[:, burn_in:]


def iterate_covariance(
    trajectory: Any, *, burn_in: int = 0, center: Any | None = None
) -> IterateCovariance:
    r"""Covariance of SGD (or SDE) iterates around a minimum from one or several trajectories.

    ``trajectory`` is ``(T, d)`` (one chain) or ``(M, T, d)`` (``M`` independent chains). The
    first ``burn_in`` samples of every chain are dropped. Comparing with
    :func:`sgd_stationary_covariance` estimates the potential curvature ``U = β⁻¹ Σ⁻¹`` from a
    run. Samples within a chain are correlated, so the standard error comes from the spread over
    chains: use several chains.

    Args:
      trajectory: ``(T, d)`` or ``(M, T, d)`` array of iterates (flatten pytrees with
        :func:`~entropix.landscape.snapshot_matrix`).
      burn_in: samples dropped at the start of each chain.
      center: the critical point ``x*`` if known; default the pooled sample mean.

    Returns:
      An :class:`IterateCovariance`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> x = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
      >>> landscape.iterate_covariance(x).covariance.tolist()
      [[0.5, 0.0], [0.0, 2.0]]
    """
    x = _chains(trajectory, burn_in)
    m, t, d = x.shape
    mean = jnp.mean(x, axis=(0, 1)) if center is None else jnp.asarray(center, x.dtype)
    if mean.shape != (d,):
        raise ValueError(f"`center` must have shape ({d},), got {mean.shape}.")
    dev = x - mean
    per_chain = jnp.einsum("mti,mtj->mij", dev, dev) / t
    cov = jnp.mean(per_chain, axis=0)
    if m > 1:
        se = jnp.std(per_chain, axis=0, ddof=1) / np.sqrt(m)
    else:
        se = jnp.full((d, d), jnp.nan, x.dtype)
    return IterateCovariance(
        mean=mean, covariance=cov, standard_error=se, num_chains=m, num_samples=t
    )


class AngularMomentum(NamedTuple):
    """Output of :func:`angular_momentum`.

    Attributes:
      value: ``L = E[x ẋᵀ − ẋ xᵀ]`` estimated from increments, shape ``(d, d)``, antisymmetric;
        ``L[0, 1]`` is the mean angular velocity ``E[x₁ẋ₂ − x₂ẋ₁]``.
      standard_error: element-wise standard error over independent chains (NaN for one chain).
    """

    value: jax.Array
    standard_error: jax.Array


def angular_momentum(
    trajectory: Any, *, dt: float, burn_in: int = 0, center: Any | None = None
) -> AngularMomentum:
    r"""Stationary angular momentum ``E[x ẋᵀ − ẋ xᵀ]`` of a trajectory (probability current).

    Estimated as the time average of ``(x_t Δx_tᵀ − Δx_t x_tᵀ)/dt`` with ``Δx_t = x_{t+1} − x_t``
    (positions relative to ``center``). At equilibrium (detailed balance) it vanishes; for the
    linearized SGD of thesis eq. 6.46 it equals ``2β⁻¹ Q`` (Lemma 6.44), for both the SDE and
    the discrete recursion with ``dt = η``.

    Args:
      trajectory: ``(T, d)`` or ``(M, T, d)`` iterates recorded every ``dt``.
      dt: time between samples (``η`` for SGD iterates, in units where ``β⁻¹ = η/(2b)``).
      burn_in: samples dropped at the start of each chain.
      center: the origin of positions (the critical point); default zero.

    Returns:
      An :class:`AngularMomentum`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> t = jnp.linspace(0.0, 2 * jnp.pi, 1001)
      >>> circle = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=-1)   # unit circle, speed 1
      >>> round(float(landscape.angular_momentum(circle, dt=float(t[1])).value[0, 1]), 3)
      1.0
    """
    dt = validation.check_positive_finite("dt", dt)
    x = _chains(trajectory, burn_in)
    if center is not None:
        x = x - jnp.asarray(center, x.dtype)
    pos, inc = x[:, :-1], jnp.diff(x, axis=1)
    outer = jnp.einsum("mti,mtj->mij", pos, inc) / (inc.shape[1] * dt)
    per_chain = outer - jnp.swapaxes(outer, 1, 2)
    value = jnp.mean(per_chain, axis=0)
    m = per_chain.shape[0]
    if m > 1:
        se = jnp.std(per_chain, axis=0, ddof=1) / np.sqrt(m)
    else:
        se = jnp.full(value.shape, jnp.nan, value.dtype)
    return AngularMomentum(value=value, standard_error=se)


@jax.jit
def _project_operator(op: hvp.LinearOperator, basis: jax.Array) -> jax.Array:
    """``V A Vᵀ`` by ``k`` operator applications (vmapped HVPs), symmetrized."""
    projected = basis @ jax.vmap(op)(basis).T
    return 0.5 * (projected + projected.T)


class ProjectedLinearization(NamedTuple):
    """Output of :func:`projected_linearization`.

    Attributes:
      basis: orthonormal rows spanning the top-``k`` Hessian subspace, shape ``(k, d)`` (flat
        ``ravel_pytree`` coordinates).
      ritz_values: the Lanczos estimates of the ``k`` eigenvalues, descending.
      hessian: ``F_k = V H Vᵀ``, shape ``(k, k)`` (exact projection by ``k`` HVPs).
      diffusion: ``D_k = V D Vᵀ``, shape ``(k, k)``.
      potential: :func:`linearized_potential` of ``(F_k, D_k)``.
      mismatch: :func:`potential_mismatch` of ``(F_k, D_k)``.
    """

    basis: jax.Array
    ritz_values: jax.Array
    hessian: jax.Array
    diffusion: jax.Array
    potential: LinearizedPotential
    mismatch: PotentialMismatch


def projected_linearization(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    batches: Any,
    *,
    k: int = 10,
    num_steps: int | None = None,
    key: jax.Array | None = None,
    noise_batches: Any | None = None,
    replacement: bool = True,
) -> ProjectedLinearization:
    r"""Lemma 6.44 on the top-``k`` Hessian subspace of a model, matrix-free.

    Runs ``num_steps`` Lanczos steps on the dataset Hessian (Hessian-vector products), keeps the
    ``k`` Ritz vectors of largest Ritz value ``V`` (``k × d``), and forms ``F_k = V H Vᵀ`` (``k``
    HVPs) and ``D_k = V D Vᵀ = (1/N) (G_c Vᵀ)ᵀ (G_c Vᵀ)`` from per-example gradients projected
    batch by batch (``G_c``: centered per-example gradients; ``N/(N − 1)`` times that without
    replacement). The Galerkin restriction of the linearized SGD (thesis eq. 6.46) to
    ``span(V)`` is then analyzed exactly. Nothing ``d × d`` is formed; memory ``O(num_steps·d +
    b·d)`` with ``b`` the largest batch.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the critical point, any pytree.
      batches: batches for the Hessian (see :mod:`entropix.landscape.dataset`).
      k: subspace dimension.
      num_steps: Lanczos order (default ``min(d, max(2k, k + 20))``).
      key: PRNG key for the Lanczos start vector.
      noise_batches: batches for the per-example gradients (default ``batches``).
      replacement: ``D_w`` (``True``) or ``D_wo``.

    Returns:
      A :class:`ProjectedLinearization`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> A = jnp.array([[1.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [1.0, 1.0, 1.0]])
      >>> y = jnp.array([1.0, -1.0, 0.5, 0.0])
      >>> loss_fn = lambda w, b: 0.5 * jnp.mean((b[0] @ w - b[1]) ** 2)
      >>> r = landscape.projected_linearization(loss_fn, jnp.zeros(3), [(A, y)], k=2, num_steps=3)
      >>> r.hessian.shape, r.diffusion.shape, bool(r.potential.residual < 1e-4)
      ((2, 2), (2, 2), True)
    """
    op = hvp.hessian_operator(loss_fn, params, batches)
    k = validation.check_static_int("k", k)
    if k > op.dim:
        raise ValueError(f"`k` must be <= the number of parameters d={op.dim}, got k={k}.")
    if num_steps is None:
        num_steps = min(op.dim, max(2 * k, k + 20))
    num_steps = validation.check_static_int("num_steps", num_steps)
    if num_steps < k:
        raise ValueError(f"`num_steps` must be >= k={k}, got num_steps={num_steps}.")
    t = lanczos.lanczos_tridiagonal(op, num_steps, key=key)
    theta, s = lanczos.tridiagonal_eigh(t)
    top = s[:, ::-1][:, :k]  # Ritz coefficients of the k largest Ritz values
    basis = top.T @ t.basis  # (k, d)
    basis, _ = jnp.linalg.qr(basis.T)  # re-orthonormalize (rounding)
    basis = basis.T
    f_k = _project_operator(op, basis)

    prepared = dataset.prepare_batches(batches if noise_batches is None else noise_batches)
    if isinstance(prepared, dataset.BatchList):
        groups = prepared.batches
    else:
        groups = [
            jax.tree_util.tree_map(lambda leaf, j=j: leaf[j], prepared.tree)
            for j in range(dataset.num_batches(prepared))
        ]
    projected = jnp.concatenate(
        [
            noise.per_example_gradients(loss_fn, params, [b]).astype(basis.dtype) @ basis.T
            for b in groups
        ],
        axis=0,
    )
    d_k = noise.noise_covariance(projected, replacement=replacement)
    potential = linearized_potential(f_k, d_k)
    return ProjectedLinearization(
        basis=basis,
        ritz_values=theta[::-1][:k],
        hessian=f_k,
        diffusion=d_k,
        potential=potential,
        mismatch=potential_mismatch(f_k, d_k, potential=potential),
    )
