"""Language-model training: BPTT windows with the LSTM state carried from window to window.

A token stream (``Dataset.x_train`` ids, ``y_train`` next ids) is cut into ``batch_size``
parallel rows and windows of ``seq_len`` tokens (:func:`entropix.data.language_model_batches`);
window ``k + 1`` continues window ``k`` row by row, so the recurrent state after one window is
the initial state of the next (truncated back-propagation through time, Zaremba et al. 2014).
An *epoch* is one pass over the windows, so effective epochs count windows, and the state is
reset to zero wherever the sequence of windows a model reads is not contiguous in the stream:
at the start of the stream and at the wrap-around of a replica's pool.

Replicas read the same windows in the same order but start at different offsets of the stream
(replica ``r`` at window ``r·W/n``), so they see different minibatches at every step, as the
replicas of the image experiments do; ``split_data=f`` gives replica ``r`` a contiguous block
of ``f·W`` windows starting at the same offset (blocks overlap when ``n·f > 1``).

Evaluation runs the whole validation/test stream with the state carried across windows and
reports the loss per token (nats), the next-token error and the perplexity ``exp(loss)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from entropix.experiments.config_base import ConfigError


def is_language_model(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` describes a language-model experiment (``seq_len > 0``)."""
    return int(config.get("seq_len") or 0) > 0


def check_task(config: Mapping[str, Any], dataset, model) -> None:
    """Rejects a config whose task does not match its data or model, naming the fix."""
    stream = getattr(dataset, "vocab", None) is not None
    if is_language_model(config) and not stream:
        raise ConfigError(
            f"seq_len={config['seq_len']} asks for a language model, but dataset "
            f"{dataset.name!r} is not a token stream (use ptb, text or tiny_shakespeare)."
        )
    if not is_language_model(config) and stream:
        raise ConfigError(
            f"dataset {dataset.name!r} is a token stream: set seq_len (the BPTT window, e.g. "
            "--config.seq_len=35) to train a language model on it."
        )
    if is_language_model(config) and str(config.get("augment", "none")) != "none":
        raise ConfigError(
            f"augment={config['augment']!r} transforms images; a language model reads tokens "
            "(use augment='none')."
        )
    if is_language_model(config) and not hasattr(model, "unroll"):
        raise ConfigError(
            f"model {config['model']!r} has no `unroll(tokens, carry, train=...)` method; "
            "language-model experiments need a recurrent model such as char-lstm or ptb-lstm."
        )


def windows(inputs: np.ndarray, targets: np.ndarray, batch_size: int, seq_len: int):
    """BPTT windows ``(num_windows, batch, seq_len)`` of a stream, shrinking the batch (and then
    the window) for streams too short to fill one."""
    from entropix import data

    batch_size = max(1, min(batch_size, len(inputs) // seq_len))
    seq_len = min(seq_len, len(inputs) // batch_size)
    return data.language_model_batches(inputs, targets, batch_size, seq_len)


def window_pools(num_windows: int, num_replicas: int, split_data: float | None) -> list[np.ndarray]:
    """The windows each model reads, in order (one pool without replicas)."""
    if not num_replicas:
        return [np.arange(num_windows)]
    length = num_windows if split_data is None else max(1, round(split_data * num_windows))
    pools = []
    for replica in range(num_replicas):
        start = replica * num_windows // num_replicas
        pools.append((start + np.arange(length)) % num_windows)
    return pools


def window_schedule(pool: np.ndarray, first_step: int, num_steps: int):
    """Windows of steps ``first_step …`` and whether each starts from a zero state."""
    positions = (first_step + np.arange(num_steps)) % len(pool)
    current = pool[positions]
    previous = pool[(positions - 1) % len(pool)]
    # The state before a model's first step is zero already (it is initialised so).
    return current.astype(np.int32), current != previous + 1


def _unroll(model, params, model_state, tokens, hidden, *, train, rng=None):
    rngs = {"dropout": rng} if rng is not None else None
    return model.apply(
        {"params": params, **model_state},
        tokens,
        hidden,
        train=train,
        rngs=rngs,
        method=model.unroll,
    )


def train_step(model, transform) -> Callable:
    """The scan body of a round: one update on the next window, carrying the recurrent state.

    Carry ``(params, model_state, opt_state, hidden, x_windows, y_windows)``, per-step inputs
    ``(window, reset, rng)``; the training loop compiles it into rounds.
    """
    from entropix.models import cross_entropy_loss

    def loss(params, model_state, batch, rng, hidden):
        inputs, targets = batch
        logits, hidden = _unroll(model, params, model_state, inputs, hidden, train=True, rng=rng)
        return cross_entropy_loss(logits, targets), hidden

    def step(carry, inputs):
        params, model_state, opt_state, hidden, x_windows, y_windows = carry
        window, reset, rng = inputs
        hidden = jax.tree.map(lambda h: jnp.where(reset, jnp.zeros_like(h), h), hidden)
        batch = (x_windows[window], y_windows[window])
        (value, hidden), grads = jax.value_and_grad(loss, has_aux=True)(
            params, model_state, batch, rng, hidden
        )
        updates, opt_state = transform.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        hidden = jax.lax.stop_gradient(hidden)  # truncated BPTT: no gradient into the past
        return (params, model_state, opt_state, hidden, x_windows, y_windows), value

    return step


def eval_fn(model) -> Callable:
    """``evaluate(params, model_state, (x_windows, y_windows)) -> (loss/token, error)``."""

    @jax.jit
    def stream_sums(params, model_state, x_windows, y_windows):
        def body(hidden, window):
            inputs, targets = window
            logits, hidden = _unroll(model, params, model_state, inputs, hidden, train=False)
            nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
            return hidden, (jnp.sum(nll), jnp.sum(jnp.argmax(logits, -1) != targets))

        hidden = model.initial_carry(x_windows.shape[1])
        _, (nll, errors) = jax.lax.scan(body, hidden, (x_windows, y_windows))
        return jnp.sum(nll), jnp.sum(errors)

    def evaluate(params, model_state, stream_windows):
        x_windows, y_windows = stream_windows
        nll, errors = stream_sums(params, model_state, x_windows, y_windows)
        return float(nll) / x_windows.size, int(errors) / x_windows.size

    return evaluate


def sequences(inputs: np.ndarray, targets: np.ndarray, count: int, seq_len: int):
    """``count`` sequences of ``seq_len`` tokens from the start of a stream (fewer if short),
    each read from a zero state: the batch of the landscape diagnostics."""
    count = max(1, min(count, len(inputs) // seq_len))
    cut = count * seq_len
    return (
        jnp.asarray(inputs[:cut]).reshape(count, seq_len),
        jnp.asarray(targets[:cut]).reshape(count, seq_len),
    )
