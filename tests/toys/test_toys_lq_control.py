"""LQ instance of thesis Theorem 4.11 (controlled SGD beats SGD)."""

import jax
import jax.numpy as jnp
import pytest

from entropix import toys

# Closed-form comparisons need the precision of 64-bit floats.
pytestmark = pytest.mark.usefixtures("x64")


def test_reference_numbers():
    prob = toys.LQProblem()  # a=1, q=2, β=4, T=1, x0=1.5
    u0 = float(toys.lq_value(prob.x0, 0.0, prob))
    v0 = float(toys.lq_sgd_value(prob.x0, 0.0, prob))
    ev, cost = (float(c) for c in toys.lq_csgd_costs(prob))
    assert u0 == pytest.approx(0.241188, abs=1e-6)
    assert v0 == pytest.approx(0.412587, abs=1e-6)
    assert ev == pytest.approx(0.145541, abs=1e-6)
    assert cost == pytest.approx(0.095647, abs=1e-6)
    assert u0 == pytest.approx(ev + cost, abs=1e-9)
    # Theorem 4.11: E V(X_csgd) ≤ E V(X_sgd) − ½ E ∫|α|²  (0.145541 ≤ 0.316941)
    assert ev <= v0 - cost
    assert v0 - cost == pytest.approx(0.316941, abs=1e-6)


def test_riccati_and_value_solve_their_odes():
    prob = toys.LQProblem(a=-0.5, q=1.3, beta=2.0, horizon=1.5, x0=0.7)
    s = jnp.linspace(0.1, 1.4, 7)
    p = toys.lq_riccati(s, prob)
    dp = jax.vmap(jax.grad(lambda t: toys.lq_riccati(t, prob)))(s)
    assert jnp.allclose(dp, 2 * prob.a * p + p**2, atol=1e-9)
    assert float(toys.lq_riccati(prob.horizon, prob)) == pytest.approx(prob.q)
    # HJB: −u_t = −f'(x) u_x − ½ u_x² + (σ²/2) u_xx  (thesis eq. 4.31)
    x = 0.9
    u_t = jax.vmap(jax.grad(lambda t: toys.lq_value(x, t, prob)))(s)
    u_x = jax.vmap(jax.grad(lambda y, t: toys.lq_value(y, t, prob)), in_axes=(None, 0))(x, s)
    u_xx = p
    rhs = -prob.a * x * u_x - 0.5 * u_x**2 + 0.5 / prob.beta * u_xx
    assert jnp.allclose(-u_t, rhs, atol=1e-9)
    # a = 0 limit of the closed forms
    p0 = toys.lq_riccati(0.0, toys.LQProblem(a=0.0, q=2.0))
    assert float(p0) == pytest.approx(1.0 / (0.5 + 1.0))


def test_monte_carlo_reproduces_the_numbers():
    prob = toys.LQProblem()
    kc, ks = jax.random.split(jax.random.key(0))
    v_c, j_c = toys.lq_simulate(kc, prob, num_paths=40_000, num_steps=400)
    v_s, j_s = toys.lq_simulate(ks, prob, num_paths=40_000, num_steps=400, controlled=False)
    se = 4 * float(jnp.std(v_c)) / 200
    assert float(jnp.mean(v_c)) == pytest.approx(0.145541, abs=se + 2e-3)
    assert float(jnp.mean(j_c)) == pytest.approx(0.095647, abs=2e-3)
    assert float(jnp.mean(v_s)) == pytest.approx(0.412587, abs=4 * float(jnp.std(v_s)) / 200 + 2e-3)
    assert float(jnp.max(j_s)) == 0.0
    assert float(jnp.mean(v_c)) <= float(jnp.mean(v_s)) - float(jnp.mean(j_c))
