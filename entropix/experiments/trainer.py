"""The training loop: any optimizer, any classification benchmark, checkpoints and metrics.

Training runs in *rounds*: one jitted call performs ``round_length`` optimizer updates (a
``lax.scan`` of train steps, vmapped over replicas for the replica methods) on minibatches
gathered on the device from the training set. Rounds end on outer-step boundaries, so the
weights to evaluate — the anchor of a local-entropy method, the replica mean of a replica
method — are always well defined. Progress is counted in gradient evaluations per replica and
reported in *effective epochs* (gradient evaluations / minibatches per epoch).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from entropix._src import loop
from entropix.experiments import optimizers as optimizer_registry
from entropix.experiments.metrics_log import MetricsLog

AXIS = "replicas"


class NonFiniteError(FloatingPointError):
    """Raised when the loss or the weights become non-finite during training."""


class TrainResult(NamedTuple):
    """What :func:`train` returns.

    Attributes:
      history: the evaluation records (dicts), in order.
      params: the evaluation weights (anchor / replica mean) at the end.
      model_state: the model's non-parameter state (BatchNorm statistics) matching ``params``.
      model: the Flax module.
      dataset: the host dataset.
      spec: the optimizer spec.
    """

    history: list[dict[str, Any]]
    params: Any
    model_state: Any
    model: Any
    dataset: Any
    spec: optimizer_registry.OptimizerSpec


def check_workdir(workdir: str | os.PathLike) -> pathlib.Path:
    """Creates ``workdir`` and proves it writable before any training starts."""
    path = pathlib.Path(workdir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise PermissionError(
            f"workdir {str(path)!r} is not writable ({err.strerror}); choose another --workdir."
        ) from err
    return path


def build_model(name: str, model_kwargs: Mapping[str, Any], num_classes: int):
    """Returns the Flax model: ``"mlp"`` (any widths) or a name of ``entropix.models``."""
    import inspect

    from entropix import models

    kwargs = dict(model_kwargs)
    if name == "mlp":
        kwargs["features"] = tuple(kwargs.get("features", (100, 100)))
        return models.MLP(num_classes=num_classes, **kwargs)
    factory = models.get_model_factory(name)
    if "num_classes" in inspect.signature(factory).parameters:
        kwargs.setdefault("num_classes", num_classes)
    return models.get_model(name, **kwargs)


def load_data(config: Mapping[str, Any]):
    """Loads the dataset named in ``config`` (see :func:`entropix.data.load_dataset`)."""
    from entropix import data

    return data.load_dataset(
        config["dataset"],
        data_dir=config.get("data_dir") or None,
        preprocessing=config.get("preprocessing", "default"),
        **dict(config.get("dataset_kwargs") or {}),
    )


def cross_entropy(logits, labels):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))


class Setup(NamedTuple):
    """Everything a run needs besides its mutable state."""

    model: Any
    dataset: Any
    spec: optimizer_registry.OptimizerSpec
    steps_per_epoch: int
    pools: list[np.ndarray]
    round_fn: Callable
    eval_fn: Callable


def _train_loss(model, has_state):
    def loss(params, model_state, batch, rng):
        inputs, labels = batch
        variables = {"params": params, **model_state}
        if has_state:
            logits, new_state = model.apply(
                variables, inputs, train=True, rngs={"dropout": rng}, mutable=list(model_state)
            )
            return cross_entropy(logits, labels), dict(new_state)
        logits = model.apply(variables, inputs, train=True, rngs={"dropout": rng})
        return cross_entropy(logits, labels), model_state

    return loss


def _round_fn(model, has_state, transform, num_replicas):
    loss = _train_loss(model, has_state)

    def step(carry, inputs):
        params, model_state, opt_state, x_train, y_train = carry
        indices, rng = inputs
        batch = (x_train[indices], y_train[indices])
        (value, model_state), grads = jax.value_and_grad(loss, has_aux=True)(
            params, model_state, batch, rng
        )
        updates, opt_state = transform.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, model_state, opt_state, x_train, y_train), value

    def run(params, model_state, opt_state, x_train, y_train, indices, rngs):
        carry = (params, model_state, opt_state, x_train, y_train)
        (params, model_state, opt_state, _, _), losses = jax.lax.scan(step, carry, (indices, rngs))
        finite = jnp.all(jnp.isfinite(losses))
        for leaf in jax.tree.leaves(params):
            finite &= jnp.all(jnp.isfinite(leaf))
        return params, model_state, opt_state, jnp.mean(losses), finite

    if num_replicas:
        run = jax.vmap(run, in_axes=(0, 0, 0, None, None, 0, 0), axis_name=AXIS)
    return jax.jit(run, donate_argnums=(0, 1, 2))


def _eval_fn(model):
    @jax.jit
    def chunk_sums(params, model_state, inputs, labels):
        logits = model.apply({"params": params, **model_state}, inputs, train=False)
        log_probs = jax.nn.log_softmax(logits)
        nll = -jnp.take_along_axis(log_probs, labels[:, None], axis=1)[:, 0]
        return jnp.sum(nll), jnp.sum(jnp.argmax(logits, -1) != labels)

    def evaluate(params, model_state, inputs, labels, chunk=2048):
        loss_sum, errors = 0.0, 0
        for start in range(0, len(inputs), chunk):
            part = slice(start, start + chunk)
            s, e = chunk_sums(params, model_state, inputs[part], labels[part])
            loss_sum, errors = loss_sum + float(s), errors + int(e)
        return loss_sum / len(inputs), errors / len(inputs)

    return evaluate


def evaluation_weights(spec, params, model_state, opt_state):
    """The weights to evaluate: anchor of a local-entropy method, replica mean of replicas."""
    found = loop.find_local_entropy_state(opt_state)
    weights = found.anchor if found is not None else params
    if spec.num_replicas:
        weights = jax.tree.map(lambda w: jnp.mean(w, axis=0), weights)
        model_state = jax.tree.map(lambda s: jnp.mean(s, axis=0), model_state)
    return weights, model_state


def _pools(num_train, spec, seed):
    if not spec.num_replicas:
        return [np.arange(num_train)]
    if spec.split_data is None:
        return [np.arange(num_train)] * spec.num_replicas
    from entropix import data

    shards = data.replica_shards(
        jax.random.PRNGKey(seed + 7919), num_train, spec.num_replicas, spec.split_data
    )
    return [np.asarray(s) for s in shards]


def minibatch_indices(pool, seed, replica, first_step, num_steps, batch_size):
    """Indices of ``num_steps`` minibatches from ``first_step`` on, epoch by epoch.

    Each epoch is a fresh permutation of ``pool`` seeded by (seed, replica, epoch), so any
    round can be regenerated exactly — which is what makes resuming exact.
    """
    per_epoch = len(pool) // batch_size
    out = np.empty((num_steps, batch_size), np.int32)
    cached_epoch, order = None, None
    for i in range(num_steps):
        epoch, position = divmod(first_step + i, per_epoch)
        if epoch != cached_epoch:
            order = np.random.default_rng([seed, replica, epoch]).permutation(len(pool))
            cached_epoch = epoch
        out[i] = pool[order[position * batch_size : (position + 1) * batch_size]]
    return out


def setup(config: Mapping[str, Any], optimizer: Mapping[str, Any], dataset=None) -> Setup:
    """Builds model, data pools, optimizer and the compiled round/eval functions."""
    dataset = dataset if dataset is not None else load_data(config)
    batch_size = int(config["batch_size"])
    steps_per_epoch = max(1, dataset.num_train // batch_size)
    model_kwargs = {
        **dict(config.get("model_kwargs") or {}),
        **dict(optimizer.get("model_kwargs") or {}),
    }
    model = build_model(config["model"], model_kwargs, dataset.num_classes)
    spec = optimizer_registry.build_optimizer(
        optimizer,
        steps_per_epoch=steps_per_epoch,
        min_round_length=int(config.get("min_round_length", 10)),
        seed=int(config["seed"]),
    )
    pools = _pools(dataset.num_train, spec, int(config["seed"]))
    if min(len(p) for p in pools) < batch_size:
        raise ValueError(
            f"batch_size={batch_size} exceeds the examples available to a replica "
            f"({min(len(p) for p in pools)})."
        )
    has_state = bool(model_state_shapes(model, dataset))
    return Setup(
        model=model,
        dataset=dataset,
        spec=spec,
        steps_per_epoch=steps_per_epoch,
        pools=pools,
        round_fn=_round_fn(model, has_state, spec.transform, spec.num_replicas),
        eval_fn=_eval_fn(model),
    )


def init_state(s: Setup, seed: int):
    """Initial (params, model_state, opt_state) with replicas stacked on a leading axis."""
    sample = jnp.asarray(s.dataset.x_train[:1])
    variables = s.model.init(jax.random.PRNGKey(seed), sample, train=False)
    params = variables["params"]
    model_state = {k: v for k, v in variables.items() if k != "params"}
    if s.spec.num_replicas:
        stack = lambda t: jax.tree.map(  # noqa: E731
            lambda x: jnp.stack([x] * s.spec.num_replicas), t
        )
        params, model_state = stack(params), stack(model_state)
        opt_state = jax.vmap(s.spec.transform.init)(params)
    else:
        opt_state = s.spec.transform.init(params)
    # Some optimizer states alias the params (SAM caches them); rounds donate every buffer.
    return jax.tree.map(lambda x: jnp.array(x, copy=True), (params, model_state, opt_state))


def train(
    config: Mapping[str, Any],
    optimizer: Mapping[str, Any] | None = None,
    *,
    workdir: str | os.PathLike | None = None,
    resume: bool = False,
    quiet: bool = False,
    dataset=None,
    stop_after_rounds: int | None = None,
) -> TrainResult:
    """Trains ``config["model"]`` on ``config["dataset"]`` with one optimizer.

    Args:
      config: the experiment config (see ``configs/``); ``optimizer`` defaults to
        ``config["optimizer"]``.
      optimizer: optimizer entry (``{"name": ..., **kwargs}``).
      workdir: where metrics (``metrics.jsonl``, ``metrics.csv``), checkpoints and plots go;
        None keeps everything in memory.
      resume: continue from the last complete checkpoint in ``workdir``.
      quiet: no progress bar.
      dataset: an already loaded dataset (to share it across runs).
      stop_after_rounds: stop early after this many rounds of this call (for tests of resume).

    Returns:
      A :class:`TrainResult`.

    Raises:
      NonFiniteError: the loss or the weights became non-finite (and ``skip_nonfinite`` is
        off); the message names the step and the last good checkpoint.
    """
    optimizer = dict(optimizer or config["optimizer"])
    seed = int(config["seed"])
    path = check_workdir(workdir) if workdir is not None else None
    s = setup(config, optimizer, dataset)
    spec = s.spec
    batch_size = int(config["batch_size"])
    budget = float(config["budget_epochs"]) * s.steps_per_epoch
    num_rounds = max(1, math.ceil(budget / spec.round_length))
    eval_every = max(
        1, round(float(config["eval_every_epochs"]) * s.steps_per_epoch / spec.round_length)
    )
    checkpoint_every = int(config.get("checkpoint_every_rounds", 0) or 0)
    params, model_state, opt_state = init_state(s, seed)
    first_round = 0
    # Running train-loss sum/count since the last evaluation and skipped rounds: checkpointed,
    # so a resumed run reports exactly what an uninterrupted one does.
    loss_sum, loss_count, skipped = 0.0, 0, 0
    manager = None
    if path is not None:
        from entropix.experiments import checkpoints

        manager = checkpoints.manager(path / "checkpoints")
        if resume:
            like = (params, model_state, opt_state, np.zeros(3))
            restored = checkpoints.restore_latest(manager, like)
            if restored is not None:
                first_round, (params, model_state, opt_state, counters) = restored
                loss_sum, loss_count, skipped = (float(c) for c in counters)
    log = MetricsLog(path)
    x_train = jnp.asarray(s.dataset.x_train)
    y_train = jnp.asarray(s.dataset.y_train)
    train_eval = slice(0, int(config.get("train_eval_examples", 5000)))
    dropout_key = jax.random.PRNGKey(seed + 1)
    num_replicas = max(1, spec.num_replicas)
    progress = _progress(num_rounds, first_round, quiet, spec.label)
    start_time = time.perf_counter()
    last_round = (
        num_rounds
        if stop_after_rounds is None
        else min(num_rounds, first_round + stop_after_rounds)
    )
    for round_index in range(first_round, last_round):
        first_step = round_index * spec.round_length
        indices = np.stack(
            [
                minibatch_indices(s.pools[r], seed, r, first_step, spec.round_length, batch_size)
                for r in range(num_replicas)
            ]
        )
        rngs = _step_keys(dropout_key, first_step, spec.round_length, spec.num_replicas)
        if not spec.num_replicas:
            indices = indices[0]
        previous = (params, model_state, opt_state) if config.get("skip_nonfinite") else None
        if previous is not None:
            previous = jax.tree.map(jnp.copy, previous)
        params, model_state, opt_state, loss, finite = s.round_fn(
            params, model_state, opt_state, x_train, y_train, jnp.asarray(indices), rngs
        )
        if not bool(jnp.all(finite)):
            if previous is None:
                raise NonFiniteError(_nonfinite_message(round_index, spec, manager))
            params, model_state, opt_state = previous
            skipped += 1
        else:
            loss_sum, loss_count = loss_sum + float(jnp.mean(loss)), loss_count + 1
        done = round_index + 1
        if done % eval_every == 0 or done == num_rounds:
            weights, state = evaluation_weights(spec, params, model_state, opt_state)
            record = _evaluate(s, weights, state, train_eval)
            grad_evals = done * spec.round_length
            record.update(
                optimizer=spec.label,
                seed=seed,
                round=done,
                grad_evals=grad_evals,
                effective_epochs=grad_evals / s.steps_per_epoch,
                wall_clock=time.perf_counter() - start_time,
                train_loss=loss_sum / loss_count if loss_count else float("nan"),
                skipped_rounds=skipped,
            )
            loss_sum, loss_count = 0.0, 0
            log.write(record)
            progress.set_postfix(test_error=f"{record['test_error']:.3f}", refresh=False)
        if manager is not None and (
            done == num_rounds or (checkpoint_every and done % checkpoint_every == 0)
        ):
            from entropix.experiments import checkpoints

            counters = np.array([loss_sum, loss_count, skipped], np.float64)
            checkpoints.save(manager, done, (params, model_state, opt_state, counters))
        progress.update(1)
    progress.close()
    if manager is not None:
        manager.wait_until_finished()
    if path is not None:
        (path / "config.json").write_text(
            json.dumps({"config": _jsonable(config), "optimizer": _jsonable(optimizer)}, indent=2)
        )
    weights, state = evaluation_weights(spec, params, model_state, opt_state)
    return TrainResult(log.records, weights, state, s.model, s.dataset, spec)


def _step_keys(key, first_step, length, num_replicas):
    """Dropout keys of the round's steps (one per step, and per replica)."""
    keys = jax.vmap(lambda k: jax.random.fold_in(key, k))(
        jnp.arange(first_step, first_step + length)
    )
    if not num_replicas:
        return keys
    return jax.vmap(lambda r: jax.vmap(lambda k: jax.random.fold_in(k, r))(keys))(
        jnp.arange(num_replicas)
    )


def model_state_shapes(model, dataset) -> dict:
    """The model's non-parameter collections (empty for models without BatchNorm)."""
    shapes = jax.eval_shape(
        lambda x: model.init(jax.random.PRNGKey(0), x, train=False),
        jax.ShapeDtypeStruct((1, *dataset.x_train.shape[1:]), dataset.x_train.dtype),
    )
    return {k: v for k, v in shapes.items() if k != "params"}


def _evaluate(s: Setup, weights, state, train_eval):
    ds = s.dataset
    train_loss, train_error = s.eval_fn(
        weights, state, ds.x_train[train_eval], ds.y_train[train_eval]
    )
    test_loss, test_error = s.eval_fn(weights, state, ds.x_test, ds.y_test)
    return dict(
        train_eval_loss=train_loss,
        train_error=train_error,
        test_loss=test_loss,
        test_error=test_error,
    )


def _nonfinite_message(round_index, spec, manager):
    first = round_index * spec.round_length
    last = first + spec.round_length - 1
    good = "none saved yet"
    if manager is not None and manager.latest_step() is not None:
        good = str(pathlib.Path(manager.directory) / str(manager.latest_step()))
    return (
        f"Non-finite loss or weights in round {round_index + 1} (gradient evaluations "
        f"{first}–{last}) with optimizer {spec.label!r}. Last good checkpoint: {good}. Lower the "
        "learning rate, or set skip_nonfinite=True to skip such rounds."
    )


def _progress(total, initial, quiet, label):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=quiet, desc=label, unit="round", leave=False)


def _jsonable(value):
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
