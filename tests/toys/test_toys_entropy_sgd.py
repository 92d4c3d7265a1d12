"""Library optimizers on the toy landscapes: the unrolled outer step and the wide-vs-sharp demo."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import entropix
from entropix import toys

# Closed-form comparisons need the precision of 64-bit floats.
pytestmark = pytest.mark.usefixtures("x64")


def _run_steps(opt, grad_fn, x0, num_steps):
    state = opt.init(x0)

    def step(carry, _):
        x, state = carry
        updates, state = opt.update(grad_fn(x), state, x)
        return (optax.apply_updates(x, updates), state), None

    (x, state), _ = jax.lax.scan(step, (x0, state), None, length=num_steps)
    return x, state


@pytest.mark.parametrize("scaled", [True, False])
@pytest.mark.parametrize("w_new", [0.75, 1.0])
def test_entropy_sgd_outer_step_matches_unrolled_closed_form(scaled, w_new):
    """Noise-free, full-batch Entropy-SGD on a quadratic = toys.entropy_sgd_quadratic_step."""
    a = np.array([[3.0, 0.5], [0.5, 1.0]])
    m = np.array([0.7, -0.3])
    x = jnp.array([2.0, 1.0])
    kw = dict(coupling=2.0, sgld_learning_rate=0.05, num_inner_steps=20, average_weight=w_new)
    opt = entropix.entropy_sgd(
        0.5, noise=0.0, momentum=0.0, inner_momentum=0.0, scale_outer_gradient=scaled, **kw
    )
    _, state = _run_steps(opt, lambda y: a @ (y - m), x, 20)
    expected, _ = toys.entropy_sgd_quadratic_step(
        x, a, m, learning_rate=0.5, scale_outer_gradient=scaled, **kw
    )
    np.testing.assert_allclose(entropix.anchor_params(state), expected, rtol=1e-10, atol=1e-12)


def test_scalar_reference_value_and_hj_proximal_point():
    # thesis numbers: z_L = 1.2227827385 (ours: coupling 2, average_weight 0.75)
    opt = entropix.entropy_sgd(
        1.0,
        num_inner_steps=20,
        coupling=2.0,
        sgld_learning_rate=0.05,
        noise=0.0,
        momentum=0.0,
        inner_momentum=0.0,
    )
    _, state = _run_steps(opt, lambda y: 3.0 * (y - 0.7), jnp.array([2.0]), 20)
    assert float(entropix.anchor_params(state)[0]) == pytest.approx(1.2227827385, abs=1e-10)
    # HJ variant: converged inner loop, η = 1 ⇒ proximal point, contraction 1/(1 + a/γ_c)
    hj = entropix.hj(1.0, num_inner_steps=400, coupling=2.0, sgld_learning_rate=0.1)
    _, state = _run_steps(hj, lambda y: 3.0 * (y - 0.7), jnp.array([2.0]), 400 * 3)
    expected = 0.7 + (2.0 - 0.7) / (1 + 3.0 / 2.0) ** 3
    assert float(entropix.anchor_params(state)[0]) == pytest.approx(expected, abs=1e-10)


def test_entropy_sgd_prefers_the_wide_well_below_the_predicted_crossover():
    """Demonstration: Entropy-SGD ends in the wide well where GD ends in the sharp one.

    A sharp deep well (weight 0.2, width 0.1) on the flank of a wide one (weight 0.8, width 1).
    The exact local entropy (β = 1) prefers the wide well for couplings below
    ``mixture_crossover_coupling`` (≈ 3.97). Entropy-SGD at temperature 1 (ε = √2), started
    where gradient descent falls into the sharp well, ends (quenched by GD) in the wide well for
    couplings γ*/4 and γ*/3 and in the sharp one for 2.5 γ* and 5 γ*, in 16 seeded runs each.
    (Near γ* the outcome is random; for *separated* wells the sharp local minimum of f_γ
    survives far below the crossover and traps any local dynamics started in its basin.)
    """
    mix = toys.wide_vs_sharp_mixture(
        sharp_weight=0.2,
        sharp_scale=0.1,
        sharp_center=1.5,
        wide_weight=0.8,
        wide_scale=1.0,
        wide_center=0.0,
        dtype=jnp.float32,
    )
    grad = jax.grad(lambda w: toys.mixture_loss(w, mix))
    c_star = toys.mixture_crossover_coupling(mix)
    assert c_star == pytest.approx(3.97, abs=0.02)

    def quench(x):  # gradient descent on f: which well of f is x in?
        return jax.lax.fori_loop(0, 2000, lambda i, y: y - 0.005 * grad(y), x)

    x0 = jnp.array([3.0], jnp.float32)
    assert float(quench(x0)[0]) == pytest.approx(1.5, abs=0.01)  # GD: sharp well

    def run(coupling, key):
        opt = entropix.entropy_sgd(
            0.1,
            num_inner_steps=100,
            coupling=coupling,
            sgld_learning_rate=0.005,
            noise=float(np.sqrt(2.0)),
            average_weight=0.75,
            momentum=0.0,
            inner_momentum=0.0,
            key=key,
        )
        _, state = _run_steps(opt, grad, x0, 100 * 400)
        return quench(entropix.anchor_params(state))[0]

    couplings = jnp.array([0.25, 1.0 / 3.0, 2.5, 5.0], jnp.float32) * c_star
    keys = jax.random.split(jax.random.key(0), 16)
    ends = jax.jit(jax.vmap(jax.vmap(run, in_axes=(None, 0)), in_axes=(0, None)))(couplings, keys)
    in_wide = np.abs(np.asarray(ends)) < 0.05
    in_sharp = np.abs(np.asarray(ends) - 1.5) < 0.05
    assert np.all(in_wide | in_sharp)
    assert in_wide[0].sum() >= 15 and in_wide[1].sum() >= 15
    assert in_sharp[2].sum() >= 15 and in_sharp[3].sum() >= 15
