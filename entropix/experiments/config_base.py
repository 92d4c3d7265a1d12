"""Shared defaults of the experiment configs in ``configs/`` (ml_collections)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_collections


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
) -> ml_collections.ConfigDict:
    """A complete, lockable experiment config.

    ``optimizer`` (what ``entropix train`` runs) is entry ``train_optimizer`` of ``optimizers``
    (what ``entropix compare`` runs). Each optimizer entry may carry ``model_kwargs`` overrides
    (the papers used different dropout rates for Entropy-SGD and its baselines).
    """
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
