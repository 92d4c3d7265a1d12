"""The rotating double well (thesis Example 6.43): exact steady state, current, critical points."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entropix import landscape, toys

# Closed-form comparisons need the precision of 64-bit floats.
pytestmark = pytest.mark.usefixtures("x64")

DT = 2e-3
CHAINS = 1000
RECORD = 10


def test_normalizer_and_marginals_by_independent_quadrature():
    # 2-D Riemann sum of e^{-Φ} on a fine grid vs the 1-D quadrature
    s = np.linspace(-8.0, 8.0, 1601)  # the x₂ tail beyond 5 weighs 6e-7
    x1, x2 = np.meshgrid(s, s, indexing="ij")
    w = np.exp(-np.asarray(toys.double_well_potential(jnp.stack([x1, x2], -1))))
    h = s[1] - s[0]
    m = toys.double_well_moments()
    assert m.normalizer == pytest.approx(w.sum() * h * h, rel=1e-9)
    assert m.normalizer == pytest.approx(7.623468, abs=1e-6)
    assert m.x1_squared == pytest.approx((x1**2 * w).sum() / w.sum(), rel=1e-9)
    assert m.x2_squared == pytest.approx((x2**2 * w).sum() / w.sum(), rel=1e-9)
    assert m.x1_squared == pytest.approx(1.041797, abs=1e-6)


def test_density_is_stationary_for_every_strength():
    # ∇·(ρ ∇f) + Δρ = 0 (Fokker-Planck, β = 1) at random points for ρ = e^{-Φ}/Z, any λ
    rho = toys.double_well_density
    points = jax.random.normal(jax.random.key(0), (50, 2)) * 1.2
    for lam in (0.0, 0.5, 4.0):

        def flux(x, lam=lam):  # -J = ρ ∇f + ∇ρ
            return rho(x) * toys.double_well_gradient(x, lam) + jax.grad(rho)(x)

        div = jax.jit(jax.vmap(lambda x, flux=flux: jnp.trace(jax.jacfwd(flux)(x))))(points)
        assert float(jnp.max(jnp.abs(div))) < 1e-13
    # the current itself is not zero for λ > 0: detailed balance is broken
    x = jnp.array([0.3, -0.7])
    current = rho(x) * toys.double_well_rotation(x, 1.0)
    assert float(jnp.linalg.norm(current)) > 1e-2


def test_rotation_keeps_e_minus_phi_without_being_divergence_free():
    # stationarity needs ∇·(j e^{-Φ}) = ∇·j − j·∇Φ = 0 only: here ∇·j = j·∇Φ =
    # λ e^{Φ - r⁴/4} x₁ x₂ (2 - x₁²) ≠ 0, so neither ∇·j = 0 nor j ⟂ ∇Φ holds pointwise
    x = jax.random.normal(jax.random.key(1), (20, 2))
    j = toys.double_well_rotation(x, 0.7)
    grad_phi = jax.vmap(jax.grad(toys.double_well_potential))(x)
    div = jax.jit(
        jax.vmap(lambda p: jnp.trace(jax.jacfwd(lambda q: toys.double_well_rotation(q, 0.7))(p)))
    )(x)
    r2 = jnp.sum(x**2, -1)
    expected = (
        0.7
        * jnp.exp(toys.double_well_potential(x) - r2**2 / 4)
        * x[:, 0]
        * x[:, 1]
        * (2 - x[:, 0] ** 2)
    )
    np.testing.assert_allclose(div, expected, atol=1e-12)
    np.testing.assert_allclose(jnp.sum(j * grad_phi, -1), expected, atol=1e-12)
    assert float(jnp.max(jnp.abs(expected))) > 0.1


@pytest.mark.parametrize("lam", [0.0, 0.2, 0.5, 0.75])
def test_critical_points_solve_grad_f_zero(lam):
    pts = toys.double_well_critical_points(lam)
    assert pts.shape == (3, 2)
    np.testing.assert_allclose(toys.double_well_gradient(jnp.asarray(pts), lam), 0.0, atol=1e-12)
    np.testing.assert_allclose(pts[1], 0.0)
    np.testing.assert_allclose(pts[0], -pts[2])


def test_critical_points_move_and_vanish_with_strength():
    np.testing.assert_allclose(
        toys.double_well_critical_points(0.5)[2], [0.9024, 0.3888], atol=1e-4
    )
    lam_c = toys.double_well_critical_strength()
    assert lam_c == pytest.approx(math.exp(-0.25), abs=1e-9)
    # the two off-origin points approach the origin as λ ↑ λ_c
    near = toys.double_well_critical_points(lam_c - 1e-4)[2]
    assert 0 < np.linalg.norm(near) < 0.05
    for lam in (lam_c + 1e-3, 1.0, 1.5, 5.0):
        np.testing.assert_array_equal(toys.double_well_critical_points(lam), [[0.0, 0.0]])
    # beyond λ_c the linearization at the origin is a pure rotation (trace 0, det > 0)
    F = jax.jacfwd(lambda x: toys.double_well_gradient(x, 1.5))(jnp.zeros(2))
    assert abs(float(jnp.trace(F))) < 1e-14
    assert float(jnp.linalg.det(F)) == pytest.approx(1.5**2 * math.exp(0.5) - 1, rel=1e-12)
    # the most likely locations (±1, 0) of e^{-Φ} are not critical points of f for λ > 0
    assert float(jnp.linalg.norm(toys.double_well_gradient(jnp.array([1.0, 0.0]), 0.5))) > 0.3


def test_angular_velocity_closed_form_by_quadrature():
    # E[x₁ j₂ − x₂ j₁] under e^{-Φ}/Z, by a 2-D Riemann sum, equals 2πλ/Z
    s = np.linspace(-6.0, 6.0, 961)
    x = jnp.asarray(np.stack(np.meshgrid(s, s, indexing="ij"), -1))
    j = toys.double_well_rotation(x, 0.5)
    integrand = toys.double_well_density(x) * (x[..., 0] * j[..., 1] - x[..., 1] * j[..., 0])
    value = float(jnp.sum(integrand)) * (s[1] - s[0]) ** 2
    assert value == pytest.approx(toys.double_well_angular_velocity(0.5), rel=1e-8)
    assert toys.double_well_angular_velocity(0.5) == pytest.approx(0.41209, abs=1e-5)
    assert toys.double_well_angular_velocity(1.5) == pytest.approx(1.23628, abs=1e-5)


@pytest.fixture(scope="module")
def paths():
    with jax.enable_x64(True):
        out = {}
        for i, lam in enumerate((0.0, 0.5, 1.5)):
            x0 = jax.random.normal(jax.random.key(10 + i), (CHAINS, 2))
            out[lam] = toys.simulate_sde(
                lambda x, lam=lam: -toys.double_well_gradient(x, lam),
                x0,
                jax.random.key(20 + i),
                dt=DT,
                num_steps=8000,
                burn_in=2000,
                record_every=RECORD,
            )
        yield out


def mean_and_se(per_chain):
    per_chain = np.asarray(per_chain)
    return per_chain.mean(), per_chain.std(ddof=1) / math.sqrt(len(per_chain))


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.5])
def test_simulated_marginals_match_e_minus_phi(paths, lam):
    m = toys.double_well_moments()
    s = paths[lam].samples
    for column, exact in ((0, m.x1_squared), (1, m.x2_squared)):
        mean, se = mean_and_se(jnp.mean(s[..., column] ** 2, axis=1))
        assert abs(mean - exact) < 4 * se + 0.005, (lam, column, mean, exact, se)  # 0.005: O(dt)
    mean, se = mean_and_se(jnp.mean(s[..., 0] * s[..., 1], axis=1))  # independent marginals
    assert abs(mean) < 4 * se + 0.005


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.5])
def test_simulated_angular_velocity_is_two_pi_lambda_over_z(paths, lam):
    L = paths[lam].angular_momentum
    np.testing.assert_allclose(L, -jnp.swapaxes(L, 1, 2), atol=1e-12)
    mean, se = mean_and_se(L[:, 0, 1])
    exact = toys.double_well_angular_velocity(lam)
    assert abs(mean - exact) < 4 * se + 0.005, (lam, mean, exact, se)
    if lam > 0:
        assert exact > 20 * se  # resolved
    # the landscape estimator on the recorded path agrees (coarser dt, same quantity)
    coarse = landscape.angular_momentum(paths[lam].samples, dt=DT * RECORD)
    assert abs(float(coarse.value[0, 1]) - exact) < 4 * float(coarse.standard_error[0, 1]) + 0.03


def test_large_strength_circulates_around_the_saddle(paths):
    rate = {lam: toys.winding_rate(paths[lam].samples, dt=DT * RECORD) for lam in paths}
    mean0, se0 = mean_and_se(rate[0.0])
    assert abs(mean0) < 4 * se0  # no net rotation at equilibrium
    assert float(jnp.mean(rate[1.5] > 0)) > 0.95  # almost every chain winds counter-clockwise
    assert float(jnp.mean(rate[1.5])) > 2 * float(jnp.mean(rate[0.5])) > 0


def test_simulate_sde_ornstein_uhlenbeck_with_anisotropic_noise():
    # dX = -F X dt + sqrt(2 T D) dB: stationary covariance T C, angular momentum 2 T Q
    F = jnp.array([[2.0, 1.0], [1.0, 1.0]])
    D = jnp.diag(jnp.array([1.0, 0.1]))
    path = toys.simulate_sde(
        lambda x: -F @ x,
        jnp.zeros((500, 2)),
        jax.random.key(3),
        dt=2e-3,
        num_steps=5000,
        burn_in=1000,
        temperature=0.5,
        diffusion=D,
        record_every=10,
    )
    p = landscape.linearized_potential(F, D)
    est = landscape.iterate_covariance(path.samples, center=jnp.zeros(2))
    diff = np.abs(np.asarray(est.covariance - 0.5 * p.covariance))
    assert np.all(diff < 4 * np.asarray(est.standard_error) + 2e-3)
    mean, se = mean_and_se(path.angular_momentum[:, 0, 1])
    assert abs(mean - 2 * 0.5 * float(p.antisymmetric[0, 1])) < 4 * se + 5e-3  # -0.3


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="`strength`"):
        toys.double_well_critical_points(-1.0)
    with pytest.raises(ValueError, match="`x`"):
        toys.double_well_potential(jnp.ones(3))
    with pytest.raises(ValueError, match="`x0`"):
        toys.simulate_sde(lambda x: -x, jnp.ones(2), jax.random.key(0), dt=0.1, num_steps=1)
    with pytest.raises(ValueError, match="`num_steps`"):
        toys.simulate_sde(
            lambda x: -x, jnp.ones((2, 2)), jax.random.key(0), dt=0.1, num_steps=5, record_every=2
        )
    with pytest.raises(ValueError, match="`diffusion`"):
        toys.simulate_sde(
            lambda x: -x,
            jnp.ones((2, 2)),
            jax.random.key(0),
            dt=0.1,
            num_steps=1,
            diffusion=-jnp.eye(2),
        )
    with pytest.raises(ValueError, match="`path`"):
        toys.winding_rate(jnp.ones((3, 2)), dt=0.1)
