"""Diagonal Fisher: per-example (vmapped) and from Adam's bias-corrected moments."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from entropix import landscape


def _logistic(w, batch):
    x, y = batch
    logits = x @ w["w"] + w["b"]
    return jnp.mean(jnp.logaddexp(0.0, logits) - y * logits)


def test_empirical_fisher_matches_loop_over_examples(x64):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 5, 4)))
    y = jnp.asarray(rng.integers(0, 2, size=(3, 5)).astype(np.float64))
    params = {"w": jnp.asarray(rng.normal(size=4)), "b": jnp.asarray(0.3)}
    grads = [
        jax.grad(_logistic)(params, (x[j, k : k + 1], y[j, k : k + 1]))
        for j in range(3)
        for k in range(5)
    ]
    g_w = np.stack([g["w"] for g in grads])
    g_b = np.stack([g["b"] for g in grads])
    fisher = landscape.empirical_fisher_diagonal(_logistic, params, (x, y))
    np.testing.assert_allclose(fisher["w"], np.mean(g_w**2, axis=0), rtol=1e-12)
    np.testing.assert_allclose(fisher["b"], np.mean(g_b**2), rtol=1e-12)
    centered = landscape.empirical_fisher_diagonal(_logistic, params, (x, y), centered=True)
    # Centered by the dataset mean gradient (all 15 examples).
    np.testing.assert_allclose(centered["w"], np.var(g_w, axis=0), rtol=1e-10)
    np.testing.assert_allclose(centered["b"], np.var(g_b), rtol=1e-10)


def test_adam_fisher_equals_bias_corrected_moments(x64):
    b1, b2 = 0.8, 0.9
    opt = optax.chain(optax.clip_by_global_norm(1e9), optax.adam(1e-3, b1=b1, b2=b2))
    params = {"a": jnp.zeros(3)}
    state = opt.init(params)
    rng = np.random.default_rng(1)
    grads = rng.normal(size=(7, 3))
    for g in grads:
        _, state = opt.update({"a": jnp.asarray(g)}, state, params)
    t = len(grads)
    weights1 = (1 - b1) * b1 ** np.arange(t - 1, -1, -1) / (1 - b1**t)
    weights2 = (1 - b2) * b2 ** np.arange(t - 1, -1, -1) / (1 - b2**t)
    mu_hat = weights1 @ grads
    nu_hat = weights2 @ grads**2
    fisher = landscape.adam_fisher_diagonal(state, b1=b1, b2=b2)
    np.testing.assert_allclose(fisher["a"], np.maximum(nu_hat - mu_hat**2, 0.0), rtol=1e-10)
    assert isinstance(landscape.find_adam_state(state), optax.ScaleByAdamState)
    # Equal decays: exactly a weighted variance, hence non-negative.
    state = optax.adam(1e-3, b1=0.9, b2=0.9).init(params)
    assert np.all(np.asarray(landscape.adam_fisher_diagonal(state, b1=0.9, b2=0.9)["a"]) == 0)


def test_adam_fisher_rejects_states_without_adam():
    state = optax.sgd(0.1).init({"a": jnp.zeros(2)})
    with pytest.raises(ValueError, match="ScaleByAdamState"):
        landscape.adam_fisher_diagonal(state)
    with pytest.raises(ValueError, match="b2"):
        landscape.adam_fisher_diagonal(optax.adam(1e-3).init(jnp.zeros(1)), b2=1.0)


def test_adam_fisher_with_an_explicit_count_and_zero_decays(x64):
    # Zero decays are allowed. b1 = 0, b2 = 1/2 after the gradients 3, 1: μ̂ = 1 and
    # ν̂ = (3² + 2·1²)/3, so ν̂ − μ̂² = 8/3. b1 = 1/2, b2 = 0 after 1, 3: μ̂ = 7/3 and ν̂ = 9.
    for b1, b2, grads, expected in [(0.0, 0.5, (3.0, 1.0), 8 / 3), (0.5, 0.0, (1.0, 3.0), 32 / 9)]:
        opt = optax.adam(1e-3, b1=b1, b2=b2)
        state = opt.init(jnp.zeros(1))
        for g in grads:
            _, state = opt.update(jnp.array([g]), state)
        fisher = landscape.adam_fisher_diagonal(state, b1=b1, b2=b2)
        np.testing.assert_allclose(fisher, [expected], rtol=1e-12)
    # An explicit step count replaces the state's in both bias corrections.
    b1, b2 = 0.8, 0.9
    opt = optax.adam(1e-3, b1=b1, b2=b2)
    state = opt.init(jnp.zeros(2))
    for g in np.random.default_rng(2).normal(size=(5, 2)):
        _, state = opt.update(jnp.asarray(g), state)
    adam = landscape.find_adam_state(state)
    mu, nu = np.asarray(adam.mu), np.asarray(adam.nu)
    for t in (2, 9):
        expected = np.maximum(nu / (1 - b2**t) - (mu / (1 - b1**t)) ** 2, 0.0)
        np.testing.assert_allclose(
            landscape.adam_fisher_diagonal(state, b1=b1, b2=b2, count=t), expected, rtol=1e-12
        )
    # Step 0 is before the first update: zeros, whatever the moments hold.
    np.testing.assert_array_equal(
        landscape.adam_fisher_diagonal(state, b1=b1, b2=b2, count=0), [0.0, 0.0]
    )
    with pytest.raises(ValueError, match="b1"):
        landscape.adam_fisher_diagonal(state, b1=1.0)
