"""The main job: SGD, Adam, SAM, Entropy-SGD, Parle and rSGD on MNIST-1D at an equal budget.

Data: MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package (4,000 train /
1,000 test sequences of 40 features). Published baselines for this data: logistic regression
≈ 32% accuracy, MLP ≈ 68% (32% error), CNN ≈ 94%. Every optimizer gets the same number of
gradient evaluations per replica (``budget_epochs`` effective epochs) and the same step decay
of its learning rate (×0.2 at epoch 40); replica methods run 3 replicas vmapped on one device
and are evaluated at the replica mean.

``entropix compare`` runs all six (default config, ≈ 1–2 minutes on 2 CPU cores, 2 seeds);
``entropix train`` runs Entropy-SGD alone (≈ 20 s). Expected test error (2 seeds, measured on
2 CPU cores): Entropy-SGD ≈ 32.8%, Parle ≈ 33.0%, SAM ≈ 34.7%, SGD ≈ 35.2%, rSGD ≈ 36%,
Adam ≈ 38%; Entropy-SGD and Parle also reach the lowest local energy and top Hessian
eigenvalue (≈ 0.1–0.2 vs ≈ 1.4 for SGD).
"""

from entropix.experiments.config_base import comparison_optimizers, experiment

LINEUP = ("sgd", "adam", "sam", "entropy_sgd", "parle", "rsgd")


def get_config():
    return experiment(
        "mnist1d_compare",
        dataset="mnist1d",
        model="mlp",
        model_kwargs={"features": (100, 100)},
        batch_size=100,
        budget_epochs=60,
        eval_every_epochs=5.0,
        seeds=(0, 1),
        train_optimizer=LINEUP.index("entropy_sgd"),
        train_eval_examples=4000,
        checkpoint_every_rounds=20,
        optimizers=comparison_optimizers(
            LINEUP, learning_rate=0.05, adam_learning_rate=2e-3, lr_drops=[40]
        ),
    )
