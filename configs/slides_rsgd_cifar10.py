"""Pittorino et al. (ICLR 2021 slides) table: rSGD and eSGD vs SGD on CIFAR-10.

Data: tfds ``cifar10`` (prepared once with internet), GCN + ZCA.
Published (test error %), SmallConvNet row: baseline 16.5 ± 0.2, rSGD 15.6 ± 0.3,
eSGD 14.7 ± 0.3, rSGD × y 14.9 ± 0.2. The slides specify neither the SmallConvNet nor y, γ, K,
L: this config uses small-allcnn as the small convnet, y = 3 replicas evaluated at the center,
K = 1, γ scoped ×1.001 per step from 10⁻³, and eSGD = Entropy-SGD with L = 5.
"""

from entropix.experiments.config_base import experiment


def get_config():
    return experiment(
        "slides_rsgd_cifar10",
        dataset="cifar10",
        model="small-allcnn",
        budget_epochs=100,
        optimizers=[
            dict(
                name="rsgd",
                label="rSGD (y=3)",
                learning_rate=0.05,
                momentum=0.9,
                nesterov=True,
                num_replicas=3,
                elastic_coupling=dict(
                    schedule="exponential",
                    initial_coupling=1e-3,
                    growth_rate=1e-3,
                    max_coupling=1.0,
                ),
                lr_drops=[50, 75],
                lr_factor=0.1,
            ),
            dict(
                name="entropy_sgd",
                label="eSGD",
                learning_rate=1.0,
                num_inner_steps=5,
                sgld_learning_rate=0.05,
                noise=1e-4,
                coupling=dict(schedule="exponential", initial_coupling=0.03, growth_rate=1e-3),
                lr_drops=[50, 75],
                lr_factor=0.1,
            ),
            dict(
                name="sgd",
                label="SGD",
                learning_rate=0.05,
                momentum=0.9,
                lr_drops=[50, 75],
                lr_factor=0.1,
            ),
        ],
    )
