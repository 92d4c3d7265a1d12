"""The runner's task protocol: one registry chooses the task, and a new task trains through
``train`` with nothing else changed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from run_helpers import CONFIG, DATA

from entropix.data import Dataset
from entropix.experiments import ConfigError, tasks, train, trainer

NUM_TRAIN, FEATURES, LEARNING_RATE = 64, 3, 0.3


def linear_data(seed=0):
    """``y = x·w + b + noise``: a least-squares problem."""
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=FEATURES), 0.5

    def draw(n):
        x = rng.normal(size=(n, FEATURES)).astype(np.float32)
        return x, (x @ w + b + 0.1 * rng.normal(size=n)).astype(np.float32)

    return Dataset("linear_regression", *draw(NUM_TRAIN), *draw(32), num_classes=1)


def half_squared_error(model, params, model_state, x, y):
    predictions = model.apply({"params": params, **model_state}, x, train=False)[:, 0]
    return 0.5 * jnp.mean((predictions - y) ** 2)


def _check_targets(config, dataset):
    if not np.all(np.isfinite(dataset.y_train)):
        raise ConfigError(f"dataset={config['dataset']!r}: the targets must be finite.")


def _regression_loss(config, dataset, model):
    del config, dataset

    def loss(params, model_state, carried, arrays, inputs, rng):
        del rng
        (x_train, y_train), (indices,) = arrays, inputs
        value = half_squared_error(model, params, model_state, x_train[indices], y_train[indices])
        return value, (model_state, carried)

    return loss


def _regression_evaluator(config, dataset, model):
    del config

    def evaluate(weights, model_state):
        def loss(x, y):
            return float(half_squared_error(model, weights, model_state, x, y))

        test_loss = loss(dataset.x_test, dataset.y_test)
        return dict(
            train_eval_loss=loss(dataset.x_train, dataset.y_train),
            test_loss=test_loss,
            test_error=2 * test_loss,  # the mean squared error
        )

    return evaluate


# Minibatches, their schedule and the (absent) carried state are those of classification.
REGRESSION = tasks.CLASSIFICATION._replace(
    name="regression",
    claims=lambda config: config.get("dataset") == "linear_regression",
    check_data=_check_targets,
    loss=_regression_loss,
    evaluator=_regression_evaluator,
    diagnostic_batch=lambda config, dataset, count: (
        dataset.x_train[:count],
        dataset.y_train[:count],
    ),
)


def test_the_registry_chooses_one_task_per_config(monkeypatch):
    assert tasks.task_for(CONFIG) is tasks.CLASSIFICATION
    assert tasks.task_for({**CONFIG, "seq_len": 5}) is tasks.LANGUAGE_MODEL
    monkeypatch.setitem(tasks.TASKS, "regression", REGRESSION)
    regression = {**CONFIG, "dataset": "linear_regression"}
    assert tasks.task_for(regression) is REGRESSION
    assert tasks.task_for(CONFIG) is tasks.CLASSIFICATION
    with pytest.raises(ConfigError, match=r"several tasks at once \(language_model, regression\)"):
        tasks.task_for({**regression, "seq_len": 5})


def test_a_third_task_trains_through_train_unchanged(monkeypatch):
    """Full-batch SGD on a least-squares task registered here equals gradient descent by hand."""
    monkeypatch.setitem(tasks.TASKS, "regression", REGRESSION)
    data = linear_data()
    steps = 20
    config = {
        **CONFIG,
        "dataset": "linear_regression",
        "model_kwargs": {"features": ()},  # one dense layer: linear least squares
        "batch_size": NUM_TRAIN,  # one minibatch per epoch: the full batch
        "budget_epochs": float(steps),
        "eval_every_epochs": 4.0,
        "min_round_length": 4,
    }
    sgd = dict(name="sgd", learning_rate=LEARNING_RATE, momentum=0.0)
    result = train(config, sgd, quiet=True, dataset=data)

    model = result.model
    params = model.init(jax.random.PRNGKey(0), jnp.asarray(data.x_train[:1]), train=False)
    params = params["params"]
    grad = jax.jit(jax.value_and_grad(half_squared_error, argnums=1), static_argnums=0)
    losses = []
    for _ in range(steps):
        value, grads = grad(model, params, {}, data.x_train, data.y_train)
        losses.append(float(value))
        params = jax.tree.map(lambda w, g: w - LEARNING_RATE * g, params, grads)

    for got, want in zip(jax.tree.leaves(result.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [r["grad_evals"] for r in result.history] == [4, 8, 12, 16, 20]
    last = result.history[-1]
    # The runner's train loss is the mean of the task's loss over the last round's steps.
    assert last["train_loss"] == pytest.approx(np.mean(losses[-4:]), rel=1e-5)
    want_test = float(half_squared_error(model, params, {}, data.x_test, data.y_test))
    assert last["test_loss"] == pytest.approx(want_test, rel=1e-5)
    assert last["test_error"] == pytest.approx(2 * want_test, rel=1e-5)
    assert losses[-1] < 0.1 * losses[0]  # it learned
    inputs, targets = trainer.diagnostic_batch(config, data, 5)
    np.testing.assert_array_equal(inputs, data.x_train[:5])
    np.testing.assert_array_equal(targets, data.y_train[:5])


def test_the_checkpoint_keeps_its_plain_tuple_layout():
    """Checkpoints hold ``(params, model_state, opt_state, carried, counters)``, a plain tuple,
    so the checkpoints of every earlier run restore."""
    s = trainer.setup(CONFIG, dict(name="sgd", learning_rate=0.1, momentum=0.9), DATA)
    state = trainer.init_state(s, 0)
    assert isinstance(state, tasks.TrainState) and state.carried == {}
    tree = trainer.checkpoint_tree(state, trainer.Counters(1.5, 2, 1))
    assert type(tree) is tuple and len(tree) == 5
    assert all(a is b for a, b in zip(tree, state, strict=False))
    assert tree[4].dtype == np.float64
    np.testing.assert_array_equal(tree[4], [1.5, 2.0, 1.0])
    np.testing.assert_array_equal(trainer.checkpoint_tree(state)[4], np.zeros(3))
    restored, counters = trainer.from_checkpoint_tree(list(tree))
    assert isinstance(restored, tasks.TrainState) and restored.params is state.params
    assert counters == (1.5, 2.0, 1.0)
