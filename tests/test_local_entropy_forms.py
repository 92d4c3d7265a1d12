"""Step form ≡ compiled form ≡ a plain-Python reference of ICLR'17 Alg. 1; API contracts."""

import chex
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import entropix

NUM_INNER, NUM_OUTER = 3, 3
HYPER = dict(
    coupling=0.3,
    sgld_learning_rate=0.1,
    noise=0.05,
    average_weight=0.75,
    momentum=0.9,
    nesterov=True,
    inner_momentum=0.5,
    inner_nesterov=True,
    weight_decay=1e-3,
    noise_distribution="gaussian",  # the reference below draws N(0, I)
)


def init_params(key=0):
    k1, k2 = jax.random.split(jax.random.PRNGKey(key))
    return {
        "w1": jax.random.normal(k1, (3, 4)) * 0.5,
        "b1": jnp.zeros(4),
        "w2": jax.random.normal(k2, (4, 2)) * 0.5,
        "b2": jnp.zeros(2),
    }


def loss(params, batch):
    inputs, targets = batch
    hidden = jnp.tanh(inputs @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] + params["b2"] - targets) ** 2)


grad = jax.jit(jax.grad(loss))


def make_batches(num, key=1):
    k1, k2 = jax.random.split(jax.random.PRNGKey(key))
    return jax.random.normal(k1, (num, 8, 3)), jax.random.normal(k2, (num, 8, 2))


def batch(batches, k):
    return batches[0][k], batches[1][k]


def reference_normal(key, leaf_index, shape):
    """N(0, 1) as entropix draws it: JAX's Threefry-2x32 of the counters (coordinate, leaf),
    top 24 bits of the first word as the midpoint grid u, then Φ⁻¹(u) = √2 erf⁻¹(2u − 1)."""
    size = int(np.prod(shape))
    counters = jnp.concatenate(
        [jnp.arange(size, dtype=jnp.uint32), jnp.full(size, leaf_index, jnp.uint32)]
    )
    word = jax.extend.random.threefry_2x32(key, counters)[:size] >> 8
    centered = word.astype(jnp.float32) * 2.0**-23 - (1.0 - 2.0**-24)
    return (np.sqrt(2.0) * jax.lax.erf_inv(centered)).reshape(shape)


def reference_entropy_sgd(
    params,
    batches,
    seed,
    lr,
    coupling,
    sgld_learning_rate,
    noise,
    average_weight,
    momentum,
    nesterov,
    inner_momentum,
    inner_nesterov,
    weight_decay,
    noise_distribution,
):
    """ICLR'17 Alg. 1 with Nesterov momentum in both loops, written as plain loops."""
    assert nesterov and inner_nesterov and noise_distribution == "gaussian"
    tmap = jax.tree.map
    x = params
    velocity = tmap(jnp.zeros_like, x)
    key = jax.random.PRNGKey(seed)
    for t in range(NUM_OUTER):
        walker, mu = x, x
        inner_velocity = tmap(jnp.zeros_like, x)
        for ell in range(NUM_INNER):
            k = t * NUM_INNER + ell
            g = tmap(lambda g, w: g + weight_decay * w, grad(walker, batch(batches, k)), walker)
            inner_velocity = tmap(lambda v, g: g + inner_momentum * v, inner_velocity, g)
            d = tmap(lambda g, v: g + inner_momentum * v, g, inner_velocity)
            d = tmap(lambda d, w, a: d + coupling * (w - a), d, walker, x)
            leaves, treedef = jax.tree.flatten(walker)
            step_key = jax.random.fold_in(jax.random.fold_in(key, k), 0)
            noises = jax.tree.unflatten(
                treedef, [reference_normal(step_key, i, w.shape) for i, w in enumerate(leaves)]
            )
            walker = tmap(
                lambda w, d, n: (
                    w - sgld_learning_rate * d + np.sqrt(sgld_learning_rate) * noise * n
                ),
                walker,
                d,
                noises,
            )
            mu = tmap(lambda m, w: (1 - average_weight) * m + average_weight * w, mu, walker)
        outer_grad = tmap(jnp.subtract, x, mu)
        velocity = tmap(lambda v, g: g + momentum * v, velocity, outer_grad)
        x = tmap(lambda x, g, v: x - lr * (g + momentum * v), x, outer_grad, velocity)
    return x


def run_step_form(opt, params, batches):
    state = opt.init(params)
    update = jax.jit(opt.update)
    for k in range(NUM_OUTER * NUM_INNER):
        updates, state = update(grad(params, batch(batches, k)), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def run_compiled_form(opt, params, batches):
    state = opt.init(params)

    @jax.jit
    def outer_step(params, state, group):
        grads = grad(params, (group[0][0], group[1][0]))
        return opt.update(
            grads, state, params, grad_fn=lambda p, i: grad(p, (group[0][i], group[1][i]))
        )

    for t in range(NUM_OUTER):
        sl = slice(t * NUM_INNER, (t + 1) * NUM_INNER)
        updates, state = outer_step(params, state, (batches[0][sl], batches[1][sl]))
        params = optax.apply_updates(params, updates)
    return params, state


def test_step_compiled_and_reference_agree():
    params, batches = init_params(), make_batches(NUM_OUTER * NUM_INNER)
    reference = reference_entropy_sgd(params, batches, seed=7, lr=0.5, **HYPER)
    step_opt = entropix.entropy_sgd(0.5, num_inner_steps=NUM_INNER, key=7, **HYPER)
    compiled_opt = entropix.entropy_sgd(
        0.5, num_inner_steps=NUM_INNER, key=7, compiled=True, **HYPER
    )
    step_params, step_state = run_step_form(step_opt, params, batches)
    compiled_params, compiled_state = run_compiled_form(compiled_opt, params, batches)
    # After a whole number of outer steps the step-form walker sits at the anchor.
    chex.assert_trees_all_close(step_params, entropix.anchor_params(step_state), atol=1e-7)
    chex.assert_trees_all_close(step_params, reference, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(compiled_params, reference, rtol=1e-5, atol=1e-6)
    assert int(step_state.inner_count) == int(compiled_state.inner_count) == NUM_OUTER * NUM_INNER


@pytest.mark.parametrize("distribution", [None, "gaussian"])
def test_default_noise_is_unit_signs(distribution):
    # With zero gradients and no momentum the first SGLD step is pure noise: sqrt(η') ε ξ.
    kwargs = {} if distribution is None else {"noise_distribution": distribution}
    opt = entropix.entropy_sgd(
        num_inner_steps=2, noise=0.5, sgld_learning_rate=0.04, inner_momentum=0.0, **kwargs
    )
    params = jnp.zeros(4096)
    updates, _ = opt.update(jnp.zeros(4096), opt.init(params), params)
    xi = np.asarray(updates) / (0.5 * 0.2)
    np.testing.assert_allclose(xi.var(), 1.0, atol=0.1)
    if distribution is None:
        np.testing.assert_allclose(np.abs(xi), 1.0, rtol=1e-6)
        assert abs(xi.mean()) < 4 / 64
    else:
        assert np.mean(np.abs(xi) > 2) > 0.02  # Gaussian tails, impossible for signs


def test_heat_step_and_compiled_forms_agree():
    params, batches = init_params(), make_batches(NUM_OUTER * NUM_INNER)
    kwargs = dict(num_inner_steps=NUM_INNER, coupling=50.0, key=3, weight_decay=1e-3)
    step_params, step_state = run_step_form(entropix.heat(0.2, **kwargs), params, batches)
    compiled_params, compiled_state = run_compiled_form(
        entropix.heat(0.2, compiled=True, **kwargs), params, batches
    )
    chex.assert_trees_all_close(step_params, compiled_params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(
        entropix.anchor_params(step_state),
        entropix.anchor_params(compiled_state),
        rtol=1e-5,
        atol=1e-6,
    )
    # The live params are a perturbation of the anchor, not the anchor itself.
    difference = optax.tree.norm(jax.tree.map(jnp.subtract, step_params, step_state.anchor))
    assert float(difference) > 0.01


def test_exactly_num_inner_gradient_evaluations_per_outer_step():
    calls = []

    def counting_grad(p, i):
        jax.debug.callback(lambda: calls.append(1))
        return grad(p, (batches[0][i], batches[1][i]))

    batches = make_batches(NUM_INNER)
    opt = entropix.entropy_sgd(num_inner_steps=NUM_INNER, compiled=True, noise=0.0)
    params = init_params()
    state = opt.init(params)
    updates, state = jax.jit(lambda g, s, p: opt.update(g, s, p, grad_fn=counting_grad))(
        grad(params, batch(batches, 0)), state, params
    )
    jax.block_until_ready(updates)
    assert len(calls) == NUM_INNER - 1  # plus the one gradient the caller passed in


def test_inject_hyperparams_matches_plain_factory():
    params, batches = init_params(), make_batches(NUM_OUTER * NUM_INNER)
    plain = entropix.entropy_sgd(0.5, num_inner_steps=NUM_INNER, key=7, **HYPER)
    injected = optax.inject_hyperparams(entropix.entropy_sgd, static_args=("num_inner_steps",))(
        0.5, num_inner_steps=NUM_INNER, key=7, **HYPER
    )
    plain_params, _ = run_step_form(plain, params, batches)
    injected_params, state = run_step_form(injected, params, batches)
    chex.assert_trees_all_close(plain_params, injected_params, rtol=1e-5, atol=1e-6)
    assert float(state.hyperparams["coupling"]) == pytest.approx(0.3)


def test_inject_hyperparams_compiled_form_requires_static_loop_length():
    # The step form takes L as an array (see the conformance suite); a scan length cannot be.
    injected = optax.inject_hyperparams(entropix.entropy_sgd)(num_inner_steps=3, compiled=True)
    with pytest.raises(TypeError, match=r"num_inner_steps.*static_args"):
        injected.init(jnp.zeros(2))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("compiled", [False, True])
def test_dtypes_are_kept(dtype, compiled):
    params = jax.tree.map(lambda p: p.astype(dtype), init_params())
    batches = make_batches(NUM_INNER)
    opt = entropix.entropy_adam(1e-2, num_inner_steps=NUM_INNER, compiled=compiled)
    state = opt.init(params)
    grads = grad(params, batch(batches, 0))
    extra = {"grad_fn": lambda p, i: grad(p, batch(batches, i))} if compiled else {}
    updates, new_state = jax.jit(lambda g, s, p: opt.update(g, s, p, **extra))(grads, state, params)
    chex.assert_trees_all_equal_dtypes(updates, params)
    chex.assert_trees_all_equal_dtypes(new_state.anchor, params)
    chex.assert_trees_all_equal_dtypes(new_state.walker_average, params)
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


def test_init_accepts_shape_dtype_structs():
    params = init_params()
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    opt = entropix.entropy_sgd(num_inner_steps=NUM_INNER)
    state = opt.init(abstract)
    chex.assert_trees_all_equal_shapes_and_dtypes(state.anchor, params)
    chex.assert_trees_all_equal_shapes_and_dtypes(
        jax.eval_shape(opt.init, abstract), jax.eval_shape(opt.init, params)
    )


def test_no_recompilation_on_second_call():
    traces = []
    opt = entropix.entropy_sgd(num_inner_steps=NUM_INNER, compiled=True)
    batches = make_batches(NUM_INNER)

    @jax.jit
    def outer_step(params, state):
        traces.append(1)
        return opt.update(
            grad(params, batch(batches, 0)),
            state,
            params,
            grad_fn=lambda p, i: grad(p, batch(batches, i)),
        )

    params = init_params()
    state = opt.init(params)
    for _ in range(3):
        updates, state = outer_step(params, state)
        params = optax.apply_updates(params, updates)
    assert len(traces) == 1


def test_compiled_form_requires_grad_fn():
    opt = entropix.entropy_sgd(num_inner_steps=2, compiled=True)
    params = jnp.zeros(2)
    with pytest.raises(TypeError, match="grad_fn"):
        opt.update(params, opt.init(params), params)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(num_inner_steps=0), ValueError, "num_inner_steps=0"),
        (dict(num_inner_steps=2.5), TypeError, "num_inner_steps=2.5"),
        (dict(sgld_learning_rate=-0.1), ValueError, "sgld_learning_rate=-0.1"),
        (dict(average_weight=1.5), ValueError, "average_weight=1.5"),
        (dict(average_weight=0.0), ValueError, "average_weight=0.0"),
        (dict(noise=-1.0), ValueError, "noise=-1.0"),
        (dict(coupling=-1.0), ValueError, "coupling=-1.0"),
        (dict(learning_rate=-1.0), ValueError, "learning_rate=-1.0"),
        (dict(momentum=1.5), ValueError, "momentum=1.5"),
        (dict(inner_momentum=-0.5), ValueError, "inner_momentum=-0.5"),
        (dict(weight_decay=-1.0), ValueError, "weight_decay=-1.0"),
        (dict(noise_distribution="uniform"), ValueError, "noise_distribution='uniform'"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        entropix.entropy_sgd(**kwargs)


def test_bad_outer_transformation():
    with pytest.raises(TypeError, match="outer"):
        entropix.local_entropy(lambda g: g)


def test_anchor_params_inside_chain():
    opt = optax.chain(optax.clip_by_global_norm(1.0), entropix.entropy_sgd(num_inner_steps=2))
    params = {"w": jnp.arange(3.0)}
    state = opt.init(params)
    chex.assert_trees_all_close(entropix.anchor_params(state), params)
    with pytest.raises(ValueError, match="LocalEntropyState"):
        entropix.anchor_params(optax.sgd(0.1).init(params))
    # With params: the anchor (not the live params) when the structures match, the params for
    # a state without a two-loop optimizer, a named error when the structures differ.
    live = {"w": jnp.array([5.0, 6.0, 7.0])}
    chex.assert_trees_all_equal(entropix.anchor_params(state, live), params)
    chex.assert_trees_all_equal(entropix.anchor_params(optax.sgd(0.1).init(live), live), live)
    with pytest.raises(ValueError, match="2 leaves vs 1"):
        entropix.anchor_params(state, {"w": live["w"], "b": live["w"]})


@pytest.mark.parametrize("compiled", [False, True])
def test_float32_accumulator_keeps_steps_below_bfloat16_resolution(compiled):
    # bfloat16 resolves 2⁻⁷ ≈ 0.0078 at 1.0: an outer step of 10⁻³ (HEAT, constant gradient,
    # lr 1, no momentum) is lost in a bfloat16 anchor but kept exactly in a float32 one, while
    # the live params stay bfloat16.
    c = jnp.full(4, 1e-3, jnp.bfloat16)
    opt = entropix.heat(
        1.0,
        num_inner_steps=2,
        coupling=1e12,
        momentum=0.0,
        compiled=compiled,
        accumulator_dtype=jnp.float32,
    )
    params = jnp.ones(4, jnp.bfloat16)
    state = opt.init(params)
    for _ in range(1 if compiled else 2):
        updates, state = opt.update(
            c, state, params, **({"grad_fn": lambda p, i: c} if compiled else {})
        )
        params = optax.apply_updates(params, updates)
    anchor = entropix.anchor_params(state)
    assert anchor.dtype == jnp.float32 and params.dtype == jnp.bfloat16
    np.testing.assert_allclose(anchor, 1.0 - float(c[0]), rtol=0, atol=1e-7)
    np.testing.assert_allclose(params, 1.0, atol=0)  # 1 − 10⁻³ rounds to 1 in bfloat16


@pytest.mark.parametrize("num_inner", [1, NUM_INNER])
@pytest.mark.parametrize("compiled", [False, True])
def test_is_outer_step_after_every_outer_step_and_never_at_init(compiled, num_inner):
    # Step form: true after update k iff k is a positive multiple of L; compiled form: after
    # every update. A fresh state has taken no step.
    opt = entropix.heat(0.1, num_inner_steps=num_inner, coupling=10.0, compiled=compiled)
    params = jnp.ones(2)
    state = opt.init(params)
    flags = [bool(entropix.is_outer_step(state))]
    extra = {"grad_fn": lambda p, i: p} if compiled else {}
    for _ in range(2 * num_inner):
        updates, state = opt.update(params, state, params, **extra)
        params = optax.apply_updates(params, updates)
        flags.append(bool(entropix.is_outer_step(state)))
    expected = [k > 0 and (compiled or k % num_inner == 0) for k in range(2 * num_inner + 1)]
    assert flags == expected
