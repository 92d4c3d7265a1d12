"""The generalization study: entropic optimizers vs SGD, Adam and SAM at equal gradient budgets.

Choose a study with ``--config generalization:ROW``, ROW ∈ {quick, mnist1d_mlp, mnist1d_cnn,
fashion_mlp, fashion_lenet}; ``entropix compare`` trains it, and
``python benchmarks/generalization.py`` trains every study, adds the end-of-run landscape
(Hessian density, local-energy curve, local learning coefficient) of each run and renders the
tables and figures of ``benchmarks/README.md``.

Every optimizer gets the same number of gradient evaluations per replica (``budget_epochs``
effective epochs) and the same step decay of its learning rate (×0.2 at 75% of the budget).
Local-entropy methods use L = 5, γ = 0.1 and SGD's learning rate in the SGLD loop, outer
learning rate 1 on ``x − μ``; the "auto γ" rows replace the fixed γ by the automatic coupling
(``coupling="auto"``: the package's defaults, the same in every study); replica methods run
n = 3 replicas vmapped on one device and are evaluated at the replica mean. Entropy-Adam's
learning rate was tuned briefly on MNIST-1D ({2e-3, 5e-3, 1e-2, 2e-2, 5e-2}, 20 epochs) and
on one epoch of the Fashion-MNIST MLP (3e-3 better than 1e-2); nothing else was tuned per
study.

Expected: the tables of the "Generalization study" section of ``benchmarks/README.md`` (test
error ≈ 32–38% on MNIST-1D with the MLP, ≈ 10–12% on Fashion-MNIST); the budgets are sized
for 2 CPU cores — ≈ 5 minutes for ``quick``, ≈ 75 minutes for the four studies.

The ``study`` key holds what only the study script reads: a title and a description of the
model for the tables, and the settings of the end-of-run Hessian density.
"""

from entropix.experiments.config_base import comparison_optimizers, experiment

EVERY_ROW = (
    "sgd",
    "adam",
    "sam",
    "entropy_sgd",
    "entropy_sgd_auto",
    "entropy_adam",
    "parle",
    "parle_auto",
    "parle_split",
    "elastic_sgd",
    "rsgd",
)
# The Fashion-MNIST studies leave Elastic-SGD out: its three replicas triple the cost.
CORE_ROWS = tuple(row for row in EVERY_ROW if row != "elastic_sgd")

MNIST1D_RATES = dict(learning_rate=0.05, adam_learning_rate=2e-3, entropy_adam_learning_rate=2e-2)
FASHION_RATES = dict(learning_rate=0.02, adam_learning_rate=1e-3, entropy_adam_learning_rate=3e-3)

# Per study: dataset, model, data and budget settings, and the study script's own settings.
# Budgets of the Fashion-MNIST studies are sized from timings on 2 idle CPU cores, per seed and
# effective epoch: the mnistfc-sized MLP on 60,000 examples ≈ 7 s (SGD, Adam, SAM), 10 s
# (Entropy-SGD/Adam), 24 s (three replicas); small-LeNet on 12,000 examples ≈ 9–27 s.
MNIST1D = dict(dataset="mnist1d", batch_size=100, rows=EVERY_ROW, rates=MNIST1D_RATES)
FASHION = dict(
    dataset="fashion_mnist", seeds=(0, 1, 2), rows=CORE_ROWS, rates=FASHION_RATES, evaluations=6
)
MLP_DOC = "MLP 40-100-100-10, ReLU, no BN/dropout (15,210 parameters)"


def _spectrum(examples, order, probes):
    return dict(spectrum_examples=examples, spectrum_order=order, spectrum_probes=probes)


STUDIES = {
    "quick": dict(
        MNIST1D,
        model="mlp",
        model_kwargs={"features": (100, 100)},
        budget_epochs=20.0,
        seeds=(0, 1),
        study=dict(
            title="MNIST-1D, MLP 40-100-100-10 (quick)", model_doc=MLP_DOC, **_spectrum(1000, 30, 2)
        ),
    ),
    "mnist1d_mlp": dict(
        MNIST1D,
        model="mlp",
        model_kwargs={"features": (100, 100)},
        budget_epochs=60.0,
        seeds=(0, 1, 2),
        # All 4,000 examples: the Hessian rank bound 4000·9 exceeds the 15,210 parameters.
        study=dict(
            title="MNIST-1D, MLP 40-100-100-10", model_doc=MLP_DOC, **_spectrum(4000, 40, 4)
        ),
    ),
    "mnist1d_cnn": dict(
        MNIST1D,
        model="mnist1d-cnn",
        model_kwargs={},
        budget_epochs=60.0,
        seeds=(0, 1, 2),
        # 5,210 parameters: 1,000 examples already bound the Hessian rank above that.
        study=dict(
            title="MNIST-1D, small CNN",
            model_doc=(
                "MNIST-1D CNN of Greydanus (2020): conv1d 25 (k5, s2) → 25 (k3, s2) → 25 "
                "(k3, s2) → 10, ReLU (5,210 parameters)"
            ),
            **_spectrum(1000, 40, 4),
        ),
    ),
    "fashion_mlp": dict(
        FASHION,
        model="mlp",
        model_kwargs={"features": (1024, 1024)},
        batch_size=128,
        budget_epochs=3.0,
        study=dict(
            title="Fashion-MNIST, MLP 784-1024-1024-10",
            model_doc=(
                "MLP 784-1024-1024-10 (mnistfc's size, without its BN and dropout; "
                "1,863,690 parameters)"
            ),
            **_spectrum(1024, 30, 2),
        ),
    ),
    "fashion_lenet": dict(
        FASHION,
        model="small-lenet",
        model_kwargs={},
        batch_size=64,
        budget_epochs=2.0,
        max_train_examples=12_000,
        study=dict(
            title="Fashion-MNIST, small-LeNet",
            model_doc=(
                "small-LeNet conv 10 → conv 20 → 128 → 10, no BN/dropout (47,658 parameters)"
            ),
            **_spectrum(256, 20, 2),
        ),
    ),
}
ROWS = tuple(STUDIES)
LR_DROP_AT = 0.75  # every optimizer: learning rate × 0.2 at 75% of the budget


def get_config(row="quick"):
    if row not in STUDIES:
        raise ValueError(f"unknown row {row!r}; valid: {', '.join(ROWS)}.")
    study = dict(STUDIES[row])
    budget = study["budget_epochs"]
    optimizers = comparison_optimizers(
        study["rows"], **study["rates"], lr_drops=[LR_DROP_AT * budget], lr_factor=0.2
    )
    max_train = study.get("max_train_examples")
    config = experiment(
        f"generalization_{row}",
        dataset=study["dataset"],
        model=study["model"],
        model_kwargs=study["model_kwargs"],
        optimizers=optimizers,
        budget_epochs=budget,
        batch_size=study["batch_size"],
        eval_every_epochs=budget / study.get("evaluations", 10),
        seeds=study["seeds"],
        checkpoint_every_rounds=0,  # only the final state, for the end-of-run landscape
        diagnostics_examples=512,
        local_energy_sigma=0.2,
        train_eval_examples=10_000,
        study=dict(study["study"], near_zero=1e-2),
    )
    if max_train is not None:
        config.dataset_kwargs.max_train_examples = max_train
    return config
