"""Losses, metrics and the loss_fn(params, batch) builders the optimizers and runner use."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_helpers import fake_variables, normal

from entropix import models


def test_cross_entropy_accuracy_error_perplexity():
    logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    labels = jnp.array([0, 1])
    log_probs = jax.nn.log_softmax(logits)
    expected = -(log_probs[0, 0] + log_probs[1, 1]) / 2
    np.testing.assert_allclose(models.cross_entropy_loss(logits, labels), expected, rtol=1e-6)
    assert float(models.accuracy(logits, labels)) == 0.5
    assert float(models.error_rate(logits, labels)) == 0.5
    np.testing.assert_allclose(models.perplexity(logits, labels), jnp.exp(expected), rtol=1e-6)
    # Sequence logits (B, T, V) average over every position.
    seq = jnp.stack([logits, logits])
    np.testing.assert_allclose(
        models.cross_entropy_loss(seq, jnp.stack([labels, labels])), expected, rtol=1e-6
    )


def test_committee_losses():
    out = jnp.array([0.5, -0.25, 0.1])
    y = jnp.array([1.0, 1.0, -1.0])
    expected = np.mean(np.log1p(np.exp(-4 * np.array(y) * np.array(out))))
    np.testing.assert_allclose(models.committee_logistic_loss(out, y), expected, rtol=1e-6)
    assert float(models.committee_error(out, y)) == pytest.approx(2 / 3)


def test_unpack_batch_accepts_pairs_and_dicts():
    assert models.unpack_batch((1, 2)) == (1, 2)
    assert models.unpack_batch({"x": 1, "y": 2}) == (1, 2)
    assert models.unpack_batch({"image": 1, "label": 2}) == (1, 2)
    with pytest.raises(KeyError, match="expected one of"):
        models.unpack_batch({"pixels": 1})


def _setup():
    model = models.small_fc()
    x = normal((6, 7, 7, 1))
    y = jnp.array([0, 1, 2, 3, 4, 5])
    variables = fake_variables(model, x)
    return model, variables, (x, y)


def test_eval_loss_fn_matches_apply_and_adds_weight_decay():
    model, variables, (x, y) = _setup()
    state = {"batch_stats": variables["batch_stats"]}
    logits = jax.jit(lambda v: model.apply(v, x, train=False))(variables)
    loss_fn = jax.jit(models.make_loss_fn(model, model_state=state))
    params = variables["params"]
    np.testing.assert_allclose(
        loss_fn(params, (x, y)), models.cross_entropy_loss(logits, y), rtol=1e-6
    )
    decayed = jax.jit(models.make_loss_fn(model, model_state=state, weight_decay=1e-3))
    sq = sum(float(jnp.sum(p**2)) for p in jax.tree.leaves(params))
    np.testing.assert_allclose(
        decayed(params, {"x": x, "y": y}) - loss_fn(params, (x, y)), 0.5e-3 * sq, rtol=1e-4
    )


def test_train_loss_fn_uses_batch_statistics_and_is_pure():
    model, variables, (x, y) = _setup()
    params = variables["params"]
    train_loss = jax.jit(models.make_loss_fn(model, train=True))
    out, _ = jax.jit(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]))(variables)
    np.testing.assert_allclose(
        train_loss(params, (x, y)), models.cross_entropy_loss(out, y), rtol=1e-6
    )
    state = {"batch_stats": variables["batch_stats"]}
    eval_loss = jax.jit(models.make_loss_fn(model, model_state=state))
    assert abs(float(train_loss(params, (x, y)) - eval_loss(params, (x, y)))) > 1e-3
    # Gradient of the pure loss agrees with a central finite difference along one weight.
    grads = jax.jit(jax.grad(models.make_loss_fn(model, train=True)))(params, (x, y))
    eps = 1e-2
    bump = jax.tree.map(jnp.zeros_like, params)
    bump["Dense_1"]["kernel"] = bump["Dense_1"]["kernel"].at[0, 0].set(eps)
    plus = jax.tree.map(jnp.add, params, bump)
    minus = jax.tree.map(jnp.subtract, params, bump)
    fd = (train_loss(plus, (x, y)) - train_loss(minus, (x, y))) / (2 * eps)
    np.testing.assert_allclose(grads["Dense_1"]["kernel"][0, 0], fd, rtol=2e-2, atol=1e-4)


def test_dropout_loss_needs_and_uses_the_rng():
    model = models.mnistfc(batch_norm=False)
    x = normal((4, 784))
    params = fake_variables(model, x)["params"]
    loss_fn = models.make_loss_fn(model, train=True)
    batch = (x, jnp.arange(4))
    jitted = jax.jit(loss_fn)
    a = jitted(params, batch, jax.random.key(1))
    b = jitted(params, batch, jax.random.key(2))
    assert float(a) != float(b)
    assert float(a) == float(jitted(params, batch, jax.random.key(1)))
    with pytest.raises(Exception, match="dropout"):
        loss_fn(params, batch)


def test_stateful_loss_fn_returns_updated_running_averages():
    model, variables, (x, y) = _setup()
    loss_fn = models.make_stateful_loss_fn(model)
    state = {"batch_stats": variables["batch_stats"]}
    (value, new_state), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        variables["params"], state, (x, y), None
    )
    out, expected = jax.jit(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]))(
        variables
    )
    np.testing.assert_allclose(value, models.cross_entropy_loss(out, y), rtol=1e-6)
    jax.tree.map(np.testing.assert_allclose, new_state, dict(expected))
    moved = new_state["batch_stats"]["BatchNorm_0"]["mean"]
    assert float(jnp.abs(moved).max()) > 0  # started at zero
    assert jax.tree.structure(grads) == jax.tree.structure(variables["params"])


def test_metrics_fn():
    model, variables, (x, y) = _setup()
    metrics = models.make_metrics_fn(model, model_state={"batch_stats": variables["batch_stats"]})
    result = jax.jit(metrics)(variables["params"], (x, y))
    logits = jax.jit(lambda v: model.apply(v, x, train=False))(variables)
    np.testing.assert_allclose(result["loss"], models.cross_entropy_loss(logits, y), rtol=1e-6)
    np.testing.assert_allclose(result["error"], models.error_rate(logits, y))


def test_recompute_batch_stats_averages_minibatch_statistics():
    model = models.small_fc()
    inputs = normal((3, 5, 7, 7, 1), seed=2)
    params = fake_variables(model, inputs[0])["params"]
    state = jax.jit(lambda p, x: models.recompute_batch_stats(model, p, x))(params, inputs)
    dense = params["Dense_0"]
    h = inputs.reshape(3, 5, 49) @ dense["kernel"] + dense["bias"]  # (batch index, example, unit)
    stats = state["batch_stats"]["BatchNorm_0"]
    np.testing.assert_allclose(stats["mean"], h.mean(1).mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats["var"], h.var(1).mean(0), rtol=1e-4, atol=1e-5)
    assert models.recompute_batch_stats(models.small_mnistfc(), params, inputs) == {}
