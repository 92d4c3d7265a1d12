r"""Gaussian-mixture landscapes with exact local entropy in any dimension.

The loss is minus the (tempered) log-density of an isotropic Gaussian mixture,

.. math::
  f(y) = -\frac1β \log \sum_i w_i\, \mathcal N(y; μ_i, s_i^2 I),

so every well ``i`` has depth ``∝ log w_i − d log s_i`` and width ``s_i``. Because Gaussian
convolution of a Gaussian is Gaussian, the local entropy is exact: with the coupling
``γ_c = 1/γ_thesis`` (docs/conventions.md) the smoothing variance is ``1/(β γ_c)`` and

.. math::
  f_γ(x) = -\frac1β \log \sum_i w_i\, \mathcal N\big(x; μ_i, (s_i^2 + \tfrac{1}{βγ_c}) I\big),
  \qquad ⟨y⟩ = \sum_i π_i m_i, \qquad ∇f_γ(x) = γ_c (x - ⟨y⟩),

with ``π_i ∝ w_i N(x; μ_i, (s_i² + 1/(βγ_c)) I)`` and
``m_i = (μ_i/s_i² + βγ_c x)/(1/s_i² + βγ_c)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

__all__ = [
    "GaussianMixture",
    "mixture_crossover_coupling",
    "mixture_local_entropy",
    "mixture_local_entropy_grad",
    "mixture_local_mean",
    "mixture_loss",
    "wide_vs_sharp_crossover",
    "wide_vs_sharp_mixture",
]


class GaussianMixture(NamedTuple):
    """An isotropic Gaussian mixture defining the landscape.

    Attributes:
      weights: mixture weights ``w_i`` (positive, shape ``(k,)``; need not sum to one).
      means: well centres ``μ_i``, shape ``(k, d)``.
      scales: well widths (standard deviations) ``s_i > 0``, shape ``(k,)``.
    """

    weights: jax.Array
    means: jax.Array
    scales: jax.Array


def _log_components(x: jax.Array, mixture: GaussianMixture, extra_var) -> jax.Array:
    """``log w_i + log N(x; μ_i, (s_i² + extra_var) I)`` for every component, shape ``(k,)``."""
    d = mixture.means.shape[-1]
    var = mixture.scales**2 + extra_var
    sq = jnp.sum((x[None, :] - mixture.means) ** 2, axis=-1)
    return jnp.log(mixture.weights) - 0.5 * d * jnp.log(2.0 * jnp.pi * var) - 0.5 * sq / var


def mixture_loss(
    x: jax.Array, mixture: GaussianMixture, beta: float | jax.Array = 1.0
) -> jax.Array:
    r"""``f(x) = −β⁻¹ log Σ_i w_i N(x; μ_i, s_i² I)``.

    Args:
      x: point, shape ``(d,)``.
      mixture: the landscape.
      beta: inverse temperature ``β`` (scales the loss).

    Returns:
      Scalar loss.

    Examples:
      >>> import jax.numpy as jnp
      >>> m = wide_vs_sharp_mixture()
      >>> bool(mixture_loss(jnp.array([2.0]), m) < mixture_loss(jnp.array([-2.0]), m))
      True
    """
    return -logsumexp(_log_components(x, mixture, 0.0)) / beta


def mixture_local_entropy(
    x: jax.Array,
    mixture: GaussianMixture,
    coupling: float | jax.Array,
    beta: float | jax.Array = 1.0,
) -> jax.Array:
    r"""Exact local entropy ``f_γ(x) = −β⁻¹ log Σ_i w_i N(x; μ_i, (s_i² + 1/(βγ_c)) I)``.

    Normalized heat kernel (thesis eq. 4.11); semigroup:
    ``(f_{γ_1})_{γ_2} = f_γ`` with ``1/γ = 1/γ_1 + 1/γ_2``.

    Args:
      x: point ``(d,)``.
      mixture: the landscape (its loss must be built with the same ``β``).
      coupling: ``γ_c > 0``.
      beta: inverse temperature.

    Returns:
      Scalar ``f_γ(x)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> m = wide_vs_sharp_mixture()
      >>> fg = mixture_local_entropy(jnp.array([-2.0]), m, coupling=1.0)

    References:
      P. Chaudhari, *A picture of the energy landscape of deep neural networks*, PhD thesis,
      UCLA 2018, eq. 4.11 and Lemma 4.1 (local entropy as Gaussian smoothing).
    """
    return -logsumexp(_log_components(x, mixture, 1.0 / (beta * coupling))) / beta


def mixture_local_mean(
    x: jax.Array,
    mixture: GaussianMixture,
    coupling: float | jax.Array,
    beta: float | jax.Array = 1.0,
) -> jax.Array:
    r"""Mean ``⟨y⟩`` of ``ρ(y; x) ∝ exp(−β f(y) − β γ_c|x − y|²/2)`` in closed form.

    ``⟨y⟩ = Σ_i π_i m_i`` with ``π_i ∝ w_i N(x; μ_i, (s_i² + 1/(βγ_c)) I)`` and
    ``m_i = (μ_i/s_i² + βγ_c x)/(1/s_i² + βγ_c)``: the target of Entropy-SGD's inner loop.

    Args:
      x: anchor ``(d,)``.
      mixture: the landscape.
      coupling: ``γ_c``.
      beta: inverse temperature.

    Returns:
      ``⟨y⟩``, shape ``(d,)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> y = mixture_local_mean(jnp.array([0.0]), wide_vs_sharp_mixture(), 1.0)
    """
    bg = beta * coupling
    logp = _log_components(x, mixture, 1.0 / bg)
    pi = jax.nn.softmax(logp)
    prec = 1.0 / mixture.scales**2
    m = (mixture.means * prec[:, None] + bg * x[None, :]) / (prec + bg)[:, None]
    return pi @ m


def mixture_local_entropy_grad(
    x: jax.Array,
    mixture: GaussianMixture,
    coupling: float | jax.Array,
    beta: float | jax.Array = 1.0,
) -> jax.Array:
    r"""``∇f_γ(x) = γ_c (x − ⟨y⟩)`` in closed form (equals ``jax.grad`` of the local entropy).

    Args:
      x: point ``(d,)``.
      mixture: the landscape.
      coupling: ``γ_c``.
      beta: inverse temperature.

    Returns:
      The gradient, shape ``(d,)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> g = mixture_local_entropy_grad(jnp.array([0.0]), wide_vs_sharp_mixture(), 1.0)
    """
    return coupling * (x - mixture_local_mean(x, mixture, coupling, beta))


def wide_vs_sharp_mixture(
    *,
    dim: int = 1,
    sharp_weight: float = 0.3,
    sharp_scale: float = 0.05,
    sharp_center: float = 2.0,
    wide_weight: float = 0.7,
    wide_scale: float = 0.5,
    wide_center: float = -2.0,
    dtype=None,
) -> GaussianMixture:
    r"""The wide-vs-sharp landscape: a deep narrow well and a shallow wide one.

    Component 0 is the sharp well (global minimum of ``f``), component 1 the wide one; centres
    are ``(c, 0, …, 0)``. Defaults: weights ``(0.3, 0.7)``, widths
    ``(0.05, 0.5)``, centres ``±2``; the local entropy prefers the wide well for couplings below
    :func:`wide_vs_sharp_crossover` (``γ_c β < 18.8``, i.e. ``γ_thesis/β > 0.053``).

    Args:
      dim: dimension ``d``.
      sharp_weight: ``w_s``.
      sharp_scale: ``s_s``.
      sharp_center: first coordinate of ``μ_s``.
      wide_weight: ``w_w``.
      wide_scale: ``s_w``.
      wide_center: first coordinate of ``μ_w``.
      dtype: optional floating dtype of the arrays.

    Returns:
      A :class:`GaussianMixture`.

    Examples:
      >>> m = wide_vs_sharp_mixture()
      >>> m.means.shape
      (2, 1)
    """
    means = jnp.zeros((2, dim), dtype=dtype)
    means = means.at[0, 0].set(sharp_center).at[1, 0].set(wide_center)
    return GaussianMixture(
        weights=jnp.asarray([sharp_weight, wide_weight], dtype=dtype),
        means=means,
        scales=jnp.asarray([sharp_scale, wide_scale], dtype=dtype),
    )


def wide_vs_sharp_crossover(
    *,
    sharp_weight: float = 0.3,
    sharp_scale: float = 0.05,
    wide_weight: float = 0.7,
    wide_scale: float = 0.5,
    beta: float = 1.0,
    dim: int = 1,
) -> float:
    r"""Coupling below which the local entropy prefers the wide well (well-separated wells).

    Comparing the smoothed wells at their centres (cross terms between well-separated
    components neglected), the wide well has the lower ``f_γ`` iff

    .. math::
      w_w^{2/d} (s_s^2 + t) > w_s^{2/d} (s_w^2 + t),
      \qquad t = \frac{1}{β γ_c} = \frac{γ_{thesis}}{β},

    i.e. ``t > t^* = (r s_w² − s_s²)/(1 − r)`` with ``r = (w_s/w_w)^{2/d}``, i.e.
    ``γ_c < γ_c^* = 1/(β t^*)``. Defaults: ``t^* = 0.05319``, ``γ_c^* = 18.80/β``.

    Args:
      sharp_weight: ``w_s``.
      sharp_scale: ``s_s``.
      wide_weight: ``w_w``.
      wide_scale: ``s_w``.
      beta: inverse temperature ``β``.
      dim: dimension ``d``.

    Returns:
      ``γ_c^*`` (``inf`` if the wide well is preferred even without smoothing, ``0.0`` if it is
      never preferred).

    Examples:
      >>> round(wide_vs_sharp_crossover(), 2)
      18.8

    References:
      Entropy-SGD (Chaudhari et al., ICLR 2017) Fig. 2 / thesis Fig. 3.2 for the picture.
    """
    r = (sharp_weight / wide_weight) ** (2.0 / dim)
    if r >= 1.0:
        return 0.0
    t_star = (r * wide_scale**2 - sharp_scale**2) / (1.0 - r)
    if t_star <= 0.0:
        return math.inf
    return 1.0 / (beta * t_star)


def mixture_crossover_coupling(
    mixture: GaussianMixture,
    *,
    beta: float = 1.0,
    sharp: int = 0,
    wide: int = 1,
    bounds: tuple[float, float] = (1e-3, 1e3),
    num_points: int = 3001,
    rtol: float = 1e-4,
) -> float:
    r"""Exact coupling at which the global minimum of ``f_γ`` moves from the sharp to the wide well.

    Unlike :func:`wide_vs_sharp_crossover` (well-separated approximation) this uses the exact
    :func:`mixture_local_entropy` on the line through the two well centres (which contains every
    critical point of a two-component isotropic mixture): the global minimizer of ``f_γ`` is
    assigned to the well on whose side of the barrier of ``f`` (the maximum of ``f`` between the
    centres) it lies, and the switching coupling is found by bisection in ``log γ_c``. Wells that
    overlap (a sharp well on the flank of a wide one) merge under smoothing; the switch is then
    where the minimizer of ``f_γ`` crosses the barrier of ``f``.

    Args:
      mixture: the landscape.
      beta: inverse temperature ``β``.
      sharp: index of the sharp component (the global minimum of ``f``).
      wide: index of the wide component.
      bounds: ``(weak, strong)`` couplings bracketing the switch.
      num_points: points on the line (from ``1.5`` well distances beyond each centre).
      rtol: relative tolerance of the bisection.

    Returns:
      ``γ_c^*``: ``f_γ`` prefers the wide well for ``γ_c < γ_c^*`` and the sharp one above.

    Raises:
      ValueError: if the preference does not switch inside ``bounds``.

    Examples:
      >>> round(mixture_crossover_coupling(wide_vs_sharp_mixture()), 1)  # formula: 18.80
      18.8
    """
    mu_s, mu_w = mixture.means[sharp], mixture.means[wide]
    s = jnp.linspace(-1.5, 2.5, num_points)  # 0: wide centre, 1: sharp centre
    line = mu_w[None, :] + s[:, None] * (mu_s - mu_w)[None, :]
    f_line = np.asarray(jax.vmap(lambda x: mixture_loss(x, mixture, beta))(line))
    between = (np.asarray(s) > 0.0) & (np.asarray(s) < 1.0)
    barrier = float(np.asarray(s)[between][np.argmax(f_line[between])])
    smoothed = jax.jit(
        jax.vmap(lambda x, c: mixture_local_entropy(x, mixture, c, beta), in_axes=(0, None))
    )

    def prefers_sharp(c: float) -> bool:
        return float(s[jnp.argmin(smoothed(line, c))]) > barrier

    lo, hi = float(np.log(bounds[0])), float(np.log(bounds[1]))
    if prefers_sharp(np.exp(lo)) or not prefers_sharp(np.exp(hi)):
        raise ValueError(
            f"the preferred well does not switch from wide to sharp between couplings "
            f"{bounds}; widen `bounds`."
        )
    while hi - lo > rtol:
        mid = 0.5 * (lo + hi)
        if prefers_sharp(float(np.exp(mid))):
            hi = mid
        else:
            lo = mid
    return float(np.exp(0.5 * (lo + hi)))
