"""LSTM language models: char-LSTM (Karpathy et al.) and PTB-LSTM (Zaremba et al. 2014, large)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# Per layer: (c, h), each (batch, hidden).
Carry = tuple[tuple[jax.Array, jax.Array], ...]


class LSTMLayer(nn.Module):
    """One LSTM layer over a whole sequence, gates fused as ``[i, f, g, o]``.

    The input projection of all time steps is one matrix product outside the time loop; only
    the recurrent product runs inside ``jax.lax.scan``. The first layer of a one-hot model
    receives ``token ids`` and gathers rows of the input kernel (identical to a one-hot matmul).

    Attributes:
      hidden_size: number of units.
      vocab_size: if set, inputs are token ids and the input kernel is a ``(vocab, 4H)`` table.
      input_bias: add a second bias to the input projection (PyTorch/Torch-style LSTMs have two).
      kernel_init: initializer of the input and hidden kernels.
      bias_init: initializer of the biases.
    """

    hidden_size: int
    vocab_size: int | None = None
    input_bias: bool = False
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros

    @nn.compact
    def __call__(
        self, xs: jax.Array, carry: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """Runs the layer on ``xs`` ``(batch, T[, features])``; returns ``(hs, final_carry)``."""
        gates = 4 * self.hidden_size
        if self.vocab_size is not None:
            table = self.param("input_kernel", self.kernel_init, (self.vocab_size, gates))
            gx = jnp.take(table, xs, axis=0)
        else:
            w_in = self.param("input_kernel", self.kernel_init, (xs.shape[-1], gates))
            gx = xs @ w_in
        if self.input_bias:
            gx = gx + self.param("input_bias", self.bias_init, (gates,))
        w_h = self.param("hidden_kernel", self.kernel_init, (self.hidden_size, gates))
        b_h = self.param("bias", self.bias_init, (gates,))

        def step(state, gx_t):
            c, h = state
            i, f, g, o = jnp.split(gx_t + h @ w_h + b_h, 4, axis=-1)
            c = nn.sigmoid(f) * c + nn.sigmoid(i) * jnp.tanh(g)
            h = nn.sigmoid(o) * jnp.tanh(c)
            return (c, h), h

        carry, hs = jax.lax.scan(step, carry, jnp.swapaxes(gx, 0, 1))
        return jnp.swapaxes(hs, 0, 1), carry


class LSTMLanguageModel(nn.Module):
    """Stacked-LSTM next-token model: tokens → [embed → drop] → (LSTM → [drop])×n → dense.

    Dropout acts on the non-recurrent connections only (Zaremba et al. 2014). With
    ``embed_dim=None`` the inputs are one-hot (Karpathy's char-rnn), realised as a table lookup.

    Parameters: ``embed`` V·E (if any), per layer ``4H·(I + H) + 4H`` (+ ``4H`` with
    ``input_bias``), output ``H·V`` (+ ``V`` with ``output_bias``); I = E, V (one-hot) or H.

    Attributes:
      vocab_size: V.
      hidden_size: H.
      num_layers: number of stacked LSTM layers.
      embed_dim: embedding size E, or None for one-hot inputs.
      dropout: dropout rate on the non-recurrent connections.
      input_bias: second bias vector per layer (Torch/PyTorch LSTM convention).
      output_bias: bias of the output layer.
      init_scale: if set, every weight is drawn from U(−s, s) (Zaremba: 0.04 large, 0.05 medium).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> model = LSTMLanguageModel(vocab_size=20, hidden_size=8, num_layers=2)
      >>> tokens = jnp.zeros((3, 5), jnp.int32)
      >>> variables = model.init(jax.random.key(0), tokens, train=False)
      >>> model.apply(variables, tokens, train=False).shape
      (3, 5, 20)
    """

    vocab_size: int
    hidden_size: int = 128
    num_layers: int = 2
    embed_dim: int | None = None
    dropout: float = 0.0
    input_bias: bool = False
    output_bias: bool = True
    init_scale: float | None = None

    def initial_carry(self, batch_size: int, dtype: Any = jnp.float32) -> Carry:
        """Zero ``(c, h)`` state for every layer."""
        zeros = jnp.zeros((batch_size, self.hidden_size), dtype)
        return tuple((zeros, zeros) for _ in range(self.num_layers))

    @nn.compact
    def unroll(self, tokens: jax.Array, carry: Carry, *, train: bool) -> tuple[jax.Array, Carry]:
        """Runs ``tokens`` ``(batch, T)`` from ``carry``; returns ``(logits (batch, T, V), carry)``.

        Use this to carry the state across consecutive BPTT windows (Zaremba et al.), e.g.
        ``model.apply(variables, x, carry, train=True, method=model.unroll, rngs=...)``.
        """
        if self.init_scale is None:
            kernel_init, bias_init = nn.initializers.lecun_normal(), nn.initializers.zeros
        else:
            kernel_init = bias_init = _symmetric_uniform(self.init_scale)
        x = tokens
        one_hot_vocab = None
        if self.embed_dim is not None:
            x = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=kernel_init)(x)
            x = self._drop(x, train)
        else:
            one_hot_vocab = self.vocab_size
        new_carry = []
        for layer in range(self.num_layers):
            x, c = LSTMLayer(
                self.hidden_size,
                vocab_size=one_hot_vocab if layer == 0 else None,
                input_bias=self.input_bias,
                kernel_init=kernel_init,
                bias_init=bias_init,
            )(x, carry[layer])
            x = self._drop(x, train)
            new_carry.append(c)
        logits = nn.Dense(
            self.vocab_size, use_bias=self.output_bias, kernel_init=kernel_init, bias_init=bias_init
        )(x)
        return logits, tuple(new_carry)

    def _drop(self, x: jax.Array, train: bool) -> jax.Array:
        if not self.dropout:
            return x
        return nn.Dropout(self.dropout, deterministic=not train)(x)

    def __call__(self, tokens: jax.Array, *, train: bool) -> jax.Array:
        """Returns logits ``(batch, T, vocab_size)`` starting from the zero state."""
        return self.unroll(tokens, self.initial_carry(tokens.shape[0]), train=train)[0]


def _symmetric_uniform(scale: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


def char_lstm(
    *, vocab_size: int = 87, hidden_size: int = 128, dropout: float = 0.0
) -> LSTMLanguageModel:
    """char-LSTM (ICLR'17, thesis ch. 3): 2 layers × 128, one-hot characters, unrolled 50 steps.

    Vocabulary 87 for War and Peace; pass ``vocab_size=corpus.num_classes`` for other corpora.
    253,399 parameters for V = 87.

    Args:
      vocab_size: number of distinct characters.
      hidden_size: units per layer.
      dropout: dropout on the non-recurrent connections.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> import jax.numpy as jnp
      >>> count_params(char_lstm(), (1, 50), dtype=jnp.int32)
      253399
    """
    return LSTMLanguageModel(
        vocab_size=vocab_size, hidden_size=hidden_size, num_layers=2, dropout=dropout
    )


def char_lstm_hessian(*, vocab_size: int = 96) -> LSTMLanguageModel:
    """char-lstm of the thesis ch. 3 Hessian experiment: one layer of 48 units, 96 one-hot chars.

    32,640 parameters = 4·48·(96 + 48) + 2·4·48 (two bias vectors) + 48·96 (no output bias),
    one layout that reproduces the stated count (the thesis does not define the layout).

    Args:
      vocab_size: number of characters.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> import jax.numpy as jnp
      >>> count_params(char_lstm_hessian(), (1, 32), dtype=jnp.int32)
      32640
    """
    return LSTMLanguageModel(
        vocab_size=vocab_size,
        hidden_size=48,
        num_layers=1,
        input_bias=True,
        output_bias=False,
    )


def ptb_lstm(
    *,
    vocab_size: int = 10_000,
    hidden_size: int = 1500,
    num_layers: int = 2,
    dropout: float = 0.65,
    init_scale: float = 0.04,
) -> LSTMLanguageModel:
    """PTB-LSTM, Zaremba et al. (2014) "large": 2 × 1500, embedding 1500, dropout 0.65, 35 steps.

    66,034,000 parameters for V = 10,000 (two bias vectors per layer as in Zaremba's Torch code).
    Do not instantiate it casually on a CPU: count it with ``count_params`` (shape-only).

    Args:
      vocab_size: vocabulary size (10k for PTB).
      hidden_size: units per layer (and embedding size).
      num_layers: number of layers.
      dropout: dropout on the non-recurrent connections.
      init_scale: uniform initialisation range.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> import jax.numpy as jnp
      >>> count_params(ptb_lstm(), (1, 35), dtype=jnp.int32)
      66034000
    """
    return LSTMLanguageModel(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        embed_dim=hidden_size,
        dropout=dropout,
        input_bias=True,
        init_scale=init_scale,
    )
