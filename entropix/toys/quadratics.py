r"""Quadratic losses with exact local entropy, proximal operator and Entropy-SGD step.

Loss ``f(x) = ½ (x − m)ᵀ A (x − m)`` with symmetric ``A`` (shape ``(d, d)``), ``x, m`` of shape
``(d,)``. Conventions (docs/conventions.md): ``coupling`` is ``γ_c = 1/γ_thesis``; the local Gibbs
measure is ``ρ(y; x) ∝ exp(−β f(y) − β γ_c |x − y|²/2)`` and needs ``K := A + γ_c I ≻ 0``;
``average_weight`` is the weight of the *newest* sample (``μ ← (1−α) μ + α x'``, ICLR paper;
``α = 1 − α_thesis``). Langevin noise ``sqrt(η') ε N(0, I)``, temperature ``β⁻¹ = ε²/2``.

References:
  P. Chaudhari, *A Picture of the Energy Landscape of Deep Neural Networks*, PhD thesis 2018,
  Ch. 4 (eqs. 4.11, 4.16, 4.40–4.41, Lemmas 4.1 and 4.4); P. Chaudhari et al., *Entropy-SGD:
  Biasing gradient descent into wide valleys*, ICLR 2017.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "entropy_sgd_quadratic_step",
    "quadratic_local_covariance",
    "quadratic_local_entropy",
    "quadratic_local_entropy_grad",
    "quadratic_local_mean",
    "quadratic_loss",
    "quadratic_moreau_envelope",
    "quadratic_prox",
    "quadratic_sgld_stationary",
]


def _smoothed_hessian(hessian: jax.Array, coupling) -> jax.Array:
    """``A (I + A/γ_c)⁻¹ = (A⁻¹ + I/γ_c)⁻¹`` (well defined for singular ``A``)."""
    eye = jnp.eye(hessian.shape[-1], dtype=hessian.dtype)
    return jnp.linalg.solve(eye + hessian / coupling, hessian)


def quadratic_loss(x: jax.Array, hessian: jax.Array, minimizer: jax.Array) -> jax.Array:
    r"""``f(x) = ½ (x − m)ᵀ A (x − m)``.

    Args:
      x: point, shape ``(d,)``.
      hessian: symmetric ``A``, shape ``(d, d)``.
      minimizer: ``m``, shape ``(d,)``.

    Returns:
      Scalar loss.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(quadratic_loss(jnp.ones(2), 2.0 * jnp.eye(2), jnp.zeros(2)))
      2.0
    """
    r = x - minimizer
    return 0.5 * r @ hessian @ r


def quadratic_local_entropy(
    x: jax.Array,
    hessian: jax.Array,
    minimizer: jax.Array,
    coupling: float | jax.Array,
    beta: float | jax.Array = 1.0,
) -> jax.Array:
    r"""Exact viscous local entropy of a quadratic (normalized heat kernel, thesis eq. 4.11).

    .. math::
      f_γ(x) = ½ (x-m)ᵀ A (I + A/γ_c)^{-1} (x-m) + \frac{1}{2β} \log\det(I + A/γ_c).

    Args:
      x: point, shape ``(d,)``.
      hessian: symmetric ``A`` with ``A + γ_c I ≻ 0``.
      minimizer: ``m``.
      coupling: ``γ_c > 0``.
      beta: inverse temperature ``β``.

    Returns:
      Scalar ``f_γ(x)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> f = quadratic_local_entropy(jnp.array([-1.0]), jnp.array([[3.0]]), jnp.array([0.7]),
      ...                             coupling=2.0, beta=2.0)
      >>> round(float(f), 5)
      1.96307

    References:
      Thesis eq. 4.11 and Lemma 4.1 (a Gaussian integral for a quadratic ``f``).
    """
    eye = jnp.eye(hessian.shape[-1], dtype=hessian.dtype)
    r = x - minimizer
    _, logdet = jnp.linalg.slogdet(eye + hessian / coupling)
    return 0.5 * r @ _smoothed_hessian(hessian, coupling) @ r + 0.5 * logdet / beta


def quadratic_local_entropy_grad(
    x: jax.Array, hessian: jax.Array, minimizer: jax.Array, coupling: float | jax.Array
) -> jax.Array:
    r"""``∇f_γ(x) = A (I + A/γ_c)^{-1} (x − m) = γ_c (x − ⟨y⟩)`` (independent of ``β``).

    Args:
      x: point ``(d,)``.
      hessian: ``A``.
      minimizer: ``m``.
      coupling: ``γ_c``.

    Returns:
      The gradient, shape ``(d,)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> g = quadratic_local_entropy_grad(jnp.array([-1.0]), jnp.array([[3.0]]),
      ...                                  jnp.array([0.7]), 2.0)
      >>> round(float(g[0]), 6)
      -2.04
    """
    return _smoothed_hessian(hessian, coupling) @ (x - minimizer)


def quadratic_local_mean(
    x: jax.Array, hessian: jax.Array, minimizer: jax.Array, coupling: float | jax.Array
) -> jax.Array:
    r"""Mean of the local Gibbs measure, ``⟨y⟩ = (A + γ_c I)^{-1}(A m + γ_c x)``.

    Equal to :func:`quadratic_prox` (the stationary mean of Entropy-SGD's inner loop, for any
    temperature and any stable SGLD step).

    Args:
      x: anchor ``(d,)``.
      hessian: ``A``.
      minimizer: ``m``.
      coupling: ``γ_c``.

    Returns:
      ``⟨y⟩``, shape ``(d,)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> y = quadratic_local_mean(jnp.array([2.0]), jnp.array([[3.0]]), jnp.array([0.7]), 2.0)
      >>> round(float(y[0]), 6)
      1.22
    """
    eye = jnp.eye(hessian.shape[-1], dtype=hessian.dtype)
    return jnp.linalg.solve(hessian + coupling * eye, hessian @ minimizer + coupling * x)


def quadratic_local_covariance(
    hessian: jax.Array, coupling: float | jax.Array, beta: float | jax.Array = 1.0
) -> jax.Array:
    r"""Covariance of the local Gibbs measure, ``β⁻¹ (A + γ_c I)^{-1}``.

    Args:
      hessian: ``A``.
      coupling: ``γ_c``.
      beta: inverse temperature.

    Returns:
      ``(d, d)`` covariance.

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(quadratic_local_covariance(jnp.array([[3.0]]), 2.0, beta=2.0)[0, 0]), 6)
      0.1
    """
    eye = jnp.eye(hessian.shape[-1], dtype=hessian.dtype)
    return jnp.linalg.inv(hessian + coupling * eye) / beta


def quadratic_moreau_envelope(
    x: jax.Array, hessian: jax.Array, minimizer: jax.Array, coupling: float | jax.Array
) -> jax.Array:
    r"""Moreau envelope / Hopf–Lax solution ``u(x, 1/γ_c) = ½(x−m)ᵀA(I + A/γ_c)^{-1}(x−m)``.

    Same as :func:`quadratic_local_entropy` without the ``log det`` term (the zero-temperature
    limit; Hopf–Lax formula, thesis eq. 4.16).

    Args:
      x: point.
      hessian: ``A``.
      minimizer: ``m``.
      coupling: ``γ_c``.

    Returns:
      Scalar ``u(x)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(quadratic_moreau_envelope(jnp.array([1.0]), jnp.array([[1.0]]),
      ...                                 jnp.array([0.0]), 1.0))
      0.25
    """
    r = x - minimizer
    return 0.5 * r @ _smoothed_hessian(hessian, coupling) @ r


def quadratic_prox(
    x: jax.Array, hessian: jax.Array, minimizer: jax.Array, coupling: float | jax.Array
) -> jax.Array:
    r"""Proximal operator ``argmin_y f(y) + γ_c|x − y|²/2 = (A + γ_c I)^{-1}(A m + γ_c x)``.

    ``γ_c (x − prox(x)) = ∇f(prox(x)) = ∇u(x)`` (thesis eq. 4.18).

    Args:
      x: point.
      hessian: ``A``.
      minimizer: ``m``.
      coupling: ``γ_c``.

    Returns:
      ``prox(x)``, shape ``(d,)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(quadratic_prox(jnp.array([1.0]), jnp.array([[1.0]]), jnp.array([0.0]), 1.0)[0])
      0.5
    """
    return quadratic_local_mean(x, hessian, minimizer, coupling)


def quadratic_sgld_stationary(
    x: jax.Array,
    hessian: jax.Array,
    minimizer: jax.Array,
    *,
    coupling: float | jax.Array,
    sgld_learning_rate: float | jax.Array,
    noise: float | jax.Array,
) -> tuple[jax.Array, jax.Array]:
    r"""Exact stationary law of Entropy-SGD's discrete inner loop on a quadratic.

    The chain ``x' ← x' − η'(A(x' − m) + γ_c(x' − x)) + sqrt(η') ε ξ`` is a Gaussian AR(1)
    process with ``K = A + γ_c I``, stationary mean ``K^{-1}(A m + γ_c x)`` and covariance

    .. math::
      Σ = η' ε^2 \big(I - (I - η' K)^2\big)^{-1} \;\xrightarrow{η' → 0}\; \frac{ε^2}{2} K^{-1},

    the continuous limit being the local Gibbs covariance at temperature ``β⁻¹ = ε²/2``
    (thesis Lemma 4.4). Requires ``0 < η' λ < 2`` for every eigenvalue ``λ`` of ``K``.

    Args:
      x: anchor.
      hessian: ``A``.
      minimizer: ``m``.
      coupling: ``γ_c``.
      sgld_learning_rate: ``η'``.
      noise: ``ε`` (our Langevin convention).

    Returns:
      ``(mean, covariance)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> mean, cov = quadratic_sgld_stationary(
      ...     jnp.array([2.0]), jnp.array([[3.0]]), jnp.array([0.7]),
      ...     coupling=2.0, sgld_learning_rate=0.05, noise=1.0)
      >>> round(float(mean[0]), 6), round(float(cov[0, 0]), 5)
      (1.22, 0.11429)
    """
    eye = jnp.eye(hessian.shape[-1], dtype=hessian.dtype)
    k = hessian + coupling * eye
    m = eye - sgld_learning_rate * k
    cov = sgld_learning_rate * noise**2 * jnp.linalg.inv(eye - m @ m)
    return quadratic_local_mean(x, hessian, minimizer, coupling), cov


def entropy_sgd_quadratic_step(
    x: jax.Array,
    hessian: jax.Array,
    minimizer: jax.Array,
    *,
    coupling: float | jax.Array,
    sgld_learning_rate: float | jax.Array,
    num_inner_steps: int,
    average_weight: float | jax.Array = 0.75,
    learning_rate: float | jax.Array = 1.0,
    scale_outer_gradient: bool = True,
) -> tuple[jax.Array, jax.Array]:
    r"""One noise-free, full-batch outer step of Entropy-SGD on a quadratic, in closed form.

    Inner loop (``L`` steps, ``x'_0 = μ_0 = x``):
    ``x' ← x' − η'(∇f(x') + γ_c(x' − x))``, ``μ ← (1 − α) μ + α x'`` (``α`` = weight of the
    newest sample). With ``K = A + γ_c I``, ``M = I − η' K``, ``y^* = K^{-1}(Am + γ_c x)`` and
    ``a = 1 − α`` (the thesis's ``α``), per eigendirection of ``K`` (unrolling the linear
    recursions)

    .. math::
      x'_j - y^* = M^j (x - y^*), \qquad
      μ_L - y^* = \Big[a^L + (1-a) \sum_{j=1}^{L} a^{L-j} M^j\Big](x - y^*), \qquad
      \sum_{j=1}^{L} a^{L-j} μ^j = \frac{μ(μ^L - a^L)}{μ - a}.

    Outer step: scaled ``x⁺ = x − η (x − μ_L)`` (default; ``η = 1`` gives ``x⁺ = μ_L``) or
    unscaled ``x⁺ = x − η γ_c (x − μ_L)``. ``α = 1`` (no averaging) is the HJ / proximal
    variant: ``μ_L = x'_L → prox(x)`` as ``L → ∞``.

    Args:
      x: anchor, shape ``(d,)``.
      hessian: symmetric ``A``.
      minimizer: ``m``.
      coupling: ``γ_c``.
      sgld_learning_rate: inner step ``η'``.
      num_inner_steps: ``L ≥ 1`` (static).
      average_weight: ``α`` in ``(0, 1]``, weight of the newest sample.
      learning_rate: outer ``η``.
      scale_outer_gradient: scaled (``x − μ``) or unscaled (``γ_c (x − μ)``) outer gradient.

    Returns:
      ``(new_anchor, mu_L)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> _, mu = entropy_sgd_quadratic_step(
      ...     jnp.array([2.0]), jnp.array([[3.0]]), jnp.array([0.7]), coupling=2.0,
      ...     sgld_learning_rate=0.05, num_inner_steps=20, average_weight=0.75)
      >>> round(float(mu[0]), 5)
      1.22278

    References:
      Thesis §4.6.1.1 (eqs. 4.40–4.41), Ch. 3 Algorithm 2; ICLR 2017 Alg. 1.
    """
    if num_inner_steps < 1:
        raise ValueError(f"`num_inner_steps` must be >= 1, got {num_inner_steps!r}.")
    big_l = num_inner_steps
    eye = jnp.eye(hessian.shape[-1], dtype=hessian.dtype)
    k = hessian + coupling * eye
    y_star = jnp.linalg.solve(k, hessian @ minimizer + coupling * x)
    lam, vecs = jnp.linalg.eigh(k)
    mu = 1.0 - sgld_learning_rate * lam
    a = jnp.asarray(1.0 - average_weight, dtype=mu.dtype)
    diff = mu - a
    safe = jnp.where(jnp.abs(diff) > 1e-12, diff, 1.0)
    geometric = jnp.where(
        jnp.abs(diff) > 1e-12,
        mu * (mu**big_l - a**big_l) / safe,
        big_l * a**big_l,
    )
    coeff = a**big_l + (1.0 - a) * geometric
    mu_l = y_star + vecs @ (coeff * (vecs.T @ (x - y_star)))
    outer_grad = x - mu_l
    if not scale_outer_gradient:
        outer_grad = coupling * outer_grad
    return x - learning_rate * outer_grad, mu_l
