"""Driving entropix optimizers from Flax's ``TrainState``.

``flax.training.train_state.TrainState.apply_gradients(grads=..., **kwargs)`` hands its extra
keyword arguments to ``.replace`` (they are new field values), never to ``tx.update``, so it
cannot pass the ``grad_fn`` that the compiled form of a two-loop optimizer needs.
:func:`apply_gradients` is the same step with the extra arguments going to ``tx.update``.
(``flax.nnx.Optimizer.update(model, grads, **kwargs)`` already forwards them.)
"""

from __future__ import annotations

from typing import Any

import optax


def apply_gradients(state: Any, grads: Any, **extra_args: Any) -> Any:
    """``state.apply_gradients(grads=grads)`` with ``extra_args`` passed to ``state.tx.update``.

    Use it to drive the compiled form (``extra_args = {"grad_fn": grad_fn}``: one call is one
    whole outer step of ``L`` gradient evaluations) or a transformation that needs ``value=``.
    ``state.step`` then counts outer steps in the compiled form and inner steps in the step
    form; ``state.params`` is the walker in the step form and the anchor after a compiled
    update — evaluate ``entropix.anchor_params(state.opt_state, state.params)`` in both.

    Args:
      state: a ``flax.training.train_state.TrainState`` (or any dataclass with ``step``,
        ``params``, ``tx``, ``opt_state`` and ``replace``).
      grads: the gradient at ``state.params`` (minibatch 0 of the outer step in the compiled
        form).
      **extra_args: keyword arguments of ``tx.update`` (e.g. ``grad_fn``, ``value``).

    Returns:
      The new state, ``step`` incremented by one.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, entropix
      >>> from flax.training.train_state import TrainState
      >>> from entropix.models import apply_gradients
      >>> loss = lambda p, i: jnp.sum((p["w"] - i) ** 2)
      >>> tx = entropix.entropy_sgd(0.5, num_inner_steps=4, noise=0.0, compiled=True)
      >>> state = TrainState.create(apply_fn=None, params={"w": jnp.zeros(2)}, tx=tx)
      >>> grad_fn = lambda p, i: jax.grad(loss)(p, i.astype(jnp.float32))
      >>> state = apply_gradients(state, grad_fn(state.params, jnp.array(0)), grad_fn=grad_fn)
      >>> int(state.step), int(entropix.outer_step_count(state.opt_state))
      (1, 1)
    """
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params, **extra_args)
    params = optax.apply_updates(state.params, updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state)
