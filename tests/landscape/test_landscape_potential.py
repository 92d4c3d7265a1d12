"""SGD's linearized steady-state potential: Lyapunov covariance, U, Q, mismatch, SGD runs."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from entropix import landscape

pytestmark = pytest.mark.usefixtures("x64")


def rel(a, b):
    return float(jnp.linalg.norm(jnp.asarray(a) - jnp.asarray(b)) / jnp.linalg.norm(b))


def random_spd(rng, d, spread=3.0):
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q @ np.diag(np.exp(rng.uniform(-spread / 2, spread / 2, d))) @ q.T


# --- closed forms -----------------------------------------------------------------------------


def test_two_by_two_closed_form():
    # F C + C F = 2D with F = [[2, 1], [1, 1]], D = diag(1, 0.1): C = [[0.7, -0.4], [-0.4, 0.5]],
    # F C = [[1, -0.3], [0.3, 0.1]], so Q = F C - D = [[0, -0.3], [0.3, 0]].
    F = jnp.array([[2.0, 1.0], [1.0, 1.0]])
    D = jnp.diag(jnp.array([1.0, 0.1]))
    p = landscape.linearized_potential(F, D)
    np.testing.assert_allclose(p.covariance, [[0.7, -0.4], [-0.4, 0.5]], atol=1e-12)
    np.testing.assert_allclose(p.antisymmetric, [[0.0, -0.3], [0.3, 0.0]], atol=1e-12)
    np.testing.assert_allclose(p.curvature, np.linalg.inv([[0.7, -0.4], [-0.4, 0.5]]), atol=1e-10)
    assert float(p.residual) < 1e-14


def test_one_dimensional_ornstein_uhlenbeck():
    # dX = -a X dt + sqrt(2 T D) dB has variance T D / a: C = D/a, U = a/D, Q = 0.
    p = landscape.linearized_potential(jnp.array([[3.0]]), jnp.array([[0.6]]))
    assert float(p.covariance[0, 0]) == pytest.approx(0.2, abs=1e-14)
    assert float(p.curvature[0, 0]) == pytest.approx(5.0, abs=1e-12)
    assert float(p.antisymmetric[0, 0]) == 0.0


@pytest.mark.parametrize("d", [2, 5, 12])
def test_lemma_6_44_symmetric_hessian(d):
    rng = np.random.default_rng(d)
    F, D = random_spd(rng, d), random_spd(rng, d)
    p = landscape.linearized_potential(F, D)
    assert float(p.residual) < 1e-12
    np.testing.assert_allclose(p.antisymmetric, -p.antisymmetric.T, atol=1e-12)
    np.testing.assert_allclose((D + p.antisymmetric) @ p.curvature, F, atol=1e-9 * np.abs(F).max())
    # independent reference: SciPy's Bartels-Stewart solver of A X + X Aᴴ = Q
    ref = scipy.linalg.solve_continuous_lyapunov(F, 2 * D)
    np.testing.assert_allclose(p.covariance, ref, rtol=1e-9, atol=1e-12)
    # the stationary covariance of a stable OU process is positive definite
    assert np.linalg.eigvalsh(np.asarray(p.covariance)).min() > 0


def test_general_drift_matrix_by_kronecker():
    rng = np.random.default_rng(1)
    d = 5
    F = random_spd(rng, d) + 0.8 * (lambda a: a - a.T)(rng.normal(size=(d, d)))  # non-normal
    D = random_spd(rng, d)
    c = landscape.lyapunov_covariance(F, D)
    np.testing.assert_allclose(F @ c + c @ F.T, 2 * D, atol=1e-10)
    np.testing.assert_allclose(c, scipy.linalg.solve_continuous_lyapunov(F, 2 * D), rtol=1e-9)
    p = landscape.linearized_potential(F, D)
    np.testing.assert_allclose((D + p.antisymmetric) @ p.curvature, F, atol=1e-9)


def test_saddle_solution_exists_but_is_indefinite():
    # at a saddle (λ = 2, -1) the Lyapunov solution is unique (λ_i + λ_j != 0) but indefinite
    F = jnp.diag(jnp.array([2.0, -1.0]))
    p = landscape.linearized_potential(F, jnp.eye(2))
    np.testing.assert_allclose(p.covariance, jnp.diag(jnp.array([0.5, -1.0])), atol=1e-14)
    np.testing.assert_allclose(p.curvature, F, atol=1e-12)  # D = I: U = F at any critical point


def test_commuting_hessian_and_diffusion_give_detailed_balance():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    lam_f, lam_d = rng.uniform(0.1, 5.0, 6), rng.uniform(0.1, 2.0, 6)
    F, D = q @ np.diag(lam_f) @ q.T, q @ np.diag(lam_d) @ q.T
    p = landscape.linearized_potential(F, D)
    m = landscape.potential_mismatch(F, D, potential=p)
    np.testing.assert_allclose(p.antisymmetric, 0.0, atol=1e-12)
    np.testing.assert_allclose(p.covariance, np.linalg.solve(F, D), atol=1e-12)  # C = F⁻¹D
    np.testing.assert_allclose(p.curvature, np.linalg.solve(D, F), rtol=1e-9, atol=1e-9)  # D⁻¹F
    assert float(m.commutator) < 1e-14 and float(m.current_fraction) < 1e-24
    assert float(m.angle) > 0.1  # anisotropic D: still U not ∝ F, Φ is not f


@pytest.mark.parametrize("c", [0.01, 1.0, 7.0])
def test_isotropic_diffusion_gives_potential_equal_to_loss(c):
    # Lemma 6.27, linear case: D = c I <=> U = F/c, Φ ∝ f
    rng = np.random.default_rng(3)
    F = random_spd(rng, 7)
    p = landscape.linearized_potential(F, c * np.eye(7))
    m = landscape.potential_mismatch(F, c * np.eye(7), potential=p)
    np.testing.assert_allclose(p.curvature, F / c, rtol=1e-9, atol=1e-9 / c)
    assert float(m.angle) < 1e-7 and float(m.commutator) < 1e-15 and float(m.rotation) < 1e-12


def test_non_commuting_noise_has_a_current():
    F = jnp.array([[2.0, 1.0], [1.0, 1.0]])
    D = jnp.diag(jnp.array([1.0, 0.1]))
    m = landscape.potential_mismatch(F, D)
    U = np.linalg.inv([[0.7, -0.4], [-0.4, 0.5]])
    cos = np.sum(U * np.asarray(F)) / (np.linalg.norm(U) * np.linalg.norm(F))
    assert float(m.angle) == pytest.approx(np.arccos(cos), abs=1e-10)
    comm = np.asarray(F @ D - D @ F)
    assert float(m.commutator) == pytest.approx(
        np.linalg.norm(comm) / (np.linalg.norm(F) * np.linalg.norm(D)), abs=1e-14
    )
    Q = np.array([[0.0, -0.3], [0.3, 0.0]])
    C = np.array([[0.7, -0.4], [-0.4, 0.5]])
    frac = np.trace(Q @ U @ Q.T) / np.trace(np.asarray(F) @ C @ np.asarray(F).T)
    assert float(m.current_fraction) == pytest.approx(frac, rel=1e-10)
    assert float(m.rotation) == pytest.approx(np.linalg.norm(Q) / np.linalg.norm(D), rel=1e-10)


def test_discrete_equation_is_exact_for_the_linear_recursion():
    rng = np.random.default_rng(4)
    F, D = random_spd(rng, 4, spread=2.0), random_spd(rng, 4)
    eta, b = 0.2, 4
    sigma = landscape.sgd_stationary_covariance(
        F, D, learning_rate=eta, batch_size=b, discrete=True
    )
    A = np.eye(4) - eta * F
    np.testing.assert_allclose(sigma, A @ sigma @ A.T + eta**2 * D / b, atol=1e-13)
    cont = landscape.sgd_stationary_covariance(F, D, learning_rate=eta, batch_size=b)
    np.testing.assert_allclose(
        cont, eta / (2 * b) * landscape.lyapunov_covariance(F, D), atol=1e-14
    )
    # Kronecker path (non-symmetric F) gives the same discrete answer
    Fn = F + 1e-3 * np.triu(np.ones((4, 4)), 1)
    s_n = landscape.sgd_stationary_covariance(Fn, D, learning_rate=eta, batch_size=b, discrete=True)
    An = np.eye(4) - eta * Fn
    np.testing.assert_allclose(s_n, An @ s_n @ An.T + eta**2 * D / b, atol=1e-13)


def test_without_replacement_temperature_factor():
    # independent minibatches of b distinct examples: Var = (1/b)(N-b)/(N-1) D_w, so the
    # prediction with D_wo and (η/2b)(1 - b/N) is (N-b)/(N-1) times the one with D_w and η/2b.
    rng = np.random.default_rng(5)
    grads = jnp.asarray(rng.normal(size=(10, 3)))
    F = random_spd(rng, 3)
    n, b, eta = 10, 4, 0.1
    with_r = landscape.sgd_stationary_covariance(
        F, landscape.noise_covariance(grads), learning_rate=eta, batch_size=b
    )
    without = landscape.sgd_stationary_covariance(
        F,
        landscape.noise_covariance(grads, replacement=False),
        learning_rate=eta,
        batch_size=b,
        num_examples=n,
    )
    np.testing.assert_allclose(without, (n - b) / (n - 1) * with_r, rtol=1e-12)
    # and (N-b)/(N-1) is the exact covariance over all C(N, b) subsets
    means = np.array(
        [np.asarray(grads)[list(s)].mean(0) for s in itertools.combinations(range(n), b)]
    )
    exact = np.cov(means.T, bias=True)
    np.testing.assert_allclose(
        exact, (n - b) / (n - 1) / b * landscape.noise_covariance(grads), atol=1e-14
    )


# --- SGD runs on least squares ----------------------------------------------------------------


def least_squares(n, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 3)) * np.array([1.0, 0.8, 0.6])
    a[:, 1] += 0.5 * a[:, 0]
    y = a @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=n) * (0.3 + np.abs(a[:, 0]))
    x_star = np.linalg.lstsq(a, y, rcond=None)[0]
    hessian = a.T @ a / n
    grads = a * (a @ x_star - y)[:, None]  # per-example gradients at the minimum
    return jnp.asarray(a), jnp.asarray(y), jnp.asarray(x_star), jnp.asarray(hessian), grads


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6, 7))
def run_sgd(a, y, x0, eta, b, chains, steps, replacement, key):
    n = a.shape[0]

    def step(x, k):
        if replacement:
            idx = jax.random.randint(k, (b,), 0, n)
        else:  # b distinct examples, uniformly
            idx = jax.lax.top_k(jax.random.uniform(k, (n,)), b)[1]
        ab, yb = a[idx], y[idx]
        x = x - eta * ab.T @ (ab @ x - yb) / b
        return x, x

    def chain(k):
        k1, k2 = jax.random.split(k)
        x, _ = jax.lax.scan(step, x0, jax.random.split(k1, 500))  # burn-in
        return jax.lax.scan(step, x, jax.random.split(k2, steps))[1]

    return jax.vmap(chain)(jax.random.split(key, chains))


@pytest.fixture(scope="module")
def sgd_with_replacement():
    with jax.enable_x64(True):
        a, y, x_star, F, grads = least_squares(2000)
        xs = run_sgd(a, y, x_star, 0.05, 8, 64, 16000, True, jax.random.key(0))
        yield xs, x_star, F, landscape.noise_covariance(grads)


def test_sgd_iterate_covariance_matches_lyapunov(sgd_with_replacement):
    xs, x_star, F, D = sgd_with_replacement
    est = landscape.iterate_covariance(xs, center=x_star)
    cont = landscape.sgd_stationary_covariance(F, D, learning_rate=0.05, batch_size=8)
    disc = landscape.sgd_stationary_covariance(
        F, D, learning_rate=0.05, batch_size=8, discrete=True
    )
    se = float(jnp.linalg.norm(est.standard_error) / jnp.linalg.norm(cont))
    assert se < 0.02
    # the continuous prediction is off by the O(η λ_max) discretization bias only
    assert rel(disc, cont) == pytest.approx(0.035, abs=0.01)
    assert rel(est.covariance, cont) < 0.035 + 3 * se
    assert rel(est.covariance, disc) < 3 * se + 0.005
    # estimated potential curvature U = β⁻¹ Σ⁻¹ vs Lemma 6.44's U
    u_hat = 0.05 / 16 * jnp.linalg.inv(est.covariance)
    assert rel(u_hat, landscape.linearized_potential(F, D).curvature) < 0.08


def test_sgd_angular_momentum_is_two_temperature_q(sgd_with_replacement):
    xs, x_star, F, D = sgd_with_replacement
    L = landscape.angular_momentum(xs, dt=0.05, center=x_star)
    np.testing.assert_allclose(L.value, -L.value.T, atol=1e-15)
    q = landscape.linearized_potential(F, D).antisymmetric
    pred = 2 * landscape.sgd_temperature(0.05, 8) * q
    se = np.asarray(L.standard_error)
    assert abs(float(L.value[0, 1] - pred[0, 1])) < 4 * se[0, 1] + 0.05 * abs(float(pred[0, 1]))
    assert abs(float(pred[0, 1])) > 20 * se[0, 1]  # the current is resolved, not noise
    assert rel(L.value, pred) < 0.1  # O(η) discretization bias


def test_sgd_without_replacement_matches_corrected_temperature():
    n, b, eta = 20, 10, 0.05
    a, y, x_star, F, grads = least_squares(n, seed=2)
    xs = run_sgd(a, y, x_star, eta, b, 32, 8000, False, jax.random.key(1))
    est = landscape.iterate_covariance(xs, center=x_star)
    d_wo = landscape.noise_covariance(grads, replacement=False)
    pred = landscape.sgd_stationary_covariance(
        F, d_wo, learning_rate=eta, batch_size=b, num_examples=n, discrete=True
    )
    naive = landscape.sgd_stationary_covariance(
        F, landscape.noise_covariance(grads), learning_rate=eta, batch_size=b, discrete=True
    )
    se = float(jnp.linalg.norm(est.standard_error) / jnp.linalg.norm(pred))
    assert rel(est.covariance, pred) < 3 * se + 0.01
    assert rel(est.covariance, naive) > 0.4  # the factor (N-b)/(N-1) = 0.53 is needed


# --- a real linear model: least squares on MNIST-1D ------------------------------------------


def test_mnist1d_least_squares_potential_is_not_the_loss():
    from entropix import data

    ds = data.load_mnist1d()  # mnist1d is part of the examples extra the tests install
    x = np.asarray(ds.x_train, np.float64)
    a = np.concatenate([x, np.ones((len(x), 1))], axis=1)  # 40 features + bias
    y = np.where(np.asarray(ds.y_train) < 5, 1.0, -1.0)
    w = np.linalg.lstsq(a, y, rcond=None)[0]
    F = jnp.asarray(a.T @ a / len(y))  # exact Hessian
    D = landscape.noise_covariance(a * (a @ w - y)[:, None])  # exact D at the minimum
    p = landscape.linearized_potential(F, D)
    m = landscape.potential_mismatch(F, D, potential=p)
    assert float(p.residual) < 1e-12
    np.testing.assert_allclose((D + p.antisymmetric) @ p.curvature, F, atol=1e-8)
    assert np.degrees(float(m.angle)) > 45  # U is far from ∝ F: Φ ≠ f
    assert float(m.rotation) > 0.03 and float(m.commutator) > 0.03
    assert float(m.current_fraction) > 1e-3  # a non-zero current
    # the same Hessian with isotropic noise of the same trace: Φ ∝ f, no current
    iso = landscape.potential_mismatch(F, jnp.trace(D) / 41 * jnp.eye(41))
    assert float(iso.angle) < 1e-6 and float(iso.current_fraction) < 1e-20


# --- matrix-free projection --------------------------------------------------------------------


def mlp_loss(params, batch):
    x, y = batch
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return 0.5 * jnp.mean((h @ params["w2"] - y) ** 2)


def test_projected_linearization_equals_dense_projection():
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.normal(size=(64, 5)))
    y = jnp.asarray(np.sin(np.asarray(x) @ rng.normal(size=5)))
    params = {
        "w1": jnp.asarray(rng.normal(size=(5, 6)) / 2),
        "b1": jnp.zeros(6),
        "w2": jnp.asarray(rng.normal(size=6) / 2),
    }
    batches = [(x[:32], y[:32]), (x[32:], y[32:])]
    k = 4
    r = landscape.projected_linearization(mlp_loss, params, batches, k=k, num_steps=40)
    H = landscape.hessian_matrix(mlp_loss, params, batches)
    G = landscape.per_example_gradients(mlp_loss, params, batches)
    D = landscape.noise_covariance(G)
    V = r.basis
    np.testing.assert_allclose(V @ V.T, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(r.hessian, V @ H @ V.T, atol=1e-10)
    np.testing.assert_allclose(r.diffusion, V @ D @ V.T, atol=1e-12)
    top = np.sort(np.linalg.eigvalsh(np.asarray(H)))[::-1][:k]
    np.testing.assert_allclose(r.ritz_values, top, rtol=1e-8)
    np.testing.assert_allclose(
        np.sort(np.linalg.eigvalsh(np.asarray(r.hessian)))[::-1], top, rtol=1e-8
    )
    assert float(r.potential.residual) < 1e-12


def _least_squares_loss(w, batch):
    inputs, targets = batch
    return 0.5 * jnp.mean((inputs @ w - targets) ** 2)


def _least_squares_problem(seed, n):
    """Inputs with unequal column scales, targets, and the minimizer of the squared loss."""
    rng = np.random.default_rng(seed)
    a = jnp.asarray(rng.normal(size=(n, 4)) * np.array([1.0, 0.5, 2.0, 0.3]))
    y = jnp.asarray(rng.normal(size=n))
    return a, y, jnp.linalg.lstsq(a, y)[0]


def test_projection_on_the_full_space_is_a_rotation_of_the_dense_answer():
    # k = d: F_k = V F Vᵀ with V orthogonal; every mismatch measure is rotation invariant
    a, y, w = _least_squares_problem(7, 200)
    loss = _least_squares_loss
    r = landscape.projected_linearization(loss, w, [(a, y)], k=4, num_steps=4)
    F = a.T @ a / 200
    D = landscape.noise_covariance(a * (a @ w - y)[:, None])
    dense = landscape.potential_mismatch(F, D)
    for got, want in zip(r.mismatch, dense, strict=True):
        assert float(got) == pytest.approx(float(want), rel=1e-8, abs=1e-12)


# --- estimators and argument checks -------------------------------------------------------------


def test_angular_momentum_of_a_rotation_and_of_white_noise():
    t = jnp.linspace(0.0, 4 * jnp.pi, 4001)
    circle = 2.0 * jnp.stack([jnp.cos(t), jnp.sin(t)], axis=-1)
    L = landscape.angular_momentum(circle, dt=float(t[1]))
    assert float(L.value[0, 1]) == pytest.approx(4.0, rel=1e-4)  # r² ω
    walk = jnp.cumsum(jax.random.normal(jax.random.key(0), (64, 2000, 2)), axis=1) * 0.1
    Lw = landscape.angular_momentum(walk, dt=1.0)
    assert abs(float(Lw.value[0, 1])) < 4 * float(Lw.standard_error[0, 1])


def test_bad_input_is_rejected_with_the_argument_name():
    with pytest.raises(ValueError, match="`hessian` and `diffusion`"):
        landscape.linearized_potential(jnp.eye(2), jnp.eye(3))
    with pytest.raises(ValueError, match="`hessian` must be a square"):
        landscape.lyapunov_covariance(jnp.ones(3), jnp.eye(3))
    with pytest.raises(ValueError, match="λ_i \\+ λ_j = 0"):
        landscape.lyapunov_covariance(jnp.diag(jnp.array([1.0, 0.0])), jnp.eye(2))
    with pytest.raises(ValueError, match="stability limit"):
        landscape.sgd_stationary_covariance(
            jnp.eye(2), jnp.eye(2), learning_rate=2.0, batch_size=1, discrete=True
        )
    big = jnp.eye(60) + jnp.triu(jnp.ones((60, 60)), 1) * 1e-2
    with pytest.raises(ValueError, match="d <= 48"):
        landscape.lyapunov_covariance(big, jnp.eye(60))
    with pytest.raises(ValueError, match="`trajectory`"):
        landscape.iterate_covariance(jnp.ones(5))
    with pytest.raises(ValueError, match="`burn_in`"):
        landscape.iterate_covariance(jnp.ones((5, 2)), burn_in=4)
    with pytest.raises(ValueError, match="`dt`"):
        landscape.angular_momentum(jnp.ones((5, 2)), dt=0.0)
    with pytest.raises(ValueError, match="`batch_size`"):
        landscape.sgd_stationary_covariance(
            jnp.eye(2), jnp.eye(2), learning_rate=0.1, batch_size=8, num_examples=4
        )


# --- small exact cases: input handling, exact symmetries, estimators by hand -------------------


def test_integer_input_and_the_symmetric_part_of_the_diffusion():
    F0 = np.array([[2.0, 1.0], [1.0, 1.0]])
    D0 = np.array([[2.0, 0.0], [0.0, 1.0]])
    want = landscape.lyapunov_covariance(F0, D0)
    got = landscape.lyapunov_covariance(F0.astype(np.int32), D0.astype(np.int32))
    assert jnp.issubdtype(got.dtype, jnp.floating)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # only the symmetric part of D enters: an antisymmetric addition changes nothing
    skew = np.array([[0.0, 0.7], [-0.7, 0.0]])
    np.testing.assert_allclose(landscape.lyapunov_covariance(F0, D0 + skew), want, atol=1e-14)
    with pytest.raises(ValueError, match="`hessian` must be a square"):
        landscape.lyapunov_covariance(np.ones((2, 3)), np.eye(2))
    with pytest.raises(ValueError, match="`diffusion` must be a square"):
        landscape.lyapunov_covariance(np.eye(2), np.ones((2, 3)))
    with pytest.raises(ValueError, match="`hessian` must be a square"):
        landscape.lyapunov_covariance(np.zeros((0, 0)), np.zeros((0, 0)))


def test_covariance_and_rotation_are_exactly_symmetric_and_antisymmetric():
    rng = np.random.default_rng(8)
    F, D = random_spd(rng, 5), random_spd(rng, 5)
    Fn = F + 0.8 * (lambda a: a - a.T)(rng.normal(size=(5, 5)))  # Kronecker path
    for f in (F, Fn):
        p = landscape.linearized_potential(f, D)
        np.testing.assert_array_equal(p.covariance, p.covariance.T)
        np.testing.assert_array_equal(p.antisymmetric, -p.antisymmetric.T)
        assert float(p.residual) < 1e-12


def test_kronecker_size_limit_is_inclusive(monkeypatch):
    from entropix.landscape import potential

    monkeypatch.setattr(potential, "MAX_KRONECKER_DIM", 3)
    F = np.diag([1.0, 2.0, 3.0]) + np.triu(np.ones((3, 3)), 1)
    c = landscape.lyapunov_covariance(F, np.eye(3))  # d = 3 = the limit: solved
    np.testing.assert_allclose(F @ c + c @ F.T, 2 * np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match="d <= 3, got d=4"):
        landscape.lyapunov_covariance(np.eye(4) + np.triu(np.ones((4, 4)), 1), np.eye(4))


def test_singularity_and_symmetry_checks_are_relative_to_the_scale_of_f():
    F = np.array([[2.0, 1.0], [1.0, 1.0]])
    D = np.diag([1.0, 0.1])
    # F -> s F, D -> s D leaves C unchanged at any scale s
    for s in (1e-14, 1e14):
        np.testing.assert_allclose(
            landscape.lyapunov_covariance(s * F, s * D), [[0.7, -0.4], [-0.4, 0.5]], atol=1e-12
        )
    # the residual is relative to ‖2D‖: rounding size at any scale
    rng = np.random.default_rng(9)
    F5, D5 = random_spd(rng, 5), random_spd(rng, 5)
    for s in (1e-10, 1e10):
        assert float(landscape.linearized_potential(s * F5, s * D5).residual) < 1e-13
    # eigenvalues 1 and 1e-14: λ_2 + λ_2 vanishes relative to λ_max
    with pytest.raises(ValueError, match="λ_i \\+ λ_j = 0"):
        landscape.lyapunov_covariance(np.diag([1.0, 1e-14]), np.eye(2))
    # d = 50 > 48 with an asymmetry of rounding size relative to the entries: still symmetric
    rng = np.random.default_rng(9)
    big = 1e4 * random_spd(rng, 50, spread=1.0)
    big[0, 1] += 1e-14 * np.abs(big).max()
    c = landscape.lyapunov_covariance(big, np.eye(50))
    np.testing.assert_allclose(c, np.linalg.inv(0.5 * (big + big.T)), rtol=1e-8)


def test_singular_covariance_gives_the_pseudo_inverse():
    # D = diag(1, 0) in the eigenbasis of F = diag(2, 3): C = diag(1/2, 0), U = C⁺ = diag(2, 0)
    q = np.array([[0.6, 0.8], [-0.8, 0.6]])
    F, D = q @ np.diag([2.0, 3.0]) @ q.T, q @ np.diag([1.0, 0.0]) @ q.T
    p = landscape.linearized_potential(F, D)
    np.testing.assert_allclose(p.covariance, q @ np.diag([0.5, 0.0]) @ q.T, atol=1e-14)
    np.testing.assert_allclose(p.curvature, q @ np.diag([2.0, 0.0]) @ q.T, atol=1e-12)


def test_mismatch_uses_the_potential_it_is_given():
    F = jnp.array([[2.0, 1.0], [1.0, 1.0]])
    D = jnp.diag(jnp.array([1.0, 0.1]))
    doubled = landscape.linearized_potential(F, 2 * D)  # C, Q twice those of (F, D)
    m = landscape.potential_mismatch(F, D, potential=doubled)
    Q = np.array([[0.0, -0.3], [0.3, 0.0]])
    assert float(m.rotation) == pytest.approx(2 * np.linalg.norm(Q) / np.linalg.norm(D), rel=1e-12)


def test_iterate_covariance_and_its_standard_error_by_hand():
    # chain 1: (±1, 0), chain 2: (0, ±2); per-chain second moments diag(1, 0) and diag(0, 4)
    x = jnp.array([[[1.0, 0.0], [-1.0, 0.0]], [[0.0, 2.0], [0.0, -2.0]]])
    est = landscape.iterate_covariance(x)
    np.testing.assert_allclose(est.mean, [0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(est.covariance, [[0.5, 0.0], [0.0, 2.0]], atol=1e-15)
    # std over the two chains (ddof = 1) / sqrt(2): |1 - 0| / 2 and |0 - 4| / 2
    np.testing.assert_allclose(est.standard_error, [[0.5, 0.0], [0.0, 2.0]], atol=1e-15)
    assert (est.num_chains, est.num_samples) == (2, 2)
    # a shift moves the pooled mean, not the covariance
    shifted = landscape.iterate_covariance(x + jnp.array([3.0, -1.0]))
    np.testing.assert_allclose(shifted.mean, [3.0, -1.0], atol=1e-15)
    np.testing.assert_allclose(shifted.covariance, [[0.5, 0.0], [0.0, 2.0]], atol=1e-14)
    # about the center (1, 0): chain 1 has (0, 0), (-2, 0); chain 2 (-1, ±2)
    est = landscape.iterate_covariance(x, center=jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(est.mean, [1.0, 0.0])
    np.testing.assert_allclose(est.covariance, [[1.5, 0.0], [0.0, 2.0]], atol=1e-15)
    np.testing.assert_allclose(est.standard_error, [[0.5, 0.0], [0.0, 2.0]], atol=1e-15)
    # burn-in drops the first sample of each chain
    x3 = jnp.concatenate([jnp.full((2, 1, 2), 9.0), x], axis=1)
    np.testing.assert_allclose(
        landscape.iterate_covariance(x3, burn_in=1).covariance, [[0.5, 0.0], [0.0, 2.0]]
    )


def test_angular_momentum_of_straight_lines_by_hand():
    # x_t = c + t v with v = (0, 1): about the origin x Δxᵀ − Δx xᵀ has [0, 1] entry c₀ v₁ = c₀;
    # about c it vanishes. Three chains with c₀ = 1, 2, 3: mean 2, standard error 1/√3.
    t = jnp.arange(3.0)[:, None]
    v = jnp.array([0.0, 1.0])
    x = jnp.stack([jnp.array([c0, 0.0]) + t * v for c0 in (1.0, 2.0, 3.0)])
    L = landscape.angular_momentum(x, dt=1.0)
    np.testing.assert_allclose(L.value, [[0.0, 2.0], [-2.0, 0.0]], atol=1e-15)
    se = 1 / np.sqrt(3)
    np.testing.assert_allclose(L.standard_error, [[0.0, se], [se, 0.0]], atol=1e-15)
    # about (1, 0) with dt = 0.5: c₀ − 1 = 0, 1, 2 over dt, mean 2
    Lc = landscape.angular_momentum(x, dt=0.5, center=jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(Lc.value, [[0.0, 2.0], [-2.0, 0.0]], atol=1e-15)
    np.testing.assert_allclose(Lc.standard_error, [[0.0, 2 * se], [2 * se, 0.0]], atol=1e-15)
    one = landscape.angular_momentum(x[0], dt=1.0)
    assert float(one.value[0, 1]) == 1.0 and bool(jnp.all(jnp.isnan(one.standard_error)))


class _Stop(Exception):
    pass


def test_projection_default_lanczos_order(monkeypatch):
    from entropix.landscape import potential

    orders = []

    def spy(op, num_steps, **kwargs):
        orders.append(num_steps)
        raise _Stop  # only the order is checked here

    monkeypatch.setattr(potential.lanczos, "lanczos_tridiagonal", spy)
    loss = _least_squares_loss
    batches = [(jnp.ones((3, 50)), jnp.ones(3))]
    # default order min(d, max(2k, k + 20)) for d = 50: 22 for k = 2, 42 for k = 21, 50 for k = 40
    for k in (2, 21, 40):
        with pytest.raises(_Stop):
            landscape.projected_linearization(loss, jnp.zeros(50), batches, k=k)
    assert orders == [22, 42, 50]


def test_projection_noise_batches_and_exact_symmetry():
    a, y, w = _least_squares_problem(10, 60)
    loss = _least_squares_loss
    noise_batches = [(a[:20], y[:20]), (a[20:40], y[20:40])]
    r = landscape.projected_linearization(
        loss, w, [(a, y)], k=3, num_steps=4, noise_batches=noise_batches
    )
    np.testing.assert_array_equal(r.hessian, r.hessian.T)
    V = r.basis
    np.testing.assert_allclose(r.hessian, V @ (a.T @ a / 60) @ V.T, atol=1e-12)
    D = landscape.noise_covariance(landscape.per_example_gradients(loss, w, noise_batches))
    np.testing.assert_allclose(r.diffusion, V @ D @ V.T, atol=1e-12)
