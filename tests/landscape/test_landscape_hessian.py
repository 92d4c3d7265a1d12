"""Hessian tools on problems with known spectra: HVP, exact spectrum, Lanczos, SLQ, Hutchinson."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from entropix import landscape


def _rotated(eigenvalues, seed=0):
    rng = np.random.default_rng(seed)
    d = len(eigenvalues)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q @ np.diag(eigenvalues) @ q.T


def _quadratic_loss(w, batch):
    return 0.5 * w["a"] @ batch @ w["a"]


def _split(matrix):
    """Two stacked batches whose mean is ``matrix`` (tests the batch average)."""
    noise = np.triu(np.random.default_rng(1).normal(size=matrix.shape))
    noise = noise + noise.T
    return jnp.stack([matrix + noise, matrix - noise])


def test_hvp_is_batch_mean_forward_over_reverse(x64):
    matrix = _rotated(np.linspace(-1.0, 4.0, 12))
    params = {"a": jnp.asarray(np.random.default_rng(2).normal(size=12))}
    v = {"a": jnp.asarray(np.random.default_rng(3).normal(size=12))}
    out = landscape.hessian_vector_product(_quadratic_loss, params, v, _split(matrix))
    np.testing.assert_allclose(out["a"], matrix @ v["a"], rtol=1e-12, atol=1e-12)


def test_hvp_ragged_batch_list_equals_mean_of_batch_hessians(x64):
    rng = np.random.default_rng(4)
    batches = [
        (jnp.asarray(rng.normal(size=(n, 5))), jnp.asarray(rng.normal(size=n))) for n in (7, 3)
    ]

    def loss_fn(w, batch):
        x, y = batch
        return 0.5 * jnp.mean((x @ w - y) ** 2) + 0.1 * jnp.sum(w**4)

    w = jnp.asarray(rng.normal(size=5))
    v = jnp.asarray(rng.normal(size=5))
    prepared = landscape.prepare_batches(batches)
    assert isinstance(prepared, landscape.BatchList)
    expected = np.mean([jax.hessian(loss_fn)(w, b) @ v for b in batches], axis=0)
    np.testing.assert_allclose(
        landscape.hessian_vector_product(loss_fn, w, v, batches), expected, rtol=1e-12
    )


class _MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.tanh(nn.Dense(16)(x))
        x = nn.softplus(nn.Dense(8)(x))
        return nn.Dense(3)(x)


def test_exact_spectrum_of_small_mlp_equals_dense_jax_hessian(x64):
    rng = np.random.default_rng(5)
    model = _MLP()
    x = jnp.asarray(rng.normal(size=(2, 16, 8)))
    y = jnp.asarray(rng.integers(0, 3, size=(2, 16)))
    params = model.init(jax.random.key(0), x[0])
    params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)
    flat, unravel = ravel_pytree(params)
    assert 300 < flat.size <= 5000

    def loss_fn(p, batch):
        logits = model.apply(p, batch[0])
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), batch[1][:, None], 1))

    def full_loss(f):
        return jnp.mean(jnp.stack([loss_fn(unravel(f), (x[j], y[j])) for j in range(2)]))

    dense = jax.jit(jax.hessian(full_loss))(flat)
    matrix = landscape.hessian_matrix(loss_fn, params, (x, y), chunk_size=128)
    np.testing.assert_allclose(matrix, dense, atol=1e-10)
    eig = landscape.hessian_spectrum(loss_fn, params, (x, y), chunk_size=128)
    np.testing.assert_allclose(eig, jnp.linalg.eigvalsh(dense), atol=1e-10)
    # The dataset as a list of (x, y) batches gives the same Hessian.
    as_list = landscape.hessian_matrix(
        loss_fn, params, [(x[0], y[0]), (x[1], y[1])], chunk_size=128
    )
    np.testing.assert_allclose(as_list, matrix, atol=1e-12)


def test_exact_path_refuses_large_models_and_points_to_lanczos():
    params = jnp.zeros(101)
    with pytest.raises(ValueError, match="hessian_eigenvalues"):
        landscape.hessian_spectrum(lambda w, b: jnp.sum(w**2), params, [0.0], max_params=100)


def test_lanczos_top_and_bottom_k_on_quadratic(x64):
    # Known spectrum: a negative tail, a zero cluster, a positive tail with distinct top values.
    eigs = np.concatenate(
        [[-2.0, -1.5, -1.2], np.zeros(150), np.linspace(0.01, 5.0, 40), [10.0, 9.0, 8.2, 7.7, 7.3]]
    )
    matrix = _rotated(eigs, seed=6)
    params = {"a": jnp.zeros(len(eigs))}
    res = landscape.hessian_eigenvalues(
        _quadratic_loss, params, _split(matrix), k=5, num_steps=80, key=jax.random.key(1)
    )
    top = np.sort(eigs)[::-1][:5]
    bottom = np.sort(eigs)[:3]
    np.testing.assert_allclose(res.largest, top, rtol=1e-4)
    np.testing.assert_allclose(res.smallest[:3], bottom, rtol=1e-4)
    # Residual norms bound the distance to the true eigenvalues.
    assert np.all(np.abs(np.asarray(res.largest) - top) <= np.asarray(res.largest_residuals) + 1e-9)


def test_lanczos_float32_top_k(subtests=None):
    eigs = np.concatenate([np.linspace(0.0, 1.0, 290), [20.0, 15.0, 12.0, 10.0, 9.0]])
    matrix = jnp.asarray(_rotated(eigs, seed=7), jnp.float32)
    res = landscape.lanczos_eigenvalues(matrix, k=5, num_steps=40, key=jax.random.key(0))
    assert res.largest.dtype == jnp.float32
    np.testing.assert_allclose(res.largest, [20.0, 15.0, 12.0, 10.0, 9.0], rtol=1e-4)


def test_lanczos_breakdown_on_few_distinct_eigenvalues(x64):
    # Krylov spaces of dimension 3: Lanczos restarts twice and T stays exact (no NaN, no ghosts).
    matrix = _rotated(np.repeat([1.0, 2.0, 5.0], 20), seed=8)
    t = landscape.lanczos_tridiagonal(matrix, 9, key=jax.random.key(0))
    assert np.all(np.isfinite(t.alphas)) and np.all(np.isfinite(t.betas))
    basis = np.asarray(t.basis)
    np.testing.assert_allclose(basis @ basis.T, np.eye(9), atol=1e-10)
    theta, _ = landscape.tridiagonal_eigh(t)
    assert np.all(np.min(np.abs(np.asarray(theta)[:, None] - [1.0, 2.0, 5.0]), axis=1) < 1e-8)


def test_gauss_quadrature_moments_are_exact_per_probe(x64):
    matrix = _rotated(np.linspace(-1.0, 3.0, 60), seed=9)
    v = np.random.default_rng(10).choice([-1.0, 1.0], size=60)
    t = landscape.lanczos_tridiagonal(matrix, 6, start=jnp.asarray(v))
    theta, s = landscape.tridiagonal_eigh(t)
    moments = landscape.density_moments(theta, s[0] ** 2, max_order=11)  # exact up to 2m − 1
    u = v / np.linalg.norm(v)
    expected = [u @ np.linalg.matrix_power(matrix, k) @ u for k in range(12)]
    np.testing.assert_allclose(moments, expected, rtol=1e-8)


def test_slq_density_moments_match_traces(x64):
    eigs = np.concatenate([np.zeros(60), np.linspace(-0.5, 0.0, 10), np.linspace(1.0, 6.0, 30)])
    matrix = _rotated(eigs, seed=11)
    d = len(eigs)
    num_probes = 20
    dens = landscape.slq_density(matrix, order=30, num_probes=num_probes, key=jax.random.key(3))
    moments = landscape.density_moments(dens.nodes, dens.weights, max_order=2)
    assert np.allclose(np.sum(dens.weights, axis=1), 1.0)
    for k in (1, 2):
        power = np.linalg.matrix_power(matrix, k)
        off = power - np.diag(np.diag(power))
        # Rademacher: Var(vᵀBv) = 2 Σ_{i≠j} B_ij², and the probe is normalized by d.
        stderr = np.sqrt(2 * np.sum(off**2) / num_probes) / d
        assert abs(float(moments[k]) - np.trace(power) / d) < 4 * stderr
    # The broadened density integrates to 1 and keeps the first two moments (+ σ²).
    g = np.asarray(dens.grid)
    phi = np.asarray(dens.density)
    step = g[1] - g[0]
    np.testing.assert_allclose(np.sum(phi) * step, 1.0, atol=1e-6)
    np.testing.assert_allclose(np.sum(g * phi) * step, moments[1], atol=1e-6)
    np.testing.assert_allclose(np.sum(g**2 * phi) * step, moments[2] + dens.sigma**2, atol=1e-5)


def test_hessian_density_of_quadratic_loss(x64):
    eigs = np.linspace(-1.0, 3.0, 50)
    dens = landscape.hessian_density(
        _quadratic_loss, {"a": jnp.zeros(50)}, [jnp.diag(jnp.asarray(eigs))], order=10, num_probes=3
    )
    # Diagonal Hessian + Rademacher probes: vᵀAᵏv/d = tr(Aᵏ)/d exactly.
    np.testing.assert_allclose(
        landscape.density_moments(dens.nodes, dens.weights, 3),
        [np.mean(eigs**k) for k in range(4)],
        rtol=1e-10,
        atol=1e-12,
    )


def test_hutchinson_trace_within_standard_errors(x64):
    matrix = _rotated(np.linspace(-1.0, 5.0, 80), seed=12)
    num_probes = 200
    est = landscape.hessian_trace(
        _quadratic_loss,
        {"a": jnp.zeros(80)},
        [matrix],
        num_probes=num_probes,
        batch_size=8,
        key=jax.random.key(5),
    )
    assert abs(float(est.trace) - np.trace(matrix)) < 4 * float(est.stderr)
    off = matrix - np.diag(np.diag(matrix))
    expected_se = np.sqrt(2 * np.sum(off**2) / num_probes)
    assert 0.7 < float(est.stderr) / expected_se < 1.3


def test_spectrum_summary_reports_paper_statistics():
    lam = np.concatenate([np.zeros(94), [1e-5, -2e-5], [-0.46, -0.1], [40.0, 3.0]])
    s = landscape.spectrum_summary(lam, threshold=1e-4)
    assert s.num_eigenvalues == 100
    assert s.fraction_near_zero == pytest.approx(0.96)
    assert s.largest == 40.0 and s.most_negative == -0.46
    assert s.index == pytest.approx(0.02) and s.num_negative == 2
    dens = landscape.slq_density(jnp.diag(jnp.asarray(lam)), order=12, num_probes=4)
    from_density = landscape.spectrum_summary(dens, threshold=1e-4)
    assert from_density.num_eigenvalues == pytest.approx(4.0)  # weights sum to 1 per probe
    assert from_density.largest == pytest.approx(40.0, rel=1e-5)
    assert from_density.most_negative == pytest.approx(-0.46, rel=1e-5)
    weighted = landscape.spectrum_summary([-1.0, 0.0, 2.0], weights=[0.25, 0.5, 0.25])
    assert weighted.fraction_near_zero == pytest.approx(0.5) and weighted.index == pytest.approx(
        0.25
    )


def test_argument_validation_names_the_argument():
    matrix = jnp.eye(5)
    with pytest.raises(ValueError, match="num_steps"):
        landscape.lanczos_tridiagonal(matrix, 6)
    with pytest.raises(ValueError, match="`k`"):
        landscape.lanczos_eigenvalues(matrix, k=4, num_steps=3)
    with pytest.raises(ValueError, match="threshold"):
        landscape.spectrum_summary([1.0], threshold=-1.0)
    with pytest.raises(ValueError, match="order"):
        landscape.slq_density(matrix, order=6)
    with pytest.raises(ValueError, match="key"):
        landscape.hutchinson_trace(matrix, key=jnp.zeros(3))


# ---- Closed forms that pin each formula down on its own (sizes kept small for speed) ----


def test_hutchinson_stderr_is_the_sample_standard_error_of_rademacher_forms(x64):
    # d = 4: every sample is vᵀAv for one of the 2⁴ sign vectors v.
    matrix = _rotated([0.5, 1.0, 2.0, 3.5], seed=13)
    est = landscape.hutchinson_trace(matrix, num_probes=9, key=jax.random.key(2), batch_size=4)
    samples = np.asarray(est.samples)
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * 4)).reshape(4, -1).T
    forms = np.einsum("pi,ij,pj->p", signs, matrix, signs)
    assert np.all(np.min(np.abs(samples[:, None] - forms[None, :]), axis=1) < 1e-12)
    np.testing.assert_allclose(est.trace, samples.mean(), rtol=1e-14)
    np.testing.assert_allclose(est.stderr, samples.std(ddof=1) / 3.0, rtol=1e-12)
    # One probe: the estimate is that probe's form and there is no standard error.
    one = landscape.hutchinson_trace(matrix, num_probes=1, key=jax.random.key(2))
    assert one.samples.shape == (1,) and float(one.stderr) == 0.0
    np.testing.assert_allclose(one.trace, one.samples[0], rtol=0)
    assert np.min(np.abs(float(one.trace) - forms)) < 1e-12


def test_lanczos_relation_and_ritz_residuals_against_the_matrix(x64):
    # Q A Qᵀ = T (tridiagonal) with Q orthonormal long after the top Ritz values converged, and
    # each residual |β_m s_{m,i}| equals ‖A y_i − θ_i y_i‖ for the Ritz vector y_i = Qᵀ s_i.
    eigs = np.concatenate([np.linspace(0.0, 1.0, 52), [3.0, 5.0, 8.0]])
    matrix = _rotated(eigs, seed=14)
    t = landscape.lanczos_tridiagonal(matrix, 30, key=jax.random.key(4))
    q = np.asarray(t.basis)
    np.testing.assert_allclose(q @ q.T, np.eye(30), atol=1e-12)
    tri = np.diag(t.alphas) + np.diag(t.betas, 1) + np.diag(t.betas, -1)
    np.testing.assert_allclose(q @ matrix @ q.T, tri, atol=1e-11)
    res = landscape.lanczos_eigenvalues(matrix, k=3, num_steps=30, key=jax.random.key(4))
    theta, s = landscape.tridiagonal_eigh(t)
    y = q.T @ np.asarray(s)
    direct = np.linalg.norm(matrix @ y - y * np.asarray(theta), axis=0)
    np.testing.assert_allclose(res.largest_residuals, direct[::-1][:3], rtol=1e-6, atol=1e-13)
    np.testing.assert_allclose(res.smallest_residuals, direct[:3], rtol=1e-6, atol=1e-13)
    np.testing.assert_allclose(res.largest, [8.0, 5.0, 3.0], rtol=1e-10)
    np.testing.assert_allclose(res.ritz_values, theta, rtol=0)


def test_lanczos_breakdown_stores_exact_zero_betas_at_each_restart(x64):
    # Three distinct eigenvalues: the Krylov space of every start vector has dimension 3, so the
    # 3rd and 6th steps break down (β = 0 exactly) and 9 steps give each eigenvalue 3 times. The
    # breakdown test is relative to the operator's scale, so it holds for A and 10⁶ A alike.
    eigs = np.array([1.0, 2.0, 5.0])
    for scale in (1.0, 1e6):
        matrix = scale * _rotated(np.repeat(eigs, 4), seed=15)
        t = landscape.lanczos_tridiagonal(matrix, 9, key=jax.random.key(6))
        betas = np.asarray(t.betas)
        assert betas[2] == 0.0 and betas[5] == 0.0
        assert np.all(np.delete(betas, [2, 5]) > 1e-3 * scale)
        theta, _ = landscape.tridiagonal_eigh(t)
        np.testing.assert_allclose(theta, scale * np.repeat(eigs, 3), rtol=1e-10)
        q = np.asarray(t.basis)
        np.testing.assert_allclose(q @ q.T, np.eye(9), atol=1e-12)


def test_lanczos_defaults_key_and_order(x64):
    matrix = _rotated(np.linspace(-1.0, 2.0, 8), seed=16)
    default = landscape.lanczos_tridiagonal(matrix, 3)
    zero = landscape.lanczos_tridiagonal(matrix, 3, key=jax.random.key(0))
    other = landscape.lanczos_tridiagonal(matrix, 3, key=jax.random.key(1))
    np.testing.assert_array_equal(default.basis, zero.basis)
    assert np.max(np.abs(np.asarray(other.basis[0]) - np.asarray(zero.basis[0]))) > 1e-3
    # The start vector is normalized; m = d steps give the exact spectrum.
    start = jnp.arange(1.0, 9.0)
    full = landscape.lanczos_tridiagonal(matrix, 8, start=start)
    np.testing.assert_allclose(full.basis[0], start / jnp.linalg.norm(start), rtol=1e-14)
    theta, _ = landscape.tridiagonal_eigh(full)
    np.testing.assert_allclose(theta, np.linspace(-1.0, 2.0, 8), atol=1e-12)
    # Default order min(d, max(3k, k + 40)); k may equal the order.
    big = jnp.diag(jnp.linspace(0.0, 1.0, 80))
    for k, order in [(2, 42), (25, 75)]:  # k + 40 wins, then 3k wins
        assert landscape.lanczos_eigenvalues(big, k=k).ritz_values.shape == (order,)
    assert landscape.lanczos_eigenvalues(matrix, k=4, num_steps=4).largest.shape == (4,)


def _tanh_loss(w, batch):
    x, y = batch
    h = jnp.tanh(x @ w["w1"])
    return jnp.mean((h @ w["w2"] - y) ** 2) + 0.1 * jnp.sum(w["w1"] ** 4)


def _tanh_problem():
    rng = np.random.default_rng(17)
    params = {"w1": jnp.asarray(rng.normal(size=(3, 3))), "w2": jnp.asarray(rng.normal(size=3))}
    batch = (jnp.asarray(rng.normal(size=(10, 3))), jnp.asarray(rng.normal(size=10)))
    return params, batch


def test_hessian_matrix_is_exactly_symmetric_for_any_chunking(x64):
    params, batch = _tanh_problem()
    flat, unravel = ravel_pytree(params)
    dense = jax.hessian(lambda f: _tanh_loss(unravel(f), batch))(flat)
    matrices = [
        landscape.hessian_matrix(_tanh_loss, params, [batch], chunk_size=c, max_params=12)
        for c in (1, 5, 12, 100)
    ]
    for matrix in matrices:
        np.testing.assert_array_equal(matrix, matrix.T)  # symmetrized: exactly symmetric
        np.testing.assert_allclose(matrix, dense, atol=1e-12)
    eig = landscape.hessian_spectrum(_tanh_loss, params, [batch], chunk_size=5)
    np.testing.assert_allclose(eig, np.linalg.eigvalsh(np.asarray(dense)), atol=1e-11)


def test_hessian_operator_layout_equality_and_bad_input():
    params, batch = _tanh_problem()
    op = landscape.hessian_operator(_tanh_loss, params, [batch])
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    same = landscape.hessian_operator(_tanh_loss, zeros, [batch])
    assert op.dim == 12 and op.matvec_fn == same.matvec_fn and op.unravel == same.unravel
    other_loss = landscape.hessian_operator(lambda w, b: _tanh_loss(w, b), params, [batch])
    assert op.matvec_fn != other_loss.matvec_fn
    reshaped = {"w1": jnp.zeros((9,)), "w2": jnp.zeros(3)}
    other_layout = landscape.hessian_operator(_tanh_loss, reshaped, [batch])
    assert op.unravel != other_layout.unravel and op.matvec_fn != other_layout.matvec_fn
    # unravel inverts ravel_pytree for leaves of different sizes.
    flat = jnp.arange(12.0)
    back = op.unravel(flat)
    assert back["w1"].shape == (3, 3) and back["w2"].shape == (3,)
    np.testing.assert_array_equal(ravel_pytree(back)[0], flat)
    # A one-parameter model is fine; no parameter, integers, non-square matrices are refused.
    one = landscape.hessian_operator(lambda w, b: 1.5 * w**2 * b, jnp.ones(()), [2.0])
    assert one.dim == 1 and float(one(jnp.ones(1))[0]) == 6.0
    with pytest.raises(ValueError, match="no parameters"):
        landscape.hessian_operator(lambda w, b: 0.0, {}, [1.0])
    with pytest.raises(ValueError, match="floating"):
        landscape.hessian_operator(lambda w, b: 0.0, jnp.ones(2, jnp.int32), [1.0])
    dense = landscape.LinearOperator.from_matrix(jnp.eye(2))
    np.testing.assert_array_equal(dense.unravel(jnp.ones(2)), jnp.ones(2))
    for bad in (jnp.ones((2, 3)), jnp.ones((3, 2)), jnp.ones(3)):
        with pytest.raises(ValueError, match="square"):
            landscape.LinearOperator.from_matrix(bad)
    with pytest.raises(ValueError, match="LinearOperator"):
        landscape.lanczos_tridiagonal(jnp.ones(3), 1)


def test_spectrum_summary_threshold_edges_and_zero_weights():
    # |λ| = τ is neither near zero nor negative; λ = −τ is not negative.
    s = landscape.spectrum_summary([-1e-4, 1e-4, 0.0, -3.0, 2.0], threshold=1e-4)
    assert s.fraction_near_zero == pytest.approx(0.2) and s.num_negative == 1
    assert s.index == pytest.approx(0.2) and s.num_eigenvalues == 5
    single = landscape.spectrum_summary([2.5])
    assert single.largest == single.most_negative == 2.5 and single.fraction_near_zero == 0.0
    # Zero-weight nodes count nowhere, not even as the extremes.
    w = landscape.spectrum_summary([100.0, -7.0, 1.0, -0.5], weights=[0.0, 0.0, 0.75, 0.25])
    assert w.largest == 1.0 and w.most_negative == -0.5
    assert w.num_eigenvalues == 1.0 and w.index == pytest.approx(0.25)
    with pytest.raises(ValueError, match="empty"):
        landscape.spectrum_summary([])
    with pytest.raises(ValueError, match="weights"):
        landscape.spectrum_summary([1.0, 2.0], weights=[1.0])
    with pytest.raises(ValueError, match="non-negative"):
        landscape.spectrum_summary([1.0, 2.0], weights=[1.0, -0.5])
    with pytest.raises(ValueError, match="`weights` are all zero"):
        landscape.spectrum_summary([1.0, 2.0], weights=[0.0, 0.0])
    # The exact path accepts exactly max_params parameters.
    assert landscape.hessian_spectrum(
        lambda w, b: jnp.sum(b * w**2), jnp.zeros(3), [1.0], max_params=3
    ).tolist() == [2.0, 2.0, 2.0]


def test_broadened_density_is_a_sum_of_normal_densities(x64):
    nodes = np.array([[-1.0, 0.5, 2.0], [0.0, 1.0, 3.0]])
    weights = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    grid = np.linspace(-2.0, 4.0, 7)
    sigma = 0.7

    def normal(t, mu):
        return np.exp(-((t - mu) ** 2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))

    expected = sum(weights[p, j] * normal(grid, nodes[p, j]) for p in range(2) for j in range(3))
    np.testing.assert_allclose(
        landscape.broadened_density(nodes, weights, grid, sigma), expected / 2, rtol=1e-12
    )
    one = sum(weights[0, j] * normal(grid, nodes[0, j]) for j in range(3))
    np.testing.assert_allclose(
        landscape.broadened_density(nodes[0], weights[0], grid, sigma), one, rtol=1e-12
    )
    # Moments of a single probe's quadrature rule, from order 0.
    np.testing.assert_allclose(landscape.density_moments(nodes, weights, 0), [1.0], rtol=1e-14)
    np.testing.assert_allclose(
        landscape.density_moments(nodes[1], weights[1], 2), [1.0, 1.0, 2.8], rtol=1e-12
    )


def test_full_order_slq_of_a_diagonal_matrix_has_weights_one_over_d(x64):
    # m = d steps from a normalized Rademacher probe of a diagonal matrix with distinct entries:
    # the nodes are the eigenvalues and every weight is u_i² = 1/d.
    eigs = np.array([-2.0, -0.5, 0.0, 1.0, 4.0, 6.0])
    dens = landscape.slq_density(
        jnp.diag(jnp.asarray(eigs)), order=6, num_probes=2, num_points=2, key=jax.random.key(7)
    )
    np.testing.assert_allclose(dens.nodes, np.tile(eigs, (2, 1)), atol=1e-12)
    np.testing.assert_allclose(dens.weights, np.full((2, 6), 1 / 6), atol=1e-12)
    assert dens.sigma == pytest.approx(8.0 / 200, rel=1e-12)
    np.testing.assert_allclose(dens.grid, [-2.0 - 5 * dens.sigma, 6.0 + 5 * dens.sigma], rtol=1e-12)
    gaussian = landscape.slq_density(jnp.diag(jnp.asarray(eigs)), order=3, probe="gaussian")
    np.testing.assert_allclose(np.sum(gaussian.weights, axis=1), 1.0, rtol=1e-12)
    assert gaussian.grid.shape == (1000,)
    # A multiple of the identity has one node: the default width falls back to 1e-12.
    flat = landscape.slq_density(2.0 * jnp.eye(4), order=1, num_probes=1)
    assert flat.sigma == 1e-12 and float(flat.nodes[0, 0]) == pytest.approx(2.0)


def test_lanczos_breakdown_is_detected_when_every_alpha_vanishes(x64):
    # A spectrum symmetric about 0 and a start vector weighting ±λ alike: all α_j are 0, the
    # Krylov space has dimension 4, and the breakdown at step 4 is still judged relative to the
    # operator's scale (|α| + β), so β_4 = 0 exactly.
    # Rotated, so that the residual at breakdown is rounding noise rather than an exact 0.
    eigs = np.array([1.0, 1.0, -1.0, -1.0, 2.0, 2.0, -2.0, -2.0])
    rotation = np.linalg.qr(np.random.default_rng(18).normal(size=(8, 8)))[0]
    matrix = rotation @ np.diag(eigs) @ rotation.T
    start = jnp.asarray(rotation @ np.ones(8))
    t = landscape.lanczos_tridiagonal(matrix, 8, start=start)
    np.testing.assert_allclose(t.alphas[:4], 0.0, atol=1e-14)
    assert float(t.betas[3]) == 0.0 and np.all(np.asarray(t.betas[:3]) > 0.5)
    theta, _ = landscape.tridiagonal_eigh(t)  # 4 more steps after the restart: exact
    np.testing.assert_allclose(theta, np.sort(eigs), atol=1e-10)
