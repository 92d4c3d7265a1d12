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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax
from optax._src import base

from entropix._src import validation

Params = Any


class LocalEntropyState(NamedTuple):
    """State of a local-entropy optimizer.

    Attributes:
      count: number of inner steps (gradient evaluations) taken so far.
      anchor: the anchor ``x`` of the current outer step — the weights to evaluate.
      average: what the inner steps accumulate (the walker average ``μ`` for SGLD, the
        gradient average for HEAT).
      inner_state: state of the inner rule (e.g. its momentum), reset every outer step.
      outer_state: state of the outer optax transformation.
      key: PRNG key; the noise of inner step ``k`` is drawn from ``fold_in(key, k)``.
    """

    count: jax.Array
    anchor: Params
    average: Params
    inner_state: base.OptState
    outer_state: base.OptState
    key: jax.Array


class InnerRule(NamedTuple):
    """How inner steps move the walker and what the outer step descends.

    Attributes:
      reset: ``reset(anchor) -> (average, inner_state)`` at the start of every outer step.
      step: ``step(grads, walker, anchor, average, inner_state, key, outer_count)
        -> (walker, average, inner_state)``, one inner step on ``grads`` taken at ``walker``.
      place_walker: ``place_walker(anchor, key, outer_count) -> walker``, the walker's first
        position in an outer step (the anchor for SGLD, a Gaussian perturbation for HEAT).
      outer_gradient: ``outer_gradient(anchor, average, outer_count) -> grads`` fed to the outer
        optax transformation.
    """

    reset: Callable[[Params], tuple[Params, base.OptState]]
    step: Callable[..., tuple[Params, Params, base.OptState]]
    place_walker: Callable[[Params, jax.Array, jax.Array], Params]
    outer_gradient: Callable[[Params, Params, jax.Array], Params]


class GradFn(Protocol):
    """``grad_fn(params, i)``: gradient of the loss on the ``i``-th minibatch of the group."""

    def __call__(self, params: Params, index: jax.Array) -> Params: ...


def as_key(key: int | jax.Array) -> jax.Array:
    """Returns a raw ``uint32[2]`` PRNG key from an int seed or any JAX key."""
    if isinstance(key, int) or (hasattr(key, "dtype") and jnp.issubdtype(key.dtype, jnp.integer)):
        if jnp.ndim(key) == 0:
            return jax.random.PRNGKey(key)
        return jnp.asarray(key, jnp.uint32)
    return jax.random.key_data(key)


def step_key(key: jax.Array, count: jax.Array, stream: int) -> jax.Array:
    """The key of inner step ``count`` for one random stream of a rule."""
    return jax.random.fold_in(jax.random.fold_in(key, count), stream)


def _copy_or_zeros(leaf):
    # A ShapeDtypeStruct has no values: only shapes and dtypes matter for abstract init.
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return jnp.zeros(leaf.shape, leaf.dtype)
    return jnp.array(leaf, copy=True)


def _outer_step(rule, outer, anchor, average, outer_state, outer_count):
    outer_grads = rule.outer_gradient(anchor, average, outer_count)
    outer_updates, outer_state = outer.update(outer_grads, outer_state, anchor)
    new_anchor = optax.apply_updates(anchor, outer_updates)
    return new_anchor, outer_state


def two_loop(
    rule: InnerRule,
    outer: base.GradientTransformation,
    *,
    num_inner_steps: int,
    key: int | jax.Array,
    compiled: bool,
) -> base.GradientTransformationExtraArgs:
    """Builds a local-entropy optimizer from an inner rule and an outer transformation.

    Args:
      rule: the inner rule.
      outer: optax transformation applied to the rule's outer gradient.
      num_inner_steps: ``L ≥ 1``, inner steps (gradient evaluations) per outer step.
      key: PRNG seed or key.
      compiled: the compiled form (one ``update`` = one outer step) instead of the step form.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.
    """
    num_inner_steps = validation.check_static_int("num_inner_steps", num_inner_steps)
    if not isinstance(outer, base.GradientTransformation):
        raise TypeError(
            f"`outer` must be an optax.GradientTransformation, got {type(outer).__name__}."
        )
    base_key = as_key(key)
    outer = base.with_extra_args_support(outer)

    def init_fn(params):
        anchor = jax.tree.map(_copy_or_zeros, params)
        average, inner_state = rule.reset(anchor)
        # Distinct buffers, so the state can be donated to a jitted step.
        average = jax.tree.map(lambda x: jnp.array(x, copy=True), average)
        return LocalEntropyState(
            count=jnp.zeros([], jnp.int32),
            anchor=anchor,
            average=average,
            inner_state=inner_state,
            outer_state=outer.init(anchor),
            key=base_key,
        )

    def finish_outer_step(state, average, count):
        outer_count = state.count // num_inner_steps
        anchor, outer_state = _outer_step(
            rule, outer, state.anchor, average, state.outer_state, outer_count
        )
        average, inner_state = rule.reset(anchor)
        walker = rule.place_walker(anchor, step_key(state.key, count, 1), count // num_inner_steps)
        return walker, state._replace(
            count=count,
            anchor=anchor,
            average=average,
            inner_state=inner_state,
            outer_state=outer_state,
        )

    def step_update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(base.NO_PARAMS_MSG)
        outer_count = state.count // num_inner_steps
        walker, average, inner_state = rule.step(
            updates,
            params,
            state.anchor,
            state.average,
            state.inner_state,
            step_key(state.key, state.count, 0),
            outer_count,
        )
        count = state.count + 1

        def carry_on():
            return walker, state._replace(count=count, average=average, inner_state=inner_state)

        walker, state = jax.lax.cond(
            count % num_inner_steps == 0,
            lambda: finish_outer_step(state._replace(inner_state=inner_state), average, count),
            carry_on,
        )
        return jax.tree.map(jnp.subtract, walker, params), state

    def compiled_update(updates, state, params=None, *, grad_fn: GradFn | None = None, **extra):
        del extra
        if params is None:
            raise ValueError(base.NO_PARAMS_MSG)
        if grad_fn is None:
            raise TypeError(
                "The compiled form needs `grad_fn`: call update(grads, state, params, "
                "grad_fn=grad_fn) with grad_fn(params, i) the gradient on minibatch i of the "
                f"group (i = 1 … {num_inner_steps - 1}; `grads` is minibatch 0 at params)."
            )
        outer_count = state.count // num_inner_steps

        def inner_step(carry, index, grads):
            walker, average, inner_state = carry
            return rule.step(
                grads,
                walker,
                state.anchor,
                average,
                inner_state,
                step_key(state.key, state.count + index, 0),
                outer_count,
            )

        carry = inner_step((params, state.average, state.inner_state), 0, updates)

        def scan_body(carry, index):
            return inner_step(carry, index, grad_fn(carry[0], index)), None

        carry, _ = jax.lax.scan(scan_body, carry, jnp.arange(1, num_inner_steps))
        _, average, inner_state = carry
        count = state.count + num_inner_steps
        walker, state = finish_outer_step(state._replace(inner_state=inner_state), average, count)
        return jax.tree.map(jnp.subtract, walker, params), state

    update_fn = compiled_update if compiled else step_update
    return base.GradientTransformationExtraArgs(init_fn, update_fn)


def anchor_params(state: base.OptState) -> Params:
    """Returns the anchor weights ``x`` to evaluate from a local-entropy optimizer state.

    Searches ``state`` (possibly nested in ``optax.chain`` / ``inject_hyperparams`` states) for
    the :class:`LocalEntropyState` and returns its anchor. In the step form the live ``params``
    are the SGLD walker ``x'``; tests and metrics must use the anchor instead.

    Examples:
      >>> import jax.numpy as jnp, entropix
      >>> opt = entropix.entropy_sgd(num_inner_steps=2, coupling=0.1)
      >>> state = opt.init({"w": jnp.ones(3)})
      >>> entropix.anchor_params(state)["w"]
      Array([1., 1., 1.], dtype=float32)

    Args:
      state: an optimizer state containing one :class:`LocalEntropyState`.

    Returns:
      The anchor pytree.
    """
    found = find_local_entropy_state(state)
    if found is None:
        raise ValueError(
            "No LocalEntropyState found in `state`: pass the state of an entropix "
            "local-entropy optimizer (entropy_sgd, entropy_adam, hj, heat, local_entropy)."
        )
    return found.anchor


def find_local_entropy_state(state: Any) -> LocalEntropyState | None:
    """Returns the first :class:`LocalEntropyState` nested in ``state``, or None."""
    if isinstance(state, LocalEntropyState):
        return state
    if isinstance(state, (tuple, list)):
        for child in state:
            found = find_local_entropy_state(child)
            if found is not None:
                return found
    if isinstance(state, dict):
        for child in state.values():
            found = find_local_entropy_state(child)
            if found is not None:
                return found
    return None
