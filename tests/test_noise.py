"""The Langevin noise samplers: the Threefry hash, moments and independence of ±1 and N(0, 1).

Statistical checks use a fixed key and a tolerance of 5 standard errors of the estimated
quantity under the null hypothesis (iid draws with the target law): for an estimator with
standard error s, |estimate − truth| < 5 s fails with probability < 10⁻⁶ for a correct
sampler, while a defect of the size these tests look for (a wrong variance, a repeated or
shifted stream, correlated neighbouring bits) moves the estimate by far more than 5 s.
"""

import math

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from entropix._src import common

N = 1 << 18  # draws per check: standard error of a mean of unit-variance draws ≈ 0.002


def _draw(distribution, key=0, count=0, shapes=((N,),), dtype=jnp.float32):
    tree = [jnp.zeros(shape, dtype) for shape in shapes]
    step_key = common.step_key(common.as_key(key), jnp.int32(count), 0)
    noise = common.noise_like(tree, step_key, distribution)
    return [np.asarray(leaf, np.float64) for leaf in noise]


def _correlation(a, b):
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (a.std() * b.std()))


def test_threefry_matches_jax_and_the_published_test_vector():
    # Random123 known-answer vector of Threefry-2x32-20: key 0, counter 0.
    x0, x1 = common.threefry2x32(jnp.zeros(2, jnp.uint32), jnp.uint32(0), jnp.uint32(0))
    assert (int(x0), int(x1)) == (0x6B200159, 0x99BA4EFE)
    key = jnp.array([0x13198A2E, 0x03707344], jnp.uint32)
    counters = jnp.arange(64, dtype=jnp.uint32)
    x0, x1 = common.threefry2x32(key, counters, counters + 64)
    reference = jax.extend.random.threefry_2x32(key, jnp.concatenate([counters, counters + 64]))
    np.testing.assert_array_equal(np.concatenate([x0, x1]), np.asarray(reference))


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_moments(distribution):
    (xi,) = _draw(distribution)
    se = 1 / math.sqrt(N)
    assert abs(xi.mean()) < 5 * se
    # Var of the sample variance of N(0,1) is 2/N; of ±1 it is 0 (every square is exactly 1).
    assert abs(xi.var() - 1) < 5 * math.sqrt(2) * se
    if distribution == "rademacher":
        np.testing.assert_array_equal(np.abs(xi), 1.0)
        return
    # E ξ⁴ = 3 with Var ξ⁴ = E ξ⁸ − 9 = 96 for N(0, 1); E ξ³ = 0 with Var ξ³ = 15.
    assert abs(np.mean(xi**4) - 3) < 5 * math.sqrt(96) * se
    assert abs(np.mean(xi**3)) < 5 * math.sqrt(15) * se
    # The empirical CDF at a few points: binomial standard error ≤ 0.5/√N.
    for z in (-3.0, -1.5, -0.5, 0.0, 0.7, 2.0):
        assert abs(np.mean(xi <= z) - stats.norm.cdf(z)) < 5 * 0.5 * se


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_independent_across_coordinates(distribution):
    (xi,) = _draw(distribution)
    se = 1 / math.sqrt(N)
    # Neighbours share a Threefry word (±1: bits of one word; lags 1 and 31 within a word, 32
    # across words) or consecutive counters (Gaussian): the sample correlation of independent
    # unit-variance draws has standard error 1/√N.
    for lag in (1, 2, 31, 32, 33, 1024):
        assert abs(_correlation(xi[:-lag], xi[lag:])) < 5 * se, lag
    # Pairs of neighbours also have the right joint law: P(ξ_i > 0, ξ_{i+1} > 0) = 1/4. The
    # indicators of overlapping pairs are 1-dependent: variance (3/16 + 2 · 1/16)/N.
    assert abs(np.mean((xi[:-1] > 0) & (xi[1:] > 0)) - 0.25) < 5 * math.sqrt(5 / 16) * se


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_independent_across_leaves_and_steps(distribution):
    leaf_a, leaf_b = _draw(distribution, shapes=((N,), (N,)))
    se = 1 / math.sqrt(N)
    assert abs(_correlation(leaf_a, leaf_b)) < 5 * se
    (next_step,) = _draw(distribution, count=1)
    (other_key,) = _draw(distribution, key=1)
    assert abs(_correlation(leaf_a, next_step)) < 5 * se
    assert abs(_correlation(leaf_a, other_key)) < 5 * se
    # The same key and step draw the same noise (what makes the step and compiled forms agree).
    (again,) = _draw(distribution)
    np.testing.assert_array_equal(leaf_a, again)


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_odd_shapes_and_dtypes(distribution):
    shapes = ((3, 5), (7,), (), (2, 3, 33))
    tree = {f"x{i}": jnp.zeros(shape, jnp.bfloat16) for i, shape in enumerate(shapes)}
    noise = common.noise_like(tree, jax.random.PRNGKey(4), distribution)
    for name, leaf in tree.items():
        assert noise[name].shape == leaf.shape and noise[name].dtype == jnp.bfloat16
    values = np.concatenate([np.ravel(np.asarray(v, np.float32)) for v in noise.values()])
    assert np.all(np.isfinite(values))
    if distribution == "rademacher":
        np.testing.assert_array_equal(np.abs(values), 1.0)
    # Leaves of the same size draw different noise.
    assert not np.array_equal(np.asarray(noise["x0"]).ravel(), np.asarray(noise["x1"])[:7])


def test_gaussian_float64():
    with jax.enable_x64(True):
        (xi,) = _draw("gaussian", dtype=jnp.float64)
        leaf = common.noise_like(jnp.zeros(4, jnp.float64), jax.random.PRNGKey(0), "gaussian")
        assert leaf.dtype == jnp.float64
    se = 1 / math.sqrt(N)
    assert abs(xi.mean()) < 5 * se
    assert abs(xi.var() - 1) < 5 * math.sqrt(2) * se
    # 32-bit grid: values beyond the float32 grid's largest |ξ| ≈ 5.4 are possible but rare;
    # the draws are not a float32 grid cast to float64.
    assert np.mean(np.float32(xi) != xi) > 0.99


@pytest.mark.parametrize("dtype, bits", [(jnp.float32, 24), (jnp.bfloat16, 24), (jnp.float64, 32)])
def test_gaussian_is_the_inverse_normal_cdf_at_the_midpoints_of_the_hash_grid(dtype, bits):
    # ξ = Φ⁻¹(u) with u = (k + ½) / 2^b and k the top b bits of the first Threefry word of the
    # counter (coordinate, leaf): written out here with SciPy in float64.
    from scipy import special

    key = common.as_key(jax.random.PRNGKey(11))
    with jax.enable_x64(dtype == jnp.float64):
        xi = common.noise_like([jnp.zeros(64, dtype), jnp.zeros((4, 8), dtype)], key, "gaussian")
        for leaf_index, leaf in enumerate(xi):
            assert leaf.dtype == dtype
            counters = jnp.arange(leaf.size, dtype=jnp.uint32)
            word, _ = common.threefry2x32(key, counters, jnp.uint32(leaf_index))
            k = np.asarray(word, np.uint64) >> (32 - bits)
            u = (k + 0.5) / 2.0**bits
            expected = np.sqrt(2.0) * special.erfinv(2.0 * u - 1.0)
            np.testing.assert_allclose(
                np.asarray(leaf, np.float64).ravel(),
                expected.astype(np.dtype(dtype)).astype(np.float64),
                rtol=1e-12 if dtype == jnp.float64 else 2e-6 if dtype == jnp.float32 else 1e-2,
            )
