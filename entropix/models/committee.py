"""Fully connected committee machine of the teacher–student experiments (slides, ICLR'21)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class CommitteeMachine(nn.Module):
    r"""Two-layer committee machine with fixed ±1/√K output weights and no biases.

    .. math::
      \hat y(w, x) = \frac{1}{\sqrt K}\sum_{k=1}^K
                     \phi\Big(\frac{1}{\sqrt N}\sum_{i=1}^N w_{ki} x_i\Big)

    ``activation="sign"`` is the teacher of Pittorino et al. (ICLR 2021), σ̂ = sign(ŷ) with
    φ = sign (tie-free for odd K); ``activation="tanh"`` is the differentiable student surrogate
    of the teacher–student toy (``entropix.toys.committee``), trained with
    ``entropix.models.committee_logistic_loss``. Weights are N(0, 1).

    Attributes:
      num_hidden: K.
      activation: ``"tanh"`` (student) or ``"sign"`` (teacher; output is ±1).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> model = CommitteeMachine(num_hidden=5)
      >>> x = jnp.ones((4, 200))
      >>> variables = model.init(jax.random.key(0), x, train=False)
      >>> variables["params"]["kernel"].shape, model.apply(variables, x, train=False).shape
      ((5, 200), (4,))
    """

    num_hidden: int = 5
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Returns the real output ŷ (tanh) or the label ±1 (sign), shape ``(batch,)``.

        ``train`` is accepted for a uniform model interface; the network has no dropout or BN.
        """
        del train
        if self.activation not in ("tanh", "sign"):
            raise ValueError(
                f"CommitteeMachine: activation={self.activation!r}; use 'tanh' or 'sign'."
            )
        x = jnp.reshape(x, (x.shape[0], -1))
        n = x.shape[-1]
        w = self.param("kernel", nn.initializers.normal(1.0), (self.num_hidden, n))
        h = x @ w.T / jnp.sqrt(n)
        if self.activation == "sign":
            return jnp.sign(jnp.sum(jnp.sign(h), axis=-1))
        return jnp.sum(jnp.tanh(h), axis=-1) / jnp.sqrt(self.num_hidden)
