"""The training loop: any optimizer on any task of the runner, checkpoints and metrics.

Training runs in *rounds*: one jitted call performs ``round_length`` optimizer updates (a
``lax.scan`` of train steps, vmapped over replicas for the replica methods) on the per-step
inputs the run's task schedules — minibatches of examples gathered on the device, or
consecutive BPTT windows of a token stream with the recurrent state carried from window to
window. Everything that depends on the task (data, schedule, loss and carried state,
evaluation, diagnostic batch) comes from a :class:`~entropix.experiments.tasks.Task` chosen
once per run from the config; this module names no task. Rounds end on outer-step
boundaries, so the weights to evaluate — the anchor of a local-entropy method, the replica
mean of a replica method — are always well defined. Progress is counted in gradient
evaluations per replica and reported in *effective epochs* (gradient evaluations / steps per
epoch: minibatches, or BPTT windows).

A run (:func:`train`) opens its workdir, sets up and restores the newest verified checkpoint
(``_prepare_run``), writes its identity and opens the metrics log (``_start_log``), runs the
rounds (``_run_rounds``, one ``_train_round`` each, evaluating and checkpointing on the
:class:`RoundPlan`'s cadence) and finishes (``_finish``).
"""

from __future__ import annotations

import datetime
import inspect
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
from entropix import data
from entropix.experiments import checkpoints, tasks
from entropix.experiments import optimizers as optimizer_registry
from entropix.experiments.config_base import ConfigError, validate_config, validate_optimizer
from entropix.experiments.metrics_log import MetricsLog, read_metrics
from entropix.experiments.tasks import (
    TrainState,
    cross_entropy,  # noqa: F401  (re-exported: the compare and landscape diagnostics use it)
    one_line,
)

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
    # Imported on use: entropix.models needs Flax, and entropix.experiments must import without
    # the examples extra so that the CLI can name what is missing.
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
    try:
        return data.load_dataset(
            config["dataset"],
            data_dir=config.get("data_dir") or None,
            preprocessing=config.get("preprocessing", "default"),
            **dict(config.get("dataset_kwargs") or {}),
        )
    except (ValueError, TypeError, FileNotFoundError) as err:
        raise ConfigError(one_line(f"dataset={config['dataset']!r}: {err}")) from err


# --------------------------------------------------------------------------------------------
# Setup: the task, the model, the optimizer and the compiled round
# --------------------------------------------------------------------------------------------


class Setup(NamedTuple):
    """Everything a run needs besides its mutable state.

    Attributes:
      model: the Flax module.
      dataset: the host dataset.
      spec: the optimizer spec.
      task: the run's task (see :mod:`entropix.experiments.tasks`).
      steps_per_epoch: optimizer steps of one epoch (minibatches, or BPTT windows).
      train_arrays: host arrays the rounds gather batches from (uploaded once per run).
      schedule: ``schedule(seed, first_step, num_steps)`` → the round's per-step inputs
        (minibatch indices, or windows and state resets), stacked over replicas.
      round_fn: the jitted round ``(state, arrays, schedule, rngs) -> (state, loss, finite)``.
      evaluate: ``evaluate(weights, model_state)`` → metrics of the evaluation weights.
      sample_input: one input batch of the model (for ``init``).
      initial_carried: the task's carried state of one model before its first step (the zero
        recurrent state of a language model, ``{}`` for classifiers).
    """

    model: Any
    dataset: Any
    spec: optimizer_registry.OptimizerSpec
    task: tasks.Task
    steps_per_epoch: int
    train_arrays: tuple[np.ndarray, ...]
    schedule: tasks.Schedule
    round_fn: Callable
    evaluate: tasks.Evaluate
    sample_input: Any
    initial_carried: Any


def update_step(loss: tasks.TrainLoss, transform: optax.GradientTransformation) -> Callable:
    """The scan body of a round: one optimizer update on the task's training loss.

    The carry is ``(state, train_arrays)`` with ``state`` a :class:`TrainState`; the per-step
    inputs are the step's slice of the schedule followed by its dropout key. No gradient flows
    through the carried state into earlier steps (truncated back-propagation through time).
    """

    def step(carry, inputs):
        state, arrays = carry
        *schedule, rng = inputs
        (value, (model_state, carried)), grads = jax.value_and_grad(loss, has_aux=True)(
            state.params, state.model_state, state.carried, arrays, tuple(schedule), rng
        )
        updates, opt_state = transform.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        carried = jax.lax.stop_gradient(carried)
        return (TrainState(params, model_state, opt_state, carried), arrays), value

    return step


def compile_round(step: Callable, num_replicas: int) -> Callable:
    """Jits a round: ``lax.scan`` of ``step`` over the round's steps, vmapped over replicas.

    ``step`` is an :func:`update_step`; the round is ``run(state, train_arrays, schedule,
    rngs) -> (state, mean loss, finite)`` with ``state`` a :class:`TrainState` whose buffers
    are donated.
    """

    def run(state, arrays, schedule, rngs):
        (state, _), losses = jax.lax.scan(step, (state, arrays), (*schedule, rngs))
        finite = jnp.all(jnp.isfinite(losses))
        for leaf in jax.tree.leaves(state.params):
            finite &= jnp.all(jnp.isfinite(leaf))
        return state, jnp.mean(losses), finite

    if num_replicas:
        run = jax.vmap(run, in_axes=(0, None, 0, 0), axis_name=AXIS)
    return jax.jit(run, donate_argnums=(0,))


def evaluation_weights(params, model_state, opt_state, num_replicas):
    """The weights to evaluate: anchor of a local-entropy method, replica mean of replicas."""
    weights = entropix.anchor_params(opt_state, params)
    if num_replicas:
        weights = jax.tree.map(lambda w: jnp.mean(w, axis=0), weights)
        model_state = jax.tree.map(lambda s: jnp.mean(s, axis=0), model_state)
    return weights, model_state


def _build_spec(config, optimizer, steps_per_epoch) -> optimizer_registry.OptimizerSpec:
    try:
        return optimizer_registry.build_optimizer(
            optimizer,
            steps_per_epoch=steps_per_epoch,
            min_round_length=int(config.get("min_round_length", 10)),
            seed=int(config["seed"]),
        )
    except (ValueError, TypeError) as err:
        raise ConfigError(one_line(f"optimizer {optimizer.get('name')!r}: {err}")) from err


def setup(config: Mapping[str, Any], optimizer: Mapping[str, Any], dataset=None) -> Setup:
    """Builds the task's data and schedule, the model, the optimizer and the compiled round.

    Raises:
      ConfigError: the data fail the task's checks (for labelled data
        :func:`entropix.data.dataset.check_dataset`), or the optimizer entry, model or task do
        not fit (one line naming the key and the fix).
    """
    task = tasks.task_for(config)
    dataset = dataset if dataset is not None else load_data(config)
    task.check_data(config, dataset)
    model_kwargs = {
        **dict(config.get("model_kwargs") or {}),
        **dict(optimizer.get("model_kwargs") or {}),
    }
    model = build_model(config["model"], model_kwargs, dataset.num_classes)
    task.check_model(config, dataset, model)
    task_data = task.data(config, dataset)
    spec = _build_spec(config, optimizer, task_data.steps_per_epoch)
    schedule = task.schedule(config, dataset, task_data, spec)
    step = update_step(task.loss(config, dataset, model), spec.transform)
    return Setup(
        model=model,
        dataset=dataset,
        spec=spec,
        task=task,
        steps_per_epoch=task_data.steps_per_epoch,
        train_arrays=task_data.train_arrays,
        schedule=schedule,
        round_fn=compile_round(step, spec.num_replicas),
        evaluate=task.evaluator(config, dataset, model),
        sample_input=task_data.sample_input,
        initial_carried=task.init_carried(model, task_data),
    )


def diagnostic_batch(config: Mapping[str, Any], dataset, count: int):
    """The training batch of the landscape diagnostics: ``count`` examples, or ``count``
    sequences of ``seq_len`` tokens read from a zero state for a language model (the task's
    ``diagnostic_batch``)."""
    return tasks.task_for(config).diagnostic_batch(config, dataset, count)


def init_state(s: Setup, seed: int) -> TrainState:
    """The initial :class:`TrainState`, replicas stacked on a leading axis."""
    variables = s.model.init(jax.random.PRNGKey(seed), s.sample_input, train=False)
    params = variables["params"]
    model_state = {k: v for k, v in variables.items() if k != "params"}
    carried = s.initial_carried
    if s.spec.num_replicas:
        stack = lambda t: jax.tree.map(  # noqa: E731
            lambda x: jnp.stack([x] * s.spec.num_replicas), t
        )
        params, model_state, carried = stack(params), stack(model_state), stack(carried)
        opt_state = jax.vmap(s.spec.transform.init)(params)
    else:
        opt_state = s.spec.transform.init(params)
    # Some optimizer states alias the params (SAM caches them); rounds donate every buffer.
    return jax.tree.map(
        lambda x: jnp.array(x, copy=True), TrainState(params, model_state, opt_state, carried)
    )


# --------------------------------------------------------------------------------------------
# Checkpoints: the state and the running counters
# --------------------------------------------------------------------------------------------


class Counters(NamedTuple):
    """The running train-loss sum and count since the last evaluation and the rounds skipped
    as non-finite: checkpointed, so a resumed run reports exactly what an uninterrupted one
    does."""

    loss_sum: float = 0.0
    loss_count: float = 0
    skipped: float = 0


def checkpoint_tree(state: TrainState, counters: Counters | None = None) -> tuple:
    """The pytree a checkpoint holds: the plain tuple ``(params, model_state, opt_state,
    carried, counters)`` with ``counters`` (default: zeros) a float64 array of
    :class:`Counters` — the layout of every checkpoint the runner has written."""
    counters = Counters() if counters is None else counters
    return (*state, np.array(counters, np.float64))


def from_checkpoint_tree(tree) -> tuple[TrainState, Counters]:
    """The state and counters of a restored :func:`checkpoint_tree`."""
    *state, counters = tree
    return TrainState(*state), Counters(*(float(c) for c in counters))


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


# --------------------------------------------------------------------------------------------
# The run: open or resume, the rounds, finish
# --------------------------------------------------------------------------------------------


class RoundPlan(NamedTuple):
    """The rounds of a run.

    Attributes:
      num_rounds: rounds of the whole budget (``budget_epochs`` effective epochs, rounded up).
      eval_every: rounds between evaluations (the last round is always evaluated).
      checkpoint_every: rounds between checkpoints (0: only at the end and on a signal).
    """

    num_rounds: int
    eval_every: int
    checkpoint_every: int


def round_plan(config: Mapping[str, Any], s: Setup) -> RoundPlan:
    """The :class:`RoundPlan` of ``config`` for the setup ``s``."""
    budget = float(config["budget_epochs"]) * s.steps_per_epoch
    per_eval = float(config["eval_every_epochs"]) * s.steps_per_epoch / s.spec.round_length
    return RoundPlan(
        num_rounds=max(1, math.ceil(budget / s.spec.round_length)),
        eval_every=max(1, round(per_eval)),
        checkpoint_every=int(config.get("checkpoint_every_rounds", 0) or 0),
    )


class _Run(NamedTuple):
    """An opened run, ready for its first round (``first_round`` > 0 after a resume)."""

    setup: Setup
    plan: RoundPlan
    seed: int
    path: pathlib.Path | None
    meta: dict[str, Any] | None
    manager: Any
    resuming: bool
    first_round: int
    state: TrainState
    counters: Counters
    records: list[dict[str, Any]]


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
    run = _prepare_run(
        config, optimizer, workdir=workdir, resume=resume, overwrite=overwrite, dataset=dataset
    )
    if run.first_round >= run.plan.num_rounds:  # resumed after the end: nothing to do
        return _result(run, run.records, run.state, already_finished=True)
    log = _start_log(run)
    last_round = (
        run.plan.num_rounds
        if stop_after_rounds is None
        else min(run.plan.num_rounds, run.first_round + stop_after_rounds)
    )
    state, counters = _run_rounds(
        run, log, last_round, skip_nonfinite=bool(config.get("skip_nonfinite")), quiet=quiet
    )
    return _finish(run, log, state, counters, last_round)


def _prepare_run(config, optimizer, *, workdir, resume, overwrite, dataset) -> _Run:
    """Checks the workdir, sets the run up and restores its newest verified checkpoint.

    Writes nothing (but deletes the workdir's run with ``overwrite``).
    """
    seed = int(config["seed"])
    path = check_workdir(workdir) if workdir is not None else None
    meta, resuming = (None, False)
    if path is not None:
        meta, resuming = _open_run(
            path, config, optimizer, resume=resume, overwrite=overwrite and not resume
        )
    s = setup(config, optimizer, dataset)
    state, counters, first_round = init_state(s, seed), Counters(), 0
    manager, records = None, []
    if path is not None:
        manager = checkpoints.manager(path / "checkpoints")
        if resuming:
            restored = _restore(manager, state)
            if restored is not None:
                first_round, state, counters = restored
            records = _previous_records(path, s.spec.label, seed, first_round)
    return _Run(
        setup=s,
        plan=round_plan(config, s),
        seed=seed,
        path=path,
        meta=meta,
        manager=manager,
        resuming=resuming,
        first_round=first_round,
        state=state,
        counters=counters,
        records=records,
    )


def _restore(manager, like: TrainState) -> tuple[int, TrainState, Counters] | None:
    """``(round, state, counters)`` of the newest verified checkpoint, or None."""
    try:
        restored = checkpoints.restore_latest(manager, checkpoint_tree(like))
    except ValueError as err:
        raise ConfigError(one_line(str(err))) from err
    if restored is None:
        return None
    done, tree = restored
    return (done, *from_checkpoint_tree(tree))


def _start_log(run: _Run) -> MetricsLog:
    """Writes the run's ``config.json`` and opens its metrics log (recording a resume)."""
    if run.path is not None:
        if run.resuming:
            run.meta["resumes"][-1]["from_round"] = run.first_round
        write_run(run.path, run.meta)
    log = MetricsLog(run.path, run.records)
    if run.resuming:
        log.event(
            "resume",
            from_round=run.first_round,
            optimizer=run.setup.spec.label,
            seed=run.seed,
            time=_now(),
        )
    return log


def _run_rounds(
    run: _Run, log: MetricsLog, last_round: int, *, skip_nonfinite: bool, quiet: bool
) -> tuple[TrainState, Counters]:
    """Rounds ``run.first_round …`` up to ``last_round``, evaluated and checkpointed on the
    plan's cadence; a signal stops the run after the current round."""
    spec, plan = run.setup.spec, run.plan
    arrays = tuple(jnp.asarray(a) for a in run.setup.train_arrays)
    dropout_key = jax.random.PRNGKey(run.seed + 1)
    progress = _progress(plan.num_rounds, run.first_round, quiet, spec.label)
    start_time = time.perf_counter()
    state, counters = run.state, run.counters
    saved_round = run.first_round if run.resuming else None
    with _StopSignals() as stop:
        for round_index in range(run.first_round, last_round):
            state, counters = _train_round(
                run, state, counters, arrays, dropout_key, round_index, skip_nonfinite
            )
            done = round_index + 1
            if done % plan.eval_every == 0 or done == plan.num_rounds:
                record = _evaluation_record(run, state, counters, done, start_time)
                counters = counters._replace(loss_sum=0.0, loss_count=0)
                log.write(record)
                progress.set_postfix(test_error=f"{record['test_error']:.3f}", refresh=False)
            if run.manager is not None and (
                done == plan.num_rounds
                or (plan.checkpoint_every and done % plan.checkpoint_every == 0)
            ):
                checkpoints.save(run.manager, done, checkpoint_tree(state, counters))
                saved_round = done
            progress.update(1)
            if stop.signum is not None:
                progress.close()
                if run.manager is not None and saved_round != done:
                    checkpoints.save(run.manager, done, checkpoint_tree(state, counters))
                _set_status(run.path, run.meta, "interrupted")
                raise Interrupted(stop.signum, done, run.path)
    progress.close()
    return state, counters


def _train_round(run, state, counters, arrays, dropout_key, round_index, skip_nonfinite):
    """One round; a non-finite round raises :class:`NonFiniteError`, or is undone and counted
    with ``skip_nonfinite``."""
    spec = run.setup.spec
    first_step = round_index * spec.round_length
    schedule = tuple(
        jnp.asarray(a) for a in run.setup.schedule(run.seed, first_step, spec.round_length)
    )
    rngs = _step_keys(dropout_key, first_step, spec.round_length, spec.num_replicas)
    previous = jax.tree.map(jnp.copy, state) if skip_nonfinite else None
    state, loss, finite = run.setup.round_fn(state, arrays, schedule, rngs)
    if bool(jnp.all(finite)):
        return state, counters._replace(
            loss_sum=counters.loss_sum + float(jnp.mean(loss)),
            loss_count=counters.loss_count + 1,
        )
    if previous is None:
        _set_status(run.path, run.meta, "diverged")
        raise NonFiniteError(_nonfinite_message(round_index, spec, run.path))
    return previous, counters._replace(skipped=counters.skipped + 1)


def _evaluation_record(run, state, counters, done, start_time) -> dict[str, Any]:
    """The task's metrics of the evaluation weights after round ``done``, with the run's."""
    spec = run.setup.spec
    weights, weights_state = evaluation_weights(
        state.params, state.model_state, state.opt_state, spec.num_replicas
    )
    record = run.setup.evaluate(weights, weights_state)
    grad_evals = done * spec.round_length
    record.update(
        optimizer=spec.label,
        seed=run.seed,
        round=done,
        grad_evals=grad_evals,
        effective_epochs=grad_evals / run.setup.steps_per_epoch,
        wall_clock=time.perf_counter() - start_time,
        train_loss=(
            counters.loss_sum / counters.loss_count if counters.loss_count else float("nan")
        ),
        skipped_rounds=counters.skipped,
    )
    return record


def _finish(run, log, state, counters, last_round) -> TrainResult:
    """Waits for the checkpoints, records the run's status and returns its result."""
    num_rounds = run.plan.num_rounds
    if run.manager is not None:
        run.manager.wait_until_finished()
    if last_round == num_rounds and counters.skipped >= num_rounds:
        _set_status(run.path, run.meta, "diverged")
        raise NonFiniteError(
            f"every one of the {num_rounds} rounds of optimizer {run.setup.spec.label!r} had a "
            "non-finite loss or weights and was skipped (skip_nonfinite=True), so nothing was "
            "learned. Lower the learning rate."
        )
    if last_round == num_rounds:
        _set_status(run.path, run.meta, "finished")
    return _result(run, log.records, state)


def _result(run, history, state, already_finished=False) -> TrainResult:
    s = run.setup
    weights, weights_state = evaluation_weights(
        state.params, state.model_state, state.opt_state, s.spec.num_replicas
    )
    return TrainResult(
        history, weights, weights_state, s.model, s.dataset, s.spec, already_finished
    )


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


def _nonfinite_message(round_index, spec, path):
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
    # Imported on use: tqdm belongs to the examples extra, which entropix.experiments must not
    # need at import (the CLI names what is missing).
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
