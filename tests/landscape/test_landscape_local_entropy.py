"""Local entropy: value by thermodynamic integration and gradient by the SGLD chain, vs exact forms.

Conventions: coupling γ (the thesis' γ is 1/coupling), temperature T = ε²/2, normalized local
entropy f_γ(x) = −T log[(γ/2πT)^{d/2} ∫ exp(−(f(x') + γ/2 |x − x'|²)/T) dx'].
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp

from entropix import landscape

MUS = np.array([[-1.0, 0.0], [1.5, 0.5]])
SCALES = np.array([0.5, 1.0])
WEIGHTS = np.array([0.4, 0.6])


def _log_mixture(y, extra_variance):
    var = jnp.asarray(SCALES) ** 2 + extra_variance
    sq = jnp.sum((y - jnp.asarray(MUS)) ** 2, axis=-1)
    log_n = -0.5 * sq / var - 0.5 * y.shape[-1] * jnp.log(2 * jnp.pi * var)
    return logsumexp(log_n + jnp.log(jnp.asarray(WEIGHTS)))


def _mixture_case(temperature):
    """Gaussian mixture e^{−f/T} = Σ w_i N(y; μ_i, s_i² I).

    Gaussian smoothing (thesis eq. 4.11) keeps it a mixture:
    f_γ(x) = −T log Σ w_i N(x; μ_i, (s_i² + T/γ) I).
    """

    def loss_fn(params, batch):
        del batch
        return -temperature * _log_mixture(params["x"], 0.0)

    def exact_value(x, coupling):
        return -temperature * _log_mixture(x, temperature / coupling)

    def exact_gradient(x, coupling):
        # γ (x − ⟨x'⟩), ⟨x'⟩ = Σ π_i m_i (entropix.toys.mixtures, γ_thesis = 1/coupling, β = 1/T).
        var = SCALES**2 + temperature / coupling
        log_pi = np.log(WEIGHTS) - 0.5 * np.sum((x - MUS) ** 2, -1) / var - np.log(2 * np.pi * var)
        pi = np.exp(log_pi - log_pi.max())
        pi /= pi.sum()
        prec = 1 / SCALES**2 + coupling / temperature
        m = (MUS / SCALES[:, None] ** 2 + x * coupling / temperature) / prec[:, None]
        return coupling * (x - pi @ m)

    return loss_fn, exact_value, exact_gradient


def test_gaussian_mixture_exact_gradient_matches_autodiff(x64):
    _loss_fn, exact_value, exact_gradient = _mixture_case(1.0)
    x = np.array([0.3, 0.2])
    np.testing.assert_allclose(
        exact_gradient(x, 1.0), jax.grad(exact_value)(jnp.asarray(x), 1.0), rtol=1e-10
    )


def test_local_entropy_value_of_gaussian_mixture(x64):
    temperature, coupling = 1.0, 1.0
    loss_fn, exact_value, _ = _mixture_case(temperature)
    x = jnp.array([0.3, 0.2])
    est = landscape.estimate_local_entropy(
        loss_fn,
        {"x": x},
        [0.0],
        coupling=coupling,
        noise=np.sqrt(2 * temperature),
        max_coupling=1e3,
        num_couplings=20,
        num_steps=2000,
        burn_in=200,
        num_chains=16,
        key=jax.random.key(1),
    )
    exact = float(exact_value(x, coupling))
    # The local entropy differs from the loss by much more than the error bar ...
    assert abs(float(est.loss_at_params) - exact) > 10 * float(est.stderr)
    # ... and the estimate agrees with the exact value within its Monte-Carlo error
    # (+ a small allowance for the log-γ trapezoid rule).
    assert abs(float(est.value) - exact) < 4 * float(est.stderr) + 5e-3
    assert float(est.stderr) < 0.02
    assert float(jnp.min(est.acceptance)) > 0.8
    free = -exact / temperature + np.log(2 * np.pi * temperature / coupling)  # d = 2
    assert abs(float(est.free_entropy) - free) < 4 * float(est.stderr) / temperature + 5e-3


def test_free_entropy_matches_quadratic_check_value(x64):
    # Closed form for a quadratic (thesis eq. 3.9: unnormalized, β = 1): a = 2, m = 0.5,
    # γ_s = 0.7 ⇒ f_γ(−1) = 0.634633. Ours: coupling = 1/0.7, T = 1 (noise √2), and the
    # unnormalized local entropy is −T · free_entropy.
    def loss_fn(w, batch):
        return 0.5 * batch * jnp.sum((w - 0.5) ** 2)

    est = landscape.estimate_local_entropy(
        loss_fn,
        jnp.array([-1.0]),
        [2.0],
        coupling=1 / 0.7,
        noise=np.sqrt(2.0),
        max_coupling=1e3,
        num_chains=16,
        key=jax.random.key(4),
    )
    assert abs(-float(est.free_entropy) - 0.634633) < 4 * float(est.stderr) + 5e-3
    assert float(est.stderr) < 0.01


def test_local_entropy_value_of_quadratic(x64):
    # Thesis eq. 4.11 (normalized kernel) for a quadratic, γ_thesis = 1/coupling, β = 1/T:
    # f_γ(x) = ½ (x − m)ᵀ A (I + A/γ)⁻¹ (x − m) + (T/2) log det(I + A/γ)
    # (= the unnormalized eq. 3.9 form minus the constant (d T/2) log(γ/(2πT))).
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    m = np.array([0.3, -0.2])
    x = np.array([1.0, 1.0])
    coupling, temperature = 1.0, 0.5

    def loss_fn(w, batch):
        r = w - jnp.asarray(m)
        return 0.5 * r @ (batch * jnp.asarray(a)) @ r

    solve = np.linalg.solve(np.eye(2) + a / coupling, x - m)
    envelope = 0.5 * (x - m) @ a @ solve
    exact = envelope + 0.5 * temperature * np.linalg.slogdet(np.eye(2) + a / coupling)[1]
    est = landscape.estimate_local_entropy(
        loss_fn,
        jnp.asarray(x),
        [1.0],
        coupling=coupling,
        noise=np.sqrt(2 * temperature),
        max_coupling=1e3,
        num_chains=16,
        key=jax.random.key(3),
    )
    assert abs(float(est.value) - exact) < 4 * float(est.stderr) + 5e-3
    # Zero temperature: the Moreau envelope (thesis §4.2.2), deterministic.
    est0 = landscape.estimate_local_entropy(
        loss_fn,
        jnp.asarray(x),
        [1.0],
        coupling=coupling,
        noise=0.0,
        max_coupling=1e4,
        num_couplings=40,
        num_chains=2,
        num_steps=600,
        burn_in=500,
    )
    assert float(est0.stderr) == 0.0
    assert abs(float(est0.value) - envelope) < 2e-3


def test_local_entropy_gradient_of_gaussian_mixture(x64):
    temperature, coupling = 1.0, 1.0
    loss_fn, _, exact_gradient = _mixture_case(temperature)
    x = np.array([0.3, 0.2])
    est = landscape.estimate_local_entropy_gradient(
        loss_fn,
        {"x": jnp.asarray(x)},
        [0.0],
        coupling=coupling,
        num_steps=20000,
        burn_in=1000,
        sgld_learning_rate=0.01,
        noise=np.sqrt(2 * temperature),
        num_chains=32,
        key=jax.random.key(2),
    )
    exact = exact_gradient(x, coupling)
    grad = np.asarray(est.gradient["x"])
    se = np.asarray(est.stderr["x"])
    # Monte-Carlo error + O(η') bias of the unadjusted chain.
    assert np.all(np.abs(grad - exact) < 4 * se + 0.01)
    assert np.all(se < 0.03)
    # The plain gradient at x is far from the local-entropy gradient.
    plain = np.asarray(jax.grad(loss_fn)({"x": jnp.asarray(x)}, None)["x"])
    assert np.linalg.norm(plain - exact) > 0.1


def test_local_entropy_gradient_zero_noise_is_proximal(x64):
    # T = 0: ⟨x'⟩ → prox_{f/γ}(x) = (A + γI)⁻¹(Am + γx); gradient γ(x − prox) = A(I + A/γ)⁻¹(x − m).
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    m = np.array([0.3, -0.2])
    x = np.array([1.0, 1.0])
    coupling = 0.5

    def loss_fn(w, batch):
        r = w - jnp.asarray(m)
        return 0.5 * r @ (batch * jnp.asarray(a)) @ r

    est = landscape.estimate_local_entropy_gradient(
        loss_fn,
        jnp.asarray(x),
        [1.0, 1.0],
        coupling=coupling,
        num_steps=400,
        sgld_learning_rate=0.2,
        average_weight=1.0,
    )
    exact = a @ np.linalg.solve(np.eye(2) + a / coupling, x - m)
    np.testing.assert_allclose(est.gradient, exact, rtol=1e-8)
    # Cycling through identical minibatches is the same chain as the full-data gradient.
    cyc = landscape.estimate_local_entropy_gradient(
        loss_fn,
        jnp.asarray(x),
        [1.0, 1.0],
        coupling=coupling,
        num_steps=400,
        sgld_learning_rate=0.2,
        average_weight=1.0,
        stochastic=True,
    )
    np.testing.assert_allclose(cyc.gradient, est.gradient, rtol=1e-12)


def test_local_entropy_argument_validation():
    loss_fn = lambda w, b: jnp.sum(w**2)  # noqa: E731
    with pytest.raises(ValueError, match="coupling"):
        landscape.estimate_local_entropy_gradient(
            loss_fn, jnp.ones(1), [0], coupling=0.0, num_steps=3
        )
    with pytest.raises(ValueError, match="burn_in"):
        landscape.estimate_local_entropy_gradient(
            loss_fn, jnp.ones(1), [0], coupling=1.0, num_steps=3, burn_in=3
        )
    with pytest.raises(ValueError, match="max_coupling"):
        landscape.estimate_local_entropy(
            loss_fn, jnp.ones(1), [0], coupling=1.0, noise=1.0, max_coupling=0.5
        )
    with pytest.raises(ValueError, match="num_chains"):
        landscape.estimate_local_entropy(
            loss_fn, jnp.ones(1), [0], coupling=1.0, noise=1.0, num_chains=1
        )
    with pytest.raises(ValueError, match="max_coupling"):
        landscape.estimate_local_entropy(
            loss_fn, jnp.ones(1), [0], coupling=1.0, noise=1.0, max_coupling=1.0
        )
    with pytest.raises(ValueError, match="burn_in"):
        landscape.estimate_local_entropy(
            loss_fn, jnp.ones(1), [0], coupling=1.0, noise=1.0, num_steps=5, burn_in=5
        )
    with pytest.raises(ValueError, match="no parameters"):
        landscape.estimate_local_entropy(loss_fn, {}, [0], coupling=1.0, noise=1.0)


def _quadratic(a, m):
    def loss_fn(w, batch):
        r = w - jnp.asarray(m)
        return 0.5 * jnp.mean(batch) * r @ jnp.asarray(a) @ r

    return loss_fn


def test_zero_noise_value_is_the_log_coupling_quadrature_of_the_proximal_integrand(x64):
    # At T = 0 each chain is gradient descent to y*(γ) = (A + γI)⁻¹(Am + γx), so the integrand is
    # exactly I(γ) = (y* − x)·A(y* − m) and the value is f(x) + ½[Σ_j c_j I(γ_j) + I(γ_J)], c_j
    # the trapezoid weights in log γ on the grid γ_j = 1, 2, 4, 8.
    a = np.array([[1.0, 0.3], [0.3, 0.8]])
    m = np.array([0.3, -0.2])
    x = np.array([1.0, 1.0])
    couplings = np.array([1.0, 2.0, 4.0, 8.0])
    prox = [np.linalg.solve(a + g * np.eye(2), a @ m + g * x) for g in couplings]
    integrand = np.array([(y - x) @ a @ (y - m) for y in prox])
    weights = np.log(2.0) * np.array([0.5, 1.0, 1.0, 0.5]) + np.array([0.0, 0.0, 0.0, 1.0])
    loss_at_x = 0.5 * (x - m) @ a @ (x - m)
    est = landscape.estimate_local_entropy(
        _quadratic(a, m),
        jnp.asarray(x),
        [1.0],
        coupling=1.0,
        noise=0.0,
        max_coupling=8.0,
        num_couplings=4,
        num_steps=500,
        burn_in=400,
        num_chains=2,
    )
    np.testing.assert_allclose(est.couplings, couplings, rtol=1e-12)
    np.testing.assert_allclose(est.integrand, integrand, rtol=1e-9)
    np.testing.assert_allclose(est.loss_at_params, loss_at_x, rtol=1e-12)
    np.testing.assert_allclose(est.value, loss_at_x + 0.5 * weights @ integrand, rtol=1e-9)
    np.testing.assert_array_equal(est.integrand_stderr, 0.0)
    assert float(est.stderr) == 0.0 and est.temperature == 0.0
    np.testing.assert_array_equal(est.acceptance, 1.0)
    assert float(est.free_entropy) == -np.inf
    # The default grid ends at 1000 × coupling; burn_in = 0 averages every step. Two batches of
    # scales 1 and 3 are one loss of scale 2 (the full-data gradient, not one batch's).
    est = landscape.estimate_local_entropy(
        _quadratic(a, m),
        jnp.asarray(x),
        [1.0, 3.0],
        coupling=0.5,
        noise=0.0,
        num_couplings=2,
        num_steps=3,
        burn_in=0,
        num_chains=2,
        sgld_learning_rate=0.1,
    )
    np.testing.assert_allclose(est.couplings, [0.5, 500.0], rtol=1e-12)
    np.testing.assert_allclose(est.loss_at_params, 2 * loss_at_x, rtol=1e-12)
    # Hand-run 3 steps of y ← y − η(2A(y − m) + γ(y − x)) from y = x, averaging (y − x)·2A(y − m).
    for gamma, value in zip((0.5, 500.0), np.asarray(est.integrand), strict=True):
        y, stats = x.copy(), []
        for _ in range(3):
            y = y - 0.1 * (2 * a @ (y - m) + gamma * (y - x))
            stats.append((y - x) @ (2 * a) @ (y - m))
        np.testing.assert_allclose(value, np.mean(stats), rtol=1e-9)


def test_value_estimator_bookkeeping_at_positive_temperature(x64):
    # The reported standard error, free entropy and temperature follow from the other fields;
    # the default step size is 0.1 / (1 + γ).
    loss_fn = _quadratic(np.eye(2), np.zeros(2))
    kwargs = dict(coupling=1.0, noise=0.8, max_coupling=10.0, num_couplings=3, num_steps=60)
    kwargs.update(burn_in=20, num_chains=3, key=jax.random.key(5))
    est = landscape.estimate_local_entropy(loss_fn, jnp.array([0.5, -1.0]), [1.0], **kwargs)
    same = landscape.estimate_local_entropy(
        loss_fn,
        jnp.array([0.5, -1.0]),
        [1.0],
        sgld_learning_rate=lambda g: 0.1 / (1.0 + g),
        **kwargs,
    )
    np.testing.assert_array_equal(est.integrand, same.integrand)
    temperature = 0.5 * 0.8**2
    assert est.temperature == pytest.approx(temperature, rel=1e-12)
    du = np.log(np.sqrt(10.0))
    weights = np.array([0.5 * du, du, 0.5 * du + 1.0])
    se = np.asarray(est.integrand_stderr)
    assert np.all(se > 0)
    np.testing.assert_allclose(est.stderr, 0.5 * np.sqrt(np.sum((weights * se) ** 2)), rtol=1e-9)
    free = -float(est.value) / temperature + np.log(2 * np.pi * temperature / 1.0)  # d = 2
    np.testing.assert_allclose(est.free_entropy, free, rtol=1e-9)
    assert np.all((np.asarray(est.acceptance) > 0.5) & (np.asarray(est.acceptance) <= 1.0))


def test_gradient_estimator_matches_the_chains_it_runs(x64):
    # γ (x − μ) per chain from `entropix.sgld_chain` with the keys the estimator splits, full-data
    # gradient of batches with scales 1 and 3 (= one loss of scale 2); mean and standard error
    # over chains.
    import entropix

    a = np.array([[1.0, 0.3], [0.3, 0.8]])
    m = np.array([0.3, -0.2])
    x = jnp.array([1.0, 1.0])
    loss_fn = _quadratic(a, m)
    key = jax.random.key(7)
    kwargs = dict(coupling=0.5, num_steps=30, sgld_learning_rate=0.2, noise=0.3, burn_in=10)
    est = landscape.estimate_local_entropy_gradient(
        loss_fn, x, [1.0, 3.0], num_chains=3, key=key, **kwargs
    )

    def full_grad(p, i):
        del i
        return jax.grad(loss_fn)(p, jnp.array(2.0))

    means = np.asarray(
        jax.jit(jax.vmap(lambda k: entropix.sgld_chain(full_grad, x, key=k, **kwargs).mean))(
            jax.random.split(key, 3)
        )
    )
    grads = 0.5 * (np.asarray(x) - means)
    np.testing.assert_allclose(est.mean, means.mean(0), rtol=1e-9)
    np.testing.assert_allclose(est.gradient, grads.mean(0), rtol=1e-9)
    np.testing.assert_allclose(est.stderr, grads.std(0, ddof=1) / np.sqrt(3), rtol=1e-9)
    assert est.num_chains == 3
    one = landscape.estimate_local_entropy_gradient(
        loss_fn, x, [1.0, 3.0], num_chains=1, key=key, **kwargs
    )
    np.testing.assert_array_equal(one.stderr, 0.0)


@pytest.mark.parametrize("ragged", [False, True])
def test_stochastic_gradient_chain_cycles_through_the_batches(x64, ragged):
    # Step i uses batch i mod 2 (scales 1, 3): the deterministic chain differs from the
    # full-data one and equals the hand-run cycle; stacked and ragged batch forms agree.
    a = np.array([[1.0, 0.3], [0.3, 0.8]])
    m = np.array([0.3, -0.2])
    x = np.array([1.0, 1.0])
    batches = [jnp.array([1.0]), jnp.array([3.0, 3.0])] if ragged else [1.0, 3.0]
    est = landscape.estimate_local_entropy_gradient(
        _quadratic(a, m),
        jnp.asarray(x),
        batches,
        coupling=0.5,
        num_steps=5,
        sgld_learning_rate=0.2,
        average_weight=1.0,
        stochastic=True,
    )
    y = x.copy()
    for i in range(5):
        y = y - 0.2 * ((1.0, 3.0)[i % 2] * a @ (y - m) + 0.5 * (y - x))
    np.testing.assert_allclose(est.mean, y, rtol=1e-10)
    np.testing.assert_allclose(est.gradient, 0.5 * (x - y), rtol=1e-10)


def test_metropolis_chain_matches_a_hand_run_mala_with_the_same_draws(x64):
    # Metropolis-adjusted Langevin on U(y) = f(y) + γ/2 |y − x|² at temperature T, written from
    # the textbook acceptance rule min(1, π(y') q(y | y') / (π(y) q(y' | y))) with
    # q(a | b) = N(a; b − η∇U(b), 2ηT I), fed the estimator's own normal and uniform draws.
    a = np.array([[1.0, 0.3], [0.3, 0.8]])
    m = np.array([0.3, -0.2])
    x = np.array([1.0, 1.0])
    noise, eta, steps, burn, chains = 0.9, 0.6, 12, 4, 2
    temp = 0.5 * noise**2
    key = jax.random.key(11)
    kwargs = dict(coupling=1.0, noise=noise, max_coupling=4.0, num_couplings=2, num_steps=steps)
    kwargs.update(burn_in=burn, num_chains=chains, sgld_learning_rate=eta, key=key)
    est = landscape.estimate_local_entropy(_quadratic(a, m), jnp.asarray(x), [1.0], **kwargs)
    # metropolis=False: the unadjusted step, every proposal taken.
    ula = landscape.estimate_local_entropy(
        _quadratic(a, m), jnp.asarray(x), [1.0], metropolis=False, **kwargs
    )
    np.testing.assert_array_equal(ula.acceptance, 1.0)

    def grad_f(y):
        return a @ (y - m)

    for j, gamma in enumerate((1.0, 4.0)):

        def log_target(y, gamma=gamma):
            return -(0.5 * (y - m) @ a @ (y - m) + 0.5 * gamma * (y - x) @ (y - x)) / temp

        def log_q(to, frm, gamma=gamma):
            mean = frm - eta * (grad_f(frm) + gamma * (frm - x))
            return -np.sum((to - mean) ** 2) / (4 * eta * temp)

        stats, ula_stats, accepted = [], [], 0
        for k in jax.random.split(jax.random.fold_in(key, j), chains):
            index = jnp.arange(steps)
            xis = np.asarray(
                jax.vmap(lambda i, k=k: jax.random.normal(jax.random.fold_in(k, i), (2,)))(index)
            )
            us = np.asarray(
                jax.vmap(lambda i, k=k: jax.random.uniform(jax.random.fold_in(k, i + steps)))(index)
            )
            y, total, z, ula_total = x.copy(), 0.0, x.copy(), 0.0
            for i, (xi, u) in enumerate(zip(xis, us, strict=True)):
                z = z - eta * (grad_f(z) + gamma * (z - x)) + np.sqrt(2 * eta * temp) * xi
                ula_total += (z - x) @ grad_f(z) if i >= burn else 0.0
                prop = y - eta * (grad_f(y) + gamma * (y - x)) + np.sqrt(2 * eta * temp) * xi
                log_ratio = log_target(prop) + log_q(y, prop) - log_target(y) - log_q(prop, y)
                if np.log(u) < log_ratio:
                    y, accepted = prop, accepted + 1
                if i >= burn:
                    total += (y - x) @ grad_f(y)
            stats.append(total / (steps - burn))
            ula_stats.append(ula_total / (steps - burn))
        np.testing.assert_allclose(ula.integrand[j], np.mean(ula_stats), rtol=1e-9)
        assert 0 < accepted < chains * steps  # some proposals are rejected
        np.testing.assert_allclose(est.integrand[j], np.mean(stats), rtol=1e-9)
        np.testing.assert_allclose(est.acceptance[j], accepted / (chains * steps), rtol=1e-12)
        np.testing.assert_allclose(
            est.integrand_stderr[j], np.std(stats, ddof=1) / np.sqrt(chains), rtol=1e-9
        )
