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

These are the pieces of the runner's language-model task
(:data:`entropix.experiments.tasks.LANGUAGE_MODEL`, chosen when ``seq_len > 0``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from entropix import data
from entropix.experiments.config_base import ConfigError


def is_language_model(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` describes a language-model experiment (``seq_len > 0``)."""
    return int(config.get("seq_len") or 0) > 0


def is_token_stream(dataset) -> bool:
    """Whether ``dataset`` is a token stream (it has a vocabulary)."""
    return getattr(dataset, "vocab", None) is not None


def check_task(config: Mapping[str, Any], dataset, model) -> None:
    """Rejects data, augmentation or a model a language model cannot train on, naming the fix."""
    if not is_token_stream(dataset):
        raise ConfigError(
            f"seq_len={config['seq_len']} asks for a language model, but dataset "
            f"{dataset.name!r} is not a token stream (use ptb, text or tiny_shakespeare)."
        )
    if str(config.get("augment", "none")) != "none":
        raise ConfigError(
            f"augment={config['augment']!r} transforms images; a language model reads tokens "
            "(use augment='none')."
        )
    if not hasattr(model, "unroll"):
        raise ConfigError(
            f"model {config['model']!r} has no `unroll(tokens, carry, train=...)` method; "
            "language-model experiments need a recurrent model such as char-lstm or ptb-lstm."
        )


def training_windows(dataset, batch_size: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The BPTT windows ``(x_windows, y_windows)``, each ``(num_windows, batch_size, seq_len)``,
    of the training stream: what the rounds read."""
    return tuple(
        np.asarray(a)
        for a in data.language_model_batches(dataset.x_train, dataset.y_train, batch_size, seq_len)
    )


def windows(inputs: np.ndarray, targets: np.ndarray, batch_size: int, seq_len: int):
    """BPTT windows ``(num_windows, batch, seq_len)`` of a stream, shrinking the batch (and then
    the window) for streams too short to fill one."""
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


def round_schedule(pools: list[np.ndarray], num_replicas: int) -> Callable:
    """``schedule(seed, first_step, num_steps)`` → ``(windows, resets)`` of a round, stacked
    over replicas when ``num_replicas`` (the seed is unused: a stream is read in order)."""

    def schedule(seed, first_step, num_steps):
        del seed
        per_pool = [window_schedule(pool, first_step, num_steps) for pool in pools]
        windows, resets = (np.stack(parts) for parts in zip(*per_pool, strict=True))
        return (windows, resets) if num_replicas else (windows[0], resets[0])

    return schedule


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


def train_loss(model) -> Callable:
    """The loss of one training step: the next window, from the carried recurrent state.

    ``loss(params, model_state, hidden, (x_windows, y_windows), (window, reset), rng)`` returns
    ``(loss per token, (model_state, hidden after the window))``; the state is reset to zero
    first where ``reset``. The training loop differentiates it and carries the new state (with
    no gradient into the past: truncated BPTT).
    """
    # Imported on use: entropix.models needs Flax, and entropix.experiments must import without
    # the examples extra so that the CLI can name what is missing.
    from entropix.models import cross_entropy_loss

    def loss(params, model_state, hidden, arrays, inputs, rng):
        x_windows, y_windows = arrays
        window, reset = inputs
        hidden = jax.tree.map(lambda h: jnp.where(reset, jnp.zeros_like(h), h), hidden)
        logits, hidden = _unroll(
            model, params, model_state, x_windows[window], hidden, train=True, rng=rng
        )
        return cross_entropy_loss(logits, y_windows[window]), (model_state, hidden)

    return loss


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


def evaluator(dataset, model, *, train_examples: int, batch_size: int, seq_len: int) -> Callable:
    """``evaluate(weights, model_state)`` → loss per token, error and perplexity of the first
    ``train_examples`` training tokens, the test stream and the validation stream if any.

    Each stream is read in ``batch_size`` parallel rows of windows of ``seq_len`` tokens
    (:func:`windows`), the state carried across windows.
    """
    stream_eval = eval_fn(model)
    streams = {
        "train": (dataset.x_train[:train_examples], dataset.y_train[:train_examples]),
        "test": (dataset.x_test, dataset.y_test),
    }
    if getattr(dataset, "x_valid", None) is not None and len(dataset.x_valid):
        streams["valid"] = (dataset.x_valid, dataset.y_valid)
    split_windows = {k: windows(x, y, batch_size, seq_len) for k, (x, y) in streams.items()}

    def evaluate(weights, state):
        record = {}
        for split, stream in split_windows.items():
            loss, error = stream_eval(weights, state, stream)
            prefix = "train_eval" if split == "train" else split
            record[f"{prefix}_loss"] = loss
            record[f"{split}_error"] = error
            record[f"{split}_perplexity"] = math.exp(min(loss, 700.0))
        return record

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
