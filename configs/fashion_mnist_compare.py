"""Fast CPU comparison on real Fashion-MNIST: SGD, Adam, SAM, Entropy-SGD, Parle, rSGD.

Data: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package
(``apt-get install dataset-fashion-mnist`` → ``/usr/share/datasets/fashion-mnist``), or any
directory of its IDX files via ``--config.data_dir``; pixels scaled to [−1, 1].
Model: a 784-256-256-10 MLP (no BN, no dropout). Budget: 20 effective epochs per replica,
≈ 3 minutes on 2 CPU cores for one seed. Expected test error ≈ 10–12% for every method
(MLPs of this size reach ≈ 10–11% on Fashion-MNIST).
"""

from entropix.experiments.config_base import comparison_optimizers, experiment


def get_config():
    return experiment(
        "fashion_mnist_compare",
        dataset="fashion_mnist",
        model="mlp",
        model_kwargs={"features": (256, 256)},
        batch_size=128,
        budget_epochs=20,
        eval_every_epochs=2.0,
        optimizers=comparison_optimizers(
            ("sgd", "adam", "sam", "entropy_sgd", "parle", "rsgd"),
            learning_rate=0.02,
            adam_learning_rate=1e-3,
            sgld_learning_rate=0.05,
            lr_drops=[15],
        ),
    )
