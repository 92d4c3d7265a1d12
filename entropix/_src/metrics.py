"""Training metrics for tuning local-entropy optimizers."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from entropix._src import loop

Params = Any


class GradientAlignment(NamedTuple):
    """How the local-entropy gradient relates to the SGD gradient.

    Attributes:
      cosine: cosine of the angle between the two gradients.
      angle_degrees: the angle in degrees.
      norm_ratio: ``‖local-entropy gradient‖ / ‖SGD gradient‖``; the papers tune γ so that this
        is of order one.
    """

    cosine: jax.Array
    angle_degrees: jax.Array
    norm_ratio: jax.Array


def gradient_alignment(local_entropy_grad: Params, sgd_grad: Params) -> GradientAlignment:
    r"""Cosine, angle and norm ratio between the local-entropy and the SGD gradients.

    .. math::
      \cos θ = \frac{\langle g_{LE}, g \rangle}{\lVert g_{LE} \rVert\, \lVert g \rVert},
      \qquad r = \frac{\lVert g_{LE} \rVert}{\lVert g \rVert},
      \qquad g_{LE} = γ (x - μ).

    The ICLR'17 paper reports the angle (§5.4.2) and tunes γ by matching the two magnitudes.

    Args:
      local_entropy_grad: ``γ (x − μ)`` (e.g. from :func:`local_entropy_gradient`).
      sgd_grad: the back-propagated gradient at the anchor.

    Returns:
      A :class:`GradientAlignment`.

    Examples:
      >>> import jax.numpy as jnp, entropix
      >>> out = entropix.gradient_alignment(jnp.array([1.0, 0.0]), jnp.array([1.0, 1.0]))
      >>> round(float(out.angle_degrees), 3)
      45.0
    """
    dot = optax.tree.vdot(local_entropy_grad, sgd_grad).astype(jnp.float32)
    norm_le = optax.tree.norm(local_entropy_grad).astype(jnp.float32)
    norm_sgd = optax.tree.norm(sgd_grad).astype(jnp.float32)
    tiny = jnp.finfo(jnp.float32).tiny
    cosine = jnp.clip(dot / jnp.maximum(norm_le * norm_sgd, tiny), -1.0, 1.0)
    return GradientAlignment(
        cosine=cosine,
        angle_degrees=jnp.degrees(jnp.arccos(cosine)),
        norm_ratio=norm_le / jnp.maximum(norm_sgd, tiny),
    )


def local_entropy_gradient(state: Any, *, coupling: Any = None) -> Params:
    r"""The running local-entropy gradient estimate ``x − μ`` (or ``γ (x − μ)``) of a state.

    Between inner steps of an Entropy-SGD / HJ optimizer the state holds the anchor ``x`` and the
    walker average ``μ`` so far; this returns the gradient the outer step would use now.

    Args:
      state: an optimizer state containing a :class:`entropix.LocalEntropyState`.
      coupling: ``γ`` to multiply by (None returns the scaled form ``x − μ``).

    Returns:
      A pytree shaped like the parameters.

    Examples:
      >>> import jax.numpy as jnp, entropix
      >>> state = entropix.entropy_sgd(num_inner_steps=4).init(jnp.ones(2))
      >>> entropix.local_entropy_gradient(state, coupling=0.1)
      Array([0., 0.], dtype=float32)
    """
    found = loop.two_loop_state(state)
    if not isinstance(found, loop.LocalEntropyState):
        raise ValueError(
            f"`state` holds a {type(found).__name__}, whose average is not a walker average: "
            "the local-entropy gradient x − μ exists for entropy_sgd, entropy_adam, hj, "
            "local_entropy and parle states only."
        )
    difference = jax.tree.map(jnp.subtract, found.anchor, found.walker_average)
    if coupling is None:
        return difference
    return jax.tree.map(lambda d: jnp.asarray(coupling, d.dtype) * d, difference)
