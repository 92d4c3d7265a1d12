r"""HEAT: gradient descent on the heat-equation (Gaussian) smoothing of the loss.

.. math::
  x \leftarrow x - η\, \frac{1}{L} \sum_{i=1}^{L} \nabla f_b(x + ε_i),
  \qquad ε_i \sim \mathcal N(0, γ^{-1} I)

(thesis eq. 4.43, whose variance γ_thesis is our ``1/coupling``). In expectation this descends
``f * G_{1/γ}``, the loss convolved with a Gaussian of variance ``1/γ``; unlike local entropy
it does not reduce the curvature of a quadratic (thesis Example 4.12).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from optax._src import base

from entropix._src import auto_coupling, common, loop, validation


def heat_rule(
    *,
    num_inner_steps: int | jax.Array,
    coupling: base.ScalarOrSchedule,
    weight_decay: float,
    transform: base.GradientTransformation,
) -> loop.InnerRule:
    """The HEAT inner rule: average gradients taken at Gaussian perturbations of the anchor."""
    transform = base.with_extra_args_support(transform)

    def reset(anchor):
        return jax.tree.map(jnp.zeros_like, anchor), transform.init(anchor)

    def place_walker(anchor, key, outer_count):
        gamma = common.schedule_value(coupling, outer_count)
        scale = jax.lax.rsqrt(jnp.asarray(gamma, common.float_dtype()))
        return common.add_scaled_noise(anchor, scale, key)

    def step(grads, walker, anchor, average, inner_state, key, outer_count, **extra_args):
        grads = common.add_weight_decay(grads, walker, weight_decay)
        grads, inner_state = transform.update(grads, inner_state, walker, **extra_args)
        average = jax.tree.map(lambda m, g: m + g.astype(m.dtype) / num_inner_steps, average, grads)
        return place_walker(anchor, key, outer_count), average, inner_state

    def outer_gradient(anchor, average, outer_count):
        del anchor, outer_count
        return average

    return loop.InnerRule(reset, step, place_walker, outer_gradient, loop.HeatState)


def heat(
    learning_rate: base.ScalarOrSchedule = 0.1,
    *,
    num_inner_steps: int = 20,
    coupling: base.ScalarOrSchedule = 1e4,
    momentum: float = 0.9,
    nesterov: bool = True,
    weight_decay: float = 0.0,
    key: int | jax.Array = 0,
    compiled: bool = False,
    inner_transform: base.GradientTransformation | None = None,
    accumulator_dtype: Any | None = None,
) -> base.GradientTransformationExtraArgs:
    r"""HEAT: SGD on the average gradient at ``L`` Gaussian perturbations of the weights.

    .. math::
      x \leftarrow x + \mathrm{sgd}_η\Big(\frac{1}{L}\sum_{i=1}^{L} \nabla f_b(x + ε_i)\Big),
      \qquad ε_i \sim \mathcal N(0, I/γ).

    In the step form the live ``params`` are the perturbed weights ``x + ε_i``: each update
    adds one gradient to the average and moves the params to the next perturbation; every
    ``L``-th update takes the outer step. (The first gradient after ``init`` is taken at the
    unperturbed params, since ``init`` cannot move them.) Evaluate
    :func:`entropix.anchor_params`. The compiled form works as in :func:`local_entropy`.
    Thesis settings: ``L = 20``, ``η = 0.1`` divided by 5 every 3 epochs, Nesterov momentum.

    Args:
      learning_rate: outer step size (scalar or schedule of the outer-step count).
      num_inner_steps: ``L``, perturbations (gradient evaluations) per outer step.
      coupling: ``γ > 0``; the perturbations have variance ``1/γ`` (thesis γ = ``1/coupling``).
      momentum: outer momentum (0 for none).
      nesterov: Nesterov form of the outer momentum.
      weight_decay: ℓ2 penalty added to each gradient.
      key: PRNG seed or key of the perturbations.
      compiled: compiled form (one update = one outer step with ``grad_fn``).
      inner_transform: optax transformation applied to every gradient before it enters the
        average, in both forms (e.g. ``optax.clip_by_global_norm(1.0)``); ``None`` for none.
      accumulator_dtype: dtype of the anchor, the gradient average and the outer state (e.g.
        ``jnp.float32`` for bfloat16 parameters); ``None`` follows the parameters.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a :class:`entropix.HeatState`.

    Examples:
      >>> import jax.numpy as jnp, entropix
      >>> opt = entropix.heat(0.1, num_inner_steps=4, coupling=100.0)
      >>> state = opt.init({"w": jnp.zeros(3)})

    References:
      Chaudhari, Oberman, Osher, Soatto, Carlier, *Deep relaxation: partial differential
      equations for optimizing deep neural networks*, 2017, §6.1.3; thesis eq. (4.43).
    """
    num_inner_steps = validation.check_count("num_inner_steps", num_inner_steps)
    auto_coupling.reject_auto(
        coupling,
        "HEAT's `coupling` is the inverse variance of its Gaussian perturbations, not a "
        "local-entropy coupling; pass a number > 0 or a schedule.",
    )
    validation.check_scalar_or_schedule("coupling", coupling)
    validation.check_schedule("coupling", coupling, validation.check_positive)
    validation.check_non_negative("weight_decay", weight_decay)
    rule = heat_rule(
        num_inner_steps=num_inner_steps,
        coupling=coupling,
        weight_decay=weight_decay,
        transform=optax.identity() if inner_transform is None else inner_transform,
    )
    if inner_transform is not None:
        validation.check_transformation("inner_transform", inner_transform)
    return loop.two_loop(
        rule,
        common.outer_sgd(learning_rate, momentum, nesterov),
        num_inner_steps=num_inner_steps,
        key=key,
        compiled=compiled,
        accumulator_dtype=accumulator_dtype,
    )
