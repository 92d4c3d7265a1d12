"""The automatic coupling γ: its update against closed forms, its fixed point, bounds, growth law,
the two forms, Parle's per-replica γ, the runner configs and the errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import entropix
from entropix._src import auto_coupling as auto_module

CURVATURE = np.array([0.5, 1.0, 2.0, 4.0])
TARGET = np.array([1.0, -1.0, 0.5, 2.0])
START = np.zeros(4)


def quadratic_gradient(params, curvature=CURVATURE, target=TARGET):
    """∇f of f(w) = ½ Σ h_i (w_i − w*_i)²."""
    return jnp.asarray(curvature, jnp.float32) * (params - jnp.asarray(target, jnp.float32))


def reference(auto, *, num_outer, num_inner, lr, eta, alpha, scale_outer_gradient=True):
    """The two loops and the controller in float64 NumPy, written from the formulas.

    Returns the anchors, the couplings ``γ_0 … γ_T`` and the force ratios ``r_0 … r_{T−1}``.
    """
    x, gamma = START.astype(np.float64), auto.initial
    anchors, gammas, ratios = [x], [gamma], []
    for t in range(num_outer):
        walker, mu, norms = x.copy(), x.copy(), []
        for _ in range(num_inner):
            g = CURVATURE * (walker - TARGET)
            norms.append(np.linalg.norm(g))
            walker = walker - eta * (g + gamma * (walker - x))
            mu = (1 - alpha) * mu + alpha * walker
        ratio = gamma * np.linalg.norm(x - mu) / np.mean(norms)
        target_ratio = auto.target_ratio * (1 + auto.growth) ** t
        factor = (target_ratio / ratio) ** auto.smoothing
        factor = min(max(factor, 1 / auto.max_factor), auto.max_factor)
        x = x - lr * ((x - mu) if scale_outer_gradient else gamma * (x - mu))
        gamma = min(max(gamma * factor, auto.min_coupling), auto.max_coupling)
        anchors.append(x)
        gammas.append(gamma)
        ratios.append(ratio)
    return np.array(anchors), np.array(gammas), np.array(ratios)


def run(opt, num_outer, num_inner, gradient=quadratic_gradient):
    """Step form: the anchor, γ and force ratio after every outer step."""
    params = jnp.asarray(START, jnp.float32)
    state = opt.init(params)
    update = jax.jit(opt.update)
    anchors = [np.asarray(params)]
    gammas = [float(entropix.current_coupling(state))]
    ratios = []
    for _ in range(num_outer):
        for _ in range(num_inner):
            updates, state = update(gradient(params), state, params)
            params = optax.apply_updates(params, updates)
        anchors.append(np.asarray(entropix.anchor_params(state)))
        gammas.append(float(entropix.current_coupling(state)))
        ratios.append(float(optax.tree_utils.tree_get(state, "force_ratio")))
    return np.array(anchors), np.array(gammas), np.array(ratios)


def local_entropy(auto, *, num_inner, lr, eta, alpha, **kwargs):
    return entropix.local_entropy(
        optax.sgd(lr),
        num_inner_steps=num_inner,
        coupling=auto,
        sgld_learning_rate=eta,
        noise=0.0,
        average_weight=alpha,
        **kwargs,
    )


# ---------------------------------------------------------------------------------------------
# The rule against its closed form
# ---------------------------------------------------------------------------------------------


def test_one_inner_step_gives_the_ratio_gamma_alpha_eta():
    # With L = 1 the walker takes one step from the anchor: x − μ = α η' ∇f(x) and ḡ = ‖∇f(x)‖,
    # so r = γ α η' whatever the loss, and γ₁ = γ₀ (ρ₀ / (γ₀ α η'))^κ.
    auto = entropix.auto_coupling(initial=0.2, target_ratio=0.3, smoothing=0.5, max_factor=10.0)
    alpha, eta = 0.75, 0.1
    opt = local_entropy(auto, num_inner=1, lr=0.1, eta=eta, alpha=alpha)
    _, gammas, ratios = run(opt, num_outer=1, num_inner=1)
    np.testing.assert_allclose(ratios[0], 0.2 * alpha * eta, rtol=1e-6)
    np.testing.assert_allclose(gammas[1], 0.2 * (0.3 / (0.2 * alpha * eta)) ** 0.5, rtol=1e-6)


@pytest.mark.parametrize("scale_outer_gradient", [True, False])
def test_update_matches_the_closed_form_on_a_quadratic(scale_outer_gradient):
    auto = entropix.auto_coupling(
        initial=0.1, target_ratio=0.2, growth=0.1, max_coupling=5.0, smoothing=0.7, max_factor=1.5
    )
    settings = dict(num_inner=4, lr=0.3, eta=0.1, alpha=0.75)
    opt = local_entropy(auto, scale_outer_gradient=scale_outer_gradient, **settings)
    anchors, gammas, ratios = run(opt, num_outer=8, num_inner=4)
    ref_anchors, ref_gammas, ref_ratios = reference(
        auto, num_outer=8, scale_outer_gradient=scale_outer_gradient, **settings
    )
    np.testing.assert_allclose(gammas, ref_gammas, rtol=2e-5)
    np.testing.assert_allclose(ratios, ref_ratios, rtol=2e-5)
    np.testing.assert_allclose(anchors, ref_anchors, rtol=2e-5, atol=1e-6)
    # The run exercises both the factor clip and the unclipped geometric step.
    steps = ref_gammas[1:] / ref_gammas[:-1]
    assert np.any(np.isclose(steps, 1.5)) and np.any(~np.isclose(steps, 1.5))


def test_norms_are_global_over_the_leaves():
    # ‖·‖ is the Euclidean norm of all leaves together: 3² + 4² = 5², whatever the leaf sizes.
    tree = {"a": jnp.asarray([3.0]), "b": jnp.asarray([[4.0, 0.0], [0.0, 0.0]])}
    assert float(auto_module._norm(tree, jnp.float32)) == 5.0
    # So γ does not depend on how the parameters are split into leaves: the run of
    # test_update_matches_the_closed_form_on_a_quadratic with w split into w[:1] and w[1:].
    auto = entropix.auto_coupling(
        initial=0.1, target_ratio=0.2, growth=0.1, max_coupling=5.0, smoothing=0.7, max_factor=1.5
    )
    settings = dict(num_inner=4, lr=0.3, eta=0.1, alpha=0.75)
    opt = local_entropy(auto, **settings)
    _, ref_gammas, ref_ratios = reference(auto, num_outer=4, **settings)

    def split(w):
        return {"a": w[:1], "b": w[1:]}

    params = split(jnp.asarray(START, jnp.float32))
    state, update = opt.init(params), jax.jit(opt.update)
    gammas, ratios = [float(entropix.current_coupling(state))], []
    for _ in range(4):
        for _ in range(4):
            flat = jnp.concatenate([params["a"], params["b"]])
            updates, state = update(split(quadratic_gradient(flat)), state, params)
            params = optax.apply_updates(params, updates)
        gammas.append(float(entropix.current_coupling(state)))
        ratios.append(float(optax.tree_utils.tree_get(state, "force_ratio")))
    np.testing.assert_allclose(gammas, ref_gammas, rtol=2e-5)
    np.testing.assert_allclose(ratios, ref_ratios, rtol=2e-5)


@pytest.mark.parametrize(
    ("coupling", "displacement", "direction", "count", "max_factor"),
    [
        (0.2, 0.5, 2.0, 3, 10.0),  # r = 0.05 < ρ_3 ≈ 0.40: γ grows, unclipped
        (0.2, 0.5, 2.0, 3, 1.5),  # the same step, clipped at the factor c
        (0.8, 3.0, 0.5, 0, 10.0),  # r = 4.8 > ρ₀ = 0.3: γ shrinks, unclipped
        (0.8, 3.0, 0.5, 7, 1.2),  # shrinks by the factor 1/c
        (0.9, 0.1, 5.0, 2, 100.0),  # would exceed γ_max = 1: capped
        (0.01, 50.0, 0.1, 0, 100.0),  # would fall below γ_min = 0.005: floored
    ],
)
def test_next_coupling_matches_the_rule_written_out(
    coupling, displacement, direction, count, max_factor
):
    # γ_{t+1} = clip(γ_t · clip((ρ_t / r_t)^κ, 1/c, c), γ_min, γ_max), r_t = γ_t ‖x − μ‖ / ḡ,
    # ρ_t = ρ₀ (1 + growth)^t, evaluated directly (float64), without the two loops.
    auto = entropix.auto_coupling(
        initial=0.5,
        target_ratio=0.3,
        growth=0.1,
        max_coupling=1.0,
        min_coupling=0.005,
        smoothing=0.5,
        max_factor=max_factor,
    )
    ratio = coupling * displacement / direction
    target = 0.3 * 1.1**count
    factor = min(max((target / ratio) ** 0.5, 1 / max_factor), max_factor)
    expected = min(max(coupling * factor, 0.005), 1.0)
    new, force_ratio = auto_module.next_coupling(
        auto,
        jnp.float32(coupling),
        jnp.float32(displacement),
        jnp.float32(direction),
        jnp.int32(count),
    )
    assert new.dtype == force_ratio.dtype == jnp.float32
    np.testing.assert_allclose(float(force_ratio), ratio, rtol=1e-6)
    np.testing.assert_allclose(float(new), expected, rtol=1e-5)


def test_next_coupling_degenerate_inputs():
    auto = entropix.auto_coupling(initial=1.0, max_coupling=10.0, max_factor=2.0)
    one, zero, t = jnp.float32(1.0), jnp.float32(0.0), jnp.int32(0)
    grow, _ = auto_module.next_coupling(auto, one, zero, one, t)  # walker did not move
    shrink, _ = auto_module.next_coupling(auto, one, one, zero, t)  # no gradient
    keep, ratio = auto_module.next_coupling(auto, one, zero, zero, t)  # 0/0
    keep_nan, _ = auto_module.next_coupling(auto, one, jnp.float32(jnp.nan), one, t)
    assert (float(grow), float(shrink), float(keep), float(keep_nan)) == (2.0, 0.5, 1.0, 1.0)
    assert float(ratio) == 0.0


def test_inner_momentum_hardly_changes_the_force_ratio():
    # The ratio reads the inner directions d_k: momentum scales them and the displacement alike
    # (reading the raw gradients, momentum 0.5 would double r).
    auto = entropix.auto_coupling(initial=0.03)

    def shallow(params):
        return 0.05 * (params - jnp.asarray(TARGET, jnp.float32))

    ratios = []
    for inner in (None, optax.trace(0.5, nesterov=True)):
        opt = local_entropy(auto, num_inner=20, lr=0.1, eta=0.1, alpha=0.75, inner=inner)
        _, _, ratio = run(opt, num_outer=1, num_inner=20, gradient=shallow)
        ratios.append(ratio[0])
    np.testing.assert_allclose(ratios[1], ratios[0], rtol=2e-2)
    # A nearly constant gradient: ‖x − μ‖ ≈ η' ‖g‖ (L − (1 − α)/α), so r ≈ γ η' (L − 1/3).
    np.testing.assert_allclose(ratios[0], 0.03 * 0.1 * (20 - 1 / 3), rtol=0.05)


# ---------------------------------------------------------------------------------------------
# Fixed point, bounds, growth
# ---------------------------------------------------------------------------------------------


def force_ratio(gamma, *, num_inner, eta, alpha):
    """r(γ) on an isotropic quadratic, where it depends on γ only (NumPy, float64)."""
    x, target = np.ones(3), np.zeros(3)
    walker, mu, norms = x.copy(), x.copy(), []
    for _ in range(num_inner):
        g = 2.0 * (walker - target)
        norms.append(np.linalg.norm(g))
        walker = walker - eta * (g + gamma * (walker - x))
        mu = (1 - alpha) * mu + alpha * walker
    return gamma * np.linalg.norm(x - mu) / np.mean(norms)


def test_fixed_point_reaches_the_target_ratio():
    auto = entropix.auto_coupling(
        initial=0.05, target_ratio=0.4, growth=0.0, max_coupling=10.0, smoothing=0.5, max_factor=2.0
    )
    settings = dict(num_inner=5, eta=0.1, alpha=0.75)
    opt = local_entropy(auto, lr=0.2, **settings)

    def isotropic(params):
        return 2.0 * params - 2.0 * jnp.asarray(TARGET, jnp.float32)

    _, gammas, ratios = run(opt, num_outer=40, num_inner=5, gradient=isotropic)
    np.testing.assert_allclose(ratios[-1], 0.4, rtol=1e-4)
    np.testing.assert_allclose(gammas[-1], gammas[-2], rtol=1e-4)
    # The fixed point solves r(γ) = ρ, computed independently of the controller.
    np.testing.assert_allclose(force_ratio(gammas[-1], **settings), 0.4, rtol=1e-4)
    below, above = (force_ratio(f * gammas[-1], **settings) for f in (0.9, 1.1))
    assert below < 0.4 < above


@pytest.mark.parametrize(
    ("target_ratio", "bound"), [(1e6, "max_coupling"), (1e-9, "min_coupling")], ids=["cap", "floor"]
)
def test_cap_and_floor(target_ratio, bound):
    # An unreachable target moves γ by the factor clip c every outer step, then holds it at the
    # bound.
    auto = entropix.auto_coupling(
        initial=0.1, target_ratio=target_ratio, max_coupling=0.5, min_coupling=0.02, max_factor=1.5
    )
    opt = local_entropy(auto, num_inner=3, lr=0.2, eta=0.1, alpha=0.75)
    _, gammas, _ = run(opt, num_outer=6, num_inner=3)
    factor = 1.5 if bound == "max_coupling" else 1 / 1.5
    expected = np.clip(0.1 * factor ** np.arange(7), 0.02, 0.5)
    np.testing.assert_allclose(gammas, expected, rtol=1e-6)
    assert gammas[-1] == np.float32(getattr(auto, bound))


def test_growth_law():
    # L = 1, κ = 1 and no factor clip: γ_{t+1} = ρ_t / (α η') = ρ₀ (1 + growth)^t / (α η').
    auto = entropix.auto_coupling(
        initial=1.0,
        target_ratio=0.05,
        growth=0.2,
        max_coupling=100.0,
        smoothing=1.0,
        max_factor=1e6,
    )
    opt = local_entropy(auto, num_inner=1, lr=0.1, eta=0.1, alpha=0.5)
    _, gammas, _ = run(opt, num_outer=6, num_inner=1)
    np.testing.assert_allclose(gammas[1:], 0.05 * 1.2 ** np.arange(6) / 0.05, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# The two forms, Parle, pipelines
# ---------------------------------------------------------------------------------------------


def test_step_form_equals_compiled_form():
    num_inner, num_outer = 4, 3
    targets = jax.random.normal(jax.random.PRNGKey(3), (num_outer * num_inner, 4))
    kwargs = dict(
        num_inner_steps=num_inner,
        coupling=entropix.auto_coupling(initial=0.1, smoothing=0.5, max_factor=1.3),
        noise=0.05,
        weight_decay=1e-3,
        key=5,
    )

    def grad(params, k):
        return jnp.asarray(CURVATURE, jnp.float32) * (params - targets[k])

    step, compiled = (
        entropix.entropy_sgd(0.5, **kwargs),
        entropix.entropy_sgd(0.5, compiled=True, **kwargs),
    )
    params = jnp.asarray(START, jnp.float32)
    step_state, step_update = step.init(params), jax.jit(step.update)
    for k in range(num_outer * num_inner):
        updates, step_state = step_update(grad(params, k), step_state, params)
        params = optax.apply_updates(params, updates)
    params = jnp.asarray(START, jnp.float32)
    compiled_state = compiled.init(params)

    @jax.jit
    def outer_step(params, state, t):
        return compiled.update(
            grad(params, t * num_inner),
            state,
            params,
            grad_fn=lambda p, i: grad(p, t * num_inner + i),
        )

    for t in range(num_outer):
        updates, compiled_state = outer_step(params, compiled_state, t)
        params = optax.apply_updates(params, updates)
    step_gamma = entropix.current_coupling(step_state)
    assert float(step_gamma) != 0.1  # it moved
    np.testing.assert_allclose(step_gamma, entropix.current_coupling(compiled_state), rtol=1e-6)
    np.testing.assert_allclose(
        entropix.anchor_params(step_state), entropix.anchor_params(compiled_state), rtol=1e-6
    )


def run_parle(scales, num_outer=3, num_inner=3):
    """Two Parle replicas from the same start; replica ``a``'s loss has curvature ``scales[a]``."""
    coupling = entropix.auto_coupling(
        initial=1.0, target_ratio=0.2, max_coupling=10.0, smoothing=1.0, max_factor=10.0
    )
    opt = entropix.parle(
        0.2, num_inner_steps=num_inner, coupling=coupling, elastic_coupling=0.5, axis_name="r"
    )
    scales = jnp.asarray(scales, jnp.float32)[:, None]
    params = jnp.tile(jnp.asarray(START, jnp.float32), (2, 1))
    state = jax.vmap(opt.init)(params)
    update = jax.jit(jax.vmap(opt.update, axis_name="r"))
    for _ in range(num_outer * num_inner):
        grads = scales * (params - jnp.asarray(TARGET, jnp.float32))
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return np.asarray(entropix.current_coupling(state))


def test_parle_replicas_carry_their_own_coupling():
    # Each replica measures its own force ratio: with curvatures 1 and 8 they need different γ.
    different = run_parle([1.0, 8.0])
    assert different.shape == (2,)
    assert abs(different[0] / different[1] - 1) > 0.05
    same = run_parle([1.0, 1.0])
    assert same[0] == same[1] and same[0] != 1.0


def test_fixed_coupling_has_no_controller_state():
    state = entropix.entropy_sgd(coupling=0.1).init(jnp.zeros(2))
    assert state.coupling_state == optax.EmptyState()
    assert jax.tree.leaves(state.coupling_state) == []
    with pytest.raises(ValueError, match="fixed coupling"):
        entropix.current_coupling(state)


def test_auto_string_means_the_defaults_and_works_in_pipelines():
    params = jnp.ones(3)
    auto = entropix.entropy_sgd(num_inner_steps=2, coupling="auto")
    explicit = entropix.entropy_sgd(num_inner_steps=2, coupling=entropix.auto_coupling())
    injected = optax.inject_hyperparams(entropix.entropy_sgd)(num_inner_steps=2, coupling="auto")
    chained = optax.chain(optax.clip_by_global_norm(1e3), auto)
    gammas = []
    for opt in (auto, explicit, injected, chained):
        state = opt.init(params)
        p = params
        for _ in range(4):
            updates, state = opt.update(2.0 * p, state, p)
            p = optax.apply_updates(p, updates)
        gammas.append(float(entropix.current_coupling(state)))
    assert gammas[0] != entropix.auto_coupling().initial
    assert gammas == [gammas[0]] * 4


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(initial=-1.0), "initial=-1.0"),
        (dict(target_ratio=0.0), "target_ratio=0.0"),
        (dict(growth=-0.1), "growth=-0.1"),
        (dict(max_coupling=float("inf")), "max_coupling=inf"),
        (dict(min_coupling=0.0), "min_coupling=0.0"),
        (dict(smoothing=1.5), "smoothing=1.5"),
        (dict(max_factor=1.0), "max_factor=1.0"),
        (dict(min_coupling=2.0, max_coupling=1.0, initial=1.5), "min_coupling=2.0"),
        (dict(initial=5.0), "initial=5.0 and max_coupling=1.0"),
        (dict(initial=1e-6), "min_coupling=0.0001 and initial=1e-06"),
    ],
)
def test_bad_auto_coupling_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        entropix.auto_coupling(**kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("factory", "coupling", "error", "match"),
    [
        (entropix.entropy_sgd, "automatic", ValueError, "coupling='automatic'"),
        (entropix.hj, None, TypeError, "coupling=None"),
        (entropix.entropy_adam, [0.1], TypeError, r"coupling=\[0.1\]"),
        (entropix.local_entropy, "auto ", ValueError, "or entropix.auto_coupling"),
        (entropix.heat, "auto", ValueError, "HEAT's `coupling` is the inverse variance"),
        (entropix.heat, entropix.auto_coupling(), ValueError, "not supported"),
    ],
)
def test_bad_coupling_values_raise(factory, coupling, error, match):
    kwargs = {"outer": optax.sgd(0.1)} if factory is entropix.local_entropy else {}
    with pytest.raises(error, match=match) as info:
        factory(coupling=coupling, **kwargs)
    assert "\n" not in str(info.value)


def test_reject_auto_refuses_only_the_automatic_coupling():
    for auto in ("auto", entropix.auto_coupling()):
        with pytest.raises(ValueError, match=r"^coupling=.* is not supported here: the reason$"):
            auto_module.reject_auto(auto, "the reason")
    # Other values, strings included, are left to the caller's own checks.
    for other in ("automatic", "Auto", "", 0.1, optax.constant_schedule(0.1), None):
        assert auto_module.reject_auto(other, "the reason") is None
    # So HEAT refuses a string that is not "auto" with the generic message, not this one.
    with pytest.raises(
        ValueError, match=r"^`coupling` must be a number or a schedule, got"
    ) as info:
        entropix.heat(coupling="0.5")
    assert "not supported" not in str(info.value)


def test_parle_accepts_auto_and_rejects_bad_values():
    opt = entropix.parle(coupling="auto", elastic_coupling=0.5)
    assert float(entropix.current_coupling(opt.init(jnp.zeros(2)))) == np.float32(0.03)
    with pytest.raises(ValueError, match="coupling='autp'"):
        entropix.parle(coupling="autp", elastic_coupling=0.5)


# ---------------------------------------------------------------------------------------------
# Runner configs
# ---------------------------------------------------------------------------------------------


def test_runner_config_accepts_auto():
    from entropix import experiments

    for coupling in ("auto", {"schedule": "auto", "initial": 0.01}):
        entry = {"name": "entropy_sgd", "num_inner_steps": 2, "coupling": coupling}
        experiments.validate_config({"optimizer": entry})
        built = experiments.build_optimizer(entry, steps_per_epoch=10)
        state = built.transform.init(jnp.zeros(2))
        expected = 0.03 if coupling == "auto" else 0.01
        assert float(entropix.current_coupling(state)) == np.float32(expected)
    with pytest.raises(experiments.ConfigError, match=r"optimizer\.coupling='automatic'"):
        experiments.validate_config({"optimizer": {"name": "hj", "coupling": "automatic"}})
    with pytest.raises(ValueError, match="learning_rate"):
        experiments.build_optimizer(
            {"name": "entropy_sgd", "learning_rate": {"schedule": "auto"}}, steps_per_epoch=10
        )


def test_command_line_override_sets_the_automatic_coupling():
    from entropix.experiments import build_optimizer, cli, validate_config

    config = cli.load_config("mnist1d_compare")
    cli.apply_override(config, "optimizer.coupling", "auto")
    cli.apply_override(config, "optimizers.4.coupling", "auto")
    assert config["optimizer"]["coupling"] == config["optimizers"][4]["coupling"] == "auto"
    validate_config(config)
    built = build_optimizer(config["optimizer"], steps_per_epoch=10)
    assert float(entropix.current_coupling(built.transform.init(jnp.zeros(2)))) == np.float32(0.03)
    with pytest.raises(cli._UsageError, match="expected a number"):
        cli.apply_override(config, "optimizer.learning_rate", "auto")
