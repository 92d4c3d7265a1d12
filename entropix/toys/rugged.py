"""Rugged low-dimensional landscapes and their exact smoothings on a grid.

Conventions (docs/conventions.md): ``coupling`` is the local-entropy coupling strength
``γ_c = 1/γ_thesis``; the smoothing "time" of the thesis's PDEs is ``t = 1/γ_c``. Small couplings
mean more smoothing.

* Viscous local entropy (thesis eq. 4.11, normalized Gaussian kernel of variance ``1/(β γ_c)``)

  .. math::
    f_γ(x) = -\\frac1β \\log \\int G_{1/(βγ_c)}(x - y)\\, e^{-β f(y)}\\, dy,

  computed by quadrature on a uniform grid with ``logsumexp`` (any number of dimensions: the
  kernel is a product, so the transform is applied one axis at a time).
* Non-viscous Hamilton–Jacobi solution = Hopf–Lax formula = Moreau envelope (eq. 4.16)

  .. math::
    u(x) = \\min_y f(y) + \\frac{γ_c}{2} |x - y|^2,

  computed exactly on the grid (min over grid points, separable over axes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

__all__ = [
    "grid_local_entropy",
    "grid_local_mean",
    "grid_local_minima",
    "grid_moreau_envelope",
    "grid_prox",
    "moreau_gradient_fixed_point",
    "rugged",
    "rugged_1d",
    "rugged_bowl",
]


def rugged_1d(x: jax.Array) -> jax.Array:
    r"""The 1-D rugged test function ``x²/10 + 0.8 sin 3x + 0.3 sin(7x + 1)``.

    On ``[−6, 6]`` it has 10 local minima; the global one is at ``x ≈ −0.415``
    (value ``≈ −0.905``); ``sup f'' ≈ 21.49``. Elementwise.

    Args:
      x: array of any shape.

    Returns:
      ``f(x)`` elementwise.

    Examples:
      >>> float(rugged_1d(0.0))
      0.2524...

    References:
      An analogue of thesis Fig. 4.1 (the thesis does not print its function); ``sup f''``
      enters the semi-concavity bound of thesis Lemma 4.17.
    """
    return x**2 / 10.0 + 0.8 * jnp.sin(3.0 * x) + 0.3 * jnp.sin(7.0 * x + 1.0)


def rugged(x: jax.Array) -> jax.Array:
    r"""Separable rugged landscape in ``d`` dimensions, ``Σ_i rugged_1d(x_i)``.

    With ``d = 2`` this is the 2-D rugged function: ``10^d`` local minima on ``[−6, 6]^d``,
    global minimum at ``(−0.415, …)``.

    Args:
      x: array of shape ``(..., d)``.

    Returns:
      The loss, shape ``(...)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(rugged(jnp.array([0.0, 0.0])))
      0.5048...
    """
    return jnp.sum(rugged_1d(x), axis=-1)


def rugged_bowl(x: jax.Array) -> jax.Array:
    r"""Rugged bowl ``Σ_i x_i²/2 + ½(1 − cos 10 x_i)`` (global minimum 0 at the origin).

    A test landscape where gradient descent started far away gets stuck in a local minimum
    while local-entropy methods reach much lower loss.

    Args:
      x: array of shape ``(..., d)``.

    Returns:
      The loss, shape ``(...)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(rugged_bowl(jnp.zeros(10)))
      0.0
    """
    return jnp.sum(x**2 / 2.0 + 0.5 * (1.0 - jnp.cos(10.0 * x)), axis=-1)


def _as_grids(grid: jax.Array | Sequence[jax.Array], ndim: int) -> list[jax.Array]:
    if ndim == 1 and not isinstance(grid, (list, tuple)):
        return [jnp.asarray(grid)]
    if not isinstance(grid, (list, tuple)) or len(grid) != ndim:
        raise ValueError(
            f"`grid` must be a sequence of {ndim} 1-D axis grids for {ndim}-D `values`, "
            f"got {type(grid).__name__}."
        )
    return [jnp.asarray(g) for g in grid]


def _targets(points, grids: list[jax.Array]) -> list[jax.Array]:
    if points is None:
        return grids
    if len(grids) != 1:
        raise ValueError("`points` is only supported for 1-D `values`.")
    return [jnp.asarray(points)]


def _check_coupling(coupling) -> None:
    if not isinstance(coupling, jax.core.Tracer) and np.ndim(coupling) == 0:
        if not float(coupling) > 0:
            raise ValueError(f"`coupling` must be positive, got {coupling!r}.")


def grid_local_entropy(
    values: jax.Array,
    grid: jax.Array | Sequence[jax.Array],
    coupling: float | jax.Array,
    beta: float | jax.Array = 1.0,
    *,
    points: jax.Array | None = None,
) -> jax.Array:
    r"""Viscous local entropy ``f_γ`` of gridded values by quadrature (thesis eq. 4.11).

    .. math::
      f_γ(x_j) = -\frac1β \log \sum_k Δ\, G_{1/(βγ_c)}(x_j - y_k)\, e^{-β f(y_k)},
      \qquad G_s(z) = (2π s)^{-1/2} e^{-z^2/(2s)},

    evaluated at the grid points themselves (or, in 1-D, at arbitrary ``points``), in ``d``
    dimensions axis by axis (the kernel is a product). Uses the normalized heat kernel, so
    ``f_γ → f`` as ``γ_c → ∞`` (no ``(d/2) log(2π/γ_c)`` offset). Equals the viscous HJ
    solution ``u(x, 1/γ_c)`` (Cole–Hopf). Values near the grid boundary are affected by
    truncation of the integral: use a grid wider than the region of interest by a few kernel
    widths ``(βγ_c)^{−1/2}``.

    Args:
      values: ``f`` on a uniform grid, shape ``(n_1, …, n_d)``.
      grid: the 1-D grid (``d = 1``) or a sequence of ``d`` axis grids (uniform spacing).
      coupling: local-entropy coupling ``γ_c > 0`` (thesis ``γ = 1/γ_c``).
      beta: inverse temperature ``β > 0``.
      points: 1-D only: evaluate at these points instead of the grid (e.g. a coarse set of
        points with a fine quadrature grid).

    Returns:
      ``f_γ`` on the same grid (or at ``points``).

    Examples:
      >>> import jax.numpy as jnp
      >>> y = jnp.linspace(-8.0, 8.0, 1601)
      >>> fg = grid_local_entropy(rugged_1d(y), y, coupling=1.0)

    References:
      Chaudhari, PhD thesis 2018, eq. 4.11 and Lemma 4.1; Chaudhari et al., *Deep relaxation:
      partial differential equations for optimizing deep neural networks*, 2018.
    """
    _check_coupling(coupling)
    values = jnp.asarray(values)
    grids = _as_grids(grid, values.ndim)
    var = 1.0 / (beta * coupling)
    logv = -beta * values
    targets = _targets(points, grids)
    for axis, (g, x) in enumerate(zip(grids, targets, strict=True)):
        dx = g[1] - g[0]
        logk = (
            -((x[:, None] - g[None, :]) ** 2) / (2.0 * var)
            - 0.5 * jnp.log(2.0 * jnp.pi * var)
            + jnp.log(dx)
        )
        moved = jnp.moveaxis(logv, axis, -1)  # (..., n_k)
        out = logsumexp(logk + moved[..., None, :], axis=-1)  # (..., n_j)
        logv = jnp.moveaxis(out, -1, axis)
    return -logv / beta


def grid_local_mean(
    values: jax.Array,
    grid: jax.Array,
    coupling: float | jax.Array,
    beta: float | jax.Array = 1.0,
    *,
    points: jax.Array | None = None,
) -> jax.Array:
    r"""Mean ``⟨y⟩`` of the local Gibbs measure on a 1-D grid (thesis eq. 4.12).

    .. math::
      ρ(y; x) ∝ e^{-β f(y) - β γ_c (x - y)^2 / 2}, \qquad ∇f_γ(x) = γ_c (x - ⟨y⟩),

    the identity that Entropy-SGD's inner SGLD loop estimates (independent of ``β``).

    Args:
      values: ``f`` on the uniform 1-D grid, shape ``(n,)``.
      grid: the grid, shape ``(n,)``.
      coupling: coupling ``γ_c > 0``.
      beta: inverse temperature ``β > 0``.
      points: evaluate at these anchors ``x`` instead of the grid points.

    Returns:
      ``⟨y⟩`` at every grid point (or at ``points``).

    Examples:
      >>> import jax.numpy as jnp
      >>> y = jnp.linspace(-8.0, 8.0, 801)
      >>> grad = 1.0 * (y - grid_local_mean(rugged_1d(y), y, coupling=1.0))
    """
    _check_coupling(coupling)
    x = grid if points is None else jnp.asarray(points)
    logw = -beta * values[None, :] - 0.5 * beta * coupling * (x[:, None] - grid[None, :]) ** 2
    w = jax.nn.softmax(logw, axis=-1)
    return w @ grid


def grid_moreau_envelope(
    values: jax.Array,
    grid: jax.Array | Sequence[jax.Array],
    coupling: float | jax.Array,
    *,
    points: jax.Array | None = None,
) -> jax.Array:
    r"""Hopf–Lax / Moreau envelope of gridded values (non-viscous HJ, thesis eq. 4.16).

    .. math::
      u(x_j) = \min_k f(y_k) + \frac{γ_c}{2} |x_j - y_k|^2,

    exact over the grid points (``d`` dimensions axis by axis, since the quadratic is
    separable). It preserves the minimum value and the global minimizers of ``f`` and is the
    ``β → ∞`` limit of :func:`grid_local_entropy`.

    Args:
      values: ``f`` on a grid, shape ``(n_1, …, n_d)``.
      grid: the 1-D grid or a sequence of ``d`` axis grids.
      coupling: coupling ``γ_c > 0`` (HJ time ``t = 1/γ_c``).
      points: 1-D only: evaluate at these points instead of the grid. Evaluating on a coarser
        set than the grid avoids the artificial curvature ``γ_c`` of the discrete envelope
        between grid points (needed for second differences).

    Returns:
      ``u`` on the same grid (or at ``points``).

    Examples:
      >>> import jax.numpy as jnp
      >>> y = jnp.linspace(-6.0, 6.0, 1201)
      >>> u = grid_moreau_envelope(rugged_1d(y), y, coupling=1.0)

    References:
      Chaudhari, PhD thesis 2018, §4.2.2 (eqs. 4.15–4.18); R. T. Rockafellar, *Monotone
      operators and the proximal point algorithm*, 1976.
    """
    _check_coupling(coupling)
    u = jnp.asarray(values)
    grids = _as_grids(grid, u.ndim)
    for axis, (g, x) in enumerate(zip(grids, _targets(points, grids), strict=True)):
        quad = 0.5 * coupling * (x[:, None] - g[None, :]) ** 2
        moved = jnp.moveaxis(u, axis, -1)
        out = jnp.min(quad + moved[..., None, :], axis=-1)
        u = jnp.moveaxis(out, -1, axis)
    return u


def grid_prox(
    values: jax.Array,
    grid: jax.Array,
    coupling: float | jax.Array,
    *,
    points: jax.Array | None = None,
) -> jax.Array:
    r"""Proximal operator on a 1-D grid, ``prox(x_j) = argmin_k f(y_k) + γ_c (x_j − y_k)²/2``.

    ``γ_c (x − prox(x)) = ∇u(x)`` (thesis eq. 4.18) wherever the argmin is unique.

    Args:
      values: ``f`` on the grid, shape ``(n,)``.
      grid: the grid, shape ``(n,)``.
      coupling: coupling ``γ_c > 0``.
      points: evaluate at these points instead of the grid points.

    Returns:
      The grid point minimizing the proximal objective, for every grid point (or point).

    Examples:
      >>> import jax.numpy as jnp
      >>> y = jnp.linspace(-3.0, 3.0, 601)
      >>> p = grid_prox(jnp.abs(y), y, coupling=2.0)  # soft thresholding by 1/2
    """
    _check_coupling(coupling)
    x = grid if points is None else jnp.asarray(points)
    obj = values[None, :] + 0.5 * coupling * (x[:, None] - grid[None, :]) ** 2
    return grid[jnp.argmin(obj, axis=-1)]


def grid_local_minima(values, grid=None) -> np.ndarray:
    """Strict interior local minima of 1-D gridded values (NumPy; not jittable).

    Args:
      values: values on a 1-D grid, shape ``(n,)``.
      grid: optional grid; if given, positions are returned instead of indices.

    Returns:
      Sorted array of the positions (or indices) of the points strictly lower than both
      neighbours.

    Examples:
      >>> import numpy as np
      >>> y = np.linspace(-6.0, 6.0, 2401)
      >>> len(grid_local_minima(np.asarray(rugged_1d(y)), y))
      10
    """
    v = np.asarray(values)
    idx = np.nonzero((v[1:-1] < v[:-2]) & (v[1:-1] < v[2:]))[0] + 1
    return idx if grid is None else np.asarray(grid)[idx]


def moreau_gradient_fixed_point(
    grad_fn: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    coupling: float | jax.Array,
    *,
    step_size: float = 1.0,
    num_steps: int = 200,
) -> jax.Array:
    r"""Gradient ``p = ∇u(x, t)`` of the Moreau envelope by the dynamics of thesis Lemma 4.3.

    Iterates (``t = 1/γ_c``)

    .. math::
      p \leftarrow p - δ\, t\, \big(p - ∇f(x - t p)\big),

    whose fixed point ``p = ∇f(x − t p) = γ_c(x − prox(x))`` is unique and attracting when
    ``y ↦ f(y) + γ_c|x − y|²/2`` is convex (``f'' > −γ_c``); contraction rate ``t + t² min f''``.

    Args:
      grad_fn: ``∇f``.
      x: the point.
      coupling: coupling ``γ_c > 0``.
      step_size: ``δ``.
      num_steps: number of iterations (static).

    Returns:
      ``p`` after ``num_steps`` iterations, starting from ``p = 0``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> f = lambda y: -jnp.cos(y) + 0.15 * y**2
      >>> float(moreau_gradient_fixed_point(jax.grad(f), jnp.asarray(1.0), 2.0))
      0.7645...

    References:
      Chaudhari, PhD thesis 2018, Lemma 4.3 (eq. 4.19) and eq. 4.35.
    """
    t = 1.0 / coupling
    x = jnp.asarray(x)

    def body(_, p):
        return p - step_size * t * (p - grad_fn(x - t * p))

    return jax.lax.fori_loop(0, num_steps, body, jnp.zeros_like(x))
