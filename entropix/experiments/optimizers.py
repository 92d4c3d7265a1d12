"""Builds any optimizer of the library (and the peer baselines) from a config entry.

Scoping schedules are written as mappings, e.g.
``coupling={"schedule": "exponential", "initial_coupling": 1e-4, "growth_rate": 1e-3}``;
Parle's law takes ``steps_per_epoch="auto"``. The automatic coupling of the local-entropy
optimizers is ``coupling="auto"`` (its defaults) or ``coupling={"schedule": "auto", **kwargs}``
with the keyword arguments of :func:`entropix.auto_coupling`.

A config entry is a mapping with ``name`` plus the factory's own keyword arguments, and a few
runner keys: ``num_replicas`` (replica methods), ``lr_drops`` / ``lr_factor`` (step decay of
the learning rate at the given *effective epochs*), ``split_data`` (fraction of the training set
each replica sees), ``clip_norm`` (clip the gradient to this global norm before the optimizer,
as Zaremba et al. did for the PTB LSTM), ``model_kwargs`` (model overrides for this optimizer,
e.g. its dropout).
Every optimizer runs in its step form: one gradient per ``update``. The optimizers and what the
runner needs to know about each (replica axis, updates per outer step, seed and data arguments)
come from the package's optimizer catalogue, ``entropix.OPTIMIZERS``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, NamedTuple

import optax

import entropix

RUNNER_KEYS = (
    "name",
    "num_replicas",
    "lr_drops",
    "lr_factor",
    "split_data",
    "label",
    "model_kwargs",
    "clip_norm",
)

# Every optimizer of the catalogue except the transformations meant to be chained before one.
OPTIMIZER_NAMES: tuple[str, ...] = tuple(
    name for name, entry in entropix.OPTIMIZERS.items() if entry.kind != "transform"
)


class OptimizerSpec(NamedTuple):
    """An optimizer ready for the training loop.

    Attributes:
      name: registry name.
      label: display name in tables and plots.
      transform: the optax transformation (step form).
      num_replicas: replicas on a vmapped axis (0: a single model, no replica axis).
      round_length: updates per jitted round; a multiple of the outer-loop length, so the
        evaluation weights are well defined after every round.
      split_data: fraction of the training set per replica (None: every replica sees all).
    """

    name: str
    label: str
    transform: optax.GradientTransformation
    num_replicas: int
    round_length: int
    split_data: float | None


def _entry(name: str) -> entropix.OptimizerEntry:
    if name not in OPTIMIZER_NAMES:
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZER_NAMES)}.")
    return entropix.optimizer_entry(name)


SCHEDULES = {
    "exponential": entropix.exponential_scoping,
    "bounded_exponential": entropix.bounded_exponential_scoping,
    "linear": entropix.linear_scoping,
    "parle": entropix.parle_scoping,
    "auto": entropix.auto_coupling,
}


def _schedule(argument: str, value: Any, steps_per_epoch: int) -> Any:
    """``{"schedule": "exponential", **kwargs}`` in a config becomes that scoping schedule.

    ``steps_per_epoch="auto"`` (Parle's law) is replaced by the data set's minibatches per epoch.
    """
    if not isinstance(value, Mapping) or "schedule" not in value:
        return value
    kwargs = dict(value)
    if kwargs.get("steps_per_epoch") == "auto":
        kwargs["steps_per_epoch"] = steps_per_epoch
    kind = kwargs.pop("schedule")
    if kind not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {kind!r} for `{argument}`; valid: {', '.join(SCHEDULES)}."
        )
    if kind == "auto" and argument != "coupling":
        raise ValueError(
            f'`{argument}` cannot be {{"schedule": "auto"}}: the automatic rule adapts the '
            "local-entropy `coupling` only; give a number or another schedule."
        )
    return SCHEDULES[kind](**kwargs)


def _learning_rate(value, drops, factor, updates_per_epoch):
    """Step decay at effective epochs ``drops``, in the transform's own update counts."""
    if not drops:
        return value
    boundaries = {max(1, round(epoch * updates_per_epoch)): factor for epoch in drops}
    return optax.piecewise_constant_schedule(value, boundaries)


def build_optimizer(
    config: Mapping[str, Any], *, steps_per_epoch: int, min_round_length: int = 1, seed: int = 0
) -> OptimizerSpec:
    """Builds the optimizer described by ``config`` (see the module docstring).

    Args:
      config: ``{"name": ..., **factory_kwargs, **runner_keys}``.
      steps_per_epoch: minibatches per epoch, to place learning-rate drops and Parle's default
        scoping.
      min_round_length: smallest acceptable number of updates per jitted round.
      seed: the run's seed; it is the optimizer's PRNG ``key`` unless the entry sets one, so
        different seeds draw different Langevin noise.

    Returns:
      An :class:`OptimizerSpec`.

    Raises:
      ValueError: unknown optimizer name or unknown argument (the message lists valid ones).
    """
    config = dict(config)
    name = config.get("name")
    entry = _entry(name)
    kwargs = {
        k: _schedule(k, v, steps_per_epoch) for k, v in config.items() if k not in RUNNER_KEYS
    }
    # The factory's own parameter names, to reject a misspelt config key by name.
    parameters = inspect.signature(entry.factory).parameters
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        valid = ", ".join(p for p in parameters if p != entry.seed_argument)
        raise ValueError(f"optimizer {name!r} has no argument(s) {unknown}; valid: {valid}.")
    outer_length = entry.cycle_length(kwargs)
    if entry.seed_argument is not None:
        kwargs.setdefault(entry.seed_argument, seed)
    data = {"steps_per_epoch": steps_per_epoch}
    for argument in entry.data_arguments:
        kwargs.setdefault(argument, data[argument])
    if "learning_rate" in kwargs and config.get("lr_drops"):
        kwargs["learning_rate"] = _learning_rate(
            kwargs["learning_rate"],
            list(config["lr_drops"]),
            config.get("lr_factor", 0.1),
            steps_per_epoch / outer_length,
        )
    transform = entry.factory(**kwargs)
    if config.get("clip_norm"):
        transform = optax.chain(optax.clip_by_global_norm(float(config["clip_norm"])), transform)
    round_length = outer_length * max(1, -(-min_round_length // outer_length))
    replicated = entry.replica_axis is not None
    num_replicas = int(config.get("num_replicas", 3)) if replicated else 0
    if replicated and num_replicas < 1:
        raise ValueError(f"`num_replicas` must be >= 1, got num_replicas={num_replicas}.")
    split = config.get("split_data")
    if split is not None and not replicated:
        raise ValueError(f"`split_data` needs a replica optimizer, got name={name!r}.")
    return OptimizerSpec(
        name=name,
        label=config.get("label") or name,
        transform=transform,
        num_replicas=num_replicas,
        round_length=round_length,
        split_data=split,
    )
