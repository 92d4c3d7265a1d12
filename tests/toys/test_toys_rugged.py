"""Rugged 1-D/2-D landscapes: exact smoothings (thesis Ch. 4, Fig. 4.1 analogue) and HJ demos."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entropix import toys

# Closed-form comparisons need the precision of 64-bit floats.
pytestmark = pytest.mark.usefixtures("x64")

# quadrature grid wider than the region of interest [−6, 6] (avoids boundary truncation)
Y = np.linspace(-10.0, 10.0, 2001)
X = np.linspace(-6.0, 6.0, 1201)


def _minima(values):
    return toys.grid_local_minima(np.asarray(values), X)


def test_rugged_function_facts():
    f = toys.rugged_1d(jnp.asarray(X))
    mins = _minima(f)
    assert len(mins) == 10
    assert float(X[np.argmin(f)]) == pytest.approx(-0.415, abs=0.01)
    # separable 2-D version
    assert float(toys.rugged(jnp.array([-0.415, -0.415]))) == pytest.approx(
        2 * float(toys.rugged_1d(-0.415))
    )
    assert float(toys.rugged_bowl(jnp.zeros(10))) == 0.0


@pytest.mark.parametrize(
    ("beta", "gamma_thesis", "count", "argmin"),
    [
        (1.0, 0.1, 6, -0.455),
        (1.0, 0.3, 3, -0.465),
        (1.0, 1.0, 1, -0.19),
        (1.0, 3.0, 1, 0.02),
        (5.0, 3.0, 1, -0.385),
    ],
)
def test_viscous_smoothing_removes_minima_as_coupling_decreases(beta, gamma_thesis, count, argmin):
    """Viscous smoothing: 10 → 6 → 3 → 1 minima (β = 1) for couplings 10, 3.3, 1, 0.33."""
    fg = toys.grid_local_entropy(
        toys.rugged_1d(jnp.asarray(Y)), Y, 1.0 / gamma_thesis, beta, points=X
    )
    assert len(_minima(fg)) == count
    assert float(X[np.argmin(fg)]) == pytest.approx(argmin, abs=0.011)


def test_hj_preserves_global_minimizer_and_value():
    """Hopf–Lax keeps the global minimizer (thesis Remark 4.16): minima 10 → 9 → 6 → 2 at −0.415."""
    f = toys.rugged_1d(jnp.asarray(X))
    for t, count in [(0.3, 9), (1.0, 6), (3.0, 2)]:
        u = toys.grid_moreau_envelope(f, X, 1.0 / t)
        assert len(_minima(u)) == count
        assert float(X[np.argmin(u)]) == float(X[np.argmin(f)])
        assert float(jnp.min(u)) == pytest.approx(float(jnp.min(f)), abs=1e-12)
        assert bool(jnp.all(u <= f + 1e-12))
        # the proximal point iteration started at the global minimizer stays there
        x_star = X[np.argmin(f)]
        assert float(toys.grid_prox(f, X, 1.0 / t, points=jnp.array([x_star]))[0]) == x_star


def test_viscous_gradient_flow_ends_at_grid_minima():
    """Gradient descent with the exact ∇f_γ = γ_c (x − ⟨y⟩) reaches exactly the grid minima."""
    fy = toys.rugged_1d(jnp.asarray(Y))
    for gamma_thesis in (0.3, 1.0):
        coupling = 1.0 / gamma_thesis
        fg = toys.grid_local_entropy(fy, Y, coupling, 1.0, points=X)
        grid_mins = _minima(fg)

        @jax.jit
        def flow(x0, coupling=coupling):
            def body(_, x):
                # step 1/(2γ_c) on ∇f_γ (its curvature is below γ_c, thesis Lemma 4.17):
                # x ← (x + ⟨y⟩)/2
                return 0.5 * (x + toys.grid_local_mean(fy, Y, coupling, points=x))

            return jax.lax.fori_loop(0, 400, body, x0)

        ends = np.asarray(flow(jnp.linspace(-5.5, 5.5, 45)))
        found = np.unique(np.round(ends, 2))
        assert len(found) == len(grid_mins)
        np.testing.assert_allclose(found, grid_mins, atol=0.011)


def test_t5_huber():
    y = jnp.linspace(-6.0, 6.0, 6001)
    t = 0.7
    pt = jnp.array([1.5, 0.3])
    u = toys.grid_moreau_envelope(jnp.abs(y), y, 1.0 / t, points=pt)
    np.testing.assert_allclose(u, [1.5 - t / 2, 0.3**2 / (2 * t)], atol=1e-6)
    for beta, value in [(1.0, 1.2373), (10.0, 1.15008), (100.0, 1.15)]:
        fg = toys.grid_local_entropy(jnp.abs(y), y, 1.0 / t, beta, points=pt[:1])
        assert float(fg[0]) == pytest.approx(value, abs=6e-5)
    # soft thresholding
    p = toys.grid_prox(jnp.abs(y), y, 1.0 / t, points=jnp.array([1.5, 0.3, -2.0]))
    np.testing.assert_allclose(p, [0.8, 0.0, -1.3], atol=1e-9)


def test_t7_fixed_point():
    def f(y):
        return -jnp.cos(y) + 0.15 * y**2

    p = toys.moreau_gradient_fixed_point(jax.grad(f), jnp.asarray(1.0), 2.0, num_steps=400)
    assert float(p) == pytest.approx(0.76452, abs=1e-5)
    # = γ_c (x − prox(x)) on a fine grid
    y = jnp.linspace(-4.0, 4.0, 80001)
    prox = toys.grid_prox(f(y), y, 2.0, points=jnp.array([1.0]))
    assert float(2.0 * (1.0 - prox[0])) == pytest.approx(0.76452, abs=2e-4)
    # quadratic: p = a x / (1 + a t)
    pq = toys.moreau_gradient_fixed_point(lambda y: 3.0 * y, jnp.asarray(2.0), 4.0)
    assert float(pq) == pytest.approx(3.0 * 2.0 / (1 + 3.0 / 4.0), rel=1e-10)


def test_t8_semiconcavity_bound():
    """max u_xx ≤ 1/(C⁻¹ + t): 7.56, 2.48, 0.280 (β=1), 10.14, 4.00, 0.951 (β=10)."""
    c = 21.49
    h = X[1] - X[0]
    fy = toys.rugged_1d(jnp.asarray(Y))
    expected = {1.0: (7.56, 2.48, 0.280), 10.0: (10.14, 4.00, 0.951)}
    for beta, values in expected.items():
        for t, value in zip((0.05, 0.2, 1.0), values, strict=True):
            u = np.asarray(toys.grid_local_entropy(fy, Y, 1.0 / t, beta, points=X))
            uxx = (u[2:] - 2 * u[1:-1] + u[:-2]) / h**2
            assert uxx.max() == pytest.approx(value, rel=1e-2)
            assert uxx.max() <= 1.0 / (1.0 / c + t)
    # non-viscous (Hopf–Lax on a fine grid, second differences on a coarse one)
    yf = np.linspace(-8.0, 8.0, 16001)
    xc = np.linspace(-6.0, 6.0, 601)
    hc = xc[1] - xc[0]
    for t, bound in [(0.05, 10.36), (0.2, 4.06), (1.0, 0.956)]:
        u = np.asarray(
            toys.grid_moreau_envelope(toys.rugged_1d(jnp.asarray(yf)), yf, 1 / t, points=xc)
        )
        uxx = (u[2:] - 2 * u[1:-1] + u[:-2]) / hc**2
        assert uxx.max() <= bound * 1.005
        assert uxx.max() >= bound * 0.97


def test_grid_2d_is_separable():
    g = np.linspace(-4.0, 4.0, 81)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    f2 = toys.rugged(jnp.stack([xx, yy], -1))
    f1 = toys.rugged_1d(jnp.asarray(g))
    for coupling, beta in [(1.0, 1.0), (3.0, 5.0)]:
        fg2 = toys.grid_local_entropy(f2, [g, g], coupling, beta)
        fg1 = toys.grid_local_entropy(f1, g, coupling, beta)
        np.testing.assert_allclose(fg2, fg1[:, None] + fg1[None, :], atol=1e-10)
    u2 = toys.grid_moreau_envelope(f2, [g, g], 1.0)
    u1 = toys.grid_moreau_envelope(f1, g, 1.0)
    np.testing.assert_allclose(u2, u1[:, None] + u1[None, :], atol=1e-12)


def test_grid_validation():
    with pytest.raises(ValueError, match="coupling"):
        toys.grid_local_entropy(jnp.zeros(5), jnp.arange(5.0), 0.0)
    with pytest.raises(ValueError, match="grid"):
        toys.grid_moreau_envelope(jnp.zeros((5, 5)), jnp.arange(5.0), 1.0)


def test_gradient_identity_double_well():
    """Thesis eq. 3.10: d/dx of the quadrature f_γ equals γ_c (x − ⟨y⟩) for any f, any β."""
    y = jnp.linspace(-8.0, 8.0, 3201)
    fv = (y**2 - 1) ** 2 / 4 + 0.3 * y
    coupling = 2.0  # thesis γ = 0.5
    x = jnp.array([-1.2, 0.1, 0.9])
    h = 1e-4
    for beta in (1.0, 3.0):
        fd = (
            toys.grid_local_entropy(fv, y, coupling, beta, points=x + h)
            - toys.grid_local_entropy(fv, y, coupling, beta, points=x - h)
        ) / (2 * h)
        ident = coupling * (x - toys.grid_local_mean(fv, y, coupling, beta, points=x))
        np.testing.assert_allclose(fd, ident, atol=1e-7)
        if beta == 1.0:
            np.testing.assert_allclose(ident, [-0.388765, 0.293542, 0.514496], atol=1e-6)
