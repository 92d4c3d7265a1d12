"""Local learning coefficient: exact expectations of the SGLD/MALA estimator, invariances, errors.

Conventions: the chains sample ∝ exp(−nβ (L(w) + (c/2)|w − w*|²)) (temperature T = 1/nβ,
localization γ = c nβ) and λ̂ = nβ (mean kept loss − L_n(w*)).
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import trapezoid  # np.trapezoid needs NumPy 2

from entropix import landscape


def _within(est, expected, sigmas=4.0):
    assert np.isfinite(float(est.stderr))
    assert abs(float(est.llc) - expected) < sigmas * float(est.stderr), (
        float(est.llc),
        float(est.stderr),
        expected,
    )


H = np.array([2.0, 1.0, 0.5, 0.1])


def _quadratic(w, b):
    del b
    return 0.5 * jnp.sum(jnp.asarray(H) * w**2) + 3.0  # L_n(w*) = 3 is subtracted


def test_quadratic_mala_matches_tempered_localized_gaussian(x64):
    nbeta, coupling = 50.0, 0.2
    est = landscape.estimate_llc(
        _quadratic,
        jnp.zeros(4),
        [0.0],
        nbeta=nbeta,
        coupling=coupling,
        sgld_learning_rate=0.2,
        num_steps=3000,
        burn_in=300,
        num_chains=16,
        stochastic=False,
        metropolis=True,
        key=jax.random.key(1),
    )
    gamma = coupling * nbeta
    exact = 0.5 * np.sum(nbeta * H / (nbeta * H + gamma))  # = ½ Σ h/(h + c)
    _within(est, exact)
    assert float(est.stderr) < 0.03 * exact
    assert float(est.init_loss) == 3.0
    assert 0.5 < float(est.acceptance) <= 1.0
    assert est.rhat < 1.05 and est.warnings == ()


def test_unadjusted_chain_has_the_euler_schemes_exact_bias(x64):
    # Euler–Maruyama on curvature a = h + c samples variance T / (a (1 − η a / 2)).
    nbeta, coupling, eta = 50.0, 0.2, 0.5
    est = landscape.estimate_llc(
        _quadratic,
        jnp.zeros(4),
        [0.0],
        nbeta=nbeta,
        coupling=coupling,
        sgld_learning_rate=eta,
        num_steps=3000,
        burn_in=300,
        num_chains=16,
        stochastic=False,
        key=jax.random.key(2),
        warn=False,
    )
    a = H + coupling
    discrete = 0.5 * np.sum(H / (a * (1 - eta * a / 2)))
    continuous = 0.5 * np.sum(H / a)
    _within(est, discrete)
    assert abs(float(est.llc) - continuous) > 8 * float(est.stderr)
    assert np.isnan(float(est.acceptance))


@pytest.mark.parametrize("noise_distribution", ["gaussian", "rademacher"])
def test_minibatch_chain_matches_exact_finite_time_expectation(x64, noise_distribution):
    # L_j(w) = ½ Σ h (w − b_j)², batch j = t mod n at step t. The chain is linear, so its mean m_t
    # and variance v_t follow exact recursions (only the noise's first two moments enter).
    nbeta, coupling, decay, eta = 40.0, 0.3, 0.05, 0.3
    num_steps, burn_in, thinning = 60, 6, 3
    rng = np.random.default_rng(0)
    shifts = rng.normal(size=(5, 4)) * 0.3
    shifts -= shifts.mean(axis=0)  # w* = 0 minimizes L_n
    hess = jnp.asarray(H)

    def loss_fn(w, b):
        return 0.5 * jnp.sum(hess * (w - b) ** 2)

    est = landscape.estimate_llc(
        loss_fn,
        jnp.zeros(4),
        jnp.asarray(shifts),
        nbeta=nbeta,
        coupling=coupling,
        sgld_learning_rate=eta,
        num_steps=num_steps,
        burn_in=burn_in,
        thinning=thinning,
        num_chains=400,
        weight_decay=decay,
        noise_distribution=noise_distribution,
        key=jax.random.key(3),
        warn=False,
    )
    a = H + coupling + decay
    m, v, expected_losses = np.zeros(4), np.zeros(4), []
    for t in range(num_steps):
        b = shifts[t % len(shifts)]
        expected_losses.append(0.5 * np.sum(H * ((m - b) ** 2 + v)))
        m = (1 - eta * a) * m + eta * H * b
        v = (1 - eta * a) ** 2 * v + 2 * eta / nbeta
    init_loss = np.mean(0.5 * np.sum(H * shifts**2, axis=1))
    kept = np.asarray(expected_losses)[burn_in::thinning]
    exact = nbeta * (kept.mean() - init_loss)
    assert est.loss_trace.shape == (400, len(range(burn_in, num_steps, thinning)))
    np.testing.assert_allclose(float(est.init_loss), init_loss, rtol=1e-12)
    np.testing.assert_allclose(
        np.mean(np.asarray(est.loss_trace), axis=0),
        kept,
        atol=5 * np.std(np.asarray(est.loss_trace), axis=0).max() / np.sqrt(400),
    )
    _within(est, exact)


def _power_loss(k):
    def loss_fn(w, b):
        del b
        return jnp.sum(w ** (2 * k))

    return loss_fn


def test_power_potential_without_localization_gives_one_over_2k(x64):
    # ∫ exp(−nβ w⁴) dw ∝ nβ^{−1/4}, so E[nβ w⁴] = 1/4 at any nβ: the learning coefficient.
    est = landscape.estimate_llc(
        _power_loss(2),
        jnp.zeros(1),
        [0.0],
        nbeta=100.0,
        coupling=0.0,
        sgld_learning_rate=0.2,
        num_steps=3000,
        burn_in=300,
        num_chains=16,
        stochastic=False,
        metropolis=True,
        key=jax.random.key(4),
    )
    _within(est, 0.25)
    assert float(est.stderr) < 0.02


def _quadrature(log_density, statistic, grid):
    logp = log_density(grid)
    weights = np.exp(logp - logp.max())
    return trapezoid(weights * statistic(grid), grid) / trapezoid(weights, grid)


def test_power_potential_with_localization_matches_quadrature(x64):
    nbeta, coupling, k = 30.0, 0.1, 3
    gamma = coupling * nbeta
    grid = np.linspace(-3, 3, 200001)
    exact = _quadrature(
        lambda w: -nbeta * w ** (2 * k) - 0.5 * gamma * w**2, lambda w: nbeta * w ** (2 * k), grid
    )
    assert 0.05 < exact < 1 / (2 * k) - 0.02  # the localization visibly lowers it
    est = landscape.estimate_llc(
        _power_loss(k),
        jnp.zeros(1),
        [0.0],
        nbeta=nbeta,
        coupling=coupling,
        sgld_learning_rate=0.1,
        num_steps=3000,
        burn_in=300,
        num_chains=16,
        stochastic=False,
        metropolis=True,
        key=jax.random.key(5),
    )
    _within(est, exact)


def test_singular_product_loss_matches_quadrature(x64):
    # L = (w₁ w₂)²: given w₂, w₁ is Gaussian with precision 2nβ w₂² + γ, so
    # E[nβ L] = E_{w₂}[nβ w₂² / (2nβ w₂² + γ)], w₂ ∝ exp(−γ w₂²/2) (2nβ w₂² + γ)^{−1/2}.
    nbeta, coupling = 20.0, 0.5
    gamma = coupling * nbeta
    grid = np.linspace(-4, 4, 200001)
    exact = _quadrature(
        lambda u: -0.5 * gamma * u**2 - 0.5 * np.log(2 * nbeta * u**2 + gamma),
        lambda u: nbeta * u**2 / (2 * nbeta * u**2 + gamma),
        grid,
    )
    assert exact < 0.45  # far from the regular value d/2 = 1

    def loss_fn(w, b):
        del b
        return (w[0] * w[1]) ** 2

    est = landscape.estimate_llc(
        loss_fn,
        jnp.zeros(2),
        [0.0],
        nbeta=nbeta,
        coupling=coupling,
        sgld_learning_rate=0.1,
        num_steps=4000,
        burn_in=400,
        num_chains=16,
        stochastic=False,
        metropolis=True,
        key=jax.random.key(6),
    )
    _within(est, exact)
    assert float(est.stderr) < 0.05 * exact


def _teacher():
    keys = jax.random.split(jax.random.key(7), 5)
    params = {
        "w1": jax.random.normal(keys[0], (3, 5)),
        "b1": 0.1 * jax.random.normal(keys[1], (5,)),
        "w2": jax.random.normal(keys[2], (5, 1)) / np.sqrt(5),
    }
    x = jax.random.normal(keys[3], (4, 16, 3))

    def apply(p, inputs):
        return jnp.tanh(inputs @ p["w1"] + p["b1"]) @ p["w2"]

    batches = (x, apply(params, x))  # realizable: params is a global minimum (loss 0)

    def loss_fn(p, batch):
        inputs, targets = batch
        return jnp.mean((apply(p, inputs) - targets) ** 2)

    return params, batches, loss_fn


def test_llc_is_invariant_under_permuting_hidden_units():
    params, batches, loss_fn = _teacher()
    perm = np.array([3, 0, 4, 1, 2])
    permuted = {"w1": params["w1"][:, perm], "b1": params["b1"][perm], "w2": params["w2"][perm]}
    settings = dict(nbeta=200.0, coupling=1.0, sgld_learning_rate=0.05, num_steps=1000, burn_in=200)
    a = landscape.estimate_llc(loss_fn, params, batches, num_chains=16, **settings)
    b = landscape.estimate_llc(loss_fn, permuted, batches, num_chains=16, **settings)
    assert float(a.init_loss) == pytest.approx(0.0, abs=1e-10)
    np.testing.assert_allclose(float(b.init_loss), float(a.init_loss), atol=1e-10)
    assert not np.allclose(np.asarray(a.loss_trace), np.asarray(b.loss_trace))
    combined = np.hypot(float(a.stderr), float(b.stderr))
    assert abs(float(a.llc) - float(b.llc)) < 4 * combined
    # A realizable teacher is a degenerate minimum: λ̂ is well below d/2 = 13.
    assert 0 < float(a.llc) < 0.5 * 26


def test_index_form_thinning_and_burn_in_are_slices_of_one_chain():
    params, (x, y), loss_fn = _teacher()
    settings = dict(nbeta=50.0, coupling=1.0, sgld_learning_rate=0.05, num_chains=3)
    full = landscape.estimate_llc(loss_fn, params, (x, y), num_steps=40, **settings)

    def index_loss(p, i):  # the caller indexes the data by batch number
        return loss_fn(p, (x[i], y[i]))

    indexed = landscape.estimate_llc(index_loss, params, jnp.arange(4), num_steps=40, **settings)
    np.testing.assert_allclose(indexed.loss_trace, full.loss_trace, rtol=1e-6)
    listed = landscape.BatchList(tuple((x[i], y[i]) for i in range(4)))  # the ragged-list path
    as_list = landscape.estimate_llc(loss_fn, params, listed, num_steps=40, **settings)
    np.testing.assert_allclose(as_list.loss_trace, full.loss_trace, rtol=1e-6)
    thinned = landscape.estimate_llc(
        loss_fn, params, (x, y), num_steps=40, burn_in=10, thinning=3, **settings
    )
    np.testing.assert_allclose(thinned.loss_trace, full.loss_trace[:, 10::3], rtol=1e-6)
    np.testing.assert_allclose(
        thinned.llc_per_chain,
        50.0 * (np.mean(full.loss_trace[:, 10::3], axis=1) - full.init_loss),
        rtol=1e-5,
    )
    # The first recorded loss is at w* on batch 0.
    np.testing.assert_allclose(full.loss_trace[:, 0], loss_fn(params, (x[0], y[0])), atol=1e-7)


def test_effective_sample_size_and_rhat_of_an_ou_chain(x64):
    # One direction, full batch: w is AR(1) with ρ = 1 − η a, so L ∝ w² has autocorrelation
    # ρ^{2t} and ESS = N (1 − ρ²) / (1 + ρ²).
    eta, curvature, coupling = 0.1, 1.0, 0.0

    def loss_fn(w, b):
        del b
        return 0.5 * curvature * jnp.sum(w**2)

    est = landscape.estimate_llc(
        loss_fn,
        jnp.zeros(1),
        [0.0],
        nbeta=10.0,
        coupling=coupling,
        sgld_learning_rate=eta,
        num_steps=4200,
        burn_in=200,
        num_chains=8,
        stochastic=False,
        key=jax.random.key(8),
    )
    rho = 1 - eta * (curvature + coupling)
    expected = 8 * 4000 * (1 - rho**2) / (1 + rho**2)
    assert 0.8 < est.ess / expected < 1.25, (est.ess, expected)
    assert abs(est.rhat - 1.0) < 0.02


def test_devinterp_settings_round_trip_and_default_nbeta():
    assert landscape.default_nbeta(64) == pytest.approx(64 / np.log(64))
    assert landscape.default_nbeta(2) == pytest.approx(2 / np.log(2))  # the smallest batch
    s = landscape.llc_settings_from_devinterp(
        lr=3e-4, localization=250.0, batch_size=64, weight_decay=0.02
    )
    assert s.nbeta == pytest.approx(64 / np.log(64))
    back = landscape.llc_settings_to_devinterp(**s._asdict())
    np.testing.assert_allclose(
        [back.lr, back.nbeta, back.localization, back.weight_decay], [3e-4, s.nbeta, 250.0, 0.02]
    )
    again = landscape.llc_settings_from_devinterp(
        lr=back.lr,
        localization=back.localization,
        nbeta=back.nbeta,
        weight_decay=back.weight_decay,
    )
    np.testing.assert_allclose(again, s)


def test_devinterp_settings_reproduce_devinterps_discretization(x64):
    # devinterp's step w ← w − (ε/2)(nβ h + γ) w + √ε ξ has stationary variance
    # ε / (1 − (1 − ε A / 2)²), A = nβ h + γ: computed here in devinterp's own terms.
    lr, localization, nbeta = 4e-3, 20.0, 50.0
    settings = landscape.llc_settings_from_devinterp(lr=lr, localization=localization, nbeta=nbeta)
    est = landscape.estimate_llc(
        _quadratic,
        jnp.zeros(4),
        [0.0],
        num_steps=3000,
        burn_in=300,
        num_chains=16,
        stochastic=False,
        key=jax.random.key(9),
        warn=False,
        **settings._asdict(),
    )
    big_a = nbeta * H + localization
    variance = lr / (1 - (1 - lr * big_a / 2) ** 2)
    _within(est, 0.5 * np.sum(nbeta * H * variance))


def test_unhealthy_chains_warn():
    def loss_fn(w, b):
        del b
        return 0.5 * jnp.sum((w - 5.0) ** 2)

    with pytest.warns(landscape.LLCWarning, match="not a local minimum") as record:
        est = landscape.estimate_llc(
            loss_fn,
            jnp.zeros(3),
            [0.0],
            nbeta=10.0,
            coupling=0.0,
            sgld_learning_rate=1e-3,
            num_steps=200,
            stochastic=False,
        )
    assert float(est.llc) < 0 and est.rhat > 1.1
    assert any("R-hat" in m for m in est.warnings)
    assert "R-hat" in str(record[0].message)

    with pytest.warns(landscape.LLCWarning, match="non-finite"):
        est = landscape.estimate_llc(
            loss_fn,
            jnp.full(3, 5.0),
            [0.0],
            nbeta=10.0,
            coupling=0.0,
            sgld_learning_rate=5.0,
            num_steps=200,
            stochastic=False,
        )
    assert not np.isfinite(float(est.llc))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = landscape.estimate_llc(
            loss_fn,
            jnp.zeros(3),
            [0.0],
            nbeta=10.0,
            coupling=0.0,
            sgld_learning_rate=1e-3,
            num_steps=200,
            stochastic=False,
            warn=False,
        )
    assert quiet.warnings


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(nbeta=0.0), ValueError, "nbeta"),
        (dict(coupling=-1.0), ValueError, "coupling"),
        (dict(sgld_learning_rate=0.0), ValueError, "sgld_learning_rate"),
        (dict(weight_decay=-0.1), ValueError, "weight_decay"),
        (dict(num_steps=10, burn_in=10), ValueError, "burn_in"),
        (dict(num_steps=10.0), TypeError, "num_steps"),
        (dict(thinning=0), ValueError, "thinning"),
        (dict(num_chains=0), ValueError, "num_chains"),
        (dict(metropolis=True), ValueError, "stochastic=False"),
        (
            dict(metropolis=True, stochastic=False, noise_distribution="rademacher"),
            ValueError,
            "gaussian",
        ),
        (dict(noise_distribution="uniform"), ValueError, "noise_distribution"),
    ],
)
def test_bad_arguments_raise_named_errors(kwargs, error, match):
    settings = dict(nbeta=10.0, coupling=1.0, sgld_learning_rate=0.1, num_steps=20)
    settings.update(kwargs)
    with pytest.raises(error, match=match):
        landscape.estimate_llc(lambda w, b: jnp.sum(w**2), jnp.zeros(2), [0.0], **settings)


def test_bad_arguments_of_the_converters_and_empty_params():
    with pytest.raises(ValueError, match="batch_size"):
        landscape.llc_settings_from_devinterp(lr=1e-3, localization=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        landscape.default_nbeta(1)
    with pytest.raises(ValueError, match="lr"):
        landscape.llc_settings_from_devinterp(lr=0.0, localization=1.0, nbeta=2.0)
    with pytest.raises(ValueError, match="localization"):
        landscape.llc_settings_from_devinterp(lr=1e-3, localization=-1.0, nbeta=2.0)
    with pytest.raises(ValueError, match="params"):
        landscape.estimate_llc(
            lambda w, b: 0.0, {}, [0.0], nbeta=1.0, coupling=1.0, sgld_learning_rate=0.1
        )


# ---------------------------------------------------------------------------------------------
# The chain step by step, the diagnostics against a second implementation, the health rules.
# ---------------------------------------------------------------------------------------------


def test_noise_free_chain_is_the_euler_recursion_with_coupling_and_weight_decay(x64):
    # L(w) = ½ (w − a)² on one coordinate, w* = 1, a = 0: nβ = 1e30 makes the noise ~1e-15, so
    # the recorded losses follow w_{t+1} = w_t − η' ((w_t − a) + c (w_t − w*) + λ' w_t).
    eta, c, decay, w_star = 0.1, 0.7, 0.3, 1.0
    settings = dict(nbeta=1e30, coupling=c, sgld_learning_rate=eta, weight_decay=decay)
    est = landscape.estimate_llc(
        lambda w, b: 0.5 * jnp.sum((w - b) ** 2),
        jnp.array([w_star]),
        [jnp.array([0.0])],
        num_steps=4,
        num_chains=1,
        stochastic=False,
        warn=False,
        **settings,
    )
    w, expected = w_star, []
    for _ in range(4):
        expected.append(0.5 * w**2)  # the recorded loss has no prior term
        w = w - eta * (w + c * (w - w_star) + decay * w)
    np.testing.assert_allclose(np.asarray(est.loss_trace[0]), expected, rtol=1e-12)
    assert float(est.init_loss) == 0.5


def test_full_data_chain_over_several_batches_uses_their_mean(x64):
    # Two batches of equal size with stochastic=False: every step is on the full-data loss,
    # which is the one-batch chain on the concatenated data (same keys, same noise).
    def loss_fn(w, batch):
        return jnp.mean((batch[:, 0] * w[0] + w[1] - batch[:, 1]) ** 2)

    data = jnp.array([[0.5, 1.0], [-1.0, 0.2], [2.0, 0.3], [1.5, -0.4]])
    settings = dict(
        nbeta=50.0,
        coupling=0.5,
        sgld_learning_rate=0.05,
        num_steps=12,
        num_chains=2,
        stochastic=False,
        warn=False,
    )
    whole = landscape.estimate_llc(loss_fn, jnp.array([0.1, 0.0]), [data], **settings)
    split = landscape.estimate_llc(loss_fn, jnp.array([0.1, 0.0]), [data[:2], data[2:]], **settings)
    np.testing.assert_allclose(split.loss_trace, whole.loss_trace, rtol=1e-12)
    # The estimate and its standard error from the kept losses; the default key is key(0).
    per_chain = 50.0 * (np.mean(np.asarray(whole.loss_trace), axis=1) - float(whole.init_loss))
    np.testing.assert_allclose(whole.llc_per_chain, per_chain, rtol=1e-12)
    assert float(whole.llc) == pytest.approx(np.mean(per_chain), rel=1e-12)
    assert float(whole.stderr) == pytest.approx(np.std(per_chain, ddof=1) / np.sqrt(2), rel=1e-12)
    keyed = landscape.estimate_llc(
        loss_fn, jnp.array([0.1, 0.0]), [data], key=jax.random.key(0), **settings
    )
    np.testing.assert_array_equal(keyed.loss_trace, whole.loss_trace)


def test_settings_tuples_default_to_no_weight_decay():
    assert landscape.LLCSettings(10.0, 1.0, 0.1).weight_decay == 0.0
    assert landscape.DevinterpSettings(1e-3, 10.0, 1.0).weight_decay == 0.0


def _reference_autocovariance(x, lag):
    centred = x - x.mean()
    return np.sum(centred[: len(x) - lag] * centred[lag:]) / len(x)


def _reference_split(draws):
    half = draws.shape[1] // 2  # an odd middle draw belongs to neither half
    return [row[:half] for row in draws] + [row[len(row) - half :] for row in draws]


def _reference_rhat(draws):
    """Split R̂ written from Gelman et al., BDA3 §11.4, with loops."""
    seqs = _reference_split(draws)
    n = len(seqs[0])
    means = [np.mean(s) for s in seqs]
    within = np.mean([np.sum((s - np.mean(s)) ** 2) / (n - 1) for s in seqs])
    grand = np.mean(means)
    between = n * sum((mu - grand) ** 2 for mu in means) / (len(seqs) - 1)
    return np.sqrt(((n - 1) / n * within + between / n) / within)


def _reference_ess(draws):
    """Multi-chain ESS of Vehtari et al. (2021) §3.2 (Stan's estimator), with loops."""
    seqs = _reference_split(draws) if draws.shape[1] >= 4 else list(draws)
    m, n = len(seqs), len(seqs[0])
    within = np.mean([_reference_autocovariance(s, 0) for s in seqs]) * n / (n - 1)
    var_plus = within * (n - 1) / n
    if m > 1:
        means = [np.mean(s) for s in seqs]
        var_plus += sum((mu - np.mean(means)) ** 2 for mu in means) / (m - 1)
    rho = [1.0]
    for lag in range(1, n):
        mean_acov = np.mean([_reference_autocovariance(s, lag) for s in seqs])
        rho.append(1.0 - (within - mean_acov) / var_plus)
    tau, previous = -1.0, np.inf
    for t in range(n // 2):
        pair = rho[2 * t] + rho[2 * t + 1]
        if pair <= 0:
            break
        previous = min(previous, pair)  # Geyer's initial monotone sequence
        tau += 2.0 * previous
    tau = max(tau, 1.0 / np.log10(m * n))
    return m * n / tau


def _ar1_chains(chains, draws, phi, offsets, seed):
    rng = np.random.default_rng(seed)
    x = np.zeros((chains, draws))
    x[:, 0] = rng.normal(size=chains)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + rng.normal(size=chains)
    return x + np.asarray(offsets)[:, None]


@pytest.mark.parametrize(
    "draws",
    [
        _ar1_chains(4, 9, 0.6, [0.0, 0.3, -0.2, 0.5], seed=0),  # odd length: middle draw dropped
        _ar1_chains(3, 40, 0.9, [0.0, 2.0, 1.0], seed=1),  # chains apart: R̂ well above 1
        _ar1_chains(2, 4, 0.0, [0.0, 0.0], seed=2),  # the shortest split (two draws a half)
        _ar1_chains(1, 12, -0.7, [0.0], seed=3),  # one chain, alternating: τ at its floor
        _ar1_chains(2, 3, 0.3, [0.0, 1.0], seed=4),  # too short to split
        _ar1_chains(1, 3, 0.3, [0.0], seed=5),  # one chain, unsplit
    ],
    ids=["4x9", "3x40-apart", "2x4", "1x12-antithetic", "2x3", "1x3"],
)
def test_rhat_and_ess_match_a_second_implementation(draws):
    from entropix.landscape import llc

    if draws.shape[1] >= 4:
        assert llc._split_rhat(draws) == pytest.approx(_reference_rhat(draws), rel=1e-12)
    else:
        assert np.isnan(llc._split_rhat(draws))
    assert llc._effective_sample_size(draws) == pytest.approx(_reference_ess(draws), rel=1e-12)
    for row in draws:
        direct = [_reference_autocovariance(row, lag) for lag in range(len(row))]
        np.testing.assert_allclose(llc._autocovariance(row[None])[0], direct, atol=1e-12)


def test_rhat_and_ess_are_undefined_without_variation():
    from entropix.landscape import llc

    constant_apart = np.array([[1.0] * 6, [2.0] * 6])  # no within-chain variance
    assert np.isnan(llc._split_rhat(constant_apart))
    assert np.isnan(llc._effective_sample_size(np.ones((2, 6))))
    assert np.isnan(llc._effective_sample_size(np.array([[0.5], [1.5]])))  # one draw a chain
    assert np.isfinite(llc._effective_sample_size(np.array([[0.5, 1.0], [1.5, 1.2]])))


def test_health_messages_and_their_thresholds():
    from entropix.landscape import llc

    traces = np.zeros((2, 5))

    def health(llc_value=1.0, stderr=0.1, rhat=1.0, acceptance=0.5, metropolis=True, t=traces):
        return llc._health(llc_value, stderr, t, rhat, acceptance, 4, metropolis)

    assert health() == ()
    assert health(rhat=llc.RHAT_THRESHOLD) == ()  # the threshold itself passes
    assert "R-hat" in health(rhat=1.1001)[0]
    assert health(acceptance=0.1) == ()
    assert "acceptance" in health(acceptance=0.0999)[0]
    assert health(acceptance=0.01, metropolis=False) == ()
    assert "< 0" in health(llc_value=-0.01)[0]
    assert health(llc_value=0.0) == ()
    # Above d/2 = 2 only beyond three standard errors; with stderr nan, beyond d/2 itself.
    assert health(llc_value=2.29, stderr=0.1) == ()
    assert "exceeds d/2 = 2," in health(llc_value=2.31, stderr=0.1)[0]
    assert health(llc_value=2.0, stderr=float("nan")) == ()
    assert "exceeds d/2" in health(llc_value=2.01, stderr=float("nan"))[0]
    diverged = np.array([[0.0, np.inf, 1.0], [0.0, 1.0, 2.0]])
    (message,) = health(llc_value=float("nan"), t=diverged)
    assert message.startswith("1 of 2 chains produced non-finite losses")


def test_one_chain_has_no_stderr_or_rhat_and_a_diverged_one_no_ess():
    def loss_fn(w, b):
        del b
        return 0.5 * jnp.sum(w**2)

    settings = dict(nbeta=10.0, coupling=0.0, stochastic=False, warn=False)
    one = landscape.estimate_llc(
        loss_fn, jnp.zeros(2), [0.0], sgld_learning_rate=0.1, num_steps=40, num_chains=1, **settings
    )
    assert np.isnan(float(one.stderr)) and np.isnan(one.rhat) and np.isfinite(one.ess)
    diverged = landscape.estimate_llc(
        loss_fn, jnp.ones(2), [0.0], sgld_learning_rate=5.0, num_steps=400, num_chains=2, **settings
    )
    assert not np.all(np.isfinite(np.asarray(diverged.loss_trace)))
    assert np.isnan(diverged.ess) and np.isnan(diverged.rhat)


def test_metropolis_chain_by_hand_with_the_estimators_draws(x64):
    # MALA on L(w) = ½ h |w − b|² with coupling and weight decay, replayed step by step with the
    # estimator's own proposal noise (stream 0) and acceptance uniform (stream 1) of each chain.
    from entropix._src import common

    h, c, decay, eta, nbeta = 2.0, 0.5, 0.3, 0.6, 3.0
    temperature, num_steps = 1.0 / nbeta, 30
    w_star, data = np.array([0.7, -0.2]), np.array([0.1, 0.3])
    key = jax.random.key(7)
    est = landscape.estimate_llc(
        lambda w, b: 0.5 * h * jnp.sum((w - b) ** 2),
        jnp.asarray(w_star),
        [jnp.asarray(data)],
        nbeta=nbeta,
        coupling=c,
        sgld_learning_rate=eta,
        weight_decay=decay,
        num_steps=num_steps,
        num_chains=2,
        stochastic=False,
        metropolis=True,
        key=key,
        warn=False,
    )

    def loss(w):
        return 0.5 * h * np.sum((w - data) ** 2)

    def energy(w):
        return loss(w) + 0.5 * c * np.sum((w - w_star) ** 2) + 0.5 * decay * np.sum(w**2)

    def drift(w):
        return w - eta * (h * (w - data) + c * (w - w_star) + decay * w)

    rates = []
    for chain, chain_key in enumerate(jax.random.split(key, 2)):
        base, w, losses, accepted = common.as_key(chain_key), w_star, [], 0
        for t in range(num_steps):
            losses.append(loss(w))
            xi = common.noise_like(jnp.asarray(w), common.step_key(base, t, 0), "gaussian")
            proposal = drift(w) + np.sqrt(eta * 2 * temperature) * np.asarray(xi)
            forward, backward = proposal - drift(w), w - drift(proposal)
            log_ratio = (energy(w) - energy(proposal)) / temperature + (
                np.sum(forward**2) - np.sum(backward**2)
            ) / (4 * eta * temperature)
            uniform = jax.random.uniform(common.step_key(base, t, 1), (), jnp.float64)
            if np.log(float(uniform)) < log_ratio:
                w, accepted = proposal, accepted + 1
        assert 0 < accepted < num_steps  # both outcomes are exercised
        rates.append(accepted / num_steps)
        np.testing.assert_allclose(np.asarray(est.loss_trace[chain]), losses, rtol=1e-10)
    assert float(est.acceptance) == pytest.approx(np.mean(rates), rel=1e-12)
