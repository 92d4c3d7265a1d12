"""Replica optimizers under vmap: reductions, identities and fixed points."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import entropix

AXIS = "replicas"
L = 4


def mlp_params(key):
    k1, k2 = jax.random.split(jax.random.PRNGKey(key))
    return {"w1": jax.random.normal(k1, (3, 5)) * 0.5, "w2": jax.random.normal(k2, (5, 2)) * 0.5}


def loss(params, batch):
    inputs, targets = batch
    return jnp.mean((jnp.tanh(inputs @ params["w1"]) @ params["w2"] - targets) ** 2)


grad = jax.grad(loss)


def make_batches(num_replicas, num_steps, key=1):
    k1, k2 = jax.random.split(jax.random.PRNGKey(key))
    inputs = jax.random.normal(k1, (num_replicas, num_steps, 6, 3))
    return inputs, jax.random.normal(k2, (num_replicas, num_steps, 6, 2))


def stack(trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def run_replicas(opt, params, batches, num_steps):
    """Step form under vmap; ``params`` and ``batches`` have a leading replica axis."""
    state = jax.vmap(opt.init)(params)

    @jax.jit
    def step(params, state, k):
        def one(p, s, inputs, targets):
            g = grad(p, (inputs[k], targets[k]))
            return opt.update(g, s, p)

        updates, state = jax.vmap(one, axis_name=AXIS)(params, state, *batches)
        return optax.apply_updates(params, updates), state

    for k in range(num_steps):
        params, state = step(params, state, k)
    return params, state


def run_single(opt, params, batches, num_steps):
    state = opt.init(params)
    update = jax.jit(opt.update)
    for k in range(num_steps):
        updates, state = update(grad(params, (batches[0][k], batches[1][k])), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


PARLE_ARGS = dict(num_inner_steps=L, coupling=0.2, sgld_learning_rate=0.1, noise=0.0)


@pytest.mark.parametrize("elastic_coupling", [0.0, 3.0])
def test_parle_single_replica_is_entropy_sgd(elastic_coupling):
    params, batches = mlp_params(0), make_batches(1, 3 * L)
    parle = entropix.parle(0.5, elastic_coupling=elastic_coupling, **PARLE_ARGS)
    parle_params, _ = run_replicas(parle, stack([params]), batches, 3 * L)
    esgd = entropix.entropy_sgd(0.5, **PARLE_ARGS)
    esgd_params, _ = run_single(esgd, params, (batches[0][0], batches[1][0]), 3 * L)
    chex.assert_trees_all_close(
        jax.tree.map(lambda p: p[0], parle_params), esgd_params, rtol=1e-6, atol=1e-7
    )


def test_identical_replicas_stay_identical_and_equal_entropy_sgd():
    params, batches = mlp_params(0), make_batches(1, 2 * L)
    replicated_batches = jax.tree.map(lambda b: jnp.repeat(b, 3, axis=0), batches)
    parle = entropix.parle(0.5, elastic_coupling=2.0, **PARLE_ARGS)
    parle_params, _ = run_replicas(parle, stack([params] * 3), replicated_batches, 2 * L)
    esgd_params, _ = run_single(
        entropix.entropy_sgd(0.5, **PARLE_ARGS), params, (batches[0][0], batches[1][0]), 2 * L
    )
    for a in range(3):
        chex.assert_trees_all_close(
            jax.tree.map(lambda p, a=a: p[a], parle_params), esgd_params, rtol=1e-6, atol=1e-7
        )


def test_elastic_force_never_moves_the_master():
    # The coupling forces sum to zero over replicas, so the replica mean after
    # an outer step does not depend on ρ (momentum is linear, so this holds with Nesterov too).
    params = stack([mlp_params(k) for k in range(3)])
    batches = make_batches(3, L)
    means = []
    for rho in (0.0, 5.0):
        opt = entropix.parle(0.5, elastic_coupling=rho, **PARLE_ARGS)
        new_params, state = run_replicas(opt, params, batches, L)
        means.append(jax.tree.map(lambda p: p.mean(0), new_params))
        anchors = entropix.anchor_params(state)
        chex.assert_trees_all_close(anchors, new_params)
    chex.assert_trees_all_close(means[0], means[1], rtol=1e-5, atol=1e-6)
    spread = [optax.tree.norm(jax.tree.map(lambda p: p - p.mean(0), p)) for p in (params,)]
    assert float(spread[0]) > 0.1  # the replicas really differ


def test_elastic_sgd_without_coupling_is_independent_sgd():
    params = stack([mlp_params(k) for k in range(3)])
    batches = make_batches(3, 5)
    elastic, _ = run_replicas(entropix.elastic_sgd(0.1, elastic_coupling=0.0), params, batches, 5)
    sgd = optax.sgd(0.1, momentum=0.9, nesterov=True)
    for a in range(3):
        single, _ = run_single(
            sgd, jax.tree.map(lambda p, a=a: p[a], params), (batches[0][a], batches[1][a]), 5
        )
        chex.assert_trees_all_close(
            jax.tree.map(lambda p, a=a: p[a], elastic), single, rtol=1e-6, atol=1e-7
        )


def quadratic_replicas(curvatures, centers):
    """Replica a sees only its own data: f_a(y) = ½ a_a (y − m_a)² (split data)."""

    def run(opt, num_steps, start=0.0):
        params = jnp.full((len(curvatures), 1), start)
        state = jax.vmap(opt.init)(params)

        @jax.jit
        def step(params, state):
            def one(p, s, a, m):
                return opt.update(a * (p - m), s, p)

            updates, state = jax.vmap(one, axis_name=AXIS)(
                params, state, jnp.asarray(curvatures)[:, None], jnp.asarray(centers)[:, None]
            )
            return optax.apply_updates(params, updates), state

        for _ in range(num_steps):
            params, state = step(params, state)
        return np.asarray(params[:, 0])

    return run


def consensus(effective_curvatures, centers, rho):
    b, m = np.asarray(effective_curvatures), np.asarray(centers)
    center = np.sum(b * m / (b + rho)) / np.sum(b / (b + rho))
    return (b * m + rho * center) / (b + rho), center


def test_elastic_sgd_split_data_consensus_fixed_point():
    curvatures, centers, rho = [1.0, 2.0, 0.5], [1.0, -1.0, 3.0], 0.7
    run = quadratic_replicas(curvatures, centers)
    final = run(entropix.elastic_sgd(0.1, elastic_coupling=rho), 600)
    replicas, center = consensus(curvatures, centers, rho)
    np.testing.assert_allclose(final, replicas, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(final.mean(), center, rtol=1e-5, atol=1e-5)
    # As ρ grows the consensus approaches the minimizer of Σ f_a.
    strong, _ = consensus(curvatures, centers, 1e6)
    np.testing.assert_allclose(strong, np.dot(curvatures, centers) / np.sum(curvatures), rtol=1e-4)


def test_parle_split_data_consensus_fixed_point():
    # Split-data Parle (thesis §5.5) on quadratics with a finite deterministic inner loop:
    # x^a − μ^a = (1 − c_a)(x^a − y*_a), c_a from the one-outer-step formula
    # (entropix.toys.entropy_sgd_quadratic_step), y*_a = (a m + γ x)/(a + γ).
    curvatures, centers = np.array([1.0, 2.0, 0.5]), np.array([1.0, -1.0, 3.0])
    gamma, rho, step, alpha = 0.5, 0.7, 0.1, 0.75
    contraction = 1 - step * (curvatures + gamma)
    j = np.arange(1, L + 1)[:, None]
    c = (1 - alpha) ** L + alpha * np.sum((1 - alpha) ** (L - j) * contraction**j, axis=0)
    effective = (1 - c) * curvatures / (curvatures + gamma)
    replicas, _ = consensus(effective, centers, rho)
    opt = entropix.parle(
        0.5,
        num_inner_steps=L,
        coupling=gamma,
        elastic_coupling=rho,
        sgld_learning_rate=step,
        noise=0.0,
        inner_momentum=0.0,
        average_weight=alpha,
    )
    final = quadratic_replicas(curvatures, centers)(opt, 400 * L)
    np.testing.assert_allclose(final, replicas, rtol=1e-4, atol=1e-5)


def test_rsgd_center_update_is_coupling_free():
    # Σ_a (w^a − w̄) = 0, so the coupling cancels in the center:
    # w̄_{t+1} = w̄_t − (η/y) Σ_a ∇L(w^a) for any K, γ (plain SGD).
    params = stack([mlp_params(k) for k in range(4)])
    batches = make_batches(4, 1)
    state_free = None
    for gamma, every in ((0.0, 1), (3.0, 1), (3.0, 2)):
        opt = entropix.replicated_sgd(0.1, elastic_coupling=gamma, every=every)
        new_params, _ = run_replicas(opt, params, batches, 1)
        center = jax.tree.map(lambda p: p.mean(0), new_params)
        if state_free is None:
            state_free = center
        chex.assert_trees_all_close(center, state_free, rtol=1e-6, atol=1e-7)


def test_rsgd_spread_decays_geometrically_and_periodic_coupling():
    lr, gamma = 0.1, 2.0
    start = jnp.array([[1.0], [-1.0], [3.0]])

    def spread_after(opt, steps):
        params = start
        state = jax.vmap(opt.init)(params)
        update = jax.jit(jax.vmap(opt.update, axis_name=AXIS))
        for _ in range(steps):
            updates, state = update(jnp.zeros_like(params), state, params)
            params = optax.apply_updates(params, updates)
        return np.asarray(params - params.mean(0))

    deviation = np.asarray(start - start.mean(0))
    k1 = spread_after(entropix.replicated_sgd(lr, elastic_coupling=gamma), 5)
    np.testing.assert_allclose(k1, (1 - lr * gamma) ** 5 * deviation, rtol=1e-5)
    # K = 2: coupling 2γ on even steps only, nothing on odd steps.
    k2 = spread_after(entropix.replicated_sgd(lr, elastic_coupling=gamma, every=2), 3)
    np.testing.assert_allclose(k2, (1 - 2 * lr * gamma) ** 2 * deviation, rtol=1e-5)
    single = spread_after(entropix.replicated_sgd(lr, elastic_coupling=gamma), 1)
    np.testing.assert_allclose(single, (1 - lr * gamma) * deviation, rtol=1e-5)


def test_parle_noise_differs_between_replicas():
    opt = entropix.parle(
        0.5, num_inner_steps=L, coupling=0.2, elastic_coupling=1.0, noise=0.1, key=4
    )
    params = stack([mlp_params(0)] * 2)
    batches = jax.tree.map(lambda b: jnp.repeat(b, 2, axis=0), make_batches(1, 2))
    new_params, _ = run_replicas(opt, params, batches, 2)
    difference = jax.tree.map(lambda p: p[0] - p[1], new_params)
    assert float(optax.tree.norm(difference)) > 1e-3


@pytest.mark.parametrize(
    "opt",
    [
        entropix.parle(0.1, num_inner_steps=2, coupling=0.1, elastic_coupling=1.0),
        entropix.elastic_sgd(0.1),
        entropix.replicated_sgd(0.1, every=1),
    ],
    ids=["parle", "elastic", "rsgd"],
)
def test_unbound_replica_axis_is_a_clear_error(opt):
    params = jnp.ones(3)
    state = opt.init(params)
    with pytest.raises(ValueError, match="'replicas' is not bound"):
        for _ in range(2):
            _, state = opt.update(params, state, params)


def test_parle_default_scoping_needs_steps_per_epoch_and_fills_only_missing_couplings():
    # Either coupling left to its default schedule needs steps_per_epoch.
    for given in ({}, {"coupling": 0.5}, {"elastic_coupling": 1.0}):
        with pytest.raises(ValueError, match="steps_per_epoch"):
            entropix.parle(0.1, **given)
    # The defaults are Parle's scoping schedules; a coupling that is given is used as given.
    # One minibatch per epoch: the schedules double every outer step and reach their clips
    # (γ: 1 after 7 outer steps, ρ: 10 after 4) within the 8 outer steps run here.
    params, batches = stack([mlp_params(0), mlp_params(1)]), make_batches(2, 16)
    args = dict(num_inner_steps=2, sgld_learning_rate=0.1, noise=0.0, steps_per_epoch=1)
    gamma = entropix.parle_scoping(0.01, 1, max_coupling=1.0)
    rho = entropix.parle_scoping(1.0, 1, max_coupling=10.0)
    for given, explicit in (
        (dict(coupling=0.3), dict(coupling=0.3, elastic_coupling=rho)),
        (dict(elastic_coupling=2.0), dict(coupling=gamma, elastic_coupling=2.0)),
    ):
        chex.assert_trees_all_close(
            run_replicas(entropix.parle(0.5, **given, **args), params, batches, 16)[0],
            run_replicas(entropix.parle(0.5, **explicit, **args), params, batches, 16)[0],
        )


def test_ensemble_and_replica_mean():
    logits = jnp.log(jnp.array([[[1.0, 1.0]], [[1.0, 3.0]]]))
    probs = jax.vmap(lambda z: entropix.ensemble_probabilities(z, AXIS), axis_name=AXIS)(logits)
    np.testing.assert_allclose(probs[1, 0], [0.375, 0.625], rtol=1e-6)
    # Sequence logits (batch, time, classes): the softmax is over the classes, the last axis.
    logits = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4, 5))
    probs = jax.vmap(lambda z: entropix.ensemble_probabilities(z, AXIS), axis_name=AXIS)(logits)
    expected = np.mean(np.asarray(jax.nn.softmax(logits, axis=-1)), axis=0)
    np.testing.assert_allclose(probs, np.broadcast_to(expected, probs.shape), rtol=1e-5)
    stats = {"mean": jnp.array([[1.0], [3.0]])}
    averaged = jax.vmap(lambda s: entropix.replica_mean(s, AXIS), axis_name=AXIS)(stats)
    np.testing.assert_allclose(averaged["mean"], [[2.0], [2.0]])


def _pmean(tree, axis_name):
    return jax.lax.pmean(tree, axis_name)


@pytest.mark.parametrize("num_replicas", [1, 2, 3, 7])
def test_replica_mean_equals_pmean_in_value_and_gradient(num_replicas):
    stacked = jax.random.normal(jax.random.PRNGKey(num_replicas), (num_replicas, 4, 3))

    def objective(x, mean_fn):
        coupled = jax.vmap(lambda w: jnp.sin(mean_fn(w, AXIS) * w), axis_name=AXIS)(x)
        return jnp.sum(coupled * jnp.arange(coupled.size).reshape(coupled.shape))

    np.testing.assert_allclose(
        jax.vmap(lambda w: entropix.replica_mean(w, AXIS), axis_name=AXIS)(stacked),
        jax.vmap(lambda w: _pmean(w, AXIS), axis_name=AXIS)(stacked),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        jax.grad(objective)(stacked, entropix.replica_mean),
        jax.grad(objective)(stacked, _pmean),
        rtol=1e-5,
        atol=1e-6,
    )


def test_replica_mean_averages_over_its_own_axis_when_maps_are_nested():
    stacked = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 2))  # (replicas, examples, ...)

    def inner_examples(mean_fn):
        per_replica = lambda w: jax.vmap(lambda v: mean_fn(v, AXIS))(w)  # noqa: E731
        return jax.vmap(per_replica, axis_name=AXIS)(stacked)

    def outer_examples(mean_fn):
        swapped = jnp.swapaxes(stacked, 0, 1)  # (examples, replicas, ...)
        per_example = lambda w: jax.vmap(lambda v: mean_fn(v, AXIS), axis_name=AXIS)(w)  # noqa: E731
        return jax.vmap(per_example)(swapped)

    for nested in (inner_examples, outer_examples):
        np.testing.assert_allclose(nested(entropix.replica_mean), nested(_pmean), rtol=1e-6)


def test_replica_mean_under_vmap_compiles_without_a_replica_axis_reduction():
    stacked = jnp.ones((3, 1000))
    mean = jax.jit(jax.vmap(lambda w: entropix.replica_mean(w, AXIS), axis_name=AXIS))
    assert "reduce" in jax.jit(lambda x: jnp.mean(x, 0)).lower(stacked).as_text()
    assert "reduce" not in mean.lower(stacked).as_text()


def test_replica_mean_over_a_tuple_of_axes():
    stacked = jax.random.normal(jax.random.PRNGKey(5), (2, 3, 4))  # (outer, inner, ...)

    def nested(mean_fn):
        inner = jax.vmap(lambda v: mean_fn(v, ("outer", "inner")), axis_name="inner")
        return jax.vmap(inner, axis_name="outer")(stacked)

    got, want = nested(entropix.replica_mean), nested(_pmean)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(got[1, 2], stacked.reshape(6, 4).mean(0), rtol=1e-6)


@pytest.mark.parametrize(
    ("factory", "default"), [(entropix.elastic_sgd, 1.0), (entropix.replicated_sgd, 1e-3)]
)
def test_deprecated_coupling_keyword_sets_the_elastic_coupling(factory, default):
    # `coupling=` is the old name of `elastic_coupling=`: alone it warns and sets ρ (the same
    # steps as the new name), with the new name at a value of its own it is an error.
    params = stack([mlp_params(0), mlp_params(1)])
    batches = make_batches(2, 2)
    with pytest.warns(DeprecationWarning, match="elastic_coupling=0.5"):
        old = factory(0.1, coupling=0.5)
    with pytest.warns(DeprecationWarning):
        factory(0.1, coupling=0.5, elastic_coupling=default)  # the new name left at its default
    chex.assert_trees_all_close(
        run_replicas(old, params, batches, 2)[0],
        run_replicas(factory(0.1, elastic_coupling=0.5), params, batches, 2)[0],
    )
    with pytest.raises(TypeError, match="both `coupling` and `elastic_coupling`"):
        factory(0.1, coupling=0.5, elastic_coupling=2 * default)


def test_elastic_coupling_every_k_steps_with_strength_k_rho():
    # Two replicas at w = 1 and 3 (mean 2), zero gradients, ρ = 0.1, K = 3: the force
    # K ρ (w − mean) = ∓0.3 acts at counts 0, 3, 6 and nowhere else.
    tx = entropix.add_elastic_coupling(0.1, axis_name=AXIS, every=3)
    params = jnp.array([[1.0], [3.0]])
    state = jax.vmap(tx.init)(params)
    step = jax.vmap(lambda s, p: tx.update(jnp.zeros(1), s, p), axis_name=AXIS)
    forces = []
    for _ in range(7):
        updates, state = step(state, params)
        forces.append(np.asarray(updates[:, 0]))
    expected = [[-0.3, 0.3] if count % 3 == 0 else [0.0, 0.0] for count in range(7)]
    np.testing.assert_allclose(forces, expected, rtol=1e-6)


def test_vmapped_step_form_keeps_the_outer_step_in_a_branch():
    # vmap batches the step counter, and a `lax.cond` on a batched predicate becomes a select
    # that runs the outer step (and its replica mean) at every inner step.
    opt = entropix.parle(**PARLE_ARGS, elastic_coupling=1.0)
    params = stack([mlp_params(k) for k in range(3)])
    batches = make_batches(3, 1)

    def one(p, s, inputs, targets):
        return opt.update(grad(p, (inputs[0], targets[0])), s, p)

    step = jax.jit(jax.vmap(one, axis_name=AXIS))
    hlo = step.lower(params, jax.vmap(opt.init)(params), *batches).compile().as_text()
    assert " conditional(" in hlo


def test_vmapped_step_form_with_counters_apart_matches_each_model_alone():
    # Two models whose inner counters differ by 2 (L = 4): their outer steps fall on different
    # calls, and each must still get exactly its own branch.
    opt = entropix.entropy_sgd(0.5, num_inner_steps=L, coupling=0.2, noise=0.0)
    inputs, targets = make_batches(2, 2 + 2 * L)
    update = jax.jit(opt.update)

    def run_alone(model, num_steps):
        params = mlp_params(model)
        state = opt.init(params)
        for k in range(num_steps):
            updates, state = update(
                grad(params, (inputs[model, k], targets[model, k])), state, params
            )
            params = optax.apply_updates(params, updates)
        return params, state

    starts = [run_alone(0, 0), run_alone(1, 2)]
    alone = [run_alone(0, 2 * L)[0], run_alone(1, 2 + 2 * L)[0]]
    params, state = stack([p for p, _ in starts]), stack([s for _, s in starts])
    np.testing.assert_array_equal(state.inner_count, [0, 2])

    @jax.jit
    def step(params, state, batch):
        updates, state = jax.vmap(lambda p, s, b: opt.update(grad(p, b), s, p))(
            params, state, batch
        )
        return optax.apply_updates(params, updates), state

    for k in range(2 * L):
        batch = (
            inputs[jnp.arange(2), jnp.array([k, 2 + k])],
            targets[jnp.arange(2), jnp.array([k, 2 + k])],
        )
        params, state = step(params, state, batch)
    chex.assert_trees_all_close(params, stack(alone), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(state.outer_count, [2, 2])
