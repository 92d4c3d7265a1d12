r"""Non-equilibrium toys of SGD: a double well whose drift rotates, with exact steady state.

Thesis Example 6.43 (after Noh & Lee 2015) builds a 2-D dynamics ``dX = −∇f(X) dt + √2 dB``
(``β = 1``) whose steady state is known for every rotation strength ``λ ≥ 0``:

.. math::

  Φ(x) = \frac{(x_1^2 - 1)^2}{4} + \frac{x_2^2}{2}, \qquad
  J(x) = e^{-r^4/4}\,(-x_2,\ x_1), \qquad j(x) = λ\, e^{Φ(x)} J(x), \qquad
  ∇f(x) = ∇Φ(x) - j(x),

with ``r² = x₁² + x₂²``. Because ``∇·(j e^{−Φ}) = λ ∇·J = 0`` (a rotation field of a radial
profile is divergence-free; ``∇·j = j·∇Φ`` itself is not zero, so the example does not satisfy
Assumption 6.22 pointwise, nor does it need to), the Fokker–Planck equation is solved
by ``ρ^{ss} = e^{−Φ}/Z`` **for every λ**: the steady state does not see the rotation, but
detailed balance is broken (thesis Def. 6.14) with probability current
``J^{ss} = ρ^{ss} j = (λ/Z) e^{−r⁴/4} (−x₂, x₁)``. Consequences, all exact:

* ``Z = ∫ e^{−Φ} = √(2π) ∫ e^{−(s²−1)²/4} ds = 7.6234…``; the marginals are independent,
  ``x₂ ~ N(0, 1)`` and ``x₁ ∝ e^{−(x₁²−1)²/4}`` (``E[x₁²] = 1.0418…``), for every ``λ``.
* Mean angular velocity (derived here; the thesis shows it as Fig. 6.4). In the Itô form
  ``E[x₁ẋ₂ − x₂ẋ₁] = E[x₁ b₂ − x₂ b₁]`` with ``b = −∇Φ + j``; the gradient part integrates to 0
  against ``e^{−Φ}``, leaving

  .. math::

    E[x_1\dot x_2 - x_2\dot x_1] = \frac{λ}{Z}\int r^2 e^{-r^4/4}\,dx
      = \frac{λ}{Z}\, 2π \int_0^\infty r^3 e^{-r^4/4}\,dr = \frac{2πλ}{Z}.

* Critical points of ``f`` (``∇f = 0``): the origin, and for ``0 ≤ λ < λ_c = e^{−1/4}``
  two more, ``±(x₁, x₂)`` with ``x₂ = λ g x₁``, ``x₁² = 1 − λ² g²``, ``g = e^{Φ − r⁴/4}``
  (``(±1, 0)`` at ``λ = 0``; ``±(0.9024, 0.3888)`` at ``λ = 0.5``). With ``s = x₁²`` this is the
  scalar equation ``2 log λ + 2E(s) = log(1 − s)``, ``E(s) = (s−1)²/4 + s(1−s)/2 − s²(2−s)²/4``,
  solved by bisection. For ``λ > λ_c`` only the origin is left and the linearization there
  (``F = [[−1, λe^{1/4}], [−λe^{1/4}, 1]]``, trace 0, determinant ``λ²e^{1/2} − 1 > 0``) is a
  pure rotation: SGD circulates around the saddle of ``Φ`` (the limit cycles of Fig. 6.4c),
  while the most likely locations ``(±1, 0)`` of ``e^{−Φ}`` are not critical points of ``f``
  for any ``λ > 0`` (Theorem 6.48).

:func:`simulate_sde` runs Euler–Maruyama chains of any such drift (``vmap`` over chains,
``lax.scan`` over steps) and accumulates the angular momentum online, so long runs need no
stored path.

References:
  Chaudhari & Soatto, *Stochastic gradient descent performs variational inference, converges to
  limit cycles for deep networks*, ICLR 2018 (`arXiv:1710.11029
  <https://arxiv.org/abs/1710.11029>`_).
  Chaudhari, *A picture of the energy landscape of deep neural networks*, PhD thesis, UCLA
  2018, Ch. 6: Def. 6.12–6.14, Example 6.43, Fig. 6.4, Theorems 6.46 and 6.48.
  Noh & Lee, *On the steady-state probability distribution of nonequilibrium stochastic
  systems*, J. Korean Phys. Soc. 2015.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "DoubleWellMoments",
    "SDEPath",
    "double_well_angular_velocity",
    "double_well_critical_points",
    "double_well_critical_strength",
    "double_well_density",
    "double_well_gradient",
    "double_well_moments",
    "double_well_potential",
    "double_well_rotation",
    "simulate_sde",
    "winding_rate",
]


def _check_strength(strength: float) -> float:
    value = float(strength)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"`strength` must be a finite number >= 0, got strength={strength!r}.")
    return value


def _check_point(x: jax.Array) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim == 0 or x.shape[-1] != 2:
        raise ValueError(f"`x` must have shape (..., 2), got shape {x.shape}.")
    return x


def double_well_potential(x: jax.Array) -> jax.Array:
    r"""``Φ(x) = (x₁² − 1)²/4 + x₂²/2``, the steady-state potential of Example 6.43.

    Args:
      x: points, shape ``(..., 2)``.

    Returns:
      ``Φ(x)``, shape ``(...)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import toys
      >>> toys.double_well_potential(jnp.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])).tolist()
      [0.0, 0.25, 2.25]
    """
    x = _check_point(x)
    return (x[..., 0] ** 2 - 1.0) ** 2 / 4.0 + x[..., 1] ** 2 / 2.0


def double_well_rotation(x: jax.Array, strength: float) -> jax.Array:
    r"""The rotational force ``j(x) = λ e^{Φ(x) − r⁴/4} (−x₂, x₁)`` of Example 6.43.

    ``j e^{−Φ}/Z`` is the steady-state probability current and is divergence-free. ``j`` itself
    is not: ``∇·j = j·∇Φ = λ e^{Φ − r⁴/4} x₁x₂(2 − x₁²)``, so this example keeps ``e^{−Φ}``
    stationary without the thesis' Assumption 6.22 (``∇·j = 0``) or ``j ⟂ ∇Φ`` (Lemma 6.23):
    only ``∇·(j e^{−Φ}) = ∇·j − j·∇Φ = 0`` is needed.

    Args:
      x: points, shape ``(..., 2)``.
      strength: ``λ ≥ 0``.

    Returns:
      ``j(x)``, shape ``(..., 2)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import toys
      >>> [round(v, 4) for v in toys.double_well_rotation(jnp.array([0.0, 1.0]), 1.0).tolist()]
      [-1.6487, 0.0]
    """
    lam = _check_strength(strength)
    x = _check_point(x)
    r2 = jnp.sum(x**2, axis=-1)
    g = jnp.exp(double_well_potential(x) - r2**2 / 4.0)
    return lam * g[..., None] * jnp.stack([-x[..., 1], x[..., 0]], axis=-1)


def double_well_gradient(x: jax.Array, strength: float) -> jax.Array:
    r"""``∇f(x) = ∇Φ(x) − j(x)``: SGD's drift is ``−∇f`` (Example 6.43).

    Args:
      x: points, shape ``(..., 2)``.
      strength: ``λ ≥ 0``.

    Returns:
      ``∇f(x)``, shape ``(..., 2)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import toys
      >>> toys.double_well_gradient(jnp.array([1.0, 0.0]), 0.0).tolist()   # a minimum at λ = 0
      [0.0, 0.0]
    """
    x = _check_point(x)
    grad_phi = jnp.stack([x[..., 0] * (x[..., 0] ** 2 - 1.0), x[..., 1]], axis=-1)
    return grad_phi - double_well_rotation(x, strength)


class DoubleWellMoments(NamedTuple):
    """Exact steady-state constants of Example 6.43 (independent of ``λ``).

    Attributes:
      normalizer: ``Z = ∫ e^{−Φ(x)} dx``.
      x1_squared: ``E[x₁²]``.
      x2_squared: ``E[x₂²] = 1``.
      x1_fourth: ``E[x₁⁴]`` (for the standard error of ``x₁²``).
    """

    normalizer: float
    x1_squared: float
    x2_squared: float
    x1_fourth: float


def double_well_moments() -> DoubleWellMoments:
    r"""``Z`` and the marginal moments of ``ρ^{ss} = e^{−Φ}/Z`` by 1-D quadrature (float64).

    ``Z = √(2π) ∫ e^{−(s²−1)²/4} ds``; the integrand is below ``1e-300`` outside ``|s| ≤ 7``,
    and a 40,001-point trapezoid rule on that smooth, rapidly decaying integrand is accurate to
    machine precision.

    Returns:
      A :class:`DoubleWellMoments`.

    Examples:
      >>> from entropix import toys
      >>> m = toys.double_well_moments()
      >>> round(m.normalizer, 6), round(m.x1_squared, 6), m.x2_squared
      (7.623468, 1.041797, 1.0)
    """
    s = np.linspace(-7.0, 7.0, 40001)
    w = np.exp(-((s**2 - 1.0) ** 2) / 4.0)
    h = s[1] - s[0]

    def trapezoid(values):  # the uniform-grid trapezoid rule (np.trapezoid needs NumPy 2)
        return h * (values.sum() - 0.5 * (values[0] + values[-1]))

    mass = trapezoid(w)
    return DoubleWellMoments(
        normalizer=float(math.sqrt(2 * math.pi) * mass),
        x1_squared=float(trapezoid(s**2 * w) / mass),
        x2_squared=1.0,
        x1_fourth=float(trapezoid(s**4 * w) / mass),
    )


def double_well_density(x: jax.Array) -> jax.Array:
    r"""The steady-state density ``e^{−Φ(x)}/Z`` (the same for every ``λ``).

    Args:
      x: points, shape ``(..., 2)``.

    Returns:
      The density, shape ``(...)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import toys
      >>> round(float(toys.double_well_density(jnp.array([1.0, 0.0]))), 6)   # 1/Z
      0.131174
    """
    return jnp.exp(-double_well_potential(x)) / double_well_moments().normalizer


def double_well_angular_velocity(strength: float) -> float:
    r"""Exact stationary mean angular velocity ``E[x₁ẋ₂ − x₂ẋ₁] = 2πλ/Z``.

    Args:
      strength: ``λ ≥ 0``.

    Returns:
      ``2πλ/Z`` as a float.

    Examples:
      >>> from entropix import toys
      >>> round(toys.double_well_angular_velocity(0.5), 4), round(
      ...     toys.double_well_angular_velocity(1.5), 4)
      (0.4121, 1.2363)
    """
    return 2 * math.pi * _check_strength(strength) / double_well_moments().normalizer


def _log_g(s):
    """``E(s) = Φ − r⁴/4`` on the curve ``x₁² = s``, ``x₂² = s(1 − s)``."""
    return (s - 1.0) ** 2 / 4.0 + s * (1.0 - s) / 2.0 - (s * (2.0 - s)) ** 2 / 4.0


def double_well_critical_strength() -> float:
    r"""``λ_c = max_{s ∈ [0,1)} sqrt(1 − s) e^{−E(s)}``: beyond it only the origin is critical.

    The maximum is at ``s = 0``, so ``λ_c = e^{−1/4} = 0.7788…``: the two off-origin critical
    points merge into the origin as ``λ ↑ λ_c``.

    Returns:
      ``λ_c`` as a float.

    Examples:
      >>> import math
      >>> from entropix import toys
      >>> round(toys.double_well_critical_strength(), 6), round(math.exp(-0.25), 6)
      (0.778801, 0.778801)
    """
    s = np.linspace(0.0, 1.0, 200001)[:-1]
    return float(np.max(np.sqrt(1.0 - s) * np.exp(-_log_g(s))))


def double_well_critical_points(strength: float) -> np.ndarray:
    r"""All critical points of ``f`` (``∇f = 0``) of Example 6.43 for rotation strength ``λ``.

    Off the origin they satisfy ``x₂ = λ g x₁`` and ``x₁² = s`` with
    ``2 log λ + 2E(s) = log(1 − s)`` (see the module docstring); every sign change of that
    equation on a fine grid of ``s ∈ (0, 1)`` is refined by bisection to machine precision.

    Args:
      strength: ``λ ≥ 0``.

    Returns:
      A float64 array of shape ``(n, 2)``, sorted by ``x₁``.

    Examples:
      >>> from entropix import toys
      >>> toys.double_well_critical_points(0.0).tolist()
      [[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]
      >>> [[round(v, 4) for v in p] for p in toys.double_well_critical_points(0.5).tolist()]
      [[-0.9024, -0.3888], [0.0, 0.0], [0.9024, 0.3888]]
      >>> toys.double_well_critical_points(1.5).tolist()
      [[0.0, 0.0]]
    """
    lam = _check_strength(strength)
    points = [(0.0, 0.0)]
    if lam == 0.0:
        points += [(-1.0, 0.0), (1.0, 0.0)]
    else:

        def h(s):
            return 2.0 * math.log(lam) + 2.0 * _log_g(s) - np.log1p(-s)

        grid = np.linspace(0.0, 1.0, 4001)[1:-1]
        values = h(grid)
        for i in np.nonzero(np.sign(values[:-1]) != np.sign(values[1:]))[0]:
            lo, hi = grid[i], grid[i + 1]
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                if np.sign(h(mid)) == np.sign(h(lo)):
                    lo = mid
                else:
                    hi = mid
            s = 0.5 * (lo + hi)
            x1 = math.sqrt(s)
            x2 = math.sqrt(s * (1.0 - s))  # x₂ = λ g x₁ has the sign of x₁
            points += [(-x1, -x2), (x1, x2)]
    out = np.array(points, dtype=np.float64)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


class SDEPath(NamedTuple):
    """Output of :func:`simulate_sde`.

    Attributes:
      samples: states recorded every ``record_every`` steps after burn-in, shape
        ``(chains, records, d)``.
      angular_momentum: per-chain time average of ``(x Δxᵀ − Δx xᵀ)/dt`` over all steps after
        burn-in, shape ``(chains, d, d)`` (the estimator of
        :func:`entropix.landscape.angular_momentum`, accumulated online).
      final: the last state of every chain, shape ``(chains, d)``.
    """

    samples: jax.Array
    angular_momentum: jax.Array
    final: jax.Array


def simulate_sde(
    drift: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    key: jax.Array,
    *,
    dt: float,
    num_steps: int,
    temperature: float = 1.0,
    diffusion: jax.Array | None = None,
    burn_in: int = 0,
    record_every: int = 1,
) -> SDEPath:
    r"""Euler–Maruyama chains of ``dX = b(X) dt + sqrt(2 T D) dB``.

    .. math::

      x_{t+1} = x_t + b(x_t)\,dt + \sqrt{2 T\, dt}\; L ξ_t, \qquad L L^\top = D,\ ξ_t ∼ N(0, I).

    Chains run in parallel (``vmap``), steps in a ``lax.scan``; ``burn_in`` steps are run first
    and discarded. The stationary law of the scheme differs from the SDE's by ``O(dt)``.

    Args:
      drift: ``b(x)`` for one state of shape ``(d,)`` (e.g. ``lambda x: -∇f(x)``).
      x0: initial states, shape ``(chains, d)``.
      key: PRNG key.
      dt: time step.
      num_steps: recorded steps after burn-in (a multiple of ``record_every``).
      temperature: ``T = β⁻¹``.
      diffusion: constant ``D`` (``(d, d)``, positive semi-definite); default the identity.
      burn_in: steps run and discarded first.
      record_every: keep every ``record_every``-th state.

    Returns:
      An :class:`SDEPath`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import toys
      >>> path = toys.simulate_sde(lambda x: -x, jnp.zeros((256, 1)), jax.random.key(0),
      ...                          dt=0.05, num_steps=400, burn_in=100, record_every=4)
      >>> path.samples.shape, round(float(jnp.var(path.samples)), 1)    # OU: variance T = 1
      ((256, 100, 1), 1.0)
    """
    x0 = jnp.asarray(x0)
    if x0.ndim != 2:
        raise ValueError(f"`x0` must have shape (chains, d), got shape {x0.shape}.")
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        x0 = x0.astype(jnp.float32)
    dt = float(dt)
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"`dt` must be a positive finite number, got dt={dt!r}.")
    temperature = float(temperature)
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"`temperature` must be >= 0, got temperature={temperature!r}.")
    for name, value, low in (
        ("num_steps", num_steps, 1),
        ("burn_in", burn_in, 0),
        ("record_every", record_every, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"`{name}` must be an int >= {low}, got {name}={value!r}.")
    if num_steps % record_every:
        raise ValueError(
            f"`num_steps` must be a multiple of record_every={record_every}, got {num_steps}."
        )
    d = x0.shape[1]
    if diffusion is None:
        chol = jnp.eye(d, dtype=x0.dtype)
    else:
        diffusion = jnp.asarray(diffusion, x0.dtype)
        if diffusion.shape != (d, d):
            raise ValueError(f"`diffusion` must have shape ({d}, {d}), got {diffusion.shape}.")
        lam, v = jnp.linalg.eigh(0.5 * (diffusion + diffusion.T))
        if bool(jnp.any(lam < -1e-6 * jnp.max(jnp.abs(lam)))):
            raise ValueError("`diffusion` must be positive semi-definite.")
        chol = v * jnp.sqrt(jnp.clip(lam, 0.0, None))
    scale = math.sqrt(2.0 * temperature * dt)
    batched_drift = jax.vmap(drift)
    return _simulate(batched_drift, x0, key, chol, dt, scale, num_steps, burn_in, record_every)


def _simulate(batched_drift, x0, key, chol, dt, scale, num_steps, burn_in, record_every):
    chains, d = x0.shape

    def step(x, k):
        noise = jax.random.normal(k, x.shape, x.dtype) @ chol.T
        return x + batched_drift(x) * dt + scale * noise

    @jax.jit
    def run(x0, key):
        k_burn, k_run = jax.random.split(key)

        def burn(x, k):
            return step(x, k), None

        x = x0
        if burn_in:
            x, _ = jax.lax.scan(burn, x0, jax.random.split(k_burn, burn_in))

        def inner(carry, k):
            x, acc = carry
            x_new = step(x, k)
            outer = jnp.einsum("ci,cj->cij", x, x_new - x)
            return (x_new, acc + outer), None

        def outer_step(carry, keys):
            carry, _ = jax.lax.scan(inner, carry, keys)
            return carry, carry[0]

        keys = jax.random.split(k_run, num_steps)
        keys = keys.reshape((num_steps // record_every, record_every, *keys.shape[1:]))
        acc0 = jnp.zeros((chains, d, d), x0.dtype)
        (x_last, acc), samples = jax.lax.scan(outer_step, (x, acc0), keys)
        acc = acc / (num_steps * dt)
        return jnp.swapaxes(samples, 0, 1), acc - jnp.swapaxes(acc, 1, 2), x_last

    samples, angular, final = run(x0, key)
    return SDEPath(samples=samples, angular_momentum=angular, final=final)


def winding_rate(path: jax.Array, *, dt: float, center: jax.Array | None = None) -> jax.Array:
    r"""Mean angular speed ``dθ/dt`` of 2-D chains around ``center`` (unwrapped polar angle).

    ``(θ_T − θ_0)/(T·dt)`` per chain with ``θ`` unwrapped between consecutive samples; positive
    for counter-clockwise circulation. Samples must be close enough that the angle moves by
    less than ``π`` between them.

    Args:
      path: ``(chains, T, 2)`` samples recorded every ``dt``.
      dt: time between samples.
      center: the point circled (default the origin).

    Returns:
      Per-chain angular speed, shape ``(chains,)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import toys
      >>> t = jnp.linspace(0.0, 4 * jnp.pi, 401)
      >>> circle = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=-1)[None]    # two turns
      >>> [round(v, 4) for v in toys.winding_rate(circle, dt=float(t[1])).tolist()]
      [1.0]
    """
    path = jnp.asarray(path)
    if path.ndim != 3 or path.shape[-1] != 2 or path.shape[1] < 2:
        raise ValueError(f"`path` must have shape (chains, T >= 2, 2), got shape {path.shape}.")
    if center is not None:
        path = path - jnp.asarray(center, path.dtype)
    theta = jnp.arctan2(path[..., 1], path[..., 0])
    steps = jnp.diff(theta, axis=1)
    steps = (steps + jnp.pi) % (2 * jnp.pi) - jnp.pi
    return jnp.sum(steps, axis=1) / ((path.shape[1] - 1) * float(dt))
