r"""Linear–quadratic instance of thesis Theorem 4.11 (controlled SGD beats SGD), in closed form.

Loss ``f(x) = a x²/2``, terminal cost ``V(x) = q x²/2``, noise ``σ² = β⁻¹``, horizon ``T``.

* SGD: ``dX = −a X ds + σ dB``; its expected terminal cost ``v(x, s) = ½ Q(s) x² + w(s)`` solves
  the backward Kolmogorov equation: ``Q' = 2aQ``, ``w' = −(σ²/2) Q``, ``Q(T) = q``, ``w(T) = 0``.
* Controlled SGD (csgd): ``dX = −(∇f(X) + α) ds + σ dB`` with cost
  ``E[V(X_T) + ½∫|α|² ds]``; the value ``u(x, s) = ½ P(s) x² + r(s)`` solves the HJB equation:
  ``P' = 2aP + P²``, ``r' = −(σ²/2) P``, ``P(T) = q``, ``r(T) = 0``; optimal control
  ``α^* = ∇u = P(s) x``.

Closed forms (``τ = T − s``, ``φ(z) = (e^z − 1)/z``)::

  P = 1 / (e^{2aτ}/q + τ φ(2aτ)),         r = (σ²/2) log(1 + q τ φ(−2aτ)),
  Q = q e^{−2aτ},                          w = (σ²/2) q τ φ(−2aτ).

Theorem 4.11: ``E V(X_csgd(T)) ≤ E V(X_sgd(T)) − ½ E∫|α|²``, here with
``u(x0, 0) = E V(X_csgd(T)) + J`` and ``v(x0, 0) = E V(X_sgd(T))``. Reference numbers
(``a = 1, q = 2, β = 4, T = 1, x0 = 1.5``): ``u0 = 0.241188 = 0.145541 + 0.095647``,
``v0 = 0.412587``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "LQProblem",
    "lq_csgd_costs",
    "lq_riccati",
    "lq_sgd_value",
    "lq_simulate",
    "lq_value",
]


class LQProblem(NamedTuple):
    """The 1-D linear–quadratic control problem (defaults: the reference instance of the module).

    Attributes:
      a: curvature of ``f(x) = a x²/2``.
      q: curvature of the terminal cost ``V(x) = q x²/2``.
      beta: inverse temperature (``σ² = 1/β``).
      horizon: ``T``.
      x0: initial point.
    """

    a: float = 1.0
    q: float = 2.0
    beta: float = 4.0
    horizon: float = 1.0
    x0: float = 1.5


def _phi(z: jax.Array) -> jax.Array:
    """``(e^z − 1)/z`` with the limit 1 at ``z = 0``."""
    small = jnp.abs(z) < 1e-8
    safe = jnp.where(small, 1.0, z)
    return jnp.where(small, 1.0 + z / 2.0, jnp.expm1(safe) / safe)


def lq_riccati(s: jax.Array, problem: LQProblem | None = None) -> jax.Array:
    r"""``P(s)`` solving ``P' = 2aP + P²``, ``P(T) = q``: ``P = 1/(e^{2aτ}/q + τ φ(2aτ))``.

    Args:
      s: time(s) in ``[0, T]``.
      problem: the LQ problem (default: the reference instance, :class:`LQProblem()`).

    Returns:
      ``P(s)``.

    Examples:
      >>> round(float(lq_riccati(1.0)), 6)
      2.0
    """
    problem = LQProblem() if problem is None else problem
    tau = problem.horizon - jnp.asarray(s)
    return 1.0 / (jnp.exp(2.0 * problem.a * tau) / problem.q + tau * _phi(2.0 * problem.a * tau))


def lq_value(x: jax.Array, s: jax.Array, problem: LQProblem | None = None) -> jax.Array:
    r"""Value function of controlled SGD, ``u(x, s) = ½ P(s) x² + r(s)`` (HJB solution).

    Args:
      x: state.
      s: time.
      problem: the LQ problem (default: the reference instance, :class:`LQProblem()`).

    Returns:
      ``u(x, s)``.

    Examples:
      >>> round(float(lq_value(1.5, 0.0)), 6)
      0.241188
    """
    problem = LQProblem() if problem is None else problem
    tau = problem.horizon - jnp.asarray(s)
    sigma2 = 1.0 / problem.beta
    r = 0.5 * sigma2 * jnp.log1p(problem.q * tau * _phi(-2.0 * problem.a * tau))
    return 0.5 * lq_riccati(s, problem) * jnp.asarray(x) ** 2 + r


def lq_sgd_value(x: jax.Array, s: jax.Array, problem: LQProblem | None = None) -> jax.Array:
    r"""Expected terminal cost of plain SGD, ``v(x, s) = ½ Q(s) x² + w(s)``.

    Args:
      x: state.
      s: time.
      problem: the LQ problem (default: the reference instance, :class:`LQProblem()`).

    Returns:
      ``v(x, s) = E[V(X_T) | X_s = x]``.

    Examples:
      >>> round(float(lq_sgd_value(1.5, 0.0)), 6)
      0.412587
    """
    problem = LQProblem() if problem is None else problem
    tau = problem.horizon - jnp.asarray(s)
    sigma2 = 1.0 / problem.beta
    q_s = problem.q * jnp.exp(-2.0 * problem.a * tau)
    w = 0.5 * sigma2 * problem.q * tau * _phi(-2.0 * problem.a * tau)
    return 0.5 * q_s * jnp.asarray(x) ** 2 + w


def lq_csgd_costs(
    problem: LQProblem | None = None, num_steps: int = 2000
) -> tuple[jax.Array, jax.Array]:
    r"""Expected terminal cost and control cost of controlled SGD, by ODE integration (RK4).

    The second moment obeys ``m₂' = −2(a + P(s)) m₂ + σ²``, ``m₂(0) = x0²``; then
    ``E V(X_T) = ½ q m₂(T)`` and ``J = ½ ∫_0^T P(s)² m₂(s) ds``, and
    ``E V(X_T) + J = u(x0, 0)``.

    Args:
      problem: the LQ problem (default: the reference instance, :class:`LQProblem()`).
      num_steps: RK4 steps (static).

    Returns:
      ``(terminal_cost, control_cost)``.

    Examples:
      >>> ev, j = lq_csgd_costs()
      >>> round(float(ev), 5), round(float(j), 5)
      (0.14554, 0.09565)
    """
    problem = LQProblem() if problem is None else problem
    h = problem.horizon / num_steps
    sigma2 = 1.0 / problem.beta

    def rhs(s, y):
        m2, _ = y
        p = lq_riccati(s, problem)
        return jnp.stack([-2.0 * (problem.a + p) * m2 + sigma2, 0.5 * p**2 * m2])

    def step(y, i):
        s = i * h
        k1 = rhs(s, y)
        k2 = rhs(s + h / 2, y + h / 2 * k1)
        k3 = rhs(s + h / 2, y + h / 2 * k2)
        k4 = rhs(s + h, y + h * k3)
        return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), None

    y0 = jnp.asarray([problem.x0**2, 0.0], dtype=jnp.result_type(float))
    y, _ = jax.lax.scan(step, y0, jnp.arange(num_steps))
    return 0.5 * problem.q * y[0], y[1]


def lq_simulate(
    key: jax.Array,
    problem: LQProblem | None = None,
    *,
    num_paths: int = 10_000,
    num_steps: int = 200,
    controlled: bool = True,
) -> tuple[jax.Array, jax.Array]:
    r"""Monte-Carlo (Euler–Maruyama) simulation of SGD or controlled SGD.

    ``X ← X − (a X + α) h + σ √h ξ`` with ``α = P(s) X`` (controlled) or ``α = 0`` (SGD).

    Args:
      key: PRNG key.
      problem: the LQ problem (default: the reference instance, :class:`LQProblem()`).
      num_paths: number of independent paths.
      num_steps: time steps (static).
      controlled: simulate csgd (``True``) or SGD.

    Returns:
      Per-path ``(V(X_T), ½∫|α|² ds)`` arrays of shape ``(num_paths,)``.

    Examples:
      >>> import jax
      >>> v, j = lq_simulate(jax.random.key(0), num_paths=100, num_steps=20)
    """
    problem = LQProblem() if problem is None else problem
    h = problem.horizon / num_steps
    sigma = (1.0 / problem.beta) ** 0.5
    dtype = jnp.result_type(float)
    noise = jax.random.normal(key, (num_steps, num_paths), dtype)

    def step(carry, inp):
        x, cost = carry
        i, xi = inp
        p = lq_riccati(i * h, problem) if controlled else 0.0
        alpha = p * x
        cost = cost + 0.5 * alpha**2 * h
        x = x - (problem.a * x + alpha) * h + sigma * jnp.sqrt(h) * xi
        return (x, cost), None

    x0 = jnp.full((num_paths,), problem.x0, dtype)
    (x, cost), _ = jax.lax.scan(step, (x0, jnp.zeros_like(x0)), (jnp.arange(num_steps), noise))
    return 0.5 * problem.q * x**2, cost
