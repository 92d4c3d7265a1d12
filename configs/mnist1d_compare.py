"""The main job: SGD, Adam, SAM, Entropy-SGD, Parle and rSGD on MNIST-1D at an equal budget.

Data: MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package (4,000 train /
1,000 test sequences of 40 features). Published baselines for this data: logistic regression
≈ 32% accuracy, MLP ≈ 68%, CNN ≈ 94%. Every optimizer gets the same number of gradient
evaluations per replica (``budget_epochs`` effective epochs); replica methods run 3 replicas
vmapped on one device and are evaluated at the replica mean.

Run: ``entropix compare`` (this is the default config), ≈ 3–4 minutes on 2 CPU cores.
"""

import ml_collections


def optimizers():
    return [
        dict(name="sgd", label="SGD (Nesterov)", learning_rate=0.05, momentum=0.9),
        dict(name="adam", label="Adam", learning_rate=2e-3),
        dict(name="sam", label="SAM", learning_rate=0.05, rho=0.05),
        dict(
            name="entropy_sgd",
            label="Entropy-SGD",
            learning_rate=1.0,
            num_inner_steps=5,
            coupling=0.1,
            sgld_learning_rate=0.05,
            noise=1e-4,
            lr_drops=[40],
            lr_factor=0.2,
        ),
        dict(
            name="parle",
            label="Parle (n=3)",
            learning_rate=1.0,
            num_inner_steps=5,
            coupling=0.1,
            elastic_coupling=0.1,
            sgld_learning_rate=0.05,
            num_replicas=3,
            lr_drops=[40],
            lr_factor=0.2,
        ),
        dict(
            name="rsgd",
            label="rSGD (n=3)",
            learning_rate=0.05,
            momentum=0.9,
            nesterov=True,
            coupling=0.01,
            num_replicas=3,
        ),
    ]


def get_config():
    config = ml_collections.ConfigDict()
    config.name = "mnist1d_compare"
    config.dataset = "mnist1d"
    config.data_dir = ""
    config.preprocessing = "default"
    config.dataset_kwargs = ml_collections.ConfigDict()
    config.model = "mlp"
    config.model_kwargs = ml_collections.ConfigDict({"features": (100, 100)})
    config.batch_size = 100
    config.budget_epochs = 60.0
    config.eval_every_epochs = 5.0
    config.train_eval_examples = 4000
    config.min_round_length = 10
    config.checkpoint_every_rounds = 0
    config.skip_nonfinite = False
    config.seed = 0
    config.seeds = (0, 1)
    config.optimizer = optimizers()[3]
    config.optimizers = optimizers()
    config.diagnostics = True
    config.diagnostics_examples = 512
    config.local_energy_sigma = 0.5
    config.local_energy_samples = 8
    return config
