"""Thesis Table 5.1: Parle, Elastic-SGD, Entropy-SGD and SGD — one row per data set.

Choose the row with ``--config configs/thesis_table5_1.py:ROW``,
ROW ∈ {mnist_lenet, cifar10_wrn, cifar100_wrn, svhn_wrn}.

Data: MNIST (IDX files via ``--config.data_dir`` or tfds, no preprocessing); tfds ``cifar10`` /
``cifar100`` (GCN + ZCA) and ``svhn_cropped`` (GCN), prepared once with internet.
Published (validation error %, wall-clock min on 3 GPUs):

| row | Parle | Elastic-SGD | Entropy-SGD | SGD |
|---|---|---|---|---|
| mnist_lenet (n = 6 in table, 3 in text) | 0.44 ± 0.01 | 0.48 ± 0.01 | 0.49 ± 0.01 | 0.5 ± 0.01 |
| cifar10_wrn (WRN-28-10, n = 3) | 3.24 ± 0.1 | 4.38 | 4.23 | 4.29 |
| cifar100_wrn (WRN-28-10, n = 3) | 17.64 | 21.36 | 19.05 ± 0.03 | 18.85 |
| svhn_wrn (WRN-16-4) | 1.68 ± 0.01 | 1.57 | 1.64 | 1.62 |

Settings (thesis §5.3–5.4, in couplings): L = 25, α = 0.75, no injected noise, Nesterov 0.9 on
the inner and replica updates, γ and ρ scoped by ``parle_scoping`` (γ₀ = 100 → 0.01 clipped at
1, ρ₀ = 1 → 1 clipped at 10), batch 128; Parle/Entropy-SGD learning-rate drops at Parle-epochs
[2, 4, 6] (×L = effective epochs [50, 100, 150]); SGD at [60, 120, 180]. The CIFAR rows use the
thesis' augmentation on the device (``augment="flip_crop"``: horizontal flips p = 0.5, 32×32
crops after 4-pixel zero padding); MNIST and SVHN none.
"""

from entropix.experiments.config_base import experiment

ROWS = {
    "mnist_lenet": dict(
        dataset="mnist",
        model="lenet",
        lr=0.1,
        factor=0.1,
        replicas=3,
        parle_drops=[50],
        sgd_drops=[30, 60, 90],
        budget=100,
        preprocessing="none",
        model_kwargs={},
        weight_decay=0.0,
    ),
    "cifar10_wrn": dict(
        dataset="cifar10",
        model="wrn-28-10",
        lr=0.1,
        factor=0.2,
        replicas=3,
        parle_drops=[50, 100, 150],
        sgd_drops=[60, 120, 180],
        budget=200,
        preprocessing="default",
        model_kwargs={"dropout": 0.3},
        weight_decay=5e-4,
    ),
    "cifar100_wrn": dict(
        dataset="cifar100",
        model="wrn-28-10",
        lr=0.1,
        factor=0.2,
        replicas=3,
        parle_drops=[50, 100, 150],
        sgd_drops=[60, 120, 180],
        budget=200,
        preprocessing="default",
        model_kwargs={"dropout": 0.3},
        weight_decay=5e-4,
    ),
    "svhn_wrn": dict(
        dataset="svhn_cropped",
        model="wrn-16-4",
        lr=0.01,
        factor=0.1,
        replicas=3,
        parle_drops=[50, 100],
        sgd_drops=[80, 120],
        budget=160,
        preprocessing="default",
        model_kwargs={"dropout": 0.4},
        weight_decay=5e-4,
    ),
}


def get_config(row="mnist_lenet"):
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; valid: {', '.join(ROWS)}.")
    r = ROWS[row]
    local = dict(
        num_inner_steps=25,
        sgld_learning_rate=0.1,
        noise=0.0,
        weight_decay=r["weight_decay"],
        lr_drops=r["parle_drops"],
        lr_factor=r["factor"],
    )
    return experiment(
        f"thesis_table5_1_{row}",
        dataset=r["dataset"],
        model=r["model"],
        model_kwargs=r["model_kwargs"],
        preprocessing=r["preprocessing"],
        augment="flip_crop" if r["dataset"].startswith("cifar") else "none",
        budget_epochs=r["budget"],
        optimizers=[
            dict(
                name="parle",
                label="Parle",
                learning_rate=r["lr"],
                num_replicas=r["replicas"],
                **local,
            ),
            dict(
                name="elastic_sgd",
                label="Elastic-SGD",
                learning_rate=r["lr"],
                num_replicas=r["replicas"],
                elastic_coupling=dict(
                    schedule="parle",
                    initial_coupling=1.0,
                    steps_per_epoch="auto",
                    max_coupling=10.0,
                ),
                lr_drops=r["sgd_drops"],
                lr_factor=r["factor"],
            ),
            dict(
                name="entropy_sgd",
                label="Entropy-SGD",
                learning_rate=r["lr"],
                coupling=dict(
                    schedule="parle",
                    initial_coupling=0.01,
                    steps_per_epoch="auto",
                    max_coupling=1.0,
                ),
                **local,
            ),
            dict(
                name="sgd",
                label="SGD",
                learning_rate=r["lr"],
                momentum=0.9,
                weight_decay=r["weight_decay"],
                lr_drops=r["sgd_drops"],
                lr_factor=r["factor"],
            ),
        ],
    )
