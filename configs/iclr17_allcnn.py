"""ICLR'17 Table 1, All-CNN-BN: Entropy-SGD vs SGD on CIFAR-10 (no augmentation).

Data: tfds ``cifar10`` (prepare once with internet), global contrast normalization + ZCA.
Published (test error %): Entropy-SGD 7.81 ± 0.09 at 160 effective epochs; SGD 7.71 ± 0.19 at
180 epochs. Entropy-SGD: L = 20, η = 1 ÷5 every 4 outer epochs, η' = 0.1, ε = 10⁻⁴,
γ = 0.03 ×1.001 per outer step, momentum 0.9. SGD: η = 0.1 ÷5 every 60 epochs, Nesterov 0.9,
200 epochs. Dropout 0.5.
"""

from entropix.experiments.config_base import experiment


def get_config():
    return experiment(
        "iclr17_allcnn",
        dataset="cifar10",
        model="allcnn",
        budget_epochs=200,
        optimizers=[
            dict(
                name="entropy_sgd",
                label="Entropy-SGD",
                learning_rate=1.0,
                num_inner_steps=20,
                sgld_learning_rate=0.1,
                noise=1e-4,
                momentum=0.9,
                inner_momentum=0.9,
                coupling=dict(schedule="exponential", initial_coupling=0.03, growth_rate=1e-3),
                lr_drops=[80, 160],
                lr_factor=0.2,
            ),
            dict(
                name="sgd",
                label="SGD",
                learning_rate=0.1,
                momentum=0.9,
                lr_drops=[60, 120, 180],
                lr_factor=0.2,
            ),
        ],
    )
