"""Tasks of the experiment runner: the data a run reads, its loss, its evaluation.

The training loop (:func:`entropix.experiments.train`) knows nothing about images, tokens or
labels. It builds the model and the optimizer, compiles *rounds* of optimizer updates, keeps the
:class:`TrainState`, evaluates, logs and checkpoints. Everything that depends on what is
learned comes from a :class:`Task`, chosen once per run from the config by :func:`task_for`
out of the registry :data:`TASKS`:

- ``claims(config)``: whether the config asks for this task. :func:`task_for` returns the one
  task that claims the config, or the default task (:data:`DEFAULT_TASK`, classification)
  when none does.
- ``check_data(config, dataset)`` and ``check_model(config, dataset, model)``: raise
  :class:`~entropix.experiments.ConfigError` (one line naming the key and the fix) for data or
  a model the task cannot train on, before anything is compiled.
- ``data(config, dataset)`` → :class:`TaskData`: the host arrays every round reads (uploaded
  to the device once per run), the steps of one epoch and one input batch of the model.
- ``schedule(config, dataset, data, spec)`` → ``schedule(seed, first_step, num_steps)``: the
  per-step inputs of a round (a tuple of arrays with a leading step axis, and a leading replica
  axis first when ``spec.num_replicas``), for example minibatch indices or BPTT windows. It is
  a function of its arguments alone, so any round can be regenerated exactly on resume.
- ``loss(config, dataset, model)`` → ``loss(params, model_state, carried, arrays, inputs,
  rng)`` returning ``(value, (model_state, carried))``: the training loss of one step on the
  step's ``inputs`` (one slice of the schedule) gathered from ``arrays``, with the model's
  non-parameter state (BatchNorm statistics) and the task's *carried* state (the LSTM state
  between BPTT windows) after the step. The runner differentiates it with respect to
  ``params``, applies the optimizer and carries both states to the next step (no gradient
  flows through the carried state into earlier steps).
- ``init_carried(model, data)``: the carried state of one model before its first step (``{}``
  when nothing is carried); the runner stacks it over replicas.
- ``evaluator(config, dataset, model)`` → ``evaluate(weights, model_state)``: the metrics of
  the evaluation weights, a dict holding at least ``test_loss`` and ``test_error`` (the
  runner adds the round, the gradient evaluations, the running train loss, …).
- ``diagnostic_batch(config, dataset, count)`` → ``(inputs, targets)``: the training batch of
  the landscape diagnostics (``entropix compare`` and ``entropix landscape``).

Two tasks are registered: :data:`CLASSIFICATION` (minibatches of examples drawn epoch by
epoch from each replica's pool, optionally augmented on the device) and
:data:`LANGUAGE_MODEL` (``seq_len > 0``: consecutive BPTT windows of a token stream with the
recurrent state carried; the pieces live in :mod:`entropix.experiments.sequences`). A new task
is one more :class:`Task` and its entry in :data:`TASKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from entropix import data as data_lib
from entropix.data.dataset import check_dataset
from entropix.experiments import sequences
from entropix.experiments.config_base import AUGMENTATIONS, ConfigError
from entropix.experiments.optimizers import OptimizerSpec

Config = Mapping[str, Any]
# ``schedule(seed, first_step, num_steps)`` → the round's per-step inputs.
Schedule = Callable[[int, int, int], tuple[np.ndarray, ...]]
# ``loss(params, model_state, carried, arrays, inputs, rng)`` → ``(value, (model_state, carried))``.
TrainLoss = Callable[..., tuple[jax.Array, tuple[Any, Any]]]
# ``evaluate(weights, model_state)`` → metrics.
Evaluate = Callable[[Any, Any], dict[str, float]]


class TrainState(NamedTuple):
    """The state a round carries from step to step (replicas stacked on a leading axis).

    Attributes:
      params: the model's parameters (of the walker for a local-entropy method).
      model_state: the model's non-parameter collections (BatchNorm statistics; ``{}``).
      opt_state: the optimizer's state.
      carried: the task's state carried from step to step (the recurrent state between BPTT
        windows of a language model; ``{}`` for classification).
    """

    params: Any
    model_state: Any
    opt_state: Any
    carried: Any


class TaskData(NamedTuple):
    """What a task's rounds read.

    Attributes:
      train_arrays: host arrays the rounds gather their batches from (uploaded once per run).
      steps_per_epoch: optimizer steps of one epoch (minibatches, or BPTT windows).
      sample_input: one input batch of the model (for ``model.init``).
    """

    train_arrays: tuple[np.ndarray, ...]
    steps_per_epoch: int
    sample_input: Any


class Task(NamedTuple):
    """A task of the runner: functions of the config, the dataset and the model.

    The contract of every field is in the module docstring (:mod:`entropix.experiments.tasks`).

    Attributes:
      name: the registry key.
      claims: ``claims(config)``, whether the config asks for this task.
      check_data: ``check_data(config, dataset)``, raises ``ConfigError`` for unusable data.
      check_model: ``check_model(config, dataset, model)``, raises ``ConfigError`` for a model
        or config that does not fit the task.
      data: ``data(config, dataset)`` → :class:`TaskData`.
      schedule: ``schedule(config, dataset, data, spec)`` → a :data:`Schedule`.
      loss: ``loss(config, dataset, model)`` → a :data:`TrainLoss`.
      init_carried: ``init_carried(model, data)`` → the carried state of one model.
      evaluator: ``evaluator(config, dataset, model)`` → an :data:`Evaluate`.
      diagnostic_batch: ``diagnostic_batch(config, dataset, count)`` → ``(inputs, targets)``.
    """

    name: str
    claims: Callable[[Config], bool]
    check_data: Callable[[Config, Any], None]
    check_model: Callable[[Config, Any, Any], None]
    data: Callable[[Config, Any], TaskData]
    schedule: Callable[[Config, Any, TaskData, OptimizerSpec], Schedule]
    loss: Callable[[Config, Any, Any], TrainLoss]
    init_carried: Callable[[Any, TaskData], Any]
    evaluator: Callable[[Config, Any, Any], Evaluate]
    diagnostic_batch: Callable[[Config, Any, int], tuple[Any, Any]]


def one_line(message: str) -> str:
    """``message`` with every run of whitespace (newlines included) turned into one space."""
    return " ".join(str(message).split())


def cross_entropy(logits, labels):
    """Mean cross-entropy over every leading position (examples, or examples × tokens)."""
    # Imported on use: entropix.models needs Flax, and entropix.experiments must import without
    # the examples extra so that the CLI can name what is missing.
    from entropix.models import cross_entropy_loss

    return cross_entropy_loss(logits, labels)


def model_state_shapes(model, sample_input) -> dict:
    """The model's non-parameter collections (empty for models without BatchNorm)."""
    shapes = jax.eval_shape(
        lambda x: model.init(jax.random.PRNGKey(0), x, train=False),
        jax.ShapeDtypeStruct(sample_input.shape, sample_input.dtype),
    )
    return {k: v for k, v in shapes.items() if k != "params"}


def check_labelled_data(config: Config, dataset) -> None:
    """:func:`entropix.data.dataset.check_dataset` as a one-line ``ConfigError``."""
    try:
        check_dataset(dataset)
    except ValueError as err:
        raise ConfigError(one_line(f"dataset={config.get('dataset')!r}: {err}")) from err


# --------------------------------------------------------------------------------------------
# Classification: minibatches of examples, drawn epoch by epoch from each replica's pool
# --------------------------------------------------------------------------------------------


def _check_classifier(config: Config, dataset, model) -> None:
    del config, model
    if sequences.is_token_stream(dataset):
        raise ConfigError(
            f"dataset {dataset.name!r} is a token stream: set seq_len (the BPTT window, e.g. "
            "--config.seq_len=35) to train a language model on it."
        )


def _classification_data(config: Config, dataset) -> TaskData:
    return TaskData(
        train_arrays=(dataset.x_train, dataset.y_train),
        steps_per_epoch=max(1, dataset.num_train // int(config["batch_size"])),
        sample_input=jnp.asarray(dataset.x_train[:1]),
    )


def example_pools(num_train: int, spec: OptimizerSpec, seed: int) -> list[np.ndarray]:
    """The training examples each model draws its minibatches from (one pool without
    replicas; with ``split_data``, shards of :func:`entropix.data.replica_shards`)."""
    if not spec.num_replicas:
        return [np.arange(num_train)]
    if spec.split_data is None:
        return [np.arange(num_train)] * spec.num_replicas
    shards = data_lib.replica_shards(
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


def _minibatch_schedule(config: Config, dataset, data: TaskData, spec: OptimizerSpec) -> Schedule:
    del data
    batch_size = int(config["batch_size"])
    pools = example_pools(dataset.num_train, spec, int(config["seed"]))
    available = min(len(p) for p in pools)
    if available < batch_size:
        raise ConfigError(
            f"batch_size={batch_size} exceeds the examples available to a replica "
            f"({available}); set --config.batch_size={available} or less."
        )

    def schedule(seed, first_step, num_steps):
        indices = np.stack(
            [
                minibatch_indices(pool, seed, r, first_step, num_steps, batch_size)
                for r, pool in enumerate(pools)
            ]
        )
        return (indices if spec.num_replicas else indices[0],)

    return schedule


def _augmenter(name: str, sample_shape: tuple[int, ...]) -> Callable | None:
    """The on-device augmentation ``augment(key, images)`` named by ``augment`` (None: none)."""
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
            images = data_lib.random_flip(flip_key, images)
        if "crop" in name:
            images = data_lib.random_crop(crop_key, images, padding=4)
        return images

    return augment


def _classification_loss(config: Config, dataset, model) -> TrainLoss:
    augment = _augmenter(str(config.get("augment", "none")), dataset.x_train.shape[1:])

    def loss(params, model_state, carried, arrays, inputs, rng):
        x_train, y_train = arrays
        (indices,) = inputs
        batch_inputs = x_train[indices]
        if augment is not None:
            batch_inputs = augment(jax.random.fold_in(rng, 1), batch_inputs)
        labels = y_train[indices]
        variables = {"params": params, **model_state}
        if model_state:  # BatchNorm statistics: updated by the training pass
            logits, new_state = model.apply(
                variables,
                batch_inputs,
                train=True,
                rngs={"dropout": rng},
                mutable=list(model_state),
            )
            return cross_entropy(logits, labels), (dict(new_state), carried)
        logits = model.apply(variables, batch_inputs, train=True, rngs={"dropout": rng})
        return cross_entropy(logits, labels), (model_state, carried)

    return loss


def _no_carried_state(model, data: TaskData) -> dict:
    del model, data
    return {}


def _example_sums(model):
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


def _classification_evaluator(config: Config, dataset, model) -> Evaluate:
    """Loss and error on the first ``train_eval_examples`` training examples and the test set."""
    eval_fn = _example_sums(model)
    train_part = slice(0, int(config.get("train_eval_examples", 5000)))

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


def _first_examples(config: Config, dataset, count: int):
    del config
    return jnp.asarray(dataset.x_train[:count]), jnp.asarray(dataset.y_train[:count])


def _always(config: Config) -> bool:
    del config
    return True


CLASSIFICATION = Task(
    name="classification",
    claims=_always,  # the default: used for every config no other task claims
    check_data=check_labelled_data,
    check_model=_check_classifier,
    data=_classification_data,
    schedule=_minibatch_schedule,
    loss=_classification_loss,
    init_carried=_no_carried_state,
    evaluator=_classification_evaluator,
    diagnostic_batch=_first_examples,
)


# --------------------------------------------------------------------------------------------
# Language model: BPTT windows of a token stream, the recurrent state carried
# --------------------------------------------------------------------------------------------


def _check_language_model(config: Config, dataset, model) -> None:
    sequences.check_task(config, dataset, model)
    sample = jnp.zeros((1, int(config["seq_len"])), jnp.int32)
    if model_state_shapes(model, sample):
        raise ConfigError("language models with BatchNorm statistics are not supported.")


def _language_model_data(config: Config, dataset) -> TaskData:
    seq_len = int(config["seq_len"])
    arrays = sequences.training_windows(dataset, int(config["batch_size"]), seq_len)
    return TaskData(
        train_arrays=arrays,
        steps_per_epoch=len(arrays[0]),
        sample_input=jnp.zeros((1, seq_len), jnp.int32),
    )


def _window_schedule(config: Config, dataset, data: TaskData, spec: OptimizerSpec) -> Schedule:
    del config, dataset
    pools = sequences.window_pools(data.steps_per_epoch, spec.num_replicas, spec.split_data)
    return sequences.round_schedule(pools, spec.num_replicas)


def _language_model_loss(config: Config, dataset, model) -> TrainLoss:
    del config, dataset
    return sequences.train_loss(model)


def _zero_recurrent_state(model, data: TaskData):
    return model.initial_carry(len(data.train_arrays[0][0]))


def _language_model_evaluator(config: Config, dataset, model) -> Evaluate:
    return sequences.evaluator(
        dataset,
        model,
        train_examples=int(config.get("train_eval_examples", 5000)),
        batch_size=int(config.get("eval_batch_size") or 10),
        seq_len=int(config["seq_len"]),
    )


def _first_sequences(config: Config, dataset, count: int):
    return sequences.sequences(dataset.x_train, dataset.y_train, count, int(config["seq_len"]))


LANGUAGE_MODEL = Task(
    name="language_model",
    claims=sequences.is_language_model,
    check_data=check_labelled_data,
    check_model=_check_language_model,
    data=_language_model_data,
    schedule=_window_schedule,
    loss=_language_model_loss,
    init_carried=_zero_recurrent_state,
    evaluator=_language_model_evaluator,
    diagnostic_batch=_first_sequences,
)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

DEFAULT_TASK = CLASSIFICATION.name
TASKS: dict[str, Task] = {task.name: task for task in (CLASSIFICATION, LANGUAGE_MODEL)}


def task_for(config: Config) -> Task:
    """The task of ``config``: the one registered task that claims it, else the default.

    Raises:
      ConfigError: several tasks claim the config.
    """
    claimed = [task for name, task in TASKS.items() if name != DEFAULT_TASK and task.claims(config)]
    if len(claimed) > 1:
        names = ", ".join(task.name for task in claimed)
        raise ConfigError(f"the config fits several tasks at once ({names}); it must fit one.")
    return claimed[0] if claimed else TASKS[DEFAULT_TASK]


__all__ = [
    "CLASSIFICATION",
    "DEFAULT_TASK",
    "LANGUAGE_MODEL",
    "TASKS",
    "Task",
    "TaskData",
    "TrainState",
    "task_for",
]
