"""Trivialized-SGD (thesis ch. 2: Algorithm 1, eqs. 2.15 and 2.19–2.20, Figs. 2.3b and 2.4)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from entropix._src import trivialize as tz

KEY = jax.random.key(0)


def _params(dtype=jnp.float32):
    return {
        "dense": {"w": jnp.ones((30, 20), dtype), "b": jnp.zeros((20,), dtype)},
        "out": {"w": jnp.ones((20, 5), dtype)},
    }


def _field(state):
    return tz.get_trivializing_field(state)


# --- schedule and order parameter (thesis eqs. 2.15, 2.19–2.20) -------------------------------


def test_schedule_values():
    tau0 = 500.0
    assert float(tz.field_schedule(0, tau0)) == pytest.approx(math.sqrt(2.0), rel=1e-6)
    assert float(tz.field_schedule(tau0 * math.log(2.0), tau0)) == pytest.approx(1.0, rel=1e-6)
    steps = jnp.arange(0, 20_000, 100)
    m = np.asarray(tz.field_schedule(steps, tau0))
    assert np.all(np.diff(m) < 0)
    assert m[-1] < 1e-8
    # The general form (1 + 2 τ_i / N)^{1/2}, τ_i = n (e^{−i/τ0} − ½) with n = N.
    n = 137.0
    tau_i = n * (np.exp(-np.asarray(steps) / tau0) - 0.5)
    np.testing.assert_allclose(m, np.sqrt(1.0 + 2.0 * tau_i / n), rtol=1e-5, atol=1e-7)


def test_order_parameter_and_critical_field():
    assert float(tz.critical_field(1.0, 3)) == pytest.approx(math.sqrt(3.0), rel=1e-6)
    assert float(tz.trivialization_order_parameter(3.0, 1.0, 3)) == pytest.approx(-1.0 / 3.0)
    assert float(tz.trivialization_order_parameter(math.sqrt(3.0), 1.0, 3)) == pytest.approx(
        0.0, abs=1e-6
    )
    n = 100
    nu = math.sqrt(3.0) * math.sqrt(1.0 - 1.0 / n)
    assert float(tz.trivialization_order_parameter(nu, 1.0, 3)) == pytest.approx(
        (3.0 / n) / (12.0 - 3.0 / n), rel=1e-4
    )
    # Along the schedule ν = m ν_c: B = (p−2)(1 − m²)/(p + (p−2) m²); B(0) = −(p−2)/(3p−4).
    for p in (3, 5, 16):
        nu_c = float(tz.critical_field(0.1, p))
        b0 = float(tz.trivialization_order_parameter(math.sqrt(2.0) * nu_c, 0.1, p))
        assert b0 == pytest.approx(-(p - 2) / (3 * p - 4), rel=1e-5)
        b_inf = float(tz.trivialization_order_parameter(0.0, 0.1, p))
        assert b_inf == pytest.approx(1.0 - 2.0 / p, rel=1e-6)


# --- the transformation ------------------------------------------------------------------------


def test_adds_annealed_fixed_field():
    j, p, tau0 = 1e-2, 4, 10.0
    tx = tz.add_trivializing_field(j, num_layers=p, tau0=tau0, key=KEY)
    params = _params()
    state = tx.init(params)
    h = _field(state)
    # std of the field is ν_c = J √(p(p−2)).
    flat = np.concatenate([np.ravel(x) for x in jax.tree.leaves(h)])
    nu_c = j * math.sqrt(p * (p - 2))
    assert flat.std() == pytest.approx(nu_c, rel=0.08)
    assert abs(flat.mean()) < 0.2 * nu_c
    grads = jax.tree.map(lambda x: 0.5 * jnp.ones_like(x), params)
    update = jax.jit(tx.update)
    for i in range(5):
        updates, state = update(grads, state, params)
        m = math.sqrt(2.0) * math.exp(-i / (2.0 * tau0))
        for u, hh in zip(jax.tree.leaves(updates), jax.tree.leaves(h), strict=True):
            np.testing.assert_allclose(u, 0.5 + m * np.asarray(hh), rtol=1e-5, atol=1e-7)
        # direction fixed: the state's field never changes
        for a, b in zip(jax.tree.leaves(_field(state)), jax.tree.leaves(h), strict=True):
            np.testing.assert_array_equal(a, b)
    assert int(state.count) == 5


def test_resample_baseline_changes_direction_keeps_magnitude():
    j, p, tau0 = 1.0, 3, 4.0
    tx = tz.add_trivializing_field(j, num_layers=p, tau0=tau0, key=KEY, resample=True)
    params = {"w": jnp.zeros((200, 100))}
    state = tx.init(params)
    zeros = {"w": jnp.zeros((200, 100))}
    update = jax.jit(tx.update)
    prev = None
    nu_c2 = j**2 * p * (p - 2)
    for i in range(4):
        updates, state = update(zeros, state, params)
        u = np.asarray(updates["w"]).ravel()
        m2 = 2.0 * math.exp(-i / tau0)
        assert np.mean(u**2) == pytest.approx(m2 * nu_c2, rel=0.03)
        if prev is not None:
            cos = u @ prev / (np.linalg.norm(u) * np.linalg.norm(prev))
            assert abs(cos) < 0.05
        prev = u


def test_fixed_direction_cosine_one_across_steps():
    tx = tz.add_trivializing_field(1.0, num_layers=3, tau0=3.0, key=KEY)
    params = {"w": jnp.zeros((50,))}
    state = tx.init(params)
    outs = []
    for _ in range(3):
        u, state = tx.update({"w": jnp.zeros(50)}, state)
        outs.append(np.asarray(u["w"]))
    for a in outs[1:]:
        assert a @ outs[0] / (np.linalg.norm(a) * np.linalg.norm(outs[0])) == pytest.approx(1.0)


def test_bf16_dtypes_and_shape_dtype_struct_init():
    tx = tz.add_trivializing_field(1e-3, num_layers=5, tau0=100.0, key=KEY)
    params = _params(jnp.bfloat16)
    state = tx.init(params)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    state_abstract = tx.init(abstract)
    leaves = zip(
        jax.tree.leaves(_field(state)), jax.tree.leaves(_field(state_abstract)), strict=True
    )
    for a, b in leaves:
        assert a.dtype == jnp.bfloat16
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = jax.jit(tx.update)(grads, state, params)
    assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates))
    # under jax.eval_shape the init works on abstract values too
    shapes = jax.eval_shape(tx.init, abstract)
    assert jax.tree.leaves(shapes.field)[0].dtype == jnp.bfloat16


def test_inject_hyperparams_numeric_hyperparameters():
    make = optax.inject_hyperparams(tz.add_trivializing_field, hyperparam_dtype=jnp.float32)
    tx = make(1e-2, num_layers=3, tau0=10.0, key=jax.random.PRNGKey(1))
    params = {"w": jnp.zeros((8,))}
    state = tx.init(jax.ShapeDtypeStruct((8,), jnp.float32))
    state = tx.init(params)
    h = np.asarray(_field(state)["w"])
    update = jax.jit(tx.update)
    u, state = update({"w": jnp.zeros(8)}, state, params)
    np.testing.assert_allclose(u["w"], math.sqrt(2.0) * h, rtol=1e-6)
    # change tau0 and J through the injected state: the field direction is fixed at init,
    # the schedule uses the new tau0.
    state.hyperparams["tau0"] = jnp.asarray(1.0)
    u, state = update({"w": jnp.zeros(8)}, state, params)
    np.testing.assert_allclose(u["w"], math.sqrt(2.0) * math.exp(-0.5) * h, rtol=1e-5)


def test_trivialized_sgd_matches_manual_nesterov():
    lr, beta_m, j, p, tau0 = 0.1, 0.9, 0.05, 3, 5.0
    tx = tz.trivialized_sgd(lr, spin_coupling=j, num_layers=p, tau0=tau0, key=KEY)

    def loss(w):
        return 0.5 * jnp.sum((w - 1.0) ** 2)

    w = {"w": jnp.zeros(6)}
    state = tx.init(w)
    h = np.asarray(_field(state)["w"])
    w_ref, buf = np.zeros(6), np.zeros(6)
    step = jax.jit(tx.update)
    for i in range(6):
        g = jax.grad(lambda q: loss(q["w"]))(w)
        updates, state = step(g, state, w)
        w = optax.apply_updates(w, updates)
        g_ref = (w_ref - 1.0) + math.sqrt(2.0) * math.exp(-i / (2 * tau0)) * h
        buf = beta_m * buf + g_ref
        w_ref = w_ref - lr * (g_ref + beta_m * buf)
        np.testing.assert_allclose(w["w"], w_ref, rtol=1e-5, atol=1e-6)


def test_trivialized_sgd_weight_decay():
    tx = tz.trivialized_sgd(
        1.0, spin_coupling=1.0, num_layers=3, tau0=1.0, key=KEY, momentum=None, weight_decay=0.1
    )
    params = {"w": jnp.full((4,), 2.0)}
    state = tx.init(params)
    h = np.asarray(_field(state)["w"])
    u, _ = tx.update({"w": jnp.zeros(4)}, state, params)
    np.testing.assert_allclose(u["w"], -(0.2 + math.sqrt(2.0) * h), rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(spin_coupling=0.0, num_layers=3, tau0=1.0), "spin_coupling"),
        (dict(spin_coupling=1.0, num_layers=2, tau0=1.0), "num_layers"),
        (dict(spin_coupling=1.0, num_layers=3, tau0=-5.0), "tau0"),
        (dict(spin_coupling=1.0, num_layers=3, tau0=0.0), "tau0"),
    ],
)
def test_validation_names_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tz.add_trivializing_field(kwargs.pop("spin_coupling"), key=KEY, **kwargs)


def test_heuristics():
    params = {
        "l1": {"w": jnp.zeros((784, 100)), "b": jnp.zeros(100)},
        "l2": {"w": jnp.zeros((100, 10)), "b": jnp.zeros(10)},
        "bn": {"scale": jnp.zeros(100)},
    }
    p, n = tz.trivialization_heuristics(params)
    total = 784 * 100 + 100 + 1000 + 10 + 100
    assert p == 2
    assert n == round(math.sqrt(total / 2))
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    assert tz.trivialization_heuristics(abstract) == (p, n)
    with pytest.raises(ValueError, match="num_layers"):
        tz.trivialization_heuristics({"b": jnp.zeros(3)})


def test_diagnostics():
    g = {"a": jnp.array([0.5, -0.1]), "b": jnp.array([[2.0, -3.0]])}
    assert float(tz.min_abs_gradient(g)) == pytest.approx(0.1)
    per = tz.min_abs_gradient(g, per_leaf=True)
    assert float(per["b"]) == pytest.approx(2.0)
    h = {"a": jnp.array([1.0, 0.0]), "b": jnp.array([[0.0, 1.0]])}
    w = {"a": jnp.array([1.0, 1.0]), "b": jnp.array([[0.0, 0.0]])}
    # |h·w| / (|h||w|) = 1 / (√2 √2)
    assert float(tz.field_alignment(h, w)) == pytest.approx(0.5)
    assert float(tz.field_alignment(h, jax.tree.map(jnp.zeros_like, w))) == 0.0
    # Scale invariance, also when ‖h‖ ‖w‖ < 1 (here 0.02).
    small = jax.tree.map(lambda x: 0.1 * x, (h, w))
    assert float(tz.field_alignment(*small)) == pytest.approx(0.5, rel=1e-6)
    with pytest.raises(ValueError, match="zip"):  # a leaf missing, not silently dropped
        tz.field_alignment(h, {"a": w["a"]})
    with pytest.raises(ValueError, match="TrivializingFieldState"):
        tz.get_trivializing_field(optax.sgd(0.1).init(w))


def test_weights_align_with_fixed_field_not_with_resampled_noise():
    """Thesis Fig. 2.4: under a fixed field the weights align with h (|h·w| grows)."""

    def loss(w):
        return 0.05 * jnp.sum(w["w"] ** 2)

    def run(resample):
        tx = tz.trivialized_sgd(
            0.1, spin_coupling=0.1, num_layers=3, tau0=200.0, key=KEY, resample=resample
        )
        w = {"w": jax.random.normal(jax.random.key(5), (500,))}
        state = tx.init(w)
        h = _field(state)  # the initial draw

        def step(carry, _):
            w, state = carry
            updates, state = tx.update(jax.grad(loss)(w), state, w)
            return (optax.apply_updates(w, updates), state), None

        (w, state), _ = jax.lax.scan(step, (w, state), None, length=150)
        return float(tz.field_alignment(h, w))

    fixed, resampled = run(False), run(True)
    assert fixed > 0.9
    assert resampled < 0.3


def test_integer_seed_equals_key():
    params = {"w": jnp.zeros((3, 4))}
    a = tz.add_trivializing_field(1.0, num_layers=3, tau0=1.0, key=7).init(params)
    b = tz.add_trivializing_field(1.0, num_layers=3, tau0=1.0, key=jax.random.key(7)).init(params)
    np.testing.assert_array_equal(a.field["w"], b.field["w"])
    make = optax.inject_hyperparams(tz.add_trivializing_field)
    c = make(1.0, num_layers=3, tau0=1.0, key=7).init(params)
    np.testing.assert_array_equal(get := tz.get_trivializing_field(c)["w"], a.field["w"])
    assert get.dtype == jnp.float32
