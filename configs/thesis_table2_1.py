"""Thesis Table 2.1: All-CNN-BN on CIFAR-10 with topology trivialization (Trivialized-SGD).

Data: tfds ``cifar10`` (prepared once with internet), GCN + ZCA, no augmentation.
Published (test error %): All-CNN-BN baseline 8.42 ± 0.08; resampled, annealed noise
8.16 ± 0.07; with topology trivialization 7.95 ± 0.04 (2 runs each).
Settings (thesis §2.4.3): SGD + Nesterov 0.9, 200 epochs, batch 128, η = 0.1 ÷5 every 60
epochs, ℓ2 10⁻³; field J = 10⁻⁴, τ0 = 10³, p = number of layers (All-CNN: 9 conv blocks).
"""

from entropix.experiments.config_base import experiment


def get_config():
    field = dict(spin_coupling=1e-4, num_layers=9, tau0=1e3, key=0, momentum=0.9, weight_decay=1e-3)
    drops = dict(lr_drops=[60, 120, 180], lr_factor=0.2)
    return experiment(
        "thesis_table2_1",
        dataset="cifar10",
        model="allcnn",
        budget_epochs=200,
        optimizers=[
            dict(
                name="trivialized_sgd", label="Trivialized-SGD", learning_rate=0.1, **field, **drops
            ),
            dict(
                name="trivialized_sgd",
                label="resampled annealed noise",
                learning_rate=0.1,
                resample=True,
                **field,
                **drops,
            ),
            dict(
                name="sgd", label="SGD", learning_rate=0.1, momentum=0.9, weight_decay=1e-3, **drops
            ),
        ],
    )
