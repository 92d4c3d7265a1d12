"""Gradient-noise covariance D against exhaustive enumeration of minibatches (thesis Lemma 6.3)."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from entropix import landscape


def _tiny_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3))
    y = rng.normal(size=6)
    w = rng.normal(size=3)

    def loss_fn(params, batch):
        xb, yb = batch
        return 0.5 * jnp.mean((xb @ params - yb) ** 2)

    return loss_fn, jnp.asarray(w), (jnp.asarray(x), jnp.asarray(y)), (x @ w - y)[:, None] * x


def test_per_example_gradients(x64):
    loss_fn, w, (x, y), grads = _tiny_problem()
    # Two stacked batches of 3 examples, concatenated in order.
    stacked = (x.reshape(2, 3, 3), y.reshape(2, 3))
    np.testing.assert_allclose(
        landscape.per_example_gradients(loss_fn, w, stacked), grads, rtol=1e-12
    )
    ragged = [(x[:4], y[:4]), (x[4:], y[4:])]
    np.testing.assert_allclose(
        landscape.per_example_gradients(loss_fn, w, ragged), grads, rtol=1e-12
    )


def test_noise_covariance_matches_exhaustive_minibatch_enumeration(x64):
    loss_fn, w, (x, y), _ = _tiny_problem()
    grads = np.asarray(landscape.per_example_gradients(loss_fn, w, [(x, y)]))
    n, b = 6, 2
    # With replacement: all N^b ordered minibatches.
    means = np.array([grads[list(idx)].mean(0) for idx in itertools.product(range(n), repeat=b)])
    cov_with = np.cov(means.T, bias=True)
    np.testing.assert_allclose(landscape.noise_covariance(grads) / b, cov_with, atol=1e-14)
    np.testing.assert_allclose(
        landscape.minibatch_gradient_covariance(grads, b), cov_with, atol=1e-14
    )
    # Without replacement: all C(N, b) subsets; coefficient N/(N−1) (the thesis prints 1 − 1/(N−1)).
    means = np.array([grads[list(idx)].mean(0) for idx in itertools.combinations(range(n), b)])
    cov_without = np.cov(means.T, bias=True)
    d_wo = landscape.noise_covariance(grads, replacement=False)
    np.testing.assert_allclose((1 - b / n) / b * d_wo, cov_without, atol=1e-14)
    np.testing.assert_allclose(
        landscape.minibatch_gradient_covariance(grads, b, replacement=False),
        cov_without,
        atol=1e-14,
    )
    g = grads.mean(0)
    printed = grads.T @ grads / (n - 1) - (1 - 1 / (n - 1)) * np.outer(g, g)
    assert np.max(np.abs((1 - b / n) / b * printed - cov_without)) > 1e-3


def test_noise_spectrum_gram_trick_rank_and_statistics(x64):
    rng = np.random.default_rng(1)
    n, d = 8, 20
    grads = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    spectrum = landscape.noise_spectrum(grads, learning_rate=0.1, batch_size=4)
    dense = np.linalg.eigvalsh(np.asarray(landscape.noise_covariance(grads)))[::-1]
    np.testing.assert_allclose(spectrum.eigenvalues, dense[:n], rtol=1e-9, atol=1e-9)
    assert spectrum.rank == n - 1  # centering removes one direction: rank ≤ N − 1
    assert spectrum.rank_fraction == pytest.approx((n - 1) / d)
    assert spectrum.mean == pytest.approx(np.mean(dense))
    assert spectrum.std == pytest.approx(np.std(np.clip(dense, 0, None)), rel=1e-9)
    assert spectrum.temperature == pytest.approx(0.1 / 8)
    # N ≥ d path (d × d matrix) and without replacement (scaled by N/(N−1)).
    grads_tall = rng.normal(size=(30, 5))
    wide = landscape.noise_spectrum(grads_tall, replacement=False)
    np.testing.assert_allclose(
        wide.eigenvalues,
        np.linalg.eigvalsh(np.cov(grads_tall.T))[::-1],
        rtol=1e-10,
    )
    assert wide.rank == 5
    # Threshold λ_max · d · eps (numpy matrix_rank default); ~1e-13, below approx's default abs.
    assert spectrum.tolerance == pytest.approx(
        float(spectrum.eigenvalues[0]) * d * np.finfo(np.float64).eps, rel=1e-12, abs=0
    )


def test_temperature_and_diversity():
    assert landscape.sgd_temperature(0.2, 10) == pytest.approx(0.01)
    assert landscape.sgd_temperature(0.2, 10, num_examples=40) == pytest.approx(0.0075)
    grads = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert float(landscape.gradient_diversity(grads)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="batch_size"):
        landscape.sgd_temperature(0.1, 0)
    with pytest.raises(ValueError, match="grads"):
        landscape.noise_spectrum(np.ones((1, 3)))


def test_minibatch_covariance_at_the_batch_size_bounds(x64):
    rng = np.random.default_rng(2)
    grads = rng.normal(size=(5, 3))
    d_w = np.cov(grads.T, bias=True)
    # Without replacement b = N leaves no noise; b > N is refused.
    np.testing.assert_allclose(
        landscape.minibatch_gradient_covariance(grads, 5, replacement=False), 0.0, atol=1e-15
    )
    with pytest.raises(ValueError, match="batch_size"):
        landscape.minibatch_gradient_covariance(grads, 6, replacement=False)
    # With replacement any b is allowed: D_w / b.
    np.testing.assert_allclose(
        landscape.minibatch_gradient_covariance(grads, 6), d_w / 6, rtol=1e-12
    )


def test_sgd_temperature_at_the_batch_size_bounds():
    # b = N without replacement: (η/2b)(1 − b/N) = 0; b > N is refused.
    assert landscape.sgd_temperature(0.1, 4, num_examples=4) == 0.0
    with pytest.raises(ValueError, match="batch_size"):
        landscape.sgd_temperature(0.1, 5, num_examples=4)


def test_noise_spectrum_of_an_exactly_known_diagonal_covariance(x64):
    # Centered first column ±0.1, second column constant: D_w = diag(0.01, 0) exactly.
    grads = np.array([[0.1, 5.0], [-0.1, 5.0], [0.1, 5.0], [-0.1, 5.0]])
    spectrum = landscape.noise_spectrum(grads, learning_rate=0.1, batch_size=2)
    np.testing.assert_allclose(spectrum.eigenvalues, [0.01, 0.0], rtol=1e-12, atol=1e-18)
    assert spectrum.mean == pytest.approx(0.005)
    assert spectrum.std == pytest.approx(0.005)  # eigenvalues {0.01, 0}: std 0.005
    assert spectrum.temperature == pytest.approx(0.1 / 4)
    eps = np.finfo(np.float64).eps
    assert spectrum.tolerance == pytest.approx(0.01 * 2 * eps, rel=1e-12, abs=0)  # λ_max·d·eps
    # A zero tolerance counts only strictly positive eigenvalues.
    assert landscape.noise_spectrum(grads, tolerance=0.0).rank == 1
    # Without replacement: D_wo = N/(N−1) D_w and temperature (η/2b)(1 − b/N).
    without = landscape.noise_spectrum(grads, replacement=False, learning_rate=0.1, batch_size=2)
    np.testing.assert_allclose(without.eigenvalues, [0.04 / 3, 0.0], rtol=1e-12, atol=1e-18)
    assert without.temperature == pytest.approx(0.1 / 4 * (1 - 2 / 4))
    with pytest.raises(ValueError, match="Pass both"):
        landscape.noise_spectrum(grads, learning_rate=0.1)
    with pytest.raises(ValueError, match="Pass both"):
        landscape.noise_spectrum(grads, batch_size=2)


def test_gradient_diversity_both_definitions(x64):
    grads = np.array([[3.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # Σ‖g_k‖² = 9 + 1 + 2 = 12, ‖Σ g_k‖² = ‖(4, 2)‖² = 20.
    assert float(landscape.gradient_diversity(grads)) == pytest.approx(12 / 20)
    # Σ‖g_k‖ = 4 + √2, ‖(1/N) Σ g_k‖ = √20 / 3.
    assert float(landscape.gradient_diversity(grads, squared=False)) == pytest.approx(
        (4 + np.sqrt(2)) / (np.sqrt(20) / 3)
    )
    # Both are invariant to scaling every gradient by the same factor.
    for squared in (True, False):
        assert float(landscape.gradient_diversity(-2.5 * grads, squared=squared)) == pytest.approx(
            float(landscape.gradient_diversity(grads, squared=squared))
        )
