"""Trajectory diagnostics: increment spectrum, autocorrelation with band, full-gradient norm."""

import jax.numpy as jnp
import numpy as np
import pytest

from entropix import landscape


def test_increment_spectrum_white_and_periodic():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(257, 300)), axis=0)
    spectrum = landscape.increment_spectrum(walk, power=True)
    # White increments: E|F(ν)|² = K − 1 = 256 at every frequency.
    assert spectrum.frequencies.shape == (129,)
    assert np.all(np.abs(np.asarray(spectrum.mean)[1:-1] / 256 - 1) < 0.3)
    # A sinusoid at 1/8 cycles per step puts all increment power in one bin.
    k = np.arange(129)
    sine = np.sin(2 * np.pi * k / 8)[:, None] * np.ones((1, 3))
    periodic = landscape.increment_spectrum({"w": jnp.asarray(sine)})
    assert float(periodic.frequencies[int(np.argmax(periodic.mean))]) == pytest.approx(1 / 8)
    np.testing.assert_allclose(periodic.std, 0.0, atol=1e-4)


def test_autocorrelation_matches_direct_formula_and_band():
    rng = np.random.default_rng(1)
    k = 200
    ar = np.zeros((k, 4))
    for t in range(1, k):
        ar[t] = 0.9 * ar[t - 1] + rng.normal(size=4)
    ac = landscape.autocorrelation(
        [{"a": jnp.asarray(row[:2]), "b": jnp.asarray(row[2:])} for row in ar], 10
    )
    c = ar - ar.mean(0)
    direct = np.array([np.sum(c[: k - h] * c[h:], 0) / np.sum(c**2, 0) for h in range(11)])
    np.testing.assert_allclose(ac.mean, direct.mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ac.std, direct.std(1), rtol=1e-4, atol=1e-6)
    assert ac.band == pytest.approx(1.959964 / np.sqrt(k), rel=1e-5)
    assert landscape.autocorrelation(ar, 5, confidence=0.99).band == pytest.approx(
        2.575829 / np.sqrt(k), rel=1e-5
    )
    assert float(ac.mean[5]) > ac.band  # AR(1) with φ = 0.9: far outside the white-noise band


def test_full_gradient_norms():
    def loss_fn(w, batch):
        return 0.5 * jnp.sum(batch * w["a"] ** 2)

    snaps = {"a": jnp.array([[1.0, 2.0], [0.0, 1.0], [0.0, 0.0]])}
    out = landscape.full_gradient_norms(
        loss_fn, snaps, [jnp.array([1.0, 3.0]), jnp.array([3.0, 1.0])]
    )
    # Mean batch = [2, 2]: gradient 2 w.
    np.testing.assert_allclose(out.grad_norm, [2 * np.sqrt(5), 2.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out.loss, [5.0, 1.0, 0.0], rtol=1e-6)


def test_trajectory_validation():
    with pytest.raises(ValueError, match="max_lag"):
        landscape.autocorrelation(np.ones((5, 2)) + np.arange(5)[:, None], 5)
    with pytest.raises(ValueError, match="snapshots"):
        landscape.increment_spectrum(np.ones((2, 3)))


def test_snapshot_matrix_rejects_leaves_without_a_snapshot_axis():
    with pytest.raises(ValueError, match="leading snapshot axis"):
        landscape.snapshot_matrix({"a": jnp.ones(())})
    with pytest.raises(ValueError, match="leading snapshot axis"):
        landscape.snapshot_matrix({})
    with pytest.raises(ValueError, match="share the leading"):
        landscape.snapshot_matrix({"a": jnp.ones((3, 2)), "b": jnp.ones((4,))})


def test_increment_spectrum_of_three_snapshots_by_hand():
    # Increments (1, 2) and (2, 0): |FFT| = (3, 1) and (2, 2) at frequencies (0, 1/2).
    x = jnp.array([[0.0, 0.0], [1.0, 2.0], [3.0, 2.0]])
    spectrum = landscape.increment_spectrum(x)
    np.testing.assert_allclose(spectrum.frequencies, [0.0, 0.5])
    np.testing.assert_allclose(spectrum.mean, [2.5, 1.5], rtol=1e-6)
    np.testing.assert_allclose(spectrum.std, [0.5, 0.5], rtol=1e-6)
    power = landscape.increment_spectrum(x, power=True)
    np.testing.assert_allclose(power.mean, [6.5, 2.5], rtol=1e-6)
    np.testing.assert_allclose(power.std, [2.5, 1.5], rtol=1e-6)


def test_autocorrelation_small_cases_by_hand():
    # Two snapshots of one coordinate: centered (−a, a), r(0) = 1, r(1) = −a²/(2a²) = −1/2.
    two = landscape.autocorrelation(jnp.array([[0.0], [0.1]]))
    np.testing.assert_allclose(two.lags, [0, 1])
    np.testing.assert_allclose(two.mean, [1.0, -0.5], rtol=1e-5)
    assert two.num_coordinates == 1
    # Default max_lag = K // 2; the constant coordinate is left out.
    x = jnp.array([[0.0, 7.0], [1.0, 7.0], [0.0, 7.0], [1.0, 7.0], [0.0, 7.0]])
    ac = landscape.autocorrelation(x)
    np.testing.assert_allclose(ac.lags, [0, 1, 2])
    # Centered (−.4, .6, −.4, .6, −.4): Σc² = 1.2, lag 1: 4·(−.24) = −.96, lag 2: .16·2 + .36 = .68.
    np.testing.assert_allclose(ac.mean, [1.0, -0.8, 0.68 / 1.2], rtol=1e-5)
    np.testing.assert_allclose(ac.std, 0.0, atol=1e-6)
    assert ac.num_coordinates == 1
    np.testing.assert_allclose(landscape.autocorrelation(x, 0).mean, [1.0])
    with pytest.raises(ValueError, match="constant"):
        landscape.autocorrelation(jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        landscape.autocorrelation(jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="confidence"):
        landscape.autocorrelation(x, confidence=1.0)
