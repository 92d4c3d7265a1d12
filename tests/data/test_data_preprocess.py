"""Preprocessing: scaling, standardization, GCN, ZCA (numerically), down-sampling, augmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entropix import data


def test_scalings():
    x = np.array([0, 51, 255], np.uint8)
    np.testing.assert_allclose(data.scale_unit(x), [0.0, 0.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(data.scale_symmetric(x), [-1.0, -0.6, 1.0], rtol=1e-6)
    assert data.scale_symmetric(x).dtype == np.float32


def test_standardize_uses_training_statistics_only():
    train = np.array([[1.0, 10.0], [3.0, 30.0]])
    test = np.array([[5.0, 50.0]])
    g_train, g_test = data.standardize(train, test)
    mean, std = train.mean(), train.std()
    np.testing.assert_allclose(g_train, (train - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(g_test, (test - mean) / std, rtol=1e-6)
    p_train, p_test = data.standardize(train, test, per_feature=True)
    np.testing.assert_allclose(p_train, [[-1, -1], [1, 1]], rtol=1e-6)
    np.testing.assert_allclose(p_test, [[3, 3]], rtol=1e-6)


def test_global_contrast_normalization():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (5, 4, 4, 3))
    y = data.global_contrast_normalize(x, scale=55.0)
    flat = y.reshape(5, -1)
    np.testing.assert_allclose(flat.mean(1), 0, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(flat, axis=1), 55.0, rtol=1e-5)
    # Constant images (zero norm) are left at zero instead of dividing by ~0.
    const = data.global_contrast_normalize(np.full((1, 2, 2), 7.0))
    np.testing.assert_array_equal(const, 0.0)
    # sqrt_bias enters under the root: scale / sqrt(λ + ‖x − x̄‖²).
    z = data.global_contrast_normalize(np.array([[0.0, 2.0]]), scale=1.0, sqrt_bias=2.0)
    np.testing.assert_allclose(z, [[-0.5, 0.5]], rtol=1e-6)


def _gcn_data(n=400, d=12, seed=0):
    # Correlated features with a wide eigenvalue spread, then GCN (which makes the covariance
    # singular along the all-ones direction).
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) * np.logspace(0, -1.5, d)
    x = rng.normal(size=(n, d)) @ mixing.T + 3.0
    return data.global_contrast_normalize(x, scale=np.sqrt(d))


def test_zca_whitens_the_training_set_on_the_retained_subspace():
    x = _gcn_data()
    zca = data.fit_zca(x, eps=0.0)
    assert zca.rank == x.shape[1] - 1  # GCN removed one direction
    np.testing.assert_allclose(zca.matrix, zca.matrix.T, atol=1e-12)  # ZCA: symmetric W
    white = data.apply_zca(zca, x).astype(np.float64)
    cov = np.cov(white, rowvar=False, bias=True)
    ones = np.ones(x.shape[1]) / np.sqrt(x.shape[1])
    projector = np.eye(x.shape[1]) - np.outer(ones, ones)
    np.testing.assert_allclose(cov, projector, atol=1e-4)
    np.testing.assert_allclose(white.mean(0), 0, atol=1e-5)


def test_zca_eps_shrinks_eigenvalues_to_lambda_over_lambda_plus_eps():
    x = _gcn_data()
    eps = 0.05
    centered = x - x.mean(0)
    lam, vecs = np.linalg.eigh(centered.T @ centered / len(x))
    keep = lam > 1e-6 * lam.max()
    white = data.apply_zca(data.fit_zca(x, eps=eps), x).astype(np.float64)
    cov = np.cov(white, rowvar=False, bias=True)
    in_basis = vecs[:, keep].T @ cov @ vecs[:, keep]
    np.testing.assert_allclose(np.diag(in_basis), lam[keep] / (lam[keep] + eps), atol=1e-4)
    np.testing.assert_allclose(in_basis - np.diag(np.diag(in_basis)), 0, atol=1e-4)


def test_zca_applies_training_statistics_to_test_data():
    x = _gcn_data()
    test = _gcn_data(n=7, seed=1)
    zca = data.fit_zca(x, eps=0.1)
    expected = (test - x.astype(np.float64).mean(0)) @ zca.matrix
    np.testing.assert_allclose(data.apply_zca(zca, test), expected, rtol=1e-5, atol=1e-5)
    # Images keep their shape.
    images = x.reshape(-1, 2, 2, 3)
    assert data.apply_zca(data.fit_zca(images), images[:3]).shape == (3, 2, 2, 3)


def test_gcn_zca_pipeline_through_apply_preprocessing():
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (300, 2, 2, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (5, 2, 2, 3), dtype=np.uint8)
    ds = data.Dataset("toy", x_train, np.zeros(300), x_test, np.zeros(5), 10)
    out = data.apply_preprocessing(ds, "gcn_zca", zca_eps=0.0)
    cov = np.cov(out.x_train.reshape(300, -1), rowvar=False, bias=True)
    eig = np.linalg.eigvalsh(cov)
    np.testing.assert_allclose(eig[1:], 1.0, atol=1e-3)  # identity on the retained subspace
    assert abs(eig[0]) < 1e-4
    gcn = data.global_contrast_normalize(x_test)
    zca = data.fit_zca(data.global_contrast_normalize(x_train), eps=0.0)
    np.testing.assert_allclose(out.x_test, data.apply_zca(zca, gcn), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="unknown preprocessing 'zca'"):
        data.apply_preprocessing(ds, "zca")


def test_downsample_averages_blocks():
    x = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28, 1)
    small = data.downsample(x, 4)
    assert small.shape == (2, 7, 7, 1)
    np.testing.assert_allclose(small[1, 2, 3, 0], x[1, 8:12, 12:16, 0].mean())
    with pytest.raises(ValueError, match="factor=5"):
        data.downsample(x, 5)


def test_random_flip():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(64, 3, 5, 2)), jnp.float32)
    key = jax.random.key(0)
    out = data.random_flip(key, x)
    flipped = jnp.all(out == x[:, :, ::-1, :], axis=(1, 2, 3))
    kept = jnp.all(out == x, axis=(1, 2, 3))
    assert bool(jnp.all(flipped | kept))
    assert 16 < int(flipped.sum()) < 48  # p = 0.5 of 64
    np.testing.assert_array_equal(data.random_flip(key, out), x)  # same key flips back
    np.testing.assert_array_equal(data.random_flip(key, x, p=0.0), x)


def test_random_crop_is_a_window_of_the_padded_image():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 6, 6, 2)), jnp.float32)
    out = data.random_crop(jax.random.key(3), x, padding=2)
    assert out.shape == x.shape
    padded = np.pad(np.asarray(x), ((0, 0), (2, 2), (2, 2), (0, 0)))
    for image, crop in zip(padded, np.asarray(out), strict=True):
        windows = [image[i : i + 6, j : j + 6] for i in range(5) for j in range(5)]
        assert any(np.array_equal(crop, w) for w in windows)
    offsets_used = {
        next(
            (i, j)
            for i in range(5)
            for j in range(5)
            if np.array_equal(crop, image[i : i + 6, j : j + 6])
        )
        for image, crop in zip(padded, np.asarray(out), strict=True)
    }
    assert len(offsets_used) > 1  # crops differ between images
