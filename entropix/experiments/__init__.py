"""Experiment runner: training loop, optimizer registry, comparisons and the CLI.

Needs the ``examples`` extra (flax, ml-collections, orbax-checkpoint, matplotlib, tqdm).
"""

from entropix.experiments.config_base import ConfigError, validate_config
from entropix.experiments.metrics_log import MetricsLog, read_metrics
from entropix.experiments.optimizers import OPTIMIZER_NAMES, OptimizerSpec, build_optimizer
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
    "TrainResult",
    "build_optimizer",
    "check_workdir",
    "evaluation_weights",
    "read_metrics",
    "train",
    "validate_config",
]
