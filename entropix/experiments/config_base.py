"""Shared defaults of the experiment configs in ``configs/``, their meaning and their validation.

:func:`experiment` builds a config (an ``ml_collections.ConfigDict``); :data:`KEY_HELP` says
what each key means (``entropix train --config NAME --help`` prints it); :func:`validate_config`
checks every value before anything is compiled and raises :class:`ConfigError` — one line
naming the key, the value and the fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

AUGMENTATIONS = ("none", "flip", "crop", "flip_crop")


class ConfigError(ValueError):
    """A user error in a config, its data or the command line; the message is one line that
    names the key, the value and the fix (the CLI prints it and exits with status 2)."""


# What each key of an experiment config means (the CLI's --help lists these).
KEY_HELP: dict[str, str] = {
    "name": "experiment name (default workdir runs/<command>-<name>)",
    "dataset": "dataset name (see entropix.data.DATASET_NAMES)",
    "data_dir": "directory of local data files or of a prepared tfds copy ('' = default)",
    "preprocessing": "input preprocessing (default = the papers' choice for the dataset)",
    "dataset_kwargs": "extra keyword arguments of the dataset loader (e.g. path=FILE for text)",
    "model": "model name: mlp or a name of entropix.models",
    "model_kwargs": "keyword arguments of the model (e.g. features, dropout)",
    "batch_size": "minibatch size (rows of the token stream for a language model), >= 1",
    "seq_len": "BPTT window of a language model (0: a classifier), >= 0",
    "eval_batch_size": "parallel streams when evaluating a language model, >= 1",
    "augment": "on-device image augmentation: " + ", ".join(AUGMENTATIONS),
    "budget_epochs": "training budget in effective epochs (gradient evaluations / epoch), > 0",
    "eval_every_epochs": "evaluate every this many effective epochs, > 0",
    "train_eval_examples": "training examples (tokens) the train error is measured on, >= 1",
    "min_round_length": "fewest optimizer updates per jitted round, >= 1",
    "checkpoint_every_rounds": "checkpoint every this many rounds (0: only at the end), >= 0",
    "skip_nonfinite": "skip rounds with a non-finite loss instead of stopping (true/false)",
    "seed": "seed of initialization, minibatch order and noise (train), >= 0",
    "seeds": "seeds of every optimizer (compare), each >= 0",
    "optimizer": "the optimizer entry `entropix train` runs",
    "optimizers": "the optimizer entries `entropix compare` runs",
    "diagnostics": "compare: local energy and top Hessian eigenvalue of every run (true/false)",
    "diagnostics_examples": "training examples of the compare diagnostics, >= 1",
    "local_energy_sigma": "perturbation scale of the local-energy column, >= 0",
    "local_energy_samples": "perturbations per local-energy estimate, >= 1",
    "study": "generalization study only: table titles and Hessian-density settings (train and "
    "compare ignore it)",
}

# Keys of an optimizer entry the runner itself reads (the rest go to the optimizer factory).
OPTIMIZER_KEY_HELP: dict[str, str] = {
    "name": "optimizer name (see entropix.experiments.OPTIMIZER_NAMES)",
    "label": "display name in tables, plots and metrics",
    "learning_rate": "learning rate, > 0 (the initial rate when lr_drops is set)",
    "sgld_learning_rate": "inner-loop (SGLD) learning rate, > 0",
    "lr_drops": "effective epochs at which the learning rate is multiplied by lr_factor",
    "lr_factor": "factor of each learning-rate drop, > 0",
    "num_inner_steps": "inner steps per outer step, >= 1",
    "num_replicas": "replicas of a replica method, >= 1",
    "split_data": "fraction of the training set each replica sees, in (0, 1]",
    "clip_norm": "clip the gradient to this global norm (0: no clipping), >= 0",
    "model_kwargs": "model overrides for this optimizer (e.g. its dropout)",
    "momentum": "momentum, in [0, 1)",
}


def experiment(
    name: str,
    *,
    dataset: str,
    model: str,
    optimizers: Sequence[dict[str, Any]],
    budget_epochs: float,
    batch_size: int = 128,
    eval_every_epochs: float = 5.0,
    model_kwargs: dict[str, Any] | None = None,
    preprocessing: str = "default",
    seeds: Sequence[int] = (0,),
    train_optimizer: int = 0,
    **extra: Any,
):
    """A complete, lockable experiment config (an ``ml_collections.ConfigDict``).

    ``optimizer`` (what ``entropix train`` runs) is entry ``train_optimizer`` of ``optimizers``
    (what ``entropix compare`` runs). Each optimizer entry may carry ``model_kwargs`` overrides
    (the papers used different dropout rates for Entropy-SGD and its baselines).
    """
    import ml_collections

    config = ml_collections.ConfigDict()
    config.name = name
    config.dataset = dataset
    config.data_dir = ""
    config.preprocessing = preprocessing
    config.dataset_kwargs = ml_collections.ConfigDict()
    config.model = model
    config.model_kwargs = ml_collections.ConfigDict(model_kwargs or {})
    config.batch_size = batch_size
    config.seq_len = 0  # > 0: a language model trained on BPTT windows of this length
    config.eval_batch_size = 10  # parallel streams when evaluating a language model
    config.augment = "none"  # on-device image augmentation: none, flip, crop, flip_crop
    config.budget_epochs = float(budget_epochs)
    config.eval_every_epochs = float(eval_every_epochs)
    config.train_eval_examples = 10_000
    config.min_round_length = 10
    config.checkpoint_every_rounds = 100
    config.skip_nonfinite = False
    config.seed = 0
    config.seeds = tuple(seeds)
    config.optimizer = ml_collections.ConfigDict(dict(optimizers[train_optimizer]))
    config.optimizers = [dict(o) for o in optimizers]
    config.diagnostics = True
    config.diagnostics_examples = 512
    config.local_energy_sigma = 0.2  # 0.5 saturates on small models
    config.local_energy_samples = 8
    for key, value in extra.items():
        config[key] = value
    return config


# --------------------------------------------------------------------------------------------
# The comparison line-up
# --------------------------------------------------------------------------------------------


def _comparison_rows(
    learning_rate: float,
    adam_learning_rate: float,
    entropy_adam_learning_rate: float | None,
    local: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Every row a comparison can run, by row name (see :func:`comparison_optimizers`)."""
    replicas = dict(num_replicas=3)
    rows = {
        "sgd": dict(name="sgd", label="SGD (Nesterov)", learning_rate=learning_rate, momentum=0.9),
        "adam": dict(name="adam", label="Adam", learning_rate=adam_learning_rate),
        "sam": dict(name="sam", label="SAM", learning_rate=learning_rate, rho=0.05),
        "entropy_sgd": dict(
            name="entropy_sgd", label="Entropy-SGD", learning_rate=1.0, noise=1e-4, **local
        ),
        "entropy_adam": dict(
            name="entropy_adam",
            label="Entropy-Adam",
            learning_rate=entropy_adam_learning_rate,
            noise=1e-4,
            **local,
        ),
        "parle": dict(
            name="parle",
            label="Parle (n=3)",
            learning_rate=1.0,
            elastic_coupling=0.1,
            **replicas,
            **local,
        ),
        "parle_split": dict(
            name="parle",
            label="Parle (n=3, split 50%)",
            learning_rate=1.0,
            elastic_coupling=0.1,
            split_data=0.5,
            **replicas,
            **local,
        ),
        "elastic_sgd": dict(
            name="elastic_sgd",
            label="Elastic-SGD (n=3)",
            learning_rate=learning_rate,
            momentum=0.9,
            elastic_coupling=0.1,
            **replicas,
        ),
        "rsgd": dict(
            name="rsgd",
            label="rSGD (n=3)",
            learning_rate=learning_rate,
            momentum=0.9,
            nesterov=True,
            elastic_coupling=0.01,
            **replicas,
        ),
    }
    # The same rows with the automatic coupling instead of the hand-set γ.
    for row, label in (("entropy_sgd", "Entropy-SGD (auto γ)"), ("parle", "Parle (n=3, auto γ)")):
        rows[f"{row}_auto"] = {**rows[row], "label": label, "coupling": "auto"}
    return rows


COMPARISON_ROWS: tuple[str, ...] = tuple(_comparison_rows(1.0, 1.0, 1.0, {}))


def comparison_optimizers(
    rows: Sequence[str],
    *,
    learning_rate: float,
    adam_learning_rate: float,
    entropy_adam_learning_rate: float | None = None,
    sgld_learning_rate: float | None = None,
    num_inner_steps: int = 5,
    coupling: Any = 0.1,
    lr_drops: Sequence[float] = (),
    lr_factor: float = 0.2,
) -> list[dict[str, Any]]:
    """The optimizer entries of a comparison: the one place the comparison rows are written.

    Every row gets the same step decay of its learning rate (``lr_drops``, ``lr_factor``), so
    the comparison is at an equal budget *and* an equal schedule. The local-entropy rows
    (Entropy-SGD, Entropy-Adam, Parle) share ``num_inner_steps`` L, ``coupling`` γ and the
    SGLD learning rate, which defaults to SGD's ``learning_rate``, except the "auto γ" rows,
    whose coupling adapts itself (``coupling="auto"``, :func:`entropix.auto_coupling`); replica
    rows run n = 3 replicas.

    Args:
      rows: row names of :data:`COMPARISON_ROWS`, in table order.
      learning_rate: SGD's learning rate (also SAM's, Elastic-SGD's and rSGD's).
      adam_learning_rate: Adam's learning rate.
      entropy_adam_learning_rate: Entropy-Adam's outer learning rate (required with that row).
      sgld_learning_rate: the local-entropy rows' inner learning rate (default
        ``learning_rate``).
      num_inner_steps: L of the local-entropy rows.
      coupling: γ of the local-entropy rows.
      lr_drops: effective epochs at which every row's learning rate is multiplied by
        ``lr_factor``.
      lr_factor: the factor of each drop.

    Returns:
      A list of optimizer entries (plain dicts) for :func:`experiment`.

    Raises:
      ValueError: an unknown row name, or the Entropy-Adam row without its learning rate.
    """
    local = dict(
        num_inner_steps=num_inner_steps,
        coupling=coupling,
        sgld_learning_rate=learning_rate if sgld_learning_rate is None else sgld_learning_rate,
    )
    table = _comparison_rows(learning_rate, adam_learning_rate, entropy_adam_learning_rate, local)
    drops = dict(lr_drops=list(lr_drops), lr_factor=lr_factor) if lr_drops else {}
    entries = []
    for row in rows:
        if row not in table:
            raise ValueError(
                f"unknown comparison row {row!r}; valid rows: {', '.join(COMPARISON_ROWS)}."
            )
        if row == "entropy_adam" and entropy_adam_learning_rate is None:
            raise ValueError(
                "row 'entropy_adam' needs entropy_adam_learning_rate; pass it to "
                "comparison_optimizers."
            )
        entries.append({**table[row], **drops})
    return entries


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _fail(key: str, value: Any, requirement: str, fix: str | None = None) -> ConfigError:
    fix = fix or f"set --config.{key} to {requirement}"
    return ConfigError(f"{key}={value!r} is invalid: it must be {requirement}; {fix}.")


def _check_number(key, value, *, low=None, high=None, low_open=False, high_open=False, integer):
    """Raises ConfigError unless ``value`` is a finite (integer) number in the given range."""
    kind = "an integer" if integer else "a number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high}")
    requirement = kind + (" " + " and ".join(bounds) if bounds else "")
    ok = (_is_int(value) or (not integer and _is_number(value))) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise _fail(key, value, requirement)


# key: (integer?, low, low_open) of the top-level numeric keys.
_NUMERIC_KEYS = {
    "batch_size": (True, 1, False),
    "seq_len": (True, 0, False),
    "eval_batch_size": (True, 1, False),
    "budget_epochs": (False, 0, True),
    "eval_every_epochs": (False, 0, True),
    "train_eval_examples": (True, 1, False),
    "min_round_length": (True, 1, False),
    "checkpoint_every_rounds": (True, 0, False),
    "seed": (True, 0, False),
    "diagnostics_examples": (True, 1, False),
    "local_energy_sigma": (False, 0, False),
    "local_energy_samples": (True, 1, False),
}
_BOOL_KEYS = ("skip_nonfinite", "diagnostics")
# Optimizer-entry keys: (integer?, low, low_open, high, high_open).
_OPTIMIZER_NUMERIC_KEYS = {
    "learning_rate": (False, 0, True, None, False),
    "sgld_learning_rate": (False, 0, True, None, False),
    "lr_factor": (False, 0, True, None, False),
    "num_inner_steps": (True, 1, False, None, False),
    "num_replicas": (True, 1, False, None, False),
    "split_data": (False, 0, True, 1, False),
    "clip_norm": (False, 0, False, None, False),
    "momentum": (False, 0, False, 1, True),
    "inner_momentum": (False, 0, False, 1, True),
    "b1": (False, 0, False, 1, True),
    "b2": (False, 0, False, 1, True),
    "noise": (False, 0, False, None, False),
    "weight_decay": (False, 0, False, None, False),
    "rho": (False, 0, False, None, False),
}


def validate_optimizer(entry: Mapping[str, Any], prefix: str = "optimizer") -> None:
    """Checks the runner-level values of one optimizer entry (names are checked when it is built).

    Learning rates must be positive numbers (a learning-rate schedule built from ``lr_drops``
    starts from ``learning_rate``, so it is checked there too), ``lr_drops`` a list of positive
    effective epochs, loop lengths and replica counts integers >= 1.

    Raises:
      ConfigError: the first invalid value, named ``{prefix}.{key}``.
    """
    if not isinstance(entry, Mapping):
        raise _fail(prefix, entry, "a mapping with at least a `name`")
    if not isinstance(entry.get("name"), str) or not entry.get("name"):
        raise _fail(f"{prefix}.name", entry.get("name"), "an optimizer name")
    for key, (integer, low, low_open, high, high_open) in _OPTIMIZER_NUMERIC_KEYS.items():
        value = entry.get(key)
        if value is None or isinstance(value, Mapping):  # absent, or a scoping schedule
            continue
        _check_number(
            f"{prefix}.{key}",
            value,
            low=low,
            low_open=low_open,
            high=high,
            high_open=high_open,
            integer=integer,
        )
    drops = entry.get("lr_drops")
    if drops is not None:
        if isinstance(drops, (str, bytes)) or not isinstance(drops, Sequence):
            raise _fail(f"{prefix}.lr_drops", drops, "a list of effective epochs, e.g. [40, 80]")
        for value in drops:
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise _fail(f"{prefix}.lr_drops", list(drops), "a list of effective epochs > 0")
    coupling = entry.get("coupling")
    if _is_number(coupling) and not (math.isfinite(coupling) and coupling >= 0):
        raise _fail(f"{prefix}.coupling", coupling, "a number >= 0 (or a scoping schedule)")
    if isinstance(coupling, str) and coupling != "auto":
        raise _fail(f"{prefix}.coupling", coupling, 'a number >= 0, a scoping schedule or "auto"')
    model_kwargs = entry.get("model_kwargs")
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise _fail(f"{prefix}.model_kwargs", model_kwargs, "a mapping of model arguments")


def validate_config(
    config: Mapping[str, Any], optimizers: Sequence[tuple[str, Mapping]] | None = None
) -> None:
    """Checks every value of an experiment config before anything is built or compiled.

    Keys absent from ``config`` take the runner's defaults and are not checked.

    Args:
      config: the experiment config (a mapping).
      optimizers: ``(key, entry)`` pairs of the optimizer entries that will run (default:
        ``config["optimizer"]`` and every entry of ``config["optimizers"]``).

    Raises:
      ConfigError: one line naming the first invalid key, its value and the fix.
    """
    for key, (integer, low, low_open) in _NUMERIC_KEYS.items():
        if key in config and config[key] is not None:
            _check_number(key, config[key], low=low, low_open=low_open, integer=integer)
    for key in _BOOL_KEYS:
        if key in config and not isinstance(config[key], bool):
            raise _fail(key, config[key], "true or false")
    augment = config.get("augment", "none")
    if augment not in AUGMENTATIONS:
        raise ConfigError(
            f"unknown augment={augment!r}; valid: {', '.join(AUGMENTATIONS)} "
            "(set --config.augment=NAME)."
        )
    for key in ("dataset", "model"):
        if key in config and (not isinstance(config[key], str) or not config[key]):
            raise _fail(key, config[key], "a non-empty name")
    for key in ("model_kwargs", "dataset_kwargs"):
        if config.get(key) is not None and not isinstance(config[key], Mapping):
            raise _fail(key, config[key], "a mapping of keyword arguments")
    if "seeds" in config and config["seeds"] is not None:
        seeds = config["seeds"]
        if (
            isinstance(seeds, (str, bytes))
            or not isinstance(seeds, Sequence)
            or not all(_is_int(s) and s >= 0 for s in seeds)
        ):
            raise _fail("seeds", seeds, "a list of integers >= 0, e.g. [0, 1]")
    if optimizers is None:
        optimizers = []
        if config.get("optimizer") is not None:
            optimizers.append(("optimizer", config["optimizer"]))
        for i, entry in enumerate(config.get("optimizers") or []):
            optimizers.append((f"optimizers.{i}", entry))
    for prefix, entry in optimizers:
        validate_optimizer(entry, prefix)
