r"""Entropy-SGD, Entropy-Adam and the non-viscous Hamilton–Jacobi (proximal) variant.

All of them descend the *local entropy* of the loss ``f``,

.. math::
  F(x, γ) = \log \int \exp\Big(-f(x') - \frac{γ}{2}\,\lVert x - x' \rVert^2\Big)\, dx',
  \qquad -\nabla_x F = γ\,(x - \langle x' \rangle),

estimating ``⟨x'⟩`` with ``L`` steps of stochastic gradient Langevin dynamics (SGLD) started at
the anchor ``x``:

.. math::
  x' \leftarrow x' - η' \big(\nabla f(x') + γ (x' - x)\big) + \sqrt{η'}\, ε\, ξ,
  \qquad μ \leftarrow (1 - α)\, μ + α\, x',

then handing the local-entropy gradient ``x − μ`` (scaled form, the papers' practice) or
``γ (x − μ)`` (unscaled) to any optax transformation as the outer step.

Conventions (the documentation's conventions page has the table for each paper): ``coupling`` γ
is a coupling strength (thesis γ is its inverse, see :func:`entropix.coupling_from_variance`);
the SGLD temperature is ``ε²/2``; ``average_weight``
α is the weight of the *newest* sample (thesis α is ``1 − α``). The noise ``ξ`` is iid with mean
0 and variance 1 per coordinate: ±1 signs by default (the Euler scheme's weak order and
Langevin limit only depend on these two moments, and they take one random bit per coordinate
where ``N(0, I)`` takes a 32-bit hash and an inverse-CDF transform), or the papers' ``N(0, I)``
with ``noise_distribution="gaussian"``. Both are generated inside the elementwise pass that adds
them to the walker.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax._src import base

from entropix._src import auto_coupling, common, loop, validation
from entropix._src.common import add_scaled_noise, add_weight_decay, cast_like, schedule_value

Params = Any


def sgld_rule(
    *,
    coupling: base.ScalarOrSchedule,
    sgld_learning_rate: base.ScalarOrSchedule,
    noise: base.ScalarOrSchedule,
    average_weight: base.ScalarOrSchedule,
    inner: base.GradientTransformation,
    noise_distribution: str,
    weight_decay: float | jax.Array,
    scale_outer_gradient: bool,
) -> loop.InnerRule:
    """The SGLD inner rule of Entropy-SGD (ICLR'17 Alg. 1, lines 3–6) and its outer gradient.

    ``step`` and ``outer_gradient`` take γ from ``current_coupling`` when the two-loop driver
    passes one (an automatic coupling), else from ``coupling`` at the outer-step count.
    """
    inner = base.with_extra_args_support(inner)

    def coupling_at(outer_count, current_coupling):
        if current_coupling is None:
            return schedule_value(coupling, outer_count)
        return current_coupling

    def reset(anchor):
        return anchor, inner.init(anchor)

    def step(grads, walker, anchor, average, inner_state, key, outer_count, **extra_args):
        gamma = coupling_at(outer_count, extra_args.pop("current_coupling", None))
        step_size = schedule_value(sgld_learning_rate, outer_count)
        alpha = schedule_value(average_weight, outer_count)
        grads = add_weight_decay(grads, walker, weight_decay)
        direction, inner_state = inner.update(grads, inner_state, walker, **extra_args)

        def move(w, d, x):
            return w - cast_like(step_size, w) * (d + cast_like(gamma, w) * (w - x))

        walker = jax.tree.map(move, walker, direction, anchor)
        noise_scale = jnp.sqrt(jnp.asarray(step_size, common.float_dtype())) * schedule_value(
            noise, outer_count
        )
        if not common.is_static_zero(noise):
            walker = add_scaled_noise(walker, noise_scale, key, noise_distribution)
        average = jax.tree.map(lambda m, w: m + cast_like(alpha, m) * (w - m), average, walker)
        return walker, average, inner_state

    def place_walker(anchor, key, outer_count):
        del key, outer_count
        return anchor

    def outer_gradient(anchor, average, outer_count, current_coupling=None):
        if scale_outer_gradient:
            return jax.tree.map(jnp.subtract, anchor, average)
        gamma = coupling_at(outer_count, current_coupling)
        return jax.tree.map(lambda x, m: cast_like(gamma, x) * (x - m), anchor, average)

    return loop.InnerRule(reset, step, place_walker, outer_gradient)


def local_entropy_rule(
    *,
    coupling: base.ScalarOrSchedule | str | auto_coupling.AutoCoupling,
    sgld_learning_rate: base.ScalarOrSchedule,
    noise: base.ScalarOrSchedule,
    noise_distribution: str,
    average_weight: base.ScalarOrSchedule,
    inner: base.GradientTransformation | None,
    weight_decay: float | jax.Array,
    scale_outer_gradient: bool,
) -> loop.InnerRule:
    """The validated SGLD rule of every local-entropy optimizer (schedules checked at several
    counts), shared by :func:`local_entropy` and :func:`entropix.parle`. An automatic
    ``coupling`` (``"auto"`` or :func:`entropix.auto_coupling`) attaches its controller."""
    controller = auto_coupling.controller_for(coupling)
    if controller is None:
        validation.check_schedule("coupling", coupling, validation.check_non_negative)
    validation.check_schedule("sgld_learning_rate", sgld_learning_rate, validation.check_positive)
    validation.check_schedule("noise", noise, validation.check_non_negative)
    validation.check_schedule("average_weight", average_weight, _check_average_weight)
    validation.check_noise_distribution(noise_distribution)
    validation.check_non_negative("weight_decay", weight_decay)
    if inner is not None:
        validation.check_transformation("inner", inner)
    inner = optax.identity() if inner is None else inner
    if controller is not None:  # it reads the norms of the inner directions
        inner = optax.chain(inner, controller.tracker)
    rule = sgld_rule(**common.forwarded(locals(), common.SGLD_KEYWORDS))
    return rule._replace(coupling_controller=controller)


def _check_average_weight(name, value):
    validation.check_unit_interval(name, value, allow_zero=False)


@common.shared_argument_docs
def local_entropy(
    outer: base.GradientTransformation,
    *,
    num_inner_steps: int = 20,
    coupling: base.ScalarOrSchedule | str | auto_coupling.AutoCoupling = 0.03,
    sgld_learning_rate: base.ScalarOrSchedule = 0.1,
    noise: base.ScalarOrSchedule = 1e-4,
    noise_distribution: str = "rademacher",
    average_weight: base.ScalarOrSchedule = 0.75,
    inner: base.GradientTransformation | None = None,
    weight_decay: float = 0.0,
    scale_outer_gradient: bool = True,
    key: int | jax.Array = 0,
    compiled: bool = False,
    accumulator_dtype: Any | None = None,
) -> base.GradientTransformationExtraArgs:
    r"""Local-entropy descent with any inner and outer optax transformations.

    Runs ``L`` SGLD steps from the anchor ``x`` on the coupled loss
    ``f(x') + (γ/2)‖x' − x‖²`` and feeds the local-entropy gradient to ``outer``:

    .. math::
      d &\leftarrow \mathrm{inner}\big(\nabla f(x') + λ x'\big) + γ (x' - x) \\
      x' &\leftarrow x' - η' d + \sqrt{η'}\, ε\, ξ \\
      μ &\leftarrow (1 - α) μ + α x' \\
      x &\leftarrow x + \mathrm{outer}\big(x - μ\big)
        \quad\text{(or } γ (x - μ) \text{ when } \texttt{scale\_outer\_gradient=False)}

    with ``x' = μ = x`` and the inner state reset at the start of every outer step. Weight decay
    ``λ`` is part of the loss whose local entropy is taken. The SGLD chain samples
    ``∝ exp(−(f(x') + γ/2 ‖x − x'‖²)/T)`` with temperature ``T = ε²/2``.

    In the **step form** (default) each ``update(grads, state, params)`` is one inner step on the
    gradient at ``params`` = the walker ``x'``; every ``L``-th call also performs the outer step
    and returns the jump to the new anchor. Evaluate :func:`entropix.anchor_params` (``x``), not
    the walker. In the **compiled form** (``compiled=True``) each update is a whole outer step:
    ``grads`` is the gradient at ``params`` on minibatch 0 and the extra argument
    ``grad_fn(params, i)`` supplies minibatches ``i = 1 … L−1`` inside one ``jax.lax.scan``.
    Both cost exactly ``L`` gradient evaluations per outer step and agree step for step.

    In optax pipelines: extra arguments of ``update`` (e.g. ``value=`` for
    ``optax.contrib.reduce_on_plateau``) reach ``inner`` and ``outer``; in the step form the
    outer transformation sees those of the ``L``-th call. Schedules count outer steps —
    ``optax.inject_hyperparams`` and ``TrainState.step`` count calls, so wrap schedules given
    through them with :func:`entropix.outer_count_schedule`; the compiled form under
    ``inject_hyperparams`` needs ``static_args=("num_inner_steps",)``. Transformations
    chained *before* the compiled form only see the first gradient of each outer step (the
    other ``L − 1`` come from ``grad_fn``): pre-process every inner gradient with ``inner``
    (e.g. ``optax.chain(optax.clip_by_global_norm(1.0), optax.trace(0.9))``) instead, which
    gives the same anchor as the step form chained after the clipping. Integer leaves of the
    parameters pass through unchanged.

    Args:
      outer: optax transformation of the outer step (e.g. ``optax.sgd(1.0, 0.9, nesterov=True)``
        for Entropy-SGD, ``optax.adam(...)`` for Entropy-Adam). Its schedules count outer steps.
      {shared: num_inner_steps, coupling, sgld_learning_rate, noise, noise_distribution}
      average_weight: ``α ∈ (0, 1]``, weight of the newest sample in ``μ``; ``1`` keeps the last
        iterate (with ``noise=0`` this is the HJ / proximal-point variant, :func:`hj`).
      inner: optax transformation applied to every inner data gradient before the coupling
        is added (e.g. ``optax.trace(0.9, nesterov=True)``, gradient clipping); its state is
        reset every outer step; ``None`` for plain SGLD.
      {shared: weight_decay, scale_outer_gradient, key, compiled, accumulator_dtype}

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a
      :class:`entropix.LocalEntropyState`.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, entropix
      >>> loss = lambda w: jnp.sum((w - 1.0) ** 2)
      >>> opt = entropix.local_entropy(
      ...     optax.sgd(1.0), num_inner_steps=5, coupling=1.0, noise=0.0)
      >>> params = jnp.zeros(2)
      >>> state = opt.init(params)
      >>> update = jax.jit(opt.update)
      >>> for _ in range(50):
      ...   updates, state = update(jax.grad(loss)(params), state, params)
      ...   params = optax.apply_updates(params, updates)
      >>> entropix.anchor_params(state).round(3)
      Array([1., 1.], dtype=float32)

    References:
      Chaudhari et al., *Entropy-SGD: Biasing Gradient Descent Into Wide Valleys*, ICLR 2017,
      Algorithm 1; Chaudhari, PhD thesis, UCLA 2018, Algorithm 2 and eqs. (4.40)–(4.41).
    """
    rule = local_entropy_rule(**common.forwarded(locals(), common.SGLD_KEYWORDS))
    return loop.two_loop(
        rule,
        outer,
        num_inner_steps=num_inner_steps,
        key=key,
        compiled=compiled,
        accumulator_dtype=accumulator_dtype,
    )


@common.shared_argument_docs
def entropy_sgd(
    learning_rate: base.ScalarOrSchedule = 1.0,
    *,
    num_inner_steps: int = 20,
    coupling: base.ScalarOrSchedule | str | auto_coupling.AutoCoupling = 0.03,
    sgld_learning_rate: base.ScalarOrSchedule = 0.1,
    noise: base.ScalarOrSchedule = 1e-4,
    noise_distribution: str = "rademacher",
    average_weight: base.ScalarOrSchedule = 0.75,
    momentum: float = 0.9,
    nesterov: bool = True,
    inner_momentum: float = 0.9,
    inner_nesterov: bool = True,
    weight_decay: float = 0.0,
    scale_outer_gradient: bool = True,
    key: int | jax.Array = 0,
    compiled: bool = False,
    inner_transform: base.GradientTransformation | None = None,
    accumulator_dtype: Any | None = None,
) -> base.GradientTransformationExtraArgs:
    r"""Entropy-SGD: SGLD inner loop, SGD (Nesterov) outer step on the local-entropy gradient.

    .. math::
      x' &\leftarrow x' - η' \big(\mathrm{mom}(\nabla f(x')) + γ (x' - x)\big)
        + \sqrt{η'}\, ε\, ξ, \qquad μ \leftarrow (1-α) μ + α x' \\
      x &\leftarrow x - η\, \mathrm{mom}(x - μ)

    every ``L`` inner steps (see :func:`local_entropy` for the two forms and the conventions).
    Defaults are the ICLR'17 CIFAR-10 settings: ``L = 20``, ``η = 1`` (scaled outer step),
    ``η' = 0.1``, ``ε = 10⁻⁴``, ``α = 0.75``, ``γ = 0.03`` (the paper scopes it by
    ``×1.001`` per outer step: ``coupling=entropix.exponential_scoping(0.03, 1e-3)``), Nesterov
    momentum 0.9 in both loops. MNIST used ``ε = 10⁻³`` and ``γ₀ = 10⁻⁴``.

    Args:
      learning_rate: outer step size ``η`` (scalar or schedule of the outer-step count).
      {shared: num_inner_steps, coupling, sgld_learning_rate, noise, noise_distribution,
        average_weight}
      momentum: outer momentum (0 for none).
      nesterov: Nesterov form of the outer momentum.
      {shared: inner_momentum, inner_nesterov, weight_decay, scale_outer_gradient, key, compiled,
        inner_transform, accumulator_dtype}

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, entropix
      >>> opt = entropix.entropy_sgd(num_inner_steps=5, coupling=0.1, noise=0.0)
      >>> params = {"w": jnp.ones(3)}
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
      >>> updates, state = opt.update(grads, state, params)
      >>> params = optax.apply_updates(params, updates)

    References:
      Chaudhari et al., *Entropy-SGD: Biasing Gradient Descent Into Wide Valleys*, ICLR 2017.
    """
    return local_entropy(
        common.outer_sgd(learning_rate, momentum, nesterov),
        inner=common.chain_before(
            inner_transform, common.inner_momentum_transform(inner_momentum, inner_nesterov)
        ),
        **common.forwarded(locals(), common.LOCAL_ENTROPY_KEYWORDS),
    )


@common.shared_argument_docs
def entropy_adam(
    learning_rate: base.ScalarOrSchedule = 0.01,
    *,
    b1: float = 0.5,
    b2: float = 0.999,
    eps: float = 1e-8,
    num_inner_steps: int = 5,
    coupling: base.ScalarOrSchedule | str | auto_coupling.AutoCoupling = 0.01,
    sgld_learning_rate: base.ScalarOrSchedule = 0.1,
    noise: base.ScalarOrSchedule = 1e-4,
    noise_distribution: str = "rademacher",
    average_weight: base.ScalarOrSchedule = 0.75,
    inner_momentum: float = 0.0,
    inner_nesterov: bool = True,
    weight_decay: float = 0.0,
    scale_outer_gradient: bool = True,
    key: int | jax.Array = 0,
    compiled: bool = False,
    inner_transform: base.GradientTransformation | None = None,
    accumulator_dtype: Any | None = None,
) -> base.GradientTransformationExtraArgs:
    r"""Entropy-Adam: Adam on the local-entropy gradient in place of the back-propagated one.

    .. math::
      x \leftarrow x + \mathrm{adam}_{η, β_1, β_2}(x - μ)

    every ``L`` SGLD steps (see :func:`local_entropy`). Defaults are the ICLR'17 char-LSTM
    settings: ``L = 5``, ``η = 0.01`` (halved every epoch there), ``β₁ = 0.5`` (the baseline used
    0.9), ``γ = 0.01`` fixed.

    Args:
      learning_rate: Adam step size (scalar or schedule of the outer-step count).
      b1: Adam's first-moment decay (0.5 in the paper).
      b2: Adam's second-moment decay.
      eps: Adam's denominator offset.
      {shared: num_inner_steps, coupling}
      sgld_learning_rate: ``η'``, inner step size (not stated in the paper; 0.1 as elsewhere).
      {shared: noise, noise_distribution, average_weight}
      inner_momentum: momentum of the inner loop (0 for plain SGLD).
      {shared: inner_nesterov, weight_decay, scale_outer_gradient, key, compiled, inner_transform,
        accumulator_dtype}

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Examples:
      >>> import jax.numpy as jnp, entropix
      >>> opt = entropix.entropy_adam(1e-3, num_inner_steps=5)
      >>> state = opt.init({"w": jnp.zeros(4)})

    References:
      Chaudhari et al., ICLR 2017, §5.4.2; Kingma & Ba, *Adam*, ICLR 2015.
    """
    arguments = locals()
    validation.check_schedule("learning_rate", learning_rate, validation.check_non_negative)
    return local_entropy(
        optax.adam(learning_rate, b1=b1, b2=b2, eps=eps),
        inner=common.chain_before(
            inner_transform, common.inner_momentum_transform(inner_momentum, inner_nesterov)
        ),
        **common.forwarded(arguments, common.LOCAL_ENTROPY_KEYWORDS),
    )


@common.shared_argument_docs
def hj(
    learning_rate: base.ScalarOrSchedule = 1.0,
    *,
    num_inner_steps: int = 5,
    coupling: base.ScalarOrSchedule | str | auto_coupling.AutoCoupling = 0.03,
    sgld_learning_rate: base.ScalarOrSchedule = 0.1,
    momentum: float = 0.0,
    nesterov: bool = False,
    inner_momentum: float = 0.0,
    inner_nesterov: bool = True,
    weight_decay: float = 0.0,
    scale_outer_gradient: bool = True,
    compiled: bool = False,
    inner_transform: base.GradientTransformation | None = None,
    accumulator_dtype: Any | None = None,
) -> base.GradientTransformationExtraArgs:
    r"""Non-viscous Hamilton–Jacobi (HJ) descent: a stochastic proximal-point method.

    Entropy-SGD without noise whose outer step uses the *last* inner iterate (thesis eq. 4.42,
    written in the coupling convention):

    .. math::
      x' &\leftarrow x' - η' \big(\nabla f(x') + γ (x' - x)\big)
        \quad (L \text{ times, } x'_0 = x) \\
      x &\leftarrow x - η (x - x'_L)

    As ``L → ∞`` (with ``η' (λ + γ) < 2``), ``x'_L → \mathrm{prox}_{f/γ}(x) =
    \arg\min_y f(y) + (γ/2)‖y − x‖²``, so with ``η = 1`` each outer step is a proximal-point
    step and the outer gradient ``x − x'_L`` is ``∇`` of the Moreau envelope (divided by γ).
    Thesis defaults: ``L = 5``, no injected noise.

    Args:
      learning_rate: outer step size ``η`` (1 = proximal point with the scaled outer step).
      {shared: num_inner_steps, coupling, sgld_learning_rate}
      momentum: outer momentum.
      nesterov: Nesterov form of the outer momentum.
      {shared: inner_momentum, inner_nesterov, weight_decay}
      scale_outer_gradient: outer gradient ``x − x'_L`` (True) or ``γ (x − x'_L)``.
      {shared: compiled, inner_transform, accumulator_dtype}

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, entropix
      >>> opt = entropix.hj(num_inner_steps=200, coupling=1.0, sgld_learning_rate=0.1)
      >>> params = jnp.array([2.0])
      >>> state = opt.init(params)
      >>> update = jax.jit(opt.update)
      >>> for _ in range(200):
      ...   g = jax.grad(lambda w: jnp.sum(3.0 * w ** 2) / 2)(params)
      ...   updates, state = update(g, state, params)
      ...   params = optax.apply_updates(params, updates)
      >>> entropix.anchor_params(state).round(4)  # prox: 2 γ / (3 + γ) = 0.5
      Array([0.5], dtype=float32)

    References:
      Chaudhari, Oberman, Osher, Soatto, Carlier, *Deep relaxation: partial differential
      equations for optimizing deep neural networks*, 2017, §6.1.2; thesis eq. (4.42).
    """
    return local_entropy(
        common.outer_sgd(learning_rate, momentum, nesterov),
        num_inner_steps=num_inner_steps,
        coupling=coupling,
        sgld_learning_rate=sgld_learning_rate,
        noise=0.0,
        average_weight=1.0,
        inner=common.chain_before(
            inner_transform, common.inner_momentum_transform(inner_momentum, inner_nesterov)
        ),
        weight_decay=weight_decay,
        scale_outer_gradient=scale_outer_gradient,
        compiled=compiled,
        accumulator_dtype=accumulator_dtype,
    )


class SGLDChainResult(NamedTuple):
    """Result of :func:`sgld_chain`.

    Attributes:
      mean: running average of the walker (uniform after burn-in, or exponential).
      walker: the walker's last position.
    """

    mean: Params
    walker: Params


def sgld_chain(
    grad_fn: loop.GradFn,
    anchor: Params,
    *,
    num_steps: int,
    coupling: float | jax.Array,
    sgld_learning_rate: float | jax.Array = 0.1,
    noise: float | jax.Array = 0.0,
    noise_distribution: str = "gaussian",
    key: int | jax.Array = 0,
    average_weight: float | None = None,
    burn_in: int = 0,
) -> SGLDChainResult:
    r"""Runs the Entropy-SGD inner chain from ``anchor`` and returns its average.

    The same inner step as the optimizers, compiled in one ``jax.lax.scan``. With
    ``average_weight=None`` the mean is uniform over the steps after ``burn_in`` (an estimator
    of ``⟨x'⟩`` under ``∝ exp(−(f(x') + γ/2‖x − x'‖²)/T)``, ``T = ε²/2``); otherwise it is the
    optimizers' exponential average. The local-entropy gradient estimate is
    ``coupling * (anchor − mean)``.

    Args:
      grad_fn: ``grad_fn(params, i)``, the gradient at ``params`` on minibatch ``i``.
      anchor: the anchor ``x``.
      num_steps: number of chain steps (gradient evaluations).
      coupling: ``γ``.
      sgld_learning_rate: ``η'``.
      noise: ``ε``.
      noise_distribution: ``"gaussian"`` (default here: an estimator, where exactness matters
        more than speed) or ``"rademacher"`` (the optimizers' default).
      key: PRNG seed or key.
      average_weight: ``None`` for a uniform mean after ``burn_in``, else ``α`` of the
        exponential average.
      burn_in: steps excluded from the uniform mean.

    Returns:
      An :class:`SGLDChainResult`.

    Examples:
      >>> import jax, jax.numpy as jnp, entropix
      >>> grad_fn = lambda w, i: 2.0 * w            # f = w², minimum at 0
      >>> out = entropix.sgld_chain(grad_fn, jnp.ones(1), num_steps=500, coupling=2.0)
      >>> out.mean.round(2)                          # prox: γ x / (2 + γ) = 0.5
      Array([0.5], dtype=float32)
    """
    num_steps = validation.check_static_int("num_steps", num_steps)
    burn_in = validation.check_static_int("burn_in", burn_in, minimum=0)
    if burn_in >= num_steps:
        raise ValueError(f"`burn_in` must be < num_steps={num_steps}, got burn_in={burn_in}.")
    if burn_in and average_weight is not None:
        raise ValueError(
            f"`burn_in` applies to the uniform mean, got burn_in={burn_in} with "
            f"average_weight={average_weight!r}: set average_weight=None or burn_in=0."
        )
    validation.check_noise_distribution(noise_distribution)
    rule = sgld_rule(
        coupling=coupling,
        sgld_learning_rate=sgld_learning_rate,
        noise=noise,
        noise_distribution=noise_distribution,
        average_weight=1.0 if average_weight is None else average_weight,
        inner=optax.identity(),
        weight_decay=0.0,
        scale_outer_gradient=True,
    )
    base_key = common.as_key(key)
    outer_count = jnp.zeros([], jnp.int32)
    inner_state = optax.EmptyState()

    def body(carry, index):
        walker, average, mean = carry
        walker, average, _ = rule.step(
            grad_fn(walker, index),
            walker,
            anchor,
            average,
            inner_state,
            common.step_key(base_key, index, 0),
            outer_count,
        )
        kept = jnp.maximum(index - burn_in + 1, 1).astype(common.float_dtype())
        weight = jnp.where(index >= burn_in, 1.0 / kept, 0.0)
        mean = jax.tree.map(lambda m, w: m + cast_like(weight, m) * (w - m), mean, walker)
        return (walker, average, mean), None

    (walker, average, mean), _ = jax.lax.scan(body, (anchor, anchor, anchor), jnp.arange(num_steps))
    return SGLDChainResult(mean=mean if average_weight is None else average, walker=walker)
