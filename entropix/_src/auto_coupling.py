r"""The automatic local-entropy coupling: γ adapted online from what the inner loop sees.

The controller keeps ``γ`` in the optimizer state and, at the end of every outer step, moves it
toward the value whose local-entropy force ``γ (x − μ)`` is a target fraction of the data force
the inner loop feels (see :func:`auto_coupling` for the rule).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from optax._src import base

from entropix._src import common, validation

Params = Any

AUTO = "auto"


class AutoCoupling(NamedTuple):
    """Static hyper-parameters of the automatic coupling; build it with :func:`auto_coupling`.

    Attributes:
      initial: ``γ₀``, the coupling of the first outer step.
      target_ratio: ``ρ₀``, the target of ``‖γ (x − μ)‖ / ḡ`` at the first outer step.
      growth: the target ratio grows as ``ρ_t = ρ₀ (1 + growth)^t`` (scoping).
      max_coupling: ``γ_max``, the cap.
      min_coupling: ``γ_min > 0``, the floor.
      smoothing: ``κ ∈ (0, 1]``, weight of the newest estimate in the geometric average.
      max_factor: ``c > 1``, γ changes by at most a factor ``c`` per outer step.
    """

    initial: float
    target_ratio: float
    growth: float
    max_coupling: float
    min_coupling: float
    smoothing: float
    max_factor: float


class AutoCouplingState(NamedTuple):
    """State of the automatic coupling, held in :class:`entropix.LocalEntropyState`.

    Attributes:
      coupling: ``γ_t``, the coupling of the current outer step (read it with
        :func:`entropix.current_coupling`).
      force_ratio: ``r = γ ‖x − μ‖ / ḡ`` measured at the last completed outer step (0 before
        the first one).
    """

    coupling: jax.Array
    force_ratio: jax.Array


class DirectionNormState(NamedTuple):
    """State of the inner-loop tracker of the automatic coupling (reset every outer step).

    Attributes:
      count: inner steps taken in this outer step.
      direction_norm_sum: ``Σ_k ‖d_k‖`` over them.
    """

    count: jax.Array
    direction_norm_sum: jax.Array


class CouplingController(NamedTuple):
    """An online controller of the coupling γ, threaded through the two-loop driver.

    Attributes:
      init: ``init() -> state``, the state kept in ``LocalEntropyState.coupling_state``.
      coupling: ``coupling(state) -> γ``, the coupling of the current outer step.
      tracker: an optax transformation the rule chains after its inner transformation; it
        passes the inner directions through and records their norms in the inner state.
      update: ``update(state, anchor, average, inner_state, outer_count) -> state`` at the end
        of every outer step (``average`` is the walker average ``μ``).
    """

    init: Callable[[], Any]
    coupling: Callable[[Any], jax.Array]
    tracker: base.GradientTransformation
    update: Callable[[Any, Params, Params, Any, jax.Array], Any]


def auto_coupling(
    *,
    initial: float = 0.03,
    target_ratio: float = 0.5,
    growth: float = 1e-3,
    max_coupling: float = 1.0,
    min_coupling: float = 1e-4,
    smoothing: float = 0.1,
    max_factor: float = 1.1,
) -> AutoCoupling:
    r"""An automatic coupling γ for the local-entropy optimizers (``coupling=auto_coupling()``).

    Chaudhari et al. pick γ by hand so that the local-entropy gradient ``γ (x − μ)`` is
    comparable in magnitude to the SGD gradient, and then scope it up over training. This
    controller does both online, from quantities the inner loop already has. In outer step
    ``t`` the inner loop runs with ``γ_t``; at inner step ``k`` the walker descends the data
    direction ``d_k`` — the gradient ``g_k`` at the walker after weight decay and the inner
    transformation (momentum, clipping), ``d_k = g_k`` for plain SGLD — next to the coupling
    force ``γ_t (x'_k − x_t)``; the loop ends with the anchor ``x_t`` and the walker average
    ``μ_t``. With

    .. math::
      \bar g_t = \frac1L \sum_{k=1}^{L} \lVert d_k \rVert, \qquad
      r_t = \frac{γ_t\, \lVert x_t - μ_t \rVert}{\bar g_t}, \qquad
      ρ_t = ρ_0\, (1 + \mathrm{growth})^t,

    the force ratio ``r_t`` and the target ratio ``ρ_t``, the next coupling is

    .. math::
      γ_{t+1} = \mathrm{clip}\Big(γ_t \cdot
        \mathrm{clip}\big((ρ_t / r_t)^{κ},\ 1/c,\ c\big),\ γ_{\min},\ γ_{\max}\Big).

    **Fixed point.** ``γ_{t+1} = γ_t`` exactly when ``r_t = ρ_t`` (inside the bounds), so the
    rule holds the force at the target fraction of the gradient norm. Writing
    ``γ̂_t = ρ_t \bar g_t / ‖x_t − μ_t‖`` — the coupling that would have given exactly the target
    force with this outer step's displacement — the update reads
    ``log γ_{t+1} = (1 − κ) log γ_t + κ log γ̂_t`` while the factor clip is inactive: a geometric
    running average of ``γ̂`` with weight ``κ`` on the newest value, which filters minibatch
    noise. If ``r ∝ γ^p`` near the fixed point (``p = 1`` for a short inner loop,
    ``η' L γ ≪ 1``, where the displacement hardly depends on γ; ``0 < p < 1`` as the walker
    approaches the proximal point), the error in ``log γ`` shrinks by ``1 − κ p`` per outer step:
    geometric, monotone convergence for every ``κ ∈ (0, 1]``. The factor clip ``c`` bounds the
    change caused by a single outlying outer step. Growth of ``ρ_t`` is the scoping: as the
    target force grows, γ grows and the local entropy tends to the loss itself. Reading ``d_k``
    rather than the raw gradient compares the coupling with the data force the walker actually
    feels: inner momentum scales ``d_k`` and the displacement alike, so ``r`` hardly depends on
    it while the inner loop is short (the raw gradient would inflate ``r`` by up to
    ``1/(1 − β)``), and a transformation chained before the step form or given as
    ``inner_transform`` to the compiled form gives the same γ.

    **Cap and floor.** The ratio ``r`` cannot grow without bound: once the inner loop reaches the
    stationary point of its step, ``d + γ (x' − x) = 0``, the force equals ``‖d‖``, so ``r``
    saturates near 1. A target beyond what the inner loop delivers — ``ρ_t`` grown past it, or a
    walker that does not move (``x = μ``, e.g. no noise at a critical point) — sends ``γ̂`` to
    infinity; ``γ_max`` stops γ there, and keeps the inner step stable: the coupled loss has
    curvature ``h + γ``, and the explicit inner step needs ``η' (h_max + γ) < 2``, so choose
    ``max_coupling < 2/η'``. The floor ``γ_min > 0`` keeps the multiplicative rule away from
    ``γ = 0`` (an absorbing value, where the walker is no longer held near the anchor), e.g. when
    ``ḡ → 0`` at a minimum. A step with ``x = μ`` and ``ḡ > 0`` multiplies γ by ``c``; one with
    ``ḡ = 0`` and ``x ≠ μ`` by ``1/c``; one with both zero or a non-finite value keeps γ.

    Each replica of :func:`entropix.parle` measures its own ``r_t`` and carries its own γ. The
    current γ is in the optimizer state: read it with :func:`entropix.current_coupling`. The
    documentation's conventions page (section "Automatic coupling") says when to use it.

    Args:
      initial: ``γ₀``, the coupling of the first outer step, in ``[min_coupling, max_coupling]``.
      target_ratio: ``ρ₀ > 0``, the target of ``‖γ (x − μ)‖ / ḡ`` at the first outer step.
      growth: ``≥ 0``, relative growth of the target ratio per outer step (``1e-3``: the
        ICLR'17 scoping rate).
      max_coupling: ``γ_max``, finite, the cap (keep it below ``2/η'``).
      min_coupling: ``γ_min > 0``, the floor.
      smoothing: ``κ ∈ (0, 1]``; 1 jumps to ``γ̂`` at once (within the factor clip).
      max_factor: ``c > 1``, largest change factor of γ in one outer step.

    Returns:
      An :class:`AutoCoupling` to pass as ``coupling=`` to :func:`entropix.entropy_sgd`,
      :func:`entropix.entropy_adam`, :func:`entropix.hj`, :func:`entropix.local_entropy` or
      :func:`entropix.parle`. ``coupling="auto"`` means ``auto_coupling()``.

    Raises:
      ValueError: a value out of its range (the message names it and the fix).

    Examples:
      >>> import jax, jax.numpy as jnp, optax, entropix
      >>> coupling = entropix.auto_coupling(
      ...     initial=1.0, target_ratio=0.5, growth=0.0, smoothing=1.0, max_factor=10.0,
      ...     max_coupling=10.0)
      >>> opt = entropix.hj(num_inner_steps=1, sgld_learning_rate=0.1, coupling=coupling)
      >>> params = jnp.ones(2)
      >>> state = opt.init(params)
      >>> for _ in range(3):
      ...   updates, state = opt.update(params, state, params)   # f = ‖w‖²/2, ∇f = w
      ...   params = optax.apply_updates(params, updates)
      >>> round(float(entropix.current_coupling(state)), 4)     # r = γ η' = 0.5 at γ = 5
      5.0
      >>> opt = entropix.entropy_sgd(coupling="auto")   # auto_coupling() with its defaults

    References:
      Chaudhari et al., *Entropy-SGD: Biasing Gradient Descent Into Wide Valleys*, ICLR 2017,
      §4.3 (scoping of γ; γ set so that the local-entropy gradient is comparable to SGD's),
      https://arxiv.org/abs/1611.01838.
    """
    max_coupling = validation.check_positive_finite("max_coupling", max_coupling)
    min_coupling = validation.check_positive_finite("min_coupling", min_coupling)
    validation.check_ordered("min_coupling", min_coupling, "max_coupling", max_coupling)
    initial = validation.check_positive_finite("initial", initial)
    validation.check_ordered("min_coupling", min_coupling, "initial", initial)
    validation.check_ordered("initial", initial, "max_coupling", max_coupling)
    return AutoCoupling(
        initial=initial,
        target_ratio=validation.check_positive_finite("target_ratio", target_ratio),
        growth=validation.check_non_negative_finite("growth", growth),
        max_coupling=max_coupling,
        min_coupling=min_coupling,
        smoothing=validation.check_fraction("smoothing", smoothing),
        max_factor=validation.check_greater_than_one("max_factor", max_factor),
    )


def controller_for(coupling: Any) -> CouplingController | None:
    """The controller of an automatic ``coupling``, or None for a number or a schedule.

    Raises:
      ValueError, TypeError: ``coupling`` is neither a number, a schedule, ``"auto"`` nor an
        :class:`AutoCoupling`.
    """
    if isinstance(coupling, AutoCoupling):
        return controller(coupling)
    if isinstance(coupling, str) and coupling == AUTO:
        return controller(auto_coupling())
    validation.check_scalar_or_schedule(
        "coupling", coupling, also='"auto" or entropix.auto_coupling(...)'
    )
    return None


def reject_auto(coupling: Any, reason: str) -> None:
    """Raises ``ValueError`` for an automatic ``coupling`` where none is defined."""
    if isinstance(coupling, AutoCoupling) or (isinstance(coupling, str) and coupling == AUTO):
        raise ValueError(f"coupling={coupling!r} is not supported here: {reason}")


def _norm(tree: Params, dtype: Any) -> jax.Array:
    """The global Euclidean norm of ``tree``'s leaves, accumulated in ``dtype``."""
    squares = [jnp.sum(jnp.square(leaf.astype(dtype))) for leaf in jax.tree.leaves(tree)]
    return jnp.sqrt(sum(squares, jnp.zeros([], dtype)))


def next_coupling(
    settings: AutoCoupling,
    coupling: jax.Array,
    displacement_norm: jax.Array,
    mean_direction_norm: jax.Array,
    outer_count: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """``(γ_{t+1}, r_t)`` from ``γ_t``, ``‖x_t − μ_t‖``, ``ḡ_t`` and ``t`` (:func:`auto_coupling`).

    Computed in logarithms:
    ``log(ρ_t / r_t) = log ρ₀ + t log(1 + growth) + log ḡ − log(γ ‖x − μ‖)``.
    """
    dtype = coupling.dtype
    log_target = math.log(settings.target_ratio) + outer_count.astype(dtype) * math.log1p(
        settings.growth
    )
    log_force = jnp.log(coupling) + jnp.log(displacement_norm)
    log_error = log_target + jnp.log(mean_direction_norm) - log_force
    bound = math.log(settings.max_factor)
    log_factor = jnp.clip(settings.smoothing * log_error, -bound, bound)
    # 0/0 (no gradient and no displacement) or a non-finite input: keep γ.
    log_factor = jnp.where(jnp.isnan(log_factor), 0.0, log_factor).astype(dtype)
    new = jnp.clip(coupling * jnp.exp(log_factor), settings.min_coupling, settings.max_coupling)
    force_ratio = coupling * displacement_norm / mean_direction_norm
    return new.astype(dtype), jnp.where(jnp.isnan(force_ratio), 0.0, force_ratio).astype(dtype)


def _direction_norm_tracker() -> base.GradientTransformation:
    """Passes the inner directions through and sums their norms (:class:`DirectionNormState`)."""

    def init_fn(params):
        del params
        return DirectionNormState(jnp.zeros([], jnp.int32), jnp.zeros([], common.float_dtype()))

    def update_fn(updates, state, params=None):
        del params
        total = state.direction_norm_sum + _norm(updates, state.direction_norm_sum.dtype)
        return updates, DirectionNormState(state.count + 1, total)

    return base.GradientTransformation(init_fn, update_fn)


def controller(settings: AutoCoupling) -> CouplingController:
    """The :class:`CouplingController` of an :class:`AutoCoupling`."""

    def init():
        dtype = common.float_dtype()
        return AutoCouplingState(jnp.asarray(settings.initial, dtype), jnp.zeros([], dtype))

    def coupling(state):
        return state.coupling

    def update(state, anchor, average, inner_state, outer_count):
        dtype = state.coupling.dtype
        (tracked,) = common.find_states(
            inner_state, lambda node: isinstance(node, DirectionNormState)
        )
        displacement = _norm(jax.tree.map(jnp.subtract, anchor, average), dtype)
        mean_direction_norm = tracked.direction_norm_sum.astype(dtype) / tracked.count
        new, force_ratio = next_coupling(
            settings, state.coupling, displacement, mean_direction_norm, outer_count
        )
        return AutoCouplingState(new, force_ratio)

    return CouplingController(init, coupling, _direction_norm_tracker(), update)


def current_coupling(state: base.OptState) -> jax.Array:
    """The coupling γ of the current outer step of an optimizer built with an automatic coupling.

    ``state`` may be nested in any optax pipeline (``chain``, ``inject_hyperparams``,
    ``MultiSteps``, ...). Under ``jax.vmap`` (Parle's replicas) the result has one γ per replica.
    The force ratio of the last outer step is next to it:
    ``optax.tree_utils.tree_get(state, "force_ratio")``.

    Args:
      state: an optimizer state containing an :class:`AutoCouplingState`.

    Returns:
      A float scalar (an array of one per replica under a replica ``vmap``).

    Raises:
      ValueError: ``state`` holds no automatic coupling (the optimizer's coupling is fixed).

    Examples:
      >>> import jax.numpy as jnp, entropix
      >>> opt = entropix.entropy_sgd(coupling=entropix.auto_coupling(initial=0.05))
      >>> entropix.current_coupling(opt.init(jnp.zeros(3)))
      Array(0.05, dtype=float32)
    """
    found = common.find_states(state, lambda node: isinstance(node, AutoCouplingState))
    if not found:
        raise ValueError(
            "No automatic coupling in `state`: the optimizer was built with a fixed coupling "
            "(evaluate it at entropix.outer_step_count(state)); build it with coupling='auto' "
            "or coupling=entropix.auto_coupling(...) to adapt it."
        )
    return found[0].coupling
