"""Thesis Table 5.2: split-data Parle and Elastic-SGD vs SGD, All-CNN on CIFAR-10.

Choose the row with ``--config configs/thesis_table5_2.py:ROW``, ROW ∈ {full, n3_half, n6_quarter}.

Data: tfds ``cifar10`` (prepared once with internet), GCN + ZCA. Every replica sees only its
shard (``split_data``: n = 3 with 50% each, n = 6 with 25% each; shards overlap so every
example belongs to some replica). Published (validation error %, wall-clock min):

| row | Parle | Elastic-SGD | SGD |
|---|---|---|---|
| full (n = 3, all data) | 5.18 ± 0.06 (75) | 5.76 ± 0.07 (44) | 6.15 ± 0.05 (37) |
| n3_half (50% each) | 5.89 ± 0.01 (34) | 6.51 ± 0.09 (36) | 7.86 ± 0.12 (20, one 50% subset) |
| n6_quarter (25% each) | 6.08 ± 0.05 (19) | 6.8 ± 0.05 (20) | 10.96 ± 0.17 (10, one 25% subset) |

Settings: allcnn, dropout 0.5, weight decay 10⁻³, Parle's Ch. 5 hyper-parameters (L = 25,
α = 0.75, scoped γ and ρ). The SGD baseline here trains on the full data. The paper's
augmentation (mirror flips, 32×32 crops after 4-pixel padding) runs on the device
(``augment="flip_crop"``).
"""

from entropix.experiments.config_base import experiment

ROWS = {"full": (3, None), "n3_half": (3, 0.5), "n6_quarter": (6, 0.25)}


def get_config(row="n3_half"):
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; valid: {', '.join(ROWS)}.")
    replicas, split = ROWS[row]
    return experiment(
        f"thesis_table5_2_{row}",
        dataset="cifar10",
        model="allcnn",
        augment="flip_crop",
        budget_epochs=150,
        optimizers=[
            dict(
                name="parle",
                label="Parle",
                learning_rate=0.1,
                num_inner_steps=25,
                sgld_learning_rate=0.1,
                noise=0.0,
                weight_decay=1e-3,
                num_replicas=replicas,
                split_data=split,
                lr_drops=[50, 100],
                lr_factor=0.2,
            ),
            dict(
                name="elastic_sgd",
                label="Elastic-SGD",
                learning_rate=0.1,
                num_replicas=replicas,
                split_data=split,
                elastic_coupling=dict(
                    schedule="parle",
                    initial_coupling=1.0,
                    steps_per_epoch="auto",
                    max_coupling=10.0,
                ),
                lr_drops=[60, 120],
                lr_factor=0.2,
            ),
            dict(
                name="sgd",
                label="SGD",
                learning_rate=0.1,
                momentum=0.9,
                weight_decay=1e-3,
                lr_drops=[60, 120],
                lr_factor=0.2,
            ),
        ],
    )
