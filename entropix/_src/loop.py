"""The two-loop driver shared by every local-entropy optimizer.

An *inner rule* says how one inner step moves the walker ``x'`` given a gradient taken at the
walker, and what gradient the outer step descends when the ``L`` inner steps are done. The driver
turns a rule and an outer optax transformation into an ``optax.GradientTransformationExtraArgs``
in one of two forms that run the same pure step functions:

* **step form** — each ``update`` is one inner step on the gradient the caller computed at
  ``params`` (the walker); every ``L``-th call also performs the outer step and returns the jump
  to the new walker position. It drops into any training loop.
* **compiled form** — each ``update`` is one whole outer step: the first inner step uses the
  incoming gradient (taken at ``params``), the remaining ``L − 1`` run in one ``jax.lax.scan``
  calling ``grad_fn(walker, i)`` for ``i = 1 … L−1``. Exactly ``L`` gradients per outer step.

Per-step randomness comes from ``fold_in(key, count)`` so both forms draw identical noise.

Only the float leaves of the parameters take part; integer leaves pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax
from optax._src import base

from entropix._src import auto_coupling, common, validation

Params = Any


class LocalEntropyState(NamedTuple):
    """State of a local-entropy optimizer (Entropy-SGD, Entropy-Adam, HJ, Parle, ...).

    Attributes:
      inner_count: inner steps (gradient evaluations) taken so far.
      outer_count: outer steps taken so far; the count every entropix schedule reads.
      num_inner_steps: ``L``, inner steps per outer step (constant; read it with
        ``optax.tree_utils.tree_get(state, "num_inner_steps")``).
      anchor: the anchor ``x`` of the current outer step — the weights to evaluate.
      walker_average: the running average ``μ`` of the SGLD walker in this outer step.
      inner_state: state of the inner transformation (e.g. its momentum), reset every outer step.
      outer_state: state of the outer optax transformation.
      key: PRNG key; the noise of inner step ``k`` is drawn from ``fold_in(key, k)``.
      coupling_state: an :class:`entropix.AutoCouplingState` holding the current coupling γ
        when it is automatic (:func:`entropix.auto_coupling`); an empty state otherwise.
    """

    inner_count: jax.Array
    outer_count: jax.Array
    num_inner_steps: jax.Array
    anchor: Params
    walker_average: Params
    inner_state: base.OptState
    outer_state: base.OptState
    key: jax.Array
    coupling_state: base.OptState = optax.EmptyState()


class HeatState(NamedTuple):
    """State of :func:`entropix.heat`.

    Attributes:
      inner_count: perturbations (gradient evaluations) taken so far.
      outer_count: outer steps taken so far.
      num_inner_steps: ``L``, perturbations per outer step (constant).
      anchor: the unperturbed weights ``x`` — the weights to evaluate.
      gradient_average: the average of the gradients at the perturbations of this outer step.
      inner_state: state of the per-gradient transformation, reset every outer step.
      outer_state: state of the outer optax transformation.
      key: PRNG key of the perturbations.
    """

    inner_count: jax.Array
    outer_count: jax.Array
    num_inner_steps: jax.Array
    anchor: Params
    gradient_average: Params
    inner_state: base.OptState
    outer_state: base.OptState
    key: jax.Array


TWO_LOOP_STATES = (LocalEntropyState, HeatState)
# The two state types differ in the name of the running average, field 4, and in the
# trailing coupling_state of LocalEntropyState.
_AVERAGE = 4


class InnerRule(NamedTuple):
    """How inner steps move the walker and what the outer step descends.

    Every tree a rule sees holds only the float leaves of the parameters.

    Attributes:
      reset: ``reset(anchor) -> (average, inner_state)`` at the start of every outer step.
      step: ``step(grads, walker, anchor, average, inner_state, key, outer_count,
        **extra_args) -> (walker, average, inner_state)``, one inner step on ``grads`` taken at
        ``walker``; ``extra_args`` are those of the ``update`` call.
      place_walker: ``place_walker(anchor, key, outer_count) -> walker``, the walker's first
        position in an outer step (the anchor for SGLD, a Gaussian perturbation for HEAT).
      outer_gradient: ``outer_gradient(anchor, average, outer_count) -> grads`` fed to the outer
        optax transformation.
      state_type: :class:`LocalEntropyState` (the average is a walker average) or
        :class:`HeatState` (a gradient average).
      coupling_controller: for an automatic coupling, the controller that keeps γ in the
        state's ``coupling_state`` and updates it from the anchor, the average and the inner
        state at the end of every outer step; ``step`` and ``outer_gradient`` then receive the
        current γ as the keyword ``current_coupling``. ``None`` for a fixed coupling.
    """

    reset: Callable[[Params], tuple[Params, base.OptState]]
    step: Callable[..., tuple[Params, Params, base.OptState]]
    place_walker: Callable[[Params, jax.Array, jax.Array], Params]
    outer_gradient: Callable[[Params, Params, jax.Array], Params]
    state_type: type = LocalEntropyState
    coupling_controller: auto_coupling.CouplingController | None = None


class GradFn(Protocol):
    """``grad_fn(params, i)``: gradient of the loss on the ``i``-th minibatch of the group."""

    def __call__(self, params: Params, index: jax.Array) -> Params: ...


def _average(state):
    return state[_AVERAGE]


def _with_average(state, average):
    return state._replace(**{state._fields[_AVERAGE]: average})


def two_loop(
    rule: InnerRule,
    outer: base.GradientTransformation,
    *,
    num_inner_steps: int | jax.Array,
    key: int | jax.Array,
    compiled: bool,
    accumulator_dtype: Any | None = None,
) -> base.GradientTransformationExtraArgs:
    """Builds a local-entropy optimizer from an inner rule and an outer transformation.

    Args:
      rule: the inner rule.
      outer: optax transformation applied to the rule's outer gradient.
      num_inner_steps: ``L ≥ 1``, inner steps (gradient evaluations) per outer step. The step
        form also takes an integer array (``optax.inject_hyperparams`` passes one); the
        compiled form needs a Python int (it is the length of a ``lax.scan``).
      key: PRNG seed or key.
      compiled: the compiled form (one ``update`` = one outer step) instead of the step form.
      accumulator_dtype: dtype of the anchor, the running average and the outer state (e.g.
        ``jnp.float32`` for bfloat16 parameters); ``None`` follows each parameter's dtype.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Raises:
      TypeError: ``compiled=True`` with a non-static ``num_inner_steps``, or ``outer`` is not an
        optax transformation.
    """
    if compiled:
        num_inner_steps = validation.check_static_int("num_inner_steps", num_inner_steps)
    else:
        num_inner_steps = validation.check_count("num_inner_steps", num_inner_steps)
    validation.check_transformation("outer", outer)
    base_key = common.as_key(key)
    outer = base.with_extra_args_support(outer)
    state_type = rule.state_type
    controller = rule.coupling_controller
    if controller is not None and state_type is not LocalEntropyState:
        raise TypeError(
            f"An automatic coupling needs a rule with LocalEntropyState, got {state_type.__name__}."
        )

    def coupling_state_of(state):
        return state.coupling_state if controller is not None else None

    def coupling_args(coupling_state):
        """The current γ for the rule's step and outer gradient; none for a fixed coupling."""
        if controller is None:
            return {}
        return {"current_coupling": controller.coupling(coupling_state)}

    def to_accumulator(leaf):
        leaf = common.fresh_copy(leaf)
        return leaf if accumulator_dtype is None else leaf.astype(accumulator_dtype)

    def init_fn(params):
        anchor = jax.tree.map(common.fresh_copy, params)
        anchor_floats = jax.tree.map(to_accumulator, common.float_leaves(params))
        anchor = common.merge_float_leaves(anchor_floats, anchor)
        average, inner_state = rule.reset(anchor_floats)
        state = state_type(
            jnp.zeros([], jnp.int32),
            jnp.zeros([], jnp.int32),
            jnp.asarray(num_inner_steps, jnp.int32),
            anchor,
            # Distinct buffers, so the state can be donated to a jitted step.
            jax.tree.map(common.fresh_copy, average),
            inner_state,
            outer.init(anchor_floats),
            # A copy: the factory's key must survive the donation of any state built from it.
            jnp.array(base_key, copy=True),
        )
        if controller is not None:
            state = state._replace(coupling_state=controller.init())
        return state

    def as_walker(tree, like):
        # The walker lives in the parameters' dtypes whatever the accumulators' dtype.
        return jax.tree.map(lambda w, p: w.astype(p.dtype), tree, like)

    def finish_outer_step(state, anchor, average, inner_count, extra_args):
        outer_grads = rule.outer_gradient(
            anchor, average, state.outer_count, **coupling_args(coupling_state_of(state))
        )
        if controller is not None:
            coupling_state = controller.update(
                state.coupling_state, anchor, average, state.inner_state, state.outer_count
            )
            state = state._replace(coupling_state=coupling_state)
        outer_updates, outer_state = outer.update(
            outer_grads, state.outer_state, anchor, **extra_args
        )
        anchor = optax.apply_updates(anchor, outer_updates)
        outer_count = state.outer_count + 1
        average, inner_state = rule.reset(anchor)
        walker = rule.place_walker(anchor, common.step_key(state.key, inner_count, 1), outer_count)
        state = state._replace(
            inner_count=inner_count,
            outer_count=outer_count,
            anchor=common.merge_float_leaves(anchor, state.anchor),
            inner_state=inner_state,
            outer_state=outer_state,
        )
        return walker, _with_average(state, average)

    def split(updates, state, params):
        """The float leaves of the gradient, the walker and the anchor."""
        return (
            common.float_leaves_like(updates, params),
            common.float_leaves(params),
            common.float_leaves_like(state.anchor, params),
        )

    def updates_to(walker, walker_floats, params):
        moved = jax.tree.map(jnp.subtract, as_walker(walker, walker_floats), walker_floats)
        return common.zero_updates_for_non_floats(moved, params)

    def step_update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(base.NO_PARAMS_MSG)
        if extra_args.get("grad_fn") is not None:
            raise TypeError(
                "`grad_fn` was passed to the step form, which takes one gradient per update and "
                "would ignore it: build the optimizer with compiled=True to run a whole outer "
                "step per update, or drop grad_fn."
            )
        extra_args.pop("grad_fn", None)
        grads, walker_floats, anchor = split(updates, state, params)
        walker, average, inner_state = rule.step(
            grads,
            walker_floats,
            anchor,
            _average(state),
            state.inner_state,
            common.step_key(state.key, state.inner_count, 0),
            state.outer_count,
            **coupling_args(coupling_state_of(state)),
            **extra_args,
        )
        walker = as_walker(walker, walker_floats)
        inner_count = state.inner_count + 1
        state = state._replace(
            inner_state=inner_state, num_inner_steps=jnp.asarray(num_inner_steps, jnp.int32)
        )

        def carry_on():
            return walker, _with_average(state._replace(inner_count=inner_count), average)

        def outer_step():
            walker, new_state = finish_outer_step(state, anchor, average, inner_count, extra_args)
            return as_walker(walker, walker_floats), new_state

        walker, state = common.batch_cond(
            inner_count % num_inner_steps == 0, outer_step, carry_on
        )
        return updates_to(walker, walker_floats, params), state

    def compiled_update(updates, state, params=None, *, grad_fn: GradFn | None = None, **extra):
        if params is None:
            raise ValueError(base.NO_PARAMS_MSG)
        if grad_fn is None:
            raise TypeError(
                "The compiled form needs `grad_fn`: call update(grads, state, params, "
                "grad_fn=grad_fn) with grad_fn(params, i) the gradient on minibatch i of the "
                f"group (i = 1 … {num_inner_steps - 1}; `grads` is minibatch 0 at params)."
            )
        grads, walker_floats, anchor = split(updates, state, params)

        def inner_step(carry, index, grads):
            walker, average, inner_state = carry
            walker, average, inner_state = rule.step(
                grads,
                walker,
                anchor,
                average,
                inner_state,
                common.step_key(state.key, state.inner_count + index, 0),
                state.outer_count,
                **coupling_args(coupling_state_of(state)),
                **extra,
            )
            return as_walker(walker, walker_floats), average, inner_state

        carry = inner_step((walker_floats, _average(state), state.inner_state), 0, grads)

        def scan_body(carry, index):
            walker = common.merge_float_leaves(carry[0], params)
            gradient = common.float_leaves_like(grad_fn(walker, index), params)
            return inner_step(carry, index, gradient), None

        carry, _ = jax.lax.scan(scan_body, carry, jnp.arange(1, num_inner_steps))
        _, average, inner_state = carry
        inner_count = state.inner_count + num_inner_steps
        walker, state = finish_outer_step(
            state._replace(inner_state=inner_state), anchor, average, inner_count, extra
        )
        return updates_to(walker, walker_floats, params), state

    update_fn = compiled_update if compiled else step_update
    return base.GradientTransformationExtraArgs(init_fn, update_fn)


def _two_loop_states(state: Any) -> list[Any]:
    return common.find_states(state, lambda node: isinstance(node, TWO_LOOP_STATES))


def two_loop_state(state: base.OptState) -> LocalEntropyState | HeatState:
    """Returns the local-entropy (or HEAT) state nested in an optimizer state.

    Use it to read the counts of a two-loop optimizer from a training loop, wherever the
    optimizer sits in an ``optax.chain``, ``inject_hyperparams``, ``MultiSteps`` or
    ``multi_transform`` pipeline.

    Args:
      state: a state containing one :class:`LocalEntropyState` or :class:`HeatState` (several,
        e.g. one per ``multi_transform`` group, advance in lockstep; the first is returned).

    Returns:
      The :class:`LocalEntropyState` or :class:`HeatState`.

    Raises:
      ValueError: if ``state`` holds none.

    Examples:
      >>> import jax.numpy as jnp, optax, entropix
      >>> opt = optax.chain(optax.clip_by_global_norm(1.0), entropix.entropy_sgd(num_inner_steps=4))
      >>> state = entropix.two_loop_state(opt.init(jnp.zeros(2)))
      >>> int(state.num_inner_steps), int(state.outer_count), int(state.inner_count)
      (4, 0, 0)
    """
    found = _two_loop_states(state)
    if not found:
        raise ValueError(
            "No LocalEntropyState or HeatState found in `state`: pass the state of an entropix "
            "two-loop optimizer (entropy_sgd, entropy_adam, hj, heat, local_entropy, parle)."
        )
    return found[0]


def outer_step_count(state: base.OptState) -> jax.Array:
    """The number of outer steps a two-loop optimizer has taken (what its schedules read).

    ``TrainState.step``, ``nnx.Optimizer.step`` and ``optax.inject_hyperparams`` count
    ``update`` calls, which in the step form are inner steps: use this instead.

    Args:
      state: an optimizer state containing a two-loop optimizer's state.

    Returns:
      An int32 scalar.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, entropix
      >>> opt = entropix.entropy_sgd(num_inner_steps=3, noise=0.0)
      >>> params = jnp.ones(2)
      >>> state = opt.init(params)
      >>> for _ in range(7):
      ...   updates, state = opt.update(params, state, params)
      ...   params = optax.apply_updates(params, updates)
      >>> int(entropix.outer_step_count(state)), bool(entropix.is_outer_step(state))
      (2, False)
    """
    return two_loop_state(state).outer_count


def is_outer_step(state: base.OptState) -> jax.Array:
    """Whether the ``update`` that produced ``state`` completed an outer step.

    In the step form this holds after every ``L``-th update; in the compiled form after every
    update. Useful to evaluate, log or checkpoint the anchor exactly when it moves.

    Args:
      state: an optimizer state containing a two-loop optimizer's state.

    Returns:
      A boolean scalar.
    """
    found = two_loop_state(state)
    return (found.inner_count > 0) & (found.inner_count % found.num_inner_steps == 0)


def anchor_params(state: base.OptState, params: Params | None = None) -> Params:
    """Returns the weights to evaluate, the anchor ``x``, from an optimizer state.

    In the step form the live ``params`` are the SGLD walker ``x'`` (or HEAT's perturbed
    weights); tests and metrics must use the anchor instead. ``state`` may be nested in any optax
    pipeline (``chain``, ``inject_hyperparams``, ``MultiSteps``, ``apply_if_finite``). Under
    ``optax.masked`` / ``optax.multi_transform`` each entropix group only holds the anchor of its
    own leaves: pass ``params`` and the leaves of the other groups are taken from it (with
    several entropix groups, each contributes its own leaves). For a state without any two-loop
    optimizer, ``anchor_params(state, params)`` returns ``params``, so one evaluation line serves
    every optimizer.

    Args:
      state: an optimizer state.
      params: the current parameters; needed under ``masked`` / ``multi_transform`` and for
        states without a two-loop optimizer.

    Returns:
      A pytree with the structure of the parameters.

    Raises:
      ValueError: no two-loop state and no ``params``; or masked anchors and no ``params``.

    Examples:
      >>> import jax.numpy as jnp, entropix
      >>> opt = entropix.entropy_sgd(num_inner_steps=2, coupling=0.1)
      >>> state = opt.init({"w": jnp.ones(3)})
      >>> entropix.anchor_params(state)["w"]
      Array([1., 1., 1.], dtype=float32)
    """
    found = _two_loop_states(state)
    if not found:
        if params is not None:
            return params
        two_loop_state(state)  # raises the named error
    if params is None:
        anchor = found[0].anchor
        if any(isinstance(leaf, optax.MaskedNode) for leaf in _leaves_with_masks(anchor)):
            raise ValueError(
                "The optimizer runs under optax.masked or optax.multi_transform, so its anchor "
                "only covers some leaves: call anchor_params(state, params) to fill the others."
            )
        return anchor
    merged = jax.tree.leaves(params)
    for two_loop in found:
        leaves = _leaves_with_masks(two_loop.anchor)
        if len(leaves) != len(merged):
            raise ValueError(
                "`params` does not have the structure of the optimizer's parameters "
                f"({len(merged)} leaves vs {len(leaves)} in the anchor)."
            )
        merged = [
            old if isinstance(new, optax.MaskedNode) else new
            for old, new in zip(merged, leaves, strict=True)
        ]
    return jax.tree.unflatten(jax.tree.structure(params), merged)


def _leaves_with_masks(tree: Params) -> list[Any]:
    return jax.tree.leaves(tree, is_leaf=lambda node: isinstance(node, optax.MaskedNode))


def outer_count_schedule(schedule: base.Schedule, num_inner_steps: int) -> base.Schedule:
    """Converts a schedule of outer steps into one of ``update`` calls of the step form.

    entropix's schedules count outer steps. Wrappers that count ``update`` calls instead —
    ``optax.inject_hyperparams``, or a schedule built from ``TrainState.step`` — call a
    schedule at the inner-step count; wrap it with this function and it sees the outer-step
    count again: ``inject_hyperparams(entropy_sgd)(learning_rate=outer_count_schedule(s, L))``
    equals ``entropy_sgd(learning_rate=s)``. (In the compiled form every call is an outer step
    and no conversion is needed.) One exception: HEAT's ``coupling`` also sets where the *next*
    gradient is taken, so under ``inject_hyperparams`` the last call of an outer step places the
    first perturbation of the next outer step with the value injected for that call (one outer
    step early); its learning rate converts exactly.

    Args:
      schedule: a schedule of the outer-step count.
      num_inner_steps: ``L``, updates per outer step.

    Returns:
      ``call ↦ schedule(call // L)``.

    Examples:
      >>> import optax, entropix
      >>> lr = entropix.outer_count_schedule(optax.linear_schedule(1.0, 0.0, 4), 5)
      >>> [float(lr(call)) for call in (0, 4, 5, 10)]
      [1.0, 1.0, 0.75, 0.5]
    """
    num_inner_steps = validation.check_static_int("num_inner_steps", num_inner_steps)
    if not callable(schedule):
        raise TypeError(f"`schedule` must be callable, got {schedule!r}.")

    def by_call(count):
        return schedule(count // num_inner_steps)

    return by_call
