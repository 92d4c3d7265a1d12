"""Local energy δE(w, σ): closed form on a quadratic, rescaling invariance, skipping parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entropix import landscape


def test_local_energy_of_quadratic_equals_closed_form(x64):
    rng = np.random.default_rng(0)
    d = 6
    q = rng.normal(size=(d, d))
    a = jnp.asarray(q @ q.T / d + np.eye(d))
    m = jnp.asarray(rng.normal(size=d))
    w = {"w": jnp.asarray(rng.normal(size=d))}

    def loss_fn(p, batch):
        r = p["w"] - m
        return 0.5 * r @ (batch * a) @ r

    sigmas = jnp.array([0.0, 0.05, 0.2, 0.5])
    out = landscape.local_energy(
        loss_fn, w, [1.0, 1.0], sigmas, num_samples=4000, key=jax.random.key(1)
    )
    exact = 0.5 * sigmas**2 * jnp.sum(jnp.diag(a) * w["w"] ** 2)
    assert float(out.loss[0]) == 0.0 and float(out.loss_stderr[0]) == 0.0
    assert np.all(np.abs(np.asarray(out.loss - exact))[1:] < 4 * np.asarray(out.loss_stderr)[1:])
    # The estimator is informative: its error bars are a small fraction of the value at σ=0.5.
    assert float(out.loss_stderr[-1]) < 0.1 * float(exact[-1])
    assert out.error is None and out.num_perturbed == d


def _mlp(params, x):
    h = jax.nn.relu(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def _loss(params, batch):
    x, y = batch
    logits = _mlp(params, x)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))


def _error(params, batch):
    x, y = batch
    return jnp.mean(jnp.argmax(_mlp(params, x), axis=1) != y)


def test_local_energy_is_invariant_under_relu_rescaling(x64):
    rng = np.random.default_rng(2)
    params = {
        "w1": jnp.asarray(rng.normal(size=(5, 12))),
        "b1": jnp.asarray(rng.normal(size=12)),
        "w2": jnp.asarray(rng.normal(size=(12, 3))),
        "b2": jnp.asarray(rng.normal(size=3)),
    }
    c = 3.7
    rescaled = {
        "w1": c * params["w1"],
        "b1": c * params["b1"],
        "w2": params["w2"] / c,
        "b2": params["b2"],
    }
    x = jnp.asarray(rng.normal(size=(2, 40, 5)))
    y = jnp.asarray(rng.integers(0, 3, size=(2, 40)))
    np.testing.assert_allclose(_mlp(params, x[0]), _mlp(rescaled, x[0]), rtol=1e-12)
    sigmas = [0.0, 0.1, 0.3, 0.6]
    kwargs = dict(error_fn=_error, num_samples=8, key=jax.random.key(3))
    a = landscape.local_energy(_loss, params, (x, y), sigmas, **kwargs)
    b = landscape.local_energy(_loss, rescaled, (x, y), sigmas, **kwargs)
    np.testing.assert_allclose(a.loss, b.loss, atol=1e-10)
    np.testing.assert_allclose(a.error, b.error, atol=1e-12)
    assert float(a.loss[-1]) > 0 and float(a.error[-1]) > 0
    assert float(a.error_at_params) == float(b.error_at_params)


def test_skip_predicate_leaves_normalization_parameters_unperturbed(x64):
    params = {"BatchNorm_0": {"scale": jnp.ones(3)}, "Dense_0": {"kernel": jnp.ones(2)}}

    def loss_fn(p, batch):
        return jnp.sum(p["BatchNorm_0"]["scale"] ** 2) * batch

    out = landscape.local_energy(
        loss_fn, params, [1.0], [0.0, 0.5], skip=landscape.is_normalization_param, num_samples=4
    )
    assert out.num_perturbed == 2
    np.testing.assert_allclose(out.loss, 0.0, atol=0)
    unskipped = landscape.local_energy(loss_fn, params, [1.0], [0.5], num_samples=4)
    assert float(unskipped.loss[0]) != 0.0
    with pytest.raises(ValueError, match="sigmas"):
        landscape.local_energy(loss_fn, params, [1.0], [-0.1])


def test_square_of_a_linear_loss_is_fixed_by_the_mean_and_standard_error(x64):
    # One parameter w and E₁(w) = w: each sample is u = σ z w. For E₂(w) = w² each sample is
    # 2 w u + u², so the mean of E₂ is 2 w ū + ū² + (S − 1) se² with ū and se those of E₁:
    # an exact identity for the estimator's mean and its standard error (ddof = 1).
    w = 2.0
    num_samples = 5
    out = landscape.local_energy(
        lambda p, b: b * p,
        jnp.asarray(w),
        [1.0],
        [0.0, 0.3, 1.0],
        error_fn=lambda p, b: b * p**2,
        num_samples=num_samples,
        key=jax.random.key(4),
    )
    assert float(out.loss_at_params) == w and float(out.error_at_params) == w**2
    assert out.num_perturbed == 1
    np.testing.assert_array_equal(out.loss[0], 0.0)
    np.testing.assert_array_equal(out.error[0], 0.0)
    expected = 2 * w * out.loss + out.loss**2 + (num_samples - 1) * out.loss_stderr**2
    np.testing.assert_allclose(out.error, expected, rtol=1e-12, atol=1e-14)
    # E₁ is linear in σ: its mean and standard error scale with σ (common random numbers).
    np.testing.assert_allclose(out.loss[1], 0.3 * out.loss[2], rtol=1e-12)
    np.testing.assert_allclose(out.loss_stderr[1], 0.3 * out.loss_stderr[2], rtol=1e-12)
    assert float(out.loss_stderr[2]) > 0.1
    # A single sample has no standard error.
    one = landscape.local_energy(lambda p, b: b * p, jnp.asarray(w), [1.0], [1.0], num_samples=1)
    assert float(one.loss_stderr[0]) == 0.0 and np.isfinite(float(one.loss[0]))


def test_local_energy_refuses_bad_sigmas_and_empty_perturbations():
    def loss_fn(p, b):
        return jnp.sum(p["w"] ** 2) * b

    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="sigmas"):
        landscape.local_energy(loss_fn, params, [1.0], [[0.1, 0.2]])
    with pytest.raises(ValueError, match="sigmas"):
        landscape.local_energy(loss_fn, params, [1.0], [])
    with pytest.raises(ValueError, match="no parameters"):
        landscape.local_energy(lambda p, b: 0.0, {}, [1.0], [0.1])
    with pytest.raises(ValueError, match="skip"):
        landscape.local_energy(loss_fn, params, [1.0], [0.1], skip=lambda path, leaf: True)
