"""Quadratics: exact local entropy, prox, SGLD law and outer step (coupling γ_c = 1/γ_thesis)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entropix import toys

# Closed-form comparisons need the precision of 64-bit floats.
pytestmark = pytest.mark.usefixtures("x64")

A1 = np.array([[3.0]])
M1 = np.array([0.7])


def _spd(key, d=3):
    q = jax.random.normal(key, (d, d))
    return q @ q.T + 0.5 * jnp.eye(d)


def test_t1_numeric_example():
    # thesis γ = 0.5  ↔  coupling 2; β = 2; x = −1.
    x = jnp.array([-1.0])
    fg = toys.quadratic_local_entropy(x, A1, M1, coupling=2.0, beta=2.0)
    assert float(fg) == pytest.approx(1.963072682968, abs=1e-11)
    grad = toys.quadratic_local_entropy_grad(x, A1, M1, 2.0)
    assert float(grad[0]) == pytest.approx(-2.04, abs=1e-12)
    cov = toys.quadratic_local_covariance(A1, 2.0, beta=2.0)
    assert float(cov[0, 0]) == pytest.approx(0.1, abs=1e-12)
    # gradient identity ∇f_γ = γ_c (x − ⟨y⟩) and autodiff
    mean = toys.quadratic_local_mean(x, A1, M1, 2.0)
    np.testing.assert_allclose(2.0 * (x - mean), grad, atol=1e-12)
    auto = jax.grad(toys.quadratic_local_entropy)(x, A1, M1, 2.0, 2.0)
    np.testing.assert_allclose(auto, grad, atol=1e-12)


def test_t1_matches_quadrature_including_negative_curvature():
    y = jnp.linspace(-12.0, 12.0, 4801)
    pts = jnp.array([-1.0, 0.3, 2.0])
    for a, coupling, beta in [(3.0, 2.0, 2.0), (-1.0, 3.0, 1.5), (0.5, 0.2, 1.0)]:
        fv = 0.5 * a * (y - 0.7) ** 2
        quad = toys.grid_local_entropy(fv, y, coupling, beta, points=pts)
        exact = jax.vmap(
            lambda x, a=a, c=coupling, b=beta: toys.quadratic_local_entropy(
                x[None], jnp.array([[a]]), M1, c, b
            )
        )(pts)
        np.testing.assert_allclose(quad, exact, atol=1e-8)


def test_t1_matrix_limits_and_t18_curvature():
    a = _spd(jax.random.key(0))
    m = jnp.array([0.3, -1.0, 2.0])
    x = jnp.array([1.0, 0.5, -0.5])
    # strong coupling: f_γ → f ; weak coupling: ∇f_γ → 0
    f = toys.quadratic_loss(x, a, m)
    assert float(toys.quadratic_local_entropy(x, a, m, 1e9)) == pytest.approx(float(f), rel=1e-6)
    assert float(jnp.linalg.norm(toys.quadratic_local_entropy_grad(x, a, m, 1e-9))) < 1e-8
    # Hessian eigenvalues λ/(1 + λ/γ_c) = 1/(1/λ + 1/γ_c)
    coupling = 0.7
    hess = jax.hessian(toys.quadratic_local_entropy)(x, a, m, coupling)
    lam = jnp.linalg.eigvalsh(a)
    np.testing.assert_allclose(jnp.linalg.eigvalsh(hess), lam / (1 + lam / coupling), rtol=1e-10)
    assert float(jnp.max(jnp.linalg.eigvalsh(hess))) <= coupling


def test_t2_moreau_envelope_and_prox():
    y = jnp.linspace(-8.0, 8.0, 16001)
    pts = jnp.linspace(-3.0, 3.0, 13)
    coupling = 1.5
    fv = 1.5 * (y - 0.7) ** 2
    u = toys.grid_moreau_envelope(fv, y, coupling, points=pts)
    prox = toys.grid_prox(fv, y, coupling, points=pts)
    exact_u = jax.vmap(lambda x: toys.quadratic_moreau_envelope(x[None], A1, M1, coupling))(pts)
    exact_p = jax.vmap(lambda x: toys.quadratic_prox(x[None], A1, M1, coupling)[0])(pts)
    np.testing.assert_allclose(u, exact_u, atol=1e-6)
    np.testing.assert_allclose(prox, exact_p, atol=1e-3)
    # ∇u = γ_c (x − prox) = ∇f(prox), and it equals the viscous gradient
    a, m = _spd(jax.random.key(1)), jnp.array([1.0, 0.0, -1.0])
    x = jnp.array([0.2, 2.0, -3.0])
    p = toys.quadratic_prox(x, a, m, coupling)
    grad_u = jax.grad(toys.quadratic_moreau_envelope)(x, a, m, coupling)
    np.testing.assert_allclose(grad_u, coupling * (x - p), atol=1e-12)
    np.testing.assert_allclose(grad_u, a @ (p - m), atol=1e-12)
    np.testing.assert_allclose(
        grad_u, toys.quadratic_local_entropy_grad(x, a, m, coupling), atol=1e-12
    )


def test_t11_sgld_stationary_law():
    # a=3, m=0.7, thesis γ=0.5 (coupling 2), β=2 (noise ε = √(2/β) = 1), η'=0.05, x=2.
    x = jnp.array([2.0])
    mean, cov = toys.quadratic_sgld_stationary(
        x, A1, M1, coupling=2.0, sgld_learning_rate=0.05, noise=1.0
    )
    assert float(mean[0]) == pytest.approx(1.22, abs=1e-12)
    assert float(cov[0, 0]) == pytest.approx(0.05 / (1 - 0.75**2), rel=1e-12)
    assert float(cov[0, 0]) == pytest.approx(0.11429, abs=1e-5)
    assert float(2.0 * (x - mean)[0]) == pytest.approx(1.56, abs=1e-12)
    # simulate the chain (our Langevin convention: sqrt(η') ε N(0, 1))
    eta, chains, steps = 0.05, 4000, 400

    def step(y, xi):
        y = y - eta * (3.0 * (y - 0.7) + 2.0 * (y - 2.0)) + jnp.sqrt(eta) * xi
        return y, y

    noise = jax.random.normal(jax.random.key(0), (steps, chains))
    _, ys = jax.lax.scan(step, jnp.full((chains,), 2.0), noise)
    tail = ys[100:]
    assert float(tail.mean()) == pytest.approx(1.22, abs=0.01)
    assert float(tail.var()) == pytest.approx(0.11429, rel=0.03)


def _entropy_sgd_loop(x, a, m, coupling, lr_in, num_inner, w_new, lr_out, scaled):
    y, mu = x, x
    for _ in range(num_inner):
        y = y - lr_in * (a @ (y - m) + coupling * (y - x))
        mu = (1 - w_new) * mu + w_new * y
    g = (x - mu) if scaled else coupling * (x - mu)
    return x - lr_out * g, mu


def test_t12_one_outer_step_reference_value():
    # thesis: a=3, m=0.7, γ=0.5, η_y=0.05, α_thesis=0.25, L=20, x=2 ⇒ z_L = 1.2227827385
    # ours: coupling 2, average_weight = 1 − 0.25 = 0.75.
    x = jnp.array([2.0])
    new_x, mu = toys.entropy_sgd_quadratic_step(
        x, A1, M1, coupling=2.0, sgld_learning_rate=0.05, num_inner_steps=20, average_weight=0.75
    )
    assert float(mu[0]) == pytest.approx(1.2227827385, abs=1e-10)
    assert float(new_x[0]) == pytest.approx(1.2227827385, abs=1e-10)  # scaled, η = 1
    _, mu_loop = _entropy_sgd_loop(x, A1, M1, 2.0, 0.05, 20, 0.75, 1.0, True)
    assert float(mu_loop[0]) == pytest.approx(1.2227827385, abs=1e-10)


@pytest.mark.parametrize("w_new", [0.75, 0.25, 1.0, 0.5])
@pytest.mark.parametrize("scaled", [True, False])
def test_t12_matrix_closed_form_matches_loop(w_new, scaled):
    a = _spd(jax.random.key(2))
    m = jnp.array([0.5, -0.2, 1.0])
    x = jnp.array([2.0, 1.0, -1.0])
    kw = dict(coupling=0.8, sgld_learning_rate=0.05, num_inner_steps=13)
    new_x, mu = toys.entropy_sgd_quadratic_step(
        x, a, m, average_weight=w_new, learning_rate=0.3, scale_outer_gradient=scaled, **kw
    )
    ref_x, ref_mu = _entropy_sgd_loop(x, a, m, 0.8, 0.05, 13, w_new, 0.3, scaled)
    np.testing.assert_allclose(mu, ref_mu, atol=1e-12)
    np.testing.assert_allclose(new_x, ref_x, atol=1e-12)


def test_t12_hj_limit_is_proximal_point_and_t17e():
    a = _spd(jax.random.key(3))
    m = jnp.array([1.0, 2.0, 3.0])
    x = jnp.zeros(3)
    coupling = 2.0
    lr_in = 0.9 / float(jnp.max(jnp.linalg.eigvalsh(a)) + coupling)
    new_x, mu = toys.entropy_sgd_quadratic_step(
        x,
        a,
        m,
        coupling=coupling,
        sgld_learning_rate=lr_in,
        num_inner_steps=3000,
        average_weight=1.0,
    )
    prox = toys.quadratic_prox(x, a, m, coupling)
    np.testing.assert_allclose(mu, prox, atol=1e-10)
    np.testing.assert_allclose(new_x, prox, atol=1e-10)  # scaled, η = 1: x⁺ = prox(x)
    # proximal point contracts x − m by 1/(1 + λ/γ_c) per eigendirection
    lam, vec = jnp.linalg.eigh(a)
    np.testing.assert_allclose(
        vec.T @ (new_x - m), (vec.T @ (x - m)) / (1 + lam / coupling), atol=1e-10
    )
    # unscaled outer step = scaled one with the step multiplied by γ_c
    kw = dict(coupling=coupling, sgld_learning_rate=lr_in, num_inner_steps=7)
    xs, _ = toys.entropy_sgd_quadratic_step(x, a, m, learning_rate=0.1 * coupling, **kw)
    xu, _ = toys.entropy_sgd_quadratic_step(
        x, a, m, learning_rate=0.1, scale_outer_gradient=False, **kw
    )
    np.testing.assert_allclose(xs, xu, atol=1e-12)


def test_entropy_sgd_quadratic_step_validates():
    with pytest.raises(ValueError, match="num_inner_steps"):
        toys.entropy_sgd_quadratic_step(
            jnp.zeros(1), A1, M1, coupling=1.0, sgld_learning_rate=0.1, num_inner_steps=0
        )


def test_check_values_unnormalized_kernel_and_sgld_ar1():
    """Thesis eq. 3.9 (Ch. 3, no kernel normalization) on a quadratic; exact SGLD AR(1) variance."""
    a, m, gamma_thesis = np.array([[2.0]]), np.array([0.5]), 0.7
    for x, value in [(-1.0, 0.634633), (0.3, -0.286200)]:
        normalized = toys.quadratic_local_entropy(np.array([x]), a, m, 1.0 / gamma_thesis)
        # Ch. 3 eq. 3.9 omits the heat-kernel normalization: −(d/2) log(2π γ) with β = 1
        ch3 = float(normalized) - 0.5 * np.log(2 * np.pi * gamma_thesis)
        assert ch3 == pytest.approx(value, abs=1e-6)
    # plain SGLD (coupling 0) on U = a y²/2: stationary variance 1/(βa(1 − ηa/2)) = 0.15625
    _, cov = toys.quadratic_sgld_stationary(
        np.zeros(1),
        np.array([[2.0]]),
        np.zeros(1),
        coupling=0.0,
        sgld_learning_rate=0.2,
        noise=np.sqrt(2.0 / 4.0),
    )
    assert float(cov[0, 0]) == pytest.approx(0.15625, abs=1e-12)
