"""ICLR'17 Table 1, LeNet (BN): Entropy-SGD vs Adam on MNIST.

Data: MNIST (IDX files via ``--config.data_dir`` or tfds ``mnist``), scaled to [−1, 1].
Published (test error %): Entropy-SGD 0.50 ± 0.01 at 80 effective epochs; Adam 0.51 ± 0.01 at
100 epochs. Same optimizer settings as mnistfc; dropout 0.25 (Entropy-SGD) vs 0.5 (Adam).
"""

from entropix.experiments.config_base import experiment


def get_config():
    return experiment(
        "iclr17_lenet",
        dataset="mnist",
        model="lenet",
        budget_epochs=100,
        optimizers=[
            dict(
                name="entropy_sgd",
                label="Entropy-SGD",
                learning_rate=1.0,
                num_inner_steps=20,
                sgld_learning_rate=0.1,
                noise=1e-3,
                momentum=0.9,
                inner_momentum=0.9,
                coupling=dict(schedule="exponential", initial_coupling=1e-4, growth_rate=1e-3),
                lr_drops=[40],
                lr_factor=0.1,
                model_kwargs=dict(dropout=0.25),
            ),
            dict(
                name="adam",
                label="Adam",
                learning_rate=1e-3,
                lr_drops=[30, 60, 90],
                lr_factor=0.2,
                model_kwargs=dict(dropout=0.5),
            ),
        ],
    )
