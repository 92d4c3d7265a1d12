"""ICLR'17 Table 1, mnistfc: Entropy-SGD vs Adam on MNIST.

Data: MNIST as IDX files (``--config.data_dir=DIR`` with ``train-images-idx3-ubyte[.gz]`` …) or
tfds ``mnist`` prepared with internet. Pixels scaled to [−1, 1].
Published (test error %): Entropy-SGD 1.37 ± 0.03 at 120 effective epochs; Adam 1.39 ± 0.03 at
66 epochs. Entropy-SGD: L = 20, η = 1 ÷10 after the 2nd outer epoch, η' = 0.1, ε = 10⁻³,
γ = 10⁻⁴ ×1.001 per outer step, Nesterov in both loops, dropout 0.15. Adam: η = 10⁻³ ÷5 every
30 epochs, dropout 0.5.
"""

from entropix.experiments.config_base import experiment


def get_config():
    return experiment(
        "iclr17_mnistfc",
        dataset="mnist",
        model="mnistfc",
        budget_epochs=120,
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
                model_kwargs=dict(dropout=0.15),
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
