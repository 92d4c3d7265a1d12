"""Fast CPU comparison on real Fashion-MNIST: SGD, Adam, SAM, Entropy-SGD, Parle, rSGD.

Data: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package
(``apt-get install dataset-fashion-mnist`` → ``/usr/share/datasets/fashion-mnist``), or any
directory of its IDX files via ``--config.data_dir``; pixels scaled to [−1, 1].
Model: a 784-256-256-10 MLP (no BN, no dropout). Budget: 20 effective epochs per replica,
≈ 3 minutes on 2 CPU cores for one seed. Expected test error ≈ 10–12% for every method
(MLPs of this size reach ≈ 10–11% on Fashion-MNIST).
"""

from entropix.experiments.config_base import experiment


def get_config():
    local = dict(
        num_inner_steps=5, sgld_learning_rate=0.05, coupling=0.1, lr_drops=[15], lr_factor=0.2
    )
    return experiment(
        "fashion_mnist_compare",
        dataset="fashion_mnist",
        model="mlp",
        model_kwargs={"features": (256, 256)},
        batch_size=128,
        budget_epochs=20,
        eval_every_epochs=2.0,
        optimizers=[
            dict(
                name="sgd",
                label="SGD (Nesterov)",
                learning_rate=0.02,
                momentum=0.9,
                lr_drops=[15],
                lr_factor=0.2,
            ),
            dict(name="adam", label="Adam", learning_rate=1e-3, lr_drops=[15], lr_factor=0.2),
            dict(name="sam", label="SAM", learning_rate=0.02, rho=0.05),
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
                learning_rate=0.02,
                momentum=0.9,
                nesterov=True,
                elastic_coupling=0.01,
                num_replicas=3,
            ),
        ],
    )
