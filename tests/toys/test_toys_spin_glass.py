"""Spherical 3-spin glass in a field (thesis Ch. 2: eq. 2.4, Lemma 2.2, §2.4.1, Figs. 2.1–2.2)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import trapezoid  # np.trapezoid needs NumPy 2

from entropix import toys
from entropix._src import trivialize

# Closed-form comparisons need the precision of 64-bit floats.
pytestmark = pytest.mark.usefixtures("x64")


def test_gradient_matches_autodiff_and_is_tangent():
    sg = toys.make_spin_glass(jax.random.key(0), 9, field_std=0.7)
    s = toys.random_sphere_points(jax.random.key(1), 3, 9)
    auto = jax.vmap(jax.grad(toys.spin_glass_energy), in_axes=(0, None))(s, sg)
    np.testing.assert_allclose(toys.spin_glass_gradient(s, sg), auto, atol=1e-10)
    tg = toys.riemannian_gradient(s, auto)
    np.testing.assert_allclose(jnp.sum(tg * s, -1), 0.0, atol=1e-10)
    np.testing.assert_allclose(jnp.linalg.norm(s, axis=-1), 3.0, rtol=1e-12)
    # Var H(σ) = N without field: −H = N^{−1} Σ J σσσ has variance N (over J)
    couplings = np.random.default_rng(2).standard_normal((1000, 9, 9, 9))
    s0 = np.asarray(s[0])
    e = np.einsum("rijk,i,j,k->r", couplings, s0, s0, s0) / 9
    assert float(np.var(e)) == pytest.approx(9.0, rel=0.2)


def test_complexity_numbers():
    """Complexity of critical points for p = 3 (thesis Lemma 2.2; the curves of its Fig. 2.1)."""
    assert toys.complexity_e_inf(3) == pytest.approx(1.632993, abs=1e-6)
    assert toys.complexity_zero(3, 0) == pytest.approx(-1.656998, abs=1e-6)  # −E₀
    for k, zero in [(1, -1.652873), (4, -1.646999), (10, -1.642568)]:
        assert toys.complexity_zero(3, k) == pytest.approx(zero, abs=1e-6)
        assert float(toys.complexity(zero, 3, k=k)) == pytest.approx(0.0, abs=1e-5)
    e_inf = toys.complexity_e_inf(3)
    for k in (0, 1, 4, 10):
        assert float(toys.complexity(-e_inf, 3, k=k)) == pytest.approx(0.013240, abs=1e-6)
        assert float(toys.complexity(-1.60, 3, k=k)) == pytest.approx(
            0.5 * math.log(2) - 1 / 3, abs=1e-12
        )
    # I₁ closed form = its integral definition
    z = np.linspace(-1.7, -e_inf, 200001)
    integral = 2 / e_inf**2 * trapezoid(np.sqrt(np.maximum(z**2 - e_inf**2, 0)), z)
    assert float(toys.complexity_i1(-1.7)) == pytest.approx(0.0157693, abs=1e-7)
    assert float(toys.complexity_i1(-1.7)) == pytest.approx(integral, abs=1e-8)
    # total complexity: continuous at −E_∞, ½ log 2 for u > 0
    assert float(toys.complexity(-e_inf, 3)) == pytest.approx(0.5 * math.log(2) - 1 / 3)
    assert float(toys.complexity(0.5, 3)) == pytest.approx(0.5 * math.log(2))
    # critical field / order parameter of the field regimes (p = 3, J = 1)
    assert float(trivialize.critical_field(1.0, 3)) == pytest.approx(math.sqrt(3))
    assert float(trivialize.trivialization_order_parameter(3.0, 1.0, 3)) == pytest.approx(-1 / 3)


def test_distinct_minima_drop_as_field_grows():
    """thesis Fig. 2.2 claim, scaled down: N = 50, 64 GD runs from the same random starts."""
    n, runs = 50, 64
    s0 = toys.random_sphere_points(jax.random.key(1), runs, n, dtype=jnp.float32)
    pgd = jax.jit(toys.projected_gradient_descent)
    counts, cosines, energies = [], [], []
    for nu in (1.0 / n, 1.0, 3.0):
        sg = toys.make_spin_glass(
            jax.random.key(0), n, nu, field_key=jax.random.key(2), dtype=jnp.float32
        )
        sigma, _, converged = pgd(s0, sg)
        assert bool(jnp.all(converged))
        counts.append(int(toys.distinct_minima(sigma).max()) + 1)
        cosines.append(toys.mean_cosine_distance(sigma))
        no_field = sg._replace(field=jnp.zeros(n, jnp.float32))
        energies.append(np.asarray(toys.spin_glass_energy(sigma, no_field)) / n)
        if nu == 1.0 / n:  # converged points are local minima (index 0)
            index = jax.jit(jax.vmap(toys.riemannian_index, in_axes=(0, None)))(sigma[:8], sg)
            assert np.all(np.asarray(index) == 0)
    assert counts[0] > counts[1] > counts[2] == 1
    assert counts[0] >= 12
    assert cosines[0] > 0.5 and cosines[2] < 0.05
    # lowest energies found without field are close to (above) the ground state −E₀ = −1.657
    assert -1.70 < energies[0].min() < -1.55
    assert energies[2].mean() > energies[0].mean()


def test_trivialized_field_annealing_on_spin_glass():
    """Annealing the field √2 ν_c e^{−i/(2τ0)} h during GD (Trivialized-SGD on the toy)."""
    n, runs = 50, 32
    sg = toys.make_spin_glass(jax.random.key(0), n, 0.0, dtype=jnp.float32)
    s0 = toys.random_sphere_points(jax.random.key(1), runs, n, dtype=jnp.float32)
    tx = trivialize.add_trivializing_field(1.0, num_layers=3, tau0=40.0, key=jax.random.key(3))
    state = tx.init(s0[0])
    h = trivialize.get_trivializing_field(state)

    def run(s):
        def step(carry, _):
            s, st = carry
            g, st = tx.update(toys.spin_glass_gradient(s, sg), st)
            g = toys.riemannian_gradient(s, g)
            return (toys.project_to_sphere(s - 0.1 * g), st), None

        (s, _), _ = jax.lax.scan(step, (s, state), None, length=600)
        return s

    # the same fixed field for every run: all runs are steered together early on
    ends = jax.jit(jax.vmap(run))(s0)
    sigma, _, ok = toys.projected_gradient_descent(ends, sg)
    assert bool(jnp.all(ok))
    plain, _, _ = toys.projected_gradient_descent(s0, sg)
    n_annealed = int(toys.distinct_minima(sigma).max()) + 1
    n_plain = int(toys.distinct_minima(plain).max()) + 1
    assert n_annealed < n_plain
    assert h.shape == (n,)
