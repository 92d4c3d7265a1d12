"""The main job: SGD, Adam, SAM, Entropy-SGD, Parle and rSGD on MNIST-1D at an equal budget.

Data: MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package (4,000 train /
1,000 test sequences of 40 features). Published baselines for this data: logistic regression
≈ 32% accuracy, MLP ≈ 68% (32% error), CNN ≈ 94%. Every optimizer gets the same number of
gradient evaluations per replica (``budget_epochs`` effective epochs); replica methods run 3
replicas vmapped on one device and are evaluated at the replica mean.

``entropix compare`` runs all six (default config, ≈ 1–2 minutes on 2 CPU cores, 2 seeds);
``entropix train`` runs Entropy-SGD alone (≈ 20 s). Expected test error (2 seeds, measured on
2 CPU cores): Entropy-SGD ≈ 32.8%, Parle ≈ 33.0%, SAM ≈ 35.0%, SGD ≈ 35.2%, rSGD ≈ 36%,
Adam ≈ 38%; Entropy-SGD and Parle also reach the lowest local energy and top Hessian
eigenvalue (≈ 0.1–0.2 vs ≈ 0.9 for SGD).
"""

from entropix.experiments.config_base import experiment


def get_config():
    local = dict(
        num_inner_steps=5, coupling=0.1, sgld_learning_rate=0.05, lr_drops=[40], lr_factor=0.2
    )
    return experiment(
        "mnist1d_compare",
        dataset="mnist1d",
        model="mlp",
        model_kwargs={"features": (100, 100)},
        batch_size=100,
        budget_epochs=60,
        eval_every_epochs=5.0,
        seeds=(0, 1),
        train_optimizer=3,
        train_eval_examples=4000,
        checkpoint_every_rounds=20,
        optimizers=[
            dict(name="sgd", label="SGD (Nesterov)", learning_rate=0.05, momentum=0.9),
            dict(name="adam", label="Adam", learning_rate=2e-3),
            dict(name="sam", label="SAM", learning_rate=0.05, rho=0.05),
            dict(name="entropy_sgd", label="Entropy-SGD", learning_rate=1.0, noise=1e-4, **local),
            dict(
                name="parle",
                label="Parle (n=3)",
                learning_rate=1.0,
                elastic_coupling=0.1,
                num_replicas=3,
                **local,
            ),
            dict(
                name="rsgd",
                label="rSGD (n=3)",
                learning_rate=0.05,
                momentum=0.9,
                nesterov=True,
                elastic_coupling=0.01,
                num_replicas=3,
            ),
        ],
    )
