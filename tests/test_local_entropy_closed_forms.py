"""Entropy-SGD against exact closed forms (quadratics, SGLD law, Gaussian mixtures)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import entropix


def run_outer_steps(opt, grad, params, num_outer, num_inner):
    state = opt.init(params)
    update = jax.jit(opt.update)
    for _ in range(num_outer * num_inner):
        updates, state = update(grad(params), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def one_outer_step_formula(a, m, x, coupling, sgld_lr, alpha, num_inner):
    """Noise-free inner loop on a quadratic, unrolled.

    μ_L − y* = [(1−α)^L + α Σ_j (1−α)^{L−j} M^j](x − y*).
    """
    a, m, x = (np.atleast_2d(a), np.atleast_1d(m), np.atleast_1d(x))
    eye = np.eye(len(x))
    y_star = np.linalg.solve(a + coupling * eye, a @ m + coupling * x)
    contraction = eye - sgld_lr * (a + coupling * eye)
    factor = (1 - alpha) ** num_inner * eye
    for j in range(1, num_inner + 1):
        factor = factor + alpha * (1 - alpha) ** (num_inner - j) * np.linalg.matrix_power(
            contraction, j
        )
    return y_star + factor @ (x - y_star)


def test_scalar_one_outer_step_matches_reference_number():
    # Unrolled closed form, z_L = 1.2227827385 at a=3, m=0.7, γ_thesis=0.5 (coupling 2),
    # η_y=0.05, α_thesis=0.25, L=20, x=2.
    opt = entropix.entropy_sgd(
        1.0,
        num_inner_steps=20,
        coupling=entropix.coupling_from_variance(0.5),
        sgld_learning_rate=0.05,
        noise=0.0,
        average_weight=entropix.average_weight_from_thesis_alpha(0.25),
        momentum=0.0,
        inner_momentum=0.0,
    )
    with jax.enable_x64(True):
        params, _ = run_outer_steps(
            opt, lambda w: 3.0 * (w - 0.7), jnp.array([2.0], jnp.float64), 1, 20
        )
    np.testing.assert_allclose(params[0], 1.2227827385, rtol=1e-9)


@pytest.mark.parametrize("scaled", [True, False])
def test_matrix_quadratic_one_outer_step(scaled):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(4, 4))
    a = q @ q.T / 4 + 0.1 * np.eye(4)
    m, x = rng.normal(size=4), rng.normal(size=4)
    coupling, sgld_lr, alpha, lr, num_inner = 0.7, 0.2, 0.6, 0.5, 7
    opt = entropix.entropy_sgd(
        lr,
        num_inner_steps=num_inner,
        coupling=coupling,
        sgld_learning_rate=sgld_lr,
        noise=0.0,
        average_weight=alpha,
        momentum=0.0,
        inner_momentum=0.0,
        scale_outer_gradient=scaled,
    )
    with jax.enable_x64(True):
        params, _ = run_outer_steps(
            opt, lambda w: jnp.asarray(a) @ (w - m), jnp.asarray(x), 1, num_inner
        )
    mu = one_outer_step_formula(a, m, x, coupling, sgld_lr, alpha, num_inner)
    step = lr * (x - mu) * (1.0 if scaled else coupling)
    np.testing.assert_allclose(params, x - step, rtol=1e-10, atol=1e-12)


def test_coupling_schedule_counts_outer_steps():
    schedule = entropix.exponential_scoping(0.5, 0.5)
    a, m, sgld_lr, alpha, num_inner = 2.0, 0.3, 0.1, 0.75, 4
    opt = entropix.entropy_sgd(
        1.0,
        num_inner_steps=num_inner,
        coupling=schedule,
        sgld_learning_rate=sgld_lr,
        noise=0.0,
        average_weight=alpha,
        momentum=0.0,
        inner_momentum=0.0,
    )
    with jax.enable_x64(True):
        params, _ = run_outer_steps(
            opt, lambda w: a * (w - m), jnp.array([1.5], jnp.float64), 3, num_inner
        )
    expected = np.array([1.5])
    for t in range(3):
        expected = one_outer_step_formula(a, m, expected, 0.5 * 1.5**t, sgld_lr, alpha, num_inner)
    np.testing.assert_allclose(params, expected, rtol=1e-10)


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_sgld_chain_stationary_mean_and_variance(distribution):
    # Exact AR(1) stationary law of the inner chain on a quadratic (coupling 2,
    # T = ε²/2 = 1/β = 0.5 ⇒ ε = 1): mean 1.22, var 0.11429.
    # The AR(1) chain's stationary mean and variance depend only on the noise's first two
    # moments, so ±1 (Rademacher) noise must give the same exact values.
    a, m, coupling, step, x = 3.0, 0.7, 2.0, 0.05, 2.0
    num_chains = 20_000
    anchor = jnp.full((num_chains,), x)
    out = entropix.sgld_chain(
        lambda w, i: a * (w - m),
        anchor,
        num_steps=300,
        coupling=coupling,
        sgld_learning_rate=step,
        noise=1.0,
        noise_distribution=distribution,
        key=3,
        burn_in=100,
    )
    k = a + coupling
    exact_mean = (a * m + coupling * x) / k
    exact_var = step / (1 - (1 - step * k) ** 2)
    np.testing.assert_allclose(exact_mean, 1.22, rtol=1e-12)
    np.testing.assert_allclose(exact_var, 0.1142857, rtol=1e-6)
    walkers = np.asarray(out.walker)
    var_se = exact_var * np.sqrt(2 / num_chains)
    assert abs(walkers.var() - exact_var) < 5 * var_se
    assert abs(walkers.mean() - exact_mean) < 5 * np.sqrt(exact_var / num_chains)
    # The time average over 200 correlated steps is much tighter than one sample.
    assert abs(float(out.mean.mean()) - exact_mean) < 5 * np.sqrt(exact_var / num_chains)


def mixture_gradient_exact(x, weights, centers, widths, coupling, beta):
    """Exact local-entropy gradient of a Gaussian mixture (γ_thesis = 1/coupling)."""
    variance = 1.0 / coupling
    total = widths**2 + variance / beta
    log_pi = np.log(weights) - 0.5 * np.log(total) - (x - centers) ** 2 / (2 * total)
    pi = np.exp(log_pi - log_pi.max())
    pi /= pi.sum()
    means = (centers / widths**2 + x * beta / variance) / (1 / widths**2 + beta / variance)
    mean = float(pi @ means)
    return coupling * (x - mean), mean


def test_local_entropy_gradient_of_gaussian_mixture():
    weights = np.array([0.4, 0.6])
    centers = np.array([-1.0, 1.5])
    widths = np.array([0.5, 0.8])
    beta, coupling, x = 1.0, 1.0, 0.3

    def mixture_grad(y):  # ∇f for f = −β⁻¹ log Σ w_i N(y; μ_i, s_i²)
        logits = jnp.log(weights) - jnp.log(widths) - (y[:, None] - centers) ** 2 / (2 * widths**2)
        resp = jax.nn.softmax(logits, axis=-1)
        return jnp.sum(resp * (y[:, None] - centers) / widths**2, axis=-1) / beta

    num_chains = 4000
    out = entropix.sgld_chain(
        lambda w, i: mixture_grad(w),
        jnp.full((num_chains,), x),
        num_steps=2000,
        coupling=coupling,
        sgld_learning_rate=0.005,
        noise=np.sqrt(2.0 / beta),  # T = ε²/2 = 1/β
        key=11,
        burn_in=300,
    )
    exact_grad, exact_mean = mixture_gradient_exact(x, weights, centers, widths, coupling, beta)
    estimate = coupling * (x - float(out.mean.mean()))
    # Chains are independent; each time average has std below the stationary std (≈1).
    standard_error = 1.0 / np.sqrt(num_chains)
    assert abs(estimate - exact_grad) < 4 * coupling * standard_error + 0.01 * abs(exact_grad)
    assert abs(float(out.mean.mean()) - exact_mean) < 4 * standard_error + 0.01


def test_hj_large_inner_loop_is_proximal_point():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(3, 3))
    a = q @ q.T / 3 + 0.2 * np.eye(3)
    m, x, coupling = rng.normal(size=3), rng.normal(size=3), 1.5
    opt = entropix.hj(1.0, num_inner_steps=400, coupling=coupling, sgld_learning_rate=0.1)
    with jax.enable_x64(True):
        params, _ = run_outer_steps(opt, lambda w: jnp.asarray(a) @ (w - m), jnp.asarray(x), 2, 400)
    expected = x
    for _ in range(2):
        expected = np.linalg.solve(a + coupling * np.eye(3), a @ m + coupling * expected)
    np.testing.assert_allclose(params, expected, rtol=1e-8)


def test_l1_noise_free_uncoupled_is_scaled_outer_optimizer():
    # L=1, ε=0, γ=0: μ = x − α η' ∇f(x), so the outer optimizer sees α η' ∇f(x).
    lr, sgld_lr, alpha = 0.3, 0.2, 0.75
    opt = entropix.entropy_sgd(
        lr,
        num_inner_steps=1,
        coupling=0.0,
        sgld_learning_rate=sgld_lr,
        noise=0.0,
        average_weight=alpha,
        momentum=0.9,
        nesterov=True,
        inner_momentum=0.0,
    )
    reference = optax.sgd(lr * alpha * sgld_lr, momentum=0.9, nesterov=True)

    def grad(w):
        return jnp.sin(w) + w**3

    params = ref_params = jnp.array([0.5, -1.0, 2.0])
    state, ref_state = opt.init(params), reference.init(ref_params)
    for _ in range(6):
        updates, state = opt.update(grad(params), state, params)
        params = optax.apply_updates(params, updates)
        ref_updates, ref_state = reference.update(grad(ref_params), ref_state)
        ref_params = optax.apply_updates(ref_params, ref_updates)
    np.testing.assert_allclose(params, ref_params, rtol=1e-5, atol=1e-6)


def test_heat_expected_gradient_of_sine():
    # Heat smoothing of sin(ωx) (thesis Example 4.13):
    # E[∇f(x + ε)] = ω cos(ωx) exp(−ω²σ²/2), σ² = 1/coupling.
    omega, coupling, x, num_inner, dim = 2.0, 4.0, 0.4, 8, 20_000
    opt = entropix.heat(1.0, num_inner_steps=num_inner, coupling=coupling, momentum=0.0, key=5)
    params = jnp.full((dim,), x)
    state = opt.init(params)
    update = jax.jit(opt.update)
    # First gradient after init is taken unperturbed; start from the second outer step.
    walker = params
    for _ in range(num_inner):
        updates, state = update(omega * jnp.cos(omega * walker), state, walker)
        walker = optax.apply_updates(walker, updates)
    anchor = entropix.anchor_params(state)
    for _ in range(num_inner):
        updates, state = update(omega * jnp.cos(omega * walker), state, walker)
        walker = optax.apply_updates(walker, updates)
    step = anchor - entropix.anchor_params(state)  # = mean gradient (lr 1, no momentum)
    expected = omega * np.cos(omega * np.asarray(anchor)) * np.exp(-(omega**2) / coupling / 2)
    per_sample_std = omega * np.sqrt(0.5)  # |ω cos| ≤ ω; loose bound on the std
    standard_error = per_sample_std / np.sqrt(num_inner * dim)
    np.testing.assert_allclose(float(jnp.mean(step - expected)), 0.0, atol=4 * standard_error)


@pytest.mark.parametrize("compiled", [False, True])
def test_heat_outer_step_of_a_constant_gradient_is_that_gradient(compiled):
    # HEAT averages the L gradients: with a constant gradient c, lr 1 and no momentum one outer
    # step moves the anchor by exactly −c, whatever L and the perturbation scale.
    num_inner, c = 4, jnp.array([0.5, -2.0, 3.0])
    opt = entropix.heat(
        1.0, num_inner_steps=num_inner, coupling=10.0, momentum=0.0, compiled=compiled
    )
    params = jnp.array([1.0, 2.0, 3.0])
    state = opt.init(params)
    if compiled:
        updates, state = opt.update(c, state, params, grad_fn=lambda p, i: c)
        params = optax.apply_updates(params, updates)
    else:
        for _ in range(num_inner):
            updates, state = opt.update(c, state, params)
            params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(entropix.anchor_params(state), jnp.array([0.5, 4.0, 0.0]), atol=1e-6)


def test_heat_perturbations_are_independent_with_variance_one_over_coupling():
    # In the step form the params after each update are anchor + ε_i, ε_i ~ N(0, I/γ), a fresh
    # draw at every update (also across an outer step). With a zero gradient the anchor stays
    # put, so the perturbations are read off directly: per-draw sample std within 5 % of γ^-1/2
    # (4000 coordinates: 5 % is ~4.5 standard errors), correlations of successive draws ~ 0.
    coupling, num_inner, dim = 25.0, 3, 4000
    opt = entropix.heat(1.0, num_inner_steps=num_inner, coupling=coupling, momentum=0.0, key=7)
    params = jnp.zeros(dim)
    state = opt.init(params)
    update = jax.jit(opt.update)
    draws = []
    for _ in range(2 * num_inner):
        updates, state = update(jnp.zeros(dim), state, params)
        params = optax.apply_updates(params, updates)
        np.testing.assert_array_equal(entropix.anchor_params(state), np.zeros(dim))
        draws.append(np.asarray(params))
    np.testing.assert_allclose(np.std(draws, axis=1) * np.sqrt(coupling), 1.0, atol=0.05)
    np.testing.assert_allclose(np.mean(draws, axis=1), 0.0, atol=4 / np.sqrt(coupling * dim))
    correlations = np.corrcoef(np.stack(draws))[np.triu_indices(len(draws), k=1)]
    np.testing.assert_array_less(np.abs(correlations), 0.07)


@pytest.mark.parametrize("average_weight", [None, 0.25])
def test_sgld_chain_noise_free_matches_the_unrolled_recursion(average_weight):
    # Noise-free chain on f = a/2 (w − m)²: w_k = w_{k−1} − η (a (w_{k−1} − m) + γ (w_{k−1} − x)).
    # The mean is uniform over the steps k ≥ burn_in (average_weight None), or the exponential
    # average μ_k = μ_{k−1} + α (w_k − μ_{k−1}) from μ_0 = x.
    a, m, coupling, step, x, num_steps = 3.0, 0.7, 2.0, 0.05, 2.0, 12
    burn_in = 4 if average_weight is None else 0
    out = entropix.sgld_chain(
        lambda w, i: a * (w - m),
        jnp.array([x]),
        num_steps=num_steps,
        coupling=coupling,
        sgld_learning_rate=step,
        average_weight=average_weight,
        burn_in=burn_in,
    )
    walkers, w, mu = [], x, x
    for _ in range(num_steps):
        w = w - step * (a * (w - m) + coupling * (w - x))
        mu = mu + (average_weight or 0.0) * (w - mu)
        walkers.append(w)
    expected = np.mean(walkers[burn_in:]) if average_weight is None else mu
    np.testing.assert_allclose(out.walker, [walkers[-1]], rtol=1e-6)
    np.testing.assert_allclose(out.mean, [expected], rtol=1e-6)


def test_sgld_chain_needs_a_step_after_burn_in():
    with pytest.raises(ValueError, match="burn_in"):
        entropix.sgld_chain(lambda w, i: w, jnp.zeros(1), num_steps=5, coupling=1.0, burn_in=5)
