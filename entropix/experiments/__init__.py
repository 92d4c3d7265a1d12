"""Experiment runner: training loop, tasks, optimizer registry, comparisons and the CLI.

Needs the ``examples`` extra (flax, ml-collections, orbax-checkpoint, matplotlib, tqdm).
"""

from entropix.experiments.config_base import ConfigError, comparison_optimizers, validate_config
from entropix.experiments.metrics_log import MetricsLog, read_metrics
from entropix.experiments.optimizers import OPTIMIZER_NAMES, OptimizerSpec, build_optimizer
from entropix.experiments.tasks import Task, TaskData, TrainState, task_for
from entropix.experiments.trainer import (
    Interrupted,
    NonFiniteError,
    TrainResult,
    check_workdir,
    evaluation_weights,
    train,
)

__all__ = [
    "OPTIMIZER_NAMES",
    "ConfigError",
    "Interrupted",
    "MetricsLog",
    "NonFiniteError",
    "OptimizerSpec",
    "Task",
    "TaskData",
    "TrainResult",
    "TrainState",
    "build_optimizer",
    "check_workdir",
    "comparison_optimizers",
    "evaluation_weights",
    "read_metrics",
    "task_for",
    "train",
    "validate_config",
]
