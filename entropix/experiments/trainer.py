"""The training loop: any optimizer, classification or language model, checkpoints and metrics.

Training runs in *rounds*: one jitted call performs ``round_length`` optimizer updates (a
``lax.scan`` of train steps, vmapped over replicas for the replica methods) on minibatches
gathered on the device from the training set (images/features, optionally augmented on the
device), or on consecutive BPTT windows of a token stream with the recurrent state carried
from window to window (``seq_len > 0``, see :mod:`entropix.experiments.sequences`). Rounds
end on outer-step boundaries, so the weights to evaluate — the anchor of a local-entropy
method, the replica mean of a replica method — are always well defined. Progress is counted in
gradient evaluations per replica and reported in *effective epochs* (gradient evaluations /
minibatches, or BPTT windows, per epoch).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import entropix
from entropix.experiments import optimizers as optimizer_registry
from entropix.experiments import sequences
from entropix.experiments.config_base import (
    AUGMENTATIONS,
    ConfigError,
    validate_config,
    validate_optimizer,
)
from entropix.experiments.metrics_log import MetricsLog, read_metrics

AXIS = "replicas"


class NonFiniteError(FloatingPointError):
    """Raised when the loss or the weights become non-finite during training."""


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after finishing a round and saving a checkpoint.

    Attributes:
      signum: the signal number.
      round: the last completed (and checkpointed) round.
      workdir: the run's directory.
    """

    def __init__(self, signum: int, round_index: int, workdir: pathlib.Path | None):
        self.signum, self.round, self.workdir = signum, round_index, workdir
        name = signal.Signals(signum).name
        where = f"; checkpoint of round {round_index} saved in {workdir}" if workdir else ""
        super().__init__(f"interrupted by {name} after round {round_index}{where}")


class TrainResult(NamedTuple):
    """What :func:`train` returns.

    Attributes:
      history: the evaluation records (dicts), in order.
      params: the evaluation weights (anchor / replica mean) at the end.
      model_state: the model's non-parameter state (BatchNorm statistics) matching ``params``.
      model: the Flax module.
      dataset: the host dataset.
      spec: the optimizer spec.
      already_finished: the run (resumed) had already reached its budget; nothing was trained
        or written.
    """

    history: list[dict[str, Any]]
    params: Any
    model_state: Any
    model: Any
    dataset: Any
    spec: optimizer_registry.OptimizerSpec
    already_finished: bool = False


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
    parameters = inspect.signature(factory).parameters
    if "num_classes" in parameters:
        kwargs.setdefault("num_classes", num_classes)
    if "vocab_size" in parameters:
        kwargs.setdefault("vocab_size", num_classes)
    return models.get_model(name, **kwargs)


def load_data(config: Mapping[str, Any]):
    """Loads the dataset named in ``config`` (see :func:`entropix.data.load_dataset`)."""
    from entropix import data

    try:
        return data.load_dataset(
            config["dataset"],
            data_dir=config.get("data_dir") or None,
            preprocessing=config.get("preprocessing", "default"),
            **dict(config.get("dataset_kwargs") or {}),
        )
    except (ValueError, TypeError, FileNotFoundError) as err:
        raise ConfigError(_one_line(f"dataset={config['dataset']!r}: {err}")) from err


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def cross_entropy(logits, labels):
    """Mean cross-entropy over every leading position (examples, or examples × tokens)."""
    from entropix.models import cross_entropy_loss

    return cross_entropy_loss(logits, labels)


def _augmenter(name: str, sample_shape: tuple[int, ...]) -> Callable | None:
    """The on-device augmentation ``augment(key, images)`` named by ``augment`` (None: none)."""
    from entropix import data

    if name not in AUGMENTATIONS:
        raise ConfigError(f"unknown augment={name!r}; valid: {', '.join(AUGMENTATIONS)}.")
    if name == "none":
        return None
    if len(sample_shape) != 3:
        raise ConfigError(
            f"augment={name!r} needs images (H, W, C); the inputs have shape {sample_shape}."
        )

    def augment(key, images):
        flip_key, crop_key = jax.random.split(key)
        if "flip" in name:
            images = data.random_flip(flip_key, images)
        if "crop" in name:
            images = data.random_crop(crop_key, images, padding=4)
        return images

    return augment


class Setup(NamedTuple):
    """Everything a run needs besides its mutable state.

    Attributes:
      model: the Flax module.
      dataset: the host dataset.
      spec: the optimizer spec.
      steps_per_epoch: minibatches (or BPTT windows) per epoch.
      train_arrays: host arrays the rounds gather batches from (uploaded once per run).
      schedule: ``schedule(seed, first_step, num_steps)`` → the round's per-step inputs
        (minibatch indices, or windows and state resets), stacked over replicas.
      round_fn: the jitted round ``(state, arrays, schedule, rngs) -> (state, loss, finite)``.
      evaluate: ``evaluate(weights, model_state)`` → metrics of the evaluation weights.
      sample_input: one input batch of the model (for ``init``).
      initial_hidden: the zero recurrent state of one model (``{}`` for classifiers).
    """

    model: Any
    dataset: Any
    spec: optimizer_registry.OptimizerSpec
    steps_per_epoch: int
    train_arrays: tuple[np.ndarray, np.ndarray]
    schedule: Callable
    round_fn: Callable
    evaluate: Callable
    sample_input: Any
    initial_hidden: Any


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


def compile_round(step: Callable, num_replicas: int) -> Callable:
    """Jits a round: ``lax.scan`` of ``step`` over the round's steps, vmapped over replicas.

    ``step`` carries ``(params, model_state, opt_state, hidden, *train_arrays)``; the round is
    ``run(state, train_arrays, schedule, rngs) -> (state, mean loss, finite)`` with ``state``
    the first four and its buffers donated.
    """

    def run(state, arrays, schedule, rngs):
        carry, losses = jax.lax.scan(step, (*state, *arrays), (*schedule, rngs))
        state = tuple(carry[:4])
        finite = jnp.all(jnp.isfinite(losses))
        for leaf in jax.tree.leaves(state[0]):
            finite &= jnp.all(jnp.isfinite(leaf))
        return state, jnp.mean(losses), finite

    if num_replicas:
        run = jax.vmap(run, in_axes=(0, None, 0, 0), axis_name=AXIS)
    return jax.jit(run, donate_argnums=(0,))


def _classification_step(model, has_state, transform, augment=None):
    loss = _train_loss(model, has_state)

    def step(carry, inputs):
        params, model_state, opt_state, hidden, x_train, y_train = carry
        indices, rng = inputs
        batch_inputs = x_train[indices]
        if augment is not None:
            batch_inputs = augment(jax.random.fold_in(rng, 1), batch_inputs)
        (value, model_state), grads = jax.value_and_grad(loss, has_aux=True)(
            params, model_state, (batch_inputs, y_train[indices]), rng
        )
        updates, opt_state = transform.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, model_state, opt_state, hidden, x_train, y_train), value

    return step


def _eval_fn(model):
    @jax.jit
    def chunk_sums(params, model_state, inputs, labels):
        logits = model.apply({"params": params, **model_state}, inputs, train=False)
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        return jnp.sum(nll), jnp.sum(jnp.argmax(logits, -1) != labels)

    def evaluate(params, model_state, inputs, labels, chunk=2048):
        loss_sum, errors = 0.0, 0
        for start in range(0, len(inputs), chunk):
            part = slice(start, start + chunk)
            s, e = chunk_sums(params, model_state, inputs[part], labels[part])
            loss_sum, errors = loss_sum + float(s), errors + int(e)
        return loss_sum / len(inputs), errors / len(inputs)

    return evaluate


def evaluation_weights(params, model_state, opt_state, num_replicas):
    """The weights to evaluate: anchor of a local-entropy method, replica mean of replicas."""
    weights = entropix.anchor_params(opt_state, params)
    if num_replicas:
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
    """Builds model, data schedule, optimizer and the compiled round/eval functions.

    Raises:
      ConfigError: the data fail :func:`entropix.data.dataset.check_dataset`, or the optimizer
        entry, model or task do not fit (one line naming the key and the fix).
    """
    from entropix.data.dataset import check_dataset

    dataset = dataset if dataset is not None else load_data(config)
    try:
        check_dataset(dataset)
    except ValueError as err:
        raise ConfigError(_one_line(f"dataset={config.get('dataset')!r}: {err}")) from err
    batch_size = int(config["batch_size"])
    language_model = sequences.is_language_model(config)
    model_kwargs = {
        **dict(config.get("model_kwargs") or {}),
        **dict(optimizer.get("model_kwargs") or {}),
    }
    model = build_model(config["model"], model_kwargs, dataset.num_classes)
    sequences.check_task(config, dataset, model)
    if language_model:
        seq_len = int(config["seq_len"])
        from entropix import data

        train_arrays = tuple(
            np.asarray(a)
            for a in data.language_model_batches(
                dataset.x_train, dataset.y_train, batch_size, seq_len
            )
        )
        steps_per_epoch = len(train_arrays[0])
        sample_input = jnp.zeros((1, seq_len), jnp.int32)
    else:
        train_arrays = (dataset.x_train, dataset.y_train)
        steps_per_epoch = max(1, dataset.num_train // batch_size)
        sample_input = jnp.asarray(dataset.x_train[:1])
    try:
        spec = optimizer_registry.build_optimizer(
            optimizer,
            steps_per_epoch=steps_per_epoch,
            min_round_length=int(config.get("min_round_length", 10)),
            seed=int(config["seed"]),
        )
    except (ValueError, TypeError) as err:
        raise ConfigError(_one_line(f"optimizer {optimizer.get('name')!r}: {err}")) from err
    has_state = bool(model_state_shapes(model, sample_input))
    if language_model:
        if has_state:
            raise ConfigError("language models with BatchNorm statistics are not supported.")
        pools = sequences.window_pools(steps_per_epoch, spec.num_replicas, spec.split_data)
        schedule = _window_schedule(pools, spec.num_replicas)
        step = sequences.train_step(model, spec.transform)
        initial_hidden = model.initial_carry(len(train_arrays[0][0]))
    else:
        pools = _pools(dataset.num_train, spec, int(config["seed"]))
        if min(len(p) for p in pools) < batch_size:
            available = min(len(p) for p in pools)
            raise ConfigError(
                f"batch_size={batch_size} exceeds the examples available to a replica "
                f"({available}); set --config.batch_size={available} or less."
            )
        schedule = _minibatch_schedule(pools, batch_size, spec.num_replicas)
        augment = _augmenter(str(config.get("augment", "none")), dataset.x_train.shape[1:])
        step = _classification_step(model, has_state, spec.transform, augment)
        initial_hidden = {}
    return Setup(
        model=model,
        dataset=dataset,
        spec=spec,
        steps_per_epoch=steps_per_epoch,
        train_arrays=train_arrays,
        schedule=schedule,
        round_fn=compile_round(step, spec.num_replicas),
        evaluate=_evaluator(config, dataset, model, language_model),
        sample_input=sample_input,
        initial_hidden=initial_hidden,
    )


def _minibatch_schedule(pools, batch_size, num_replicas):
    def schedule(seed, first_step, num_steps):
        indices = np.stack(
            [
                minibatch_indices(pool, seed, r, first_step, num_steps, batch_size)
                for r, pool in enumerate(pools)
            ]
        )
        return (indices if num_replicas else indices[0],)

    return schedule


def _window_schedule(pools, num_replicas):
    def schedule(seed, first_step, num_steps):
        del seed  # the windows of a stream are read in order
        per_pool = [sequences.window_schedule(pool, first_step, num_steps) for pool in pools]
        windows, resets = (np.stack(parts) for parts in zip(*per_pool, strict=True))
        return (windows, resets) if num_replicas else (windows[0], resets[0])

    return schedule


def _evaluator(config, dataset, model, language_model):
    """``evaluate(weights, model_state)`` → train/test (and validation) metrics."""
    train_eval = int(config.get("train_eval_examples", 5000))
    if not language_model:
        eval_fn = _eval_fn(model)
        train_part = slice(0, train_eval)

        def evaluate(weights, state):
            train_loss, train_error = eval_fn(
                weights, state, dataset.x_train[train_part], dataset.y_train[train_part]
            )
            test_loss, test_error = eval_fn(weights, state, dataset.x_test, dataset.y_test)
            return dict(
                train_eval_loss=train_loss,
                train_error=train_error,
                test_loss=test_loss,
                test_error=test_error,
            )

        return evaluate

    eval_fn = sequences.eval_fn(model)
    batch, seq_len = int(config.get("eval_batch_size") or 10), int(config["seq_len"])
    streams = {
        "train": (dataset.x_train[:train_eval], dataset.y_train[:train_eval]),
        "test": (dataset.x_test, dataset.y_test),
    }
    if getattr(dataset, "x_valid", None) is not None and len(dataset.x_valid):
        streams["valid"] = (dataset.x_valid, dataset.y_valid)
    windows = {k: sequences.windows(x, y, batch, seq_len) for k, (x, y) in streams.items()}

    def evaluate(weights, state):
        record = {}
        for split, stream in windows.items():
            loss, error = eval_fn(weights, state, stream)
            prefix = "train_eval" if split == "train" else split
            record[f"{prefix}_loss"] = loss
            record[f"{split}_error"] = error
            record[f"{split}_perplexity"] = math.exp(min(loss, 700.0))
        return record

    return evaluate


def diagnostic_batch(config: Mapping[str, Any], dataset, count: int):
    """The training batch of the landscape diagnostics: ``count`` examples, or ``count``
    sequences of ``seq_len`` tokens read from a zero state for a language model."""
    if sequences.is_language_model(config):
        return sequences.sequences(dataset.x_train, dataset.y_train, count, int(config["seq_len"]))
    return jnp.asarray(dataset.x_train[:count]), jnp.asarray(dataset.y_train[:count])


def init_state(s: Setup, seed: int):
    """Initial ``(params, model_state, opt_state, hidden)``, replicas stacked on a leading axis.

    ``hidden`` is the recurrent state carried between BPTT windows (``{}`` for classifiers).
    """
    variables = s.model.init(jax.random.PRNGKey(seed), s.sample_input, train=False)
    params = variables["params"]
    model_state = {k: v for k, v in variables.items() if k != "params"}
    hidden = s.initial_hidden
    if s.spec.num_replicas:
        stack = lambda t: jax.tree.map(  # noqa: E731
            lambda x: jnp.stack([x] * s.spec.num_replicas), t
        )
        params, model_state, hidden = stack(params), stack(model_state), stack(hidden)
        opt_state = jax.vmap(s.spec.transform.init)(params)
    else:
        opt_state = s.spec.transform.init(params)
    # Some optimizer states alias the params (SAM caches them); rounds donate every buffer.
    return jax.tree.map(lambda x: jnp.array(x, copy=True), (params, model_state, opt_state, hidden))


# --------------------------------------------------------------------------------------------
# Run identity: config.json, refusal of mixed runs, resume compatibility
# --------------------------------------------------------------------------------------------

RUN_FILE = "config.json"
# Files and folders a run (train or compare) writes into its workdir; --overwrite removes them.
RUN_ARTIFACTS = (
    RUN_FILE,
    "metrics.jsonl",
    "metrics.csv",
    "checkpoints",
    "corrupt_checkpoints",
    "curves.png",
    "landscape.json",
    "spectrum.png",
    "local_energy.png",
    "runs",
    "compare.md",
    "compare.csv",
)
# Keys whose change on --resume keeps the meaning of the saved state (allowed and recorded).
HARMLESS_KEYS = frozenset(
    {
        "name",
        "data_dir",
        "budget_epochs",
        "eval_every_epochs",
        "checkpoint_every_rounds",
        "train_eval_examples",
        "eval_batch_size",
        "skip_nonfinite",
        "diagnostics",
        "diagnostics_examples",
        "local_energy_sigma",
        "local_energy_samples",
    }
)
# Optimizer-entry keys whose *numeric* value may change on --resume (a learning rate does not
# change what the optimizer state holds; a schedule or a new key would).
HARMLESS_OPTIMIZER_KEYS = frozenset({"learning_rate", "sgld_learning_rate", "lr_factor"})
# Not part of a single run's identity: compare's list of entries and seeds.
_NOT_RUN_KEYS = frozenset({"optimizer", "optimizers", "seeds"})


def as_plain(value: Any) -> Any:
    """A plain-Python copy of a config (``ConfigDict`` → dict, tuples kept) for the runner."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(as_plain(v) for v in value)
    return value


def run_artifacts(workdir: pathlib.Path) -> list[str]:
    """The run files present in ``workdir`` (empty: a fresh run may start there)."""
    return [name for name in RUN_ARTIFACTS if (workdir / name).exists()]


def refuse_mixed_run(workdir: pathlib.Path, *, overwrite: bool, command: str = "train") -> None:
    """Refuses a fresh run into a workdir holding a run, or clears it with ``overwrite``.

    Raises:
      ConfigError: ``workdir`` holds a run and ``overwrite`` is off.
    """
    found = run_artifacts(workdir)
    if not found:
        return
    if not overwrite:
        raise ConfigError(
            f"workdir {workdir} already holds a run ({', '.join(found)}); continue it with "
            f"--resume, choose another --workdir, or pass --overwrite to delete it and start "
            f"over."
        )
    for name in found:
        target = workdir / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    del command


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        if not value:
            out[prefix[:-1]] = {}
        return out
    return {prefix[:-1]: value}


def _normalized(value: Any) -> Any:
    return json.loads(json.dumps(_jsonable(value)))


def config_differences(
    saved: Mapping[str, Any], config: Mapping[str, Any], saved_opt: Mapping, optimizer: Mapping
) -> tuple[list[tuple[str, Any, Any]], list[tuple[str, Any, Any]]]:
    """``(significant, harmless)`` differences ``(key, saved value, new value)`` of two runs.

    Significant changes alter the meaning of the saved state (model, data, batch size, the
    optimizer family and its static arguments, the seed …); harmless ones (a longer budget, the
    evaluation cadence, a learning-rate value …) do not.
    """
    old = _flatten({k: v for k, v in _normalized(saved).items() if k not in _NOT_RUN_KEYS})
    new = _flatten({k: v for k, v in _normalized(config).items() if k not in _NOT_RUN_KEYS})
    old.update(_flatten(_normalized(saved_opt), "optimizer."))
    new.update(_flatten(_normalized(optimizer), "optimizer."))
    significant, harmless = [], []
    missing = object()
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, missing), new.get(key, missing)
        if a == b:
            continue
        shown = (key, None if a is missing else a, None if b is missing else b)
        top = key.split(".")[0]
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        if top in HARMLESS_KEYS and key == top:
            harmless.append(shown)
        elif top == "optimizer" and key[len("optimizer.") :] in HARMLESS_OPTIMIZER_KEYS and numbers:
            harmless.append(shown)
        elif (
            key.startswith("optimizer.lr_drops")
            and isinstance(a, list)
            and isinstance(b, list)
            and a
            and b
        ):
            harmless.append(shown)
        else:
            significant.append(shown)
    return significant, harmless


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def read_run(workdir: str | os.PathLike) -> dict[str, Any]:
    """The run's metadata (``config.json``: config, optimizer, status, resumes).

    Raises:
      ConfigError: ``workdir`` holds no run (no ``config.json``).
    """
    path = pathlib.Path(workdir) / RUN_FILE
    if not path.is_file():
        raise ConfigError(
            f"{path} not found: {workdir} is not the workdir of an `entropix train` run "
            "(a compare run keeps one per optimizer and seed under runs/)."
        )
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ConfigError(f"{path} is not valid JSON ({err}); the run cannot be used.") from err


def write_run(workdir: pathlib.Path, meta: Mapping[str, Any]) -> None:
    """Writes ``config.json`` atomically (temporary file, fsync, rename)."""
    path = workdir / RUN_FILE
    tmp = workdir / (RUN_FILE + ".tmp")
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(_jsonable(dict(meta)), indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err


def _set_status(workdir: pathlib.Path | None, meta: dict[str, Any] | None, status: str) -> None:
    if workdir is None or meta is None:
        return
    meta["status"] = status
    meta["updated"] = _now()
    write_run(workdir, meta)


def _open_run(
    path: pathlib.Path, config: dict, optimizer: dict, *, resume: bool, overwrite: bool
) -> tuple[dict[str, Any], bool]:
    """Checks the workdir for this run; returns ``(metadata to write, resuming?)``.

    Nothing is written here: the caller writes the metadata once the data and model are set up.
    """
    existing = path / RUN_FILE
    fresh = {
        "config": config,
        "optimizer": optimizer,
        "status": "running",
        "created": _now(),
        "resumes": [],
    }
    if not resume:
        refuse_mixed_run(path, overwrite=overwrite)
        return fresh, False
    if not existing.exists():
        if run_artifacts(path):
            raise ConfigError(
                f"{existing} not found, so --resume cannot check that {path} holds this run; "
                "choose another --workdir or pass --overwrite (without --resume) to start over."
            )
        return fresh, False  # nothing to resume: a fresh run
    meta = read_run(path)
    significant, harmless = config_differences(
        meta.get("config", {}), config, meta.get("optimizer", {}), optimizer
    )
    if significant:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in significant)
        raise ConfigError(
            f"--resume with a config that changes the meaning of the saved run in {path} "
            f"({listed}); resume with the run's own values, or start a new run in another "
            "--workdir."
        )
    meta = dict(meta)
    meta["config"], meta["optimizer"] = config, optimizer
    meta["status"] = "running"
    meta.setdefault("resumes", [])
    meta["resumes"] = [
        *meta["resumes"],
        {"time": _now(), "changes": {k: {"old": a, "new": b} for k, a, b in harmless}},
    ]
    for key, a, b in harmless:
        print(f"entropix: resuming {path} with {key} changed from {a!r} to {b!r}.", file=sys.stderr)
    return meta, True


# --------------------------------------------------------------------------------------------
# Signals: finish the round, checkpoint, stop
# --------------------------------------------------------------------------------------------


class _StopSignals:
    """Turns SIGINT/SIGTERM into a request to stop after the current round (main thread only).

    A second signal while stopping raises ``KeyboardInterrupt`` at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        del frame
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def train(
    config: Mapping[str, Any],
    optimizer: Mapping[str, Any] | None = None,
    *,
    workdir: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    dataset=None,
    stop_after_rounds: int | None = None,
) -> TrainResult:
    """Trains ``config["model"]`` on ``config["dataset"]`` with one optimizer.

    A run in ``workdir`` is identified by its ``config.json`` (written before the first round,
    updated with the run's ``status`` and every resume). A fresh run into a workdir that holds
    a run is refused unless ``overwrite``; ``resume`` refuses a config that changes the meaning
    of the saved state and records harmless changes. Checkpoints are verified on restore
    (newest intact one wins, see :mod:`entropix.experiments.checkpoints`). SIGINT/SIGTERM
    (main thread) finish the current round, save a checkpoint and raise :class:`Interrupted`.

    Args:
      config: the experiment config (see ``configs/``); ``optimizer`` defaults to
        ``config["optimizer"]``.
      optimizer: optimizer entry (``{"name": ..., **kwargs}``).
      workdir: where metrics (``metrics.jsonl``, ``metrics.csv``), checkpoints, plots and
        ``config.json`` go; None keeps everything in memory.
      resume: continue from the last verified checkpoint in ``workdir``.
      overwrite: delete the run already in ``workdir`` (without ``resume``).
      quiet: no progress bar.
      dataset: an already loaded dataset (to share it across runs).
      stop_after_rounds: stop early after this many rounds of this call (for tests of resume).

    Returns:
      A :class:`TrainResult`; its history is the whole run's, also after a resume.

    Raises:
      ConfigError: an invalid value, a workdir holding another run, an incompatible resume or
        bad data (one line naming the key and the fix).
      NonFiniteError: the loss or the weights became non-finite (and ``skip_nonfinite`` is
        off), or every round was skipped as non-finite; the message names the step and the
        last verified checkpoint.
      Interrupted: SIGINT or SIGTERM; the current round was finished and checkpointed.
    """
    config = as_plain(config)
    explicit = optimizer is not None
    optimizer = as_plain(dict(optimizer or config["optimizer"]))
    validate_config(config)
    if explicit:
        validate_optimizer(optimizer)
    seed = int(config["seed"])
    path = check_workdir(workdir) if workdir is not None else None
    meta, resuming = (None, False)
    if path is not None:
        meta, resuming = _open_run(
            path, config, optimizer, resume=resume, overwrite=overwrite and not resume
        )
    s = setup(config, optimizer, dataset)
    spec = s.spec
    budget = float(config["budget_epochs"]) * s.steps_per_epoch
    num_rounds = max(1, math.ceil(budget / spec.round_length))
    eval_every = max(
        1, round(float(config["eval_every_epochs"]) * s.steps_per_epoch / spec.round_length)
    )
    checkpoint_every = int(config.get("checkpoint_every_rounds", 0) or 0)
    state = init_state(s, seed)
    first_round = 0
    # Running train-loss sum/count since the last evaluation and skipped rounds: checkpointed,
    # so a resumed run reports exactly what an uninterrupted one does.
    loss_sum, loss_count, skipped = 0.0, 0, 0
    manager = None
    previous_records: list[dict[str, Any]] = []
    if path is not None:
        from entropix.experiments import checkpoints

        manager = checkpoints.manager(path / "checkpoints")
        if resuming:
            try:
                restored = checkpoints.restore_latest(manager, (*state, np.zeros(3)))
            except ValueError as err:
                raise ConfigError(_one_line(str(err))) from err
            if restored is not None:
                first_round, (*state, counters) = restored
                state = tuple(state)
                loss_sum, loss_count, skipped = (float(c) for c in counters)
            previous_records = _previous_records(path, spec.label, seed, first_round)
            if first_round >= num_rounds:
                weights, weights_state = evaluation_weights(*state[:3], spec.num_replicas)
                return TrainResult(
                    previous_records, weights, weights_state, s.model, s.dataset, spec, True
                )
        if resuming:
            meta["resumes"][-1]["from_round"] = first_round
        write_run(path, meta)
    log = MetricsLog(path, previous_records)
    if resuming:
        log.event("resume", from_round=first_round, optimizer=spec.label, seed=seed, time=_now())
    train_arrays = tuple(jnp.asarray(a) for a in s.train_arrays)
    dropout_key = jax.random.PRNGKey(seed + 1)
    progress = _progress(num_rounds, first_round, quiet, spec.label)
    start_time = time.perf_counter()
    last_round = (
        num_rounds
        if stop_after_rounds is None
        else min(num_rounds, first_round + stop_after_rounds)
    )
    saved_round = first_round if resuming else None

    def save(done):
        from entropix.experiments import checkpoints

        counters = np.array([loss_sum, loss_count, skipped], np.float64)
        checkpoints.save(manager, done, (*state, counters))

    with _StopSignals() as stop:
        for round_index in range(first_round, last_round):
            first_step = round_index * spec.round_length
            schedule = tuple(
                jnp.asarray(a) for a in s.schedule(seed, first_step, spec.round_length)
            )
            rngs = _step_keys(dropout_key, first_step, spec.round_length, spec.num_replicas)
            previous = jax.tree.map(jnp.copy, state) if config.get("skip_nonfinite") else None
            state, loss, finite = s.round_fn(state, train_arrays, schedule, rngs)
            if not bool(jnp.all(finite)):
                if previous is None:
                    _set_status(path, meta, "diverged")
                    raise NonFiniteError(_nonfinite_message(round_index, spec, path))
                state = previous
                skipped += 1
            else:
                loss_sum, loss_count = loss_sum + float(jnp.mean(loss)), loss_count + 1
            done = round_index + 1
            if done % eval_every == 0 or done == num_rounds:
                weights, weights_state = evaluation_weights(*state[:3], spec.num_replicas)
                record = s.evaluate(weights, weights_state)
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
                save(done)
                saved_round = done
            progress.update(1)
            if stop.signum is not None:
                progress.close()
                if manager is not None and saved_round != done:
                    save(done)
                _set_status(path, meta, "interrupted")
                raise Interrupted(stop.signum, done, path)
    progress.close()
    if manager is not None:
        manager.wait_until_finished()
    if last_round == num_rounds and skipped >= num_rounds:
        _set_status(path, meta, "diverged")
        raise NonFiniteError(
            f"every one of the {num_rounds} rounds of optimizer {spec.label!r} had a non-finite "
            "loss or weights and was skipped (skip_nonfinite=True), so nothing was learned. "
            "Lower the learning rate."
        )
    if last_round == num_rounds:
        _set_status(path, meta, "finished")
    weights, weights_state = evaluation_weights(*state[:3], spec.num_replicas)
    return TrainResult(log.records, weights, weights_state, s.model, s.dataset, spec)


def _previous_records(path, label, seed, first_round) -> list[dict[str, Any]]:
    """The run's records up to ``first_round`` (None, i.e. non-finite, read back as NaN)."""
    if not (path / "metrics.jsonl").exists():
        return []
    records = []
    for record in read_metrics(path):
        if record.get("optimizer") == label and record.get("seed") == seed:
            if record["round"] <= first_round:
                records.append({k: float("nan") if v is None else v for k, v in record.items()})
    return records


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


def model_state_shapes(model, sample_input) -> dict:
    """The model's non-parameter collections (empty for models without BatchNorm)."""
    shapes = jax.eval_shape(
        lambda x: model.init(jax.random.PRNGKey(0), x, train=False),
        jax.ShapeDtypeStruct(sample_input.shape, sample_input.dtype),
    )
    return {k: v for k, v in shapes.items() if k != "params"}


def _nonfinite_message(round_index, spec, path):
    from entropix.experiments import checkpoints

    first = round_index * spec.round_length
    last = first + spec.round_length - 1
    good = "none saved yet"
    if path is not None:
        found = checkpoints.latest_verified(path / "checkpoints")
        good = str(found) if found is not None else good
    return (
        f"Non-finite loss or weights in round {round_index + 1} (gradient evaluations "
        f"{first}–{last}) with optimizer {spec.label!r}. Last good checkpoint (verified): "
        f"{good}. Lower the learning rate, or set skip_nonfinite=True to skip such rounds."
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
