"""Gaussian-mixture landscapes: exact local entropy and wide vs sharp wells (thesis Fig. 3.2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entropix import toys

# Closed-form comparisons need the precision of 64-bit floats.
pytestmark = pytest.mark.usefixtures("x64")


def _mixture_2d():
    return toys.GaussianMixture(
        weights=np.array([0.2, 0.5, 0.3]),
        means=np.array([[1.0, 0.5], [-1.0, -0.5], [0.5, -1.5]]),
        scales=np.array([0.3, 0.8, 0.5]),
    )


@pytest.mark.parametrize("beta", [1.0, 3.0])
def test_t6_closed_forms_match_1d_quadrature(beta):
    mix = toys.wide_vs_sharp_mixture()
    coupling = 2.5
    y = jnp.linspace(-8.0, 8.0, 1601)
    pts = jnp.array([-2.5, -1.0, 0.0, 1.7, 2.0, 3.0])
    fv = jax.vmap(lambda v: toys.mixture_loss(v[None], mix, beta))(y)
    fg = jax.vmap(lambda v: toys.mixture_local_entropy(v[None], mix, coupling, beta))(pts)
    np.testing.assert_allclose(
        toys.grid_local_entropy(fv, y, coupling, beta, points=pts), fg, atol=1e-8
    )
    mean = jax.vmap(lambda v: toys.mixture_local_mean(v[None], mix, coupling, beta)[0])(pts)
    np.testing.assert_allclose(
        toys.grid_local_mean(fv, y, coupling, beta, points=pts), mean, atol=1e-8
    )


def test_t6_gradient_identity_and_2d_quadrature():
    mix = _mixture_2d()
    coupling, beta = 1.3, 2.0
    x = jnp.array([0.3, -0.4])
    grad = toys.mixture_local_entropy_grad(x, mix, coupling, beta)
    auto = jax.grad(toys.mixture_local_entropy)(x, mix, coupling, beta)
    np.testing.assert_allclose(grad, auto, atol=1e-12)
    # 2-D quadrature (the grid transform is applied axis by axis)
    g = jnp.linspace(-6.0, 6.0, 121)
    xx, yy = jnp.meshgrid(g, g, indexing="ij")
    pts = jnp.stack([xx, yy], -1)
    fv = jax.vmap(jax.vmap(lambda v: toys.mixture_loss(v, mix, beta)))(pts)
    fg = toys.grid_local_entropy(fv, [g, g], coupling, beta)
    i, j = 60 + 3, 60 - 4  # (0.3, -0.4)
    exact = toys.mixture_local_entropy(jnp.array([g[i], g[j]]), mix, coupling, beta)
    assert float(fg[i, j]) == pytest.approx(float(exact), abs=1e-7)


def test_t6_semigroup():
    mix = _mixture_2d()
    beta, c1, c2 = 1.5, 2.0, 3.0
    smoothed = mix._replace(scales=jnp.sqrt(mix.scales**2 + 1.0 / (beta * c1)))
    c = 1.0 / (1.0 / c1 + 1.0 / c2)
    for x in [jnp.array([0.0, 0.0]), jnp.array([1.5, -2.0])]:
        lhs = toys.mixture_local_entropy(x, smoothed, c2, beta)
        assert float(lhs) == pytest.approx(float(toys.mixture_local_entropy(x, mix, c, beta)))


def test_wide_vs_sharp_crossover_value_and_switch():
    # default wide-vs-sharp mixture: crossover at γ_thesis/β ≈ 0.053, i.e. coupling·β ≈ 18.8
    t_star = (0.09 * 0.25 - 0.0025 * 0.49) / (0.49 - 0.09)
    for beta in (1.0, 4.0):
        c_star = toys.wide_vs_sharp_crossover(beta=beta)
        assert c_star == pytest.approx(1.0 / (beta * t_star), rel=1e-12)
        assert c_star * beta == pytest.approx(18.80, abs=0.01)
        mix = toys.wide_vs_sharp_mixture()
        y = jnp.linspace(-5.0, 5.0, 5001)
        for factor, winner in [(0.8, -2.0), (1.25, 2.0), (0.2, -2.0), (5.0, 2.0)]:
            fg = jax.vmap(
                lambda v, c=factor * c_star, b=beta, m=mix: toys.mixture_local_entropy(
                    v[None], m, c, b
                )
            )(y)
            assert float(y[jnp.argmin(fg)]) == pytest.approx(winner, abs=0.05)
    # d dimensions: (w_s/w_w)^{2/d}
    r = (0.3 / 0.7) ** (2 / 3)
    assert toys.wide_vs_sharp_crossover(dim=3) == pytest.approx((1 - r) / (r * 0.25 - 0.0025))
    assert toys.wide_vs_sharp_crossover(sharp_weight=0.7, wide_weight=0.3) == 0.0
    assert toys.wide_vs_sharp_crossover(sharp_weight=0.1, sharp_scale=0.4) == float("inf")


def test_hj_never_switches_viscous_does():
    """Moreau envelope keeps the sharp global minimum; local entropy moves to the wide well."""
    mix = toys.wide_vs_sharp_mixture()
    y = jnp.linspace(-5.0, 5.0, 4001)
    x = jnp.linspace(-4.0, 4.0, 801)
    fv = jax.vmap(lambda v: toys.mixture_loss(v[None], mix))(y)
    for coupling in [100.0, 10.0, 1.0, 0.1]:
        u = toys.grid_moreau_envelope(fv, y, coupling, points=x)
        assert float(x[jnp.argmin(u)]) == pytest.approx(2.0, abs=0.01)
        assert float(jnp.min(u)) == pytest.approx(float(jnp.min(fv)), abs=1e-6)


def test_two_bumps_landscape_values():
    """Wide well at −2, sharp deep well at 2 (β = 1).

    f_γ(−2) − f_γ(2) = +0.299, −0.175, −0.595, −0.601 for γ_thesis = 10⁻³, 10⁻², 0.1, 1.
    """
    y = jnp.linspace(-7.0, 7.0, 2801)
    fb = -jnp.exp(-((y + 2) ** 2) / 2) - 1.5 * jnp.exp(-((y - 2) ** 2) / (2 * 0.05**2))
    pts = jnp.array([-2.0, 2.0])
    for gamma_thesis, diff in [(1e-3, 0.299), (1e-2, -0.175), (0.1, -0.595), (1.0, -0.601)]:
        fg = toys.grid_local_entropy(fb, y, 1.0 / gamma_thesis, 1.0, points=pts)
        assert float(fg[0] - fg[1]) == pytest.approx(diff, abs=1.5e-3)
        # at β = 10 energy beats entropy: the sharp minimum wins for all these γ
        fg10 = toys.grid_local_entropy(fb, y, 1.0 / gamma_thesis, 10.0, points=pts)
        assert float(fg10[0] - fg10[1]) > 0.2
