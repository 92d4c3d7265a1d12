"""A tiny classification task and run config shared by the runner tests."""

import numpy as np

from entropix.data import Dataset


def blobs(num_train=240, num_test=120, features=6, classes=3, seed=0):
    """Gaussian blobs: a tiny, learnable classification task."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, features)) * 2.0

    def draw(n):
        y = rng.integers(0, classes, n).astype(np.int32)
        return (centers[y] + rng.normal(size=(n, features))).astype(np.float32), y

    x_train, y_train = draw(num_train)
    x_test, y_test = draw(num_test)
    return Dataset("blobs", x_train, y_train, x_test, y_test, classes)


DATA = blobs()
CONFIG = dict(
    dataset="blobs",
    model="mlp",
    model_kwargs={"features": (16,)},
    batch_size=20,
    budget_epochs=4.0,
    eval_every_epochs=1.0,
    seed=0,
    min_round_length=4,
)
ESGD = dict(name="entropy_sgd", learning_rate=0.5, num_inner_steps=4, coupling=0.1, noise=1e-3)
