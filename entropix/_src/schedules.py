"""Scoping schedules for the coupling strength γ and conversions between conventions.

entropix stores γ as a *coupling strength* (ICLR'17 convention): the inner loop feels
``∇f(x') + γ (x' − x)`` and scoping *increases* γ, from a very smooth local entropy (small γ)
towards the original loss (γ → ∞). The thesis writes γ as a variance; convert its values with
:func:`coupling_from_variance`.

Every schedule here is an ``optax.Schedule`` evaluated at the *outer-step* count, which is how
the local-entropy and replica optimizers call it.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax
from optax._src import base

from entropix._src import validation


def coupling_from_variance(variance: float) -> float:
    """Converts a thesis-convention γ (a variance) to a coupling strength, ``1/γ``.

    Args:
      variance: the thesis γ (or Parle's ρ), a positive number.

    Returns:
      The coupling strength used by every entropix argument named ``coupling``.

    Examples:
      >>> import entropix
      >>> entropix.coupling_from_variance(1e4)  # thesis MNIST γ = 10⁴ ↔ ICLR γ = 10⁻⁴
      0.0001
    """
    validation.check_positive("variance", variance)
    return 1.0 / variance


def average_weight_from_thesis_alpha(thesis_alpha: float) -> float:
    """Converts the thesis' averaging parameter (weight of the *old* average) to ours.

    The thesis writes ``z ← α z + (1 − α) y``; entropix writes ``μ ← (1 − α) μ + α x'`` with α the
    weight of the *newest* sample, so ``α_ours = 1 − α_thesis`` (thesis 0.25 ↔ ours 0.75).

    Args:
      thesis_alpha: weight of the old average, in [0, 1].

    Returns:
      ``1 - thesis_alpha``, the ``average_weight`` argument of the entropix optimizers.
    """
    validation.check_unit_interval("thesis_alpha", thesis_alpha)
    return 1.0 - thesis_alpha


def exponential_scoping(
    initial_coupling: float,
    growth_rate: float,
    *,
    max_coupling: float | None = None,
) -> base.Schedule:
    r"""Exponential scoping ``γ_t = γ₀ (1 + γ₁)^t``, optionally clipped at ``max_coupling``.

    This is the ICLR'17 law (MNIST: ``γ₀ = 10⁻⁴, γ₁ = 10⁻³``; CIFAR-10: ``γ₀ = 0.03, γ₁ = 10⁻³``),
    with ``t`` the outer-step (parameter update) index.

    Args:
      initial_coupling: ``γ₀ > 0``.
      growth_rate: ``γ₁ ≥ 0``, relative growth per outer step.
      max_coupling: optional upper clip.

    Returns:
      An ``optax.Schedule`` of the outer-step count.

    Examples:
      >>> import entropix
      >>> schedule = entropix.exponential_scoping(1e-4, 1e-3, max_coupling=1.0)
      >>> float(schedule(1000)) > 2.7e-4
      True

    References:
      Chaudhari et al., *Entropy-SGD: Biasing Gradient Descent Into Wide Valleys*, ICLR 2017, §4.3.
    """
    validation.check_positive("initial_coupling", initial_coupling)
    validation.check_non_negative("growth_rate", growth_rate)
    if max_coupling is not None:
        validation.check_positive("max_coupling", max_coupling)
    return optax.exponential_decay(
        init_value=initial_coupling,
        transition_steps=1,
        decay_rate=1.0 + growth_rate,
        end_value=max_coupling,
    )


def bounded_exponential_scoping(final_coupling: float, time_constant: float) -> base.Schedule:
    r"""Bounded exponential scoping ``γ_t = γ₀ (1 − e^{−t/τ})``.

    Starts at zero coupling (the flattest local entropy) and saturates at ``γ₀``; one of the
    alternative laws the ICLR'17 paper reports as giving similar results.

    Args:
      final_coupling: ``γ₀ > 0``, the limit as ``t → ∞``.
      time_constant: ``τ > 0`` in outer steps.

    Returns:
      An ``optax.Schedule`` of the outer-step count.

    Examples:
      >>> import entropix
      >>> schedule = entropix.bounded_exponential_scoping(0.1, time_constant=100.0)
      >>> round(float(schedule(100)), 4)
      0.0632

    References:
      Chaudhari et al., ICLR 2017, §4.3.
    """
    validation.check_positive("final_coupling", final_coupling)
    validation.check_positive("time_constant", time_constant)

    def schedule(count):
        return final_coupling * -jnp.expm1(-jnp.asarray(count, jnp.float32) / time_constant)

    return schedule


def linear_scoping(
    initial_coupling: float, final_coupling: float, transition_steps: int
) -> base.Schedule:
    """Linear scoping from ``initial_coupling`` to ``final_coupling`` over ``transition_steps``.

    Args:
      initial_coupling: coupling at outer step 0 (≥ 0).
      final_coupling: coupling from ``transition_steps`` on (≥ 0).
      transition_steps: number of outer steps of the ramp (≥ 1).

    Returns:
      An ``optax.Schedule`` of the outer-step count.

    Examples:
      >>> import entropix
      >>> schedule = entropix.linear_scoping(0.0, 1.0, transition_steps=10)
      >>> float(schedule(5))
      0.5
    """
    validation.check_non_negative("initial_coupling", initial_coupling)
    validation.check_non_negative("final_coupling", final_coupling)
    validation.check_static_int("transition_steps", transition_steps)
    return optax.linear_schedule(initial_coupling, final_coupling, transition_steps)


def parle_scoping(
    initial_coupling: float,
    steps_per_epoch: int,
    *,
    max_coupling: float | None = None,
) -> base.Schedule:
    r"""Parle's scoping law (thesis eq. 5.10) in the coupling convention.

    The thesis decays its variance as ``γ_k = γ₀ (1 − 1/(2B))^{⌊k/L⌋}`` clipped from below, with
    ``B`` mini-batches per epoch and ``⌊k/L⌋`` the outer-step count. In couplings
    (``1/γ``) this is

    .. math::
      c_t = c_0 \left(1 - \frac{1}{2B}\right)^{-t}, \qquad c_t \le c_{\max}.

    Thesis values ``γ₀ = 100, ρ₀ = 1`` clipped at ``γ ≥ 1, ρ ≥ 0.1`` become
    ``parle_scoping(0.01, B, max_coupling=1.0)`` for γ and ``parle_scoping(1.0, B,
    max_coupling=10.0)`` for ρ.

    Args:
      initial_coupling: ``c₀ = 1/γ₀ > 0``.
      steps_per_epoch: ``B``, mini-batches per epoch of the whole data set (≥ 1).
      max_coupling: optional upper clip (``1/γ_min``).

    Returns:
      An ``optax.Schedule`` of the outer-step count.

    Examples:
      >>> import entropix
      >>> schedule = entropix.parle_scoping(0.01, steps_per_epoch=391, max_coupling=1.0)
      >>> round(1 / float(schedule(391)), 2)  # thesis γ after one epoch of outer steps
      60.63

    References:
      Chaudhari, *A Picture of the Energy Landscape of Deep Neural Networks*, PhD thesis, UCLA
      2018, eq. (5.10); Chaudhari et al., *Parle: parallelizing stochastic gradient descent*, 2017.
    """
    validation.check_positive("initial_coupling", initial_coupling)
    # An array when optax.inject_hyperparams passes parle's steps_per_epoch through.
    steps_per_epoch = validation.check_count("steps_per_epoch", steps_per_epoch)
    if max_coupling is not None:
        validation.check_positive("max_coupling", max_coupling)
    growth = 1.0 / (1.0 - 1.0 / (2.0 * jnp.asarray(steps_per_epoch, jnp.float32)))

    def schedule(count):
        coupling = initial_coupling * growth ** jnp.asarray(count, jnp.float32)
        return coupling if max_coupling is None else jnp.minimum(coupling, max_coupling)

    return schedule
