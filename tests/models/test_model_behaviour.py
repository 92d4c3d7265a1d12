"""Output shapes, dropout and BatchNorm train/eval behaviour, LSTM and committee-machine maths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_helpers import KEY, fake_variables, normal

from entropix import models
from entropix.data import committee_teacher_student

SHAPE_CASES = [
    ("mnistfc", {}, (2, 28, 28, 1), (2, 10)),
    ("small-mnistfc", {}, (2, 784), (2, 10)),
    ("deep-mnistfc", {}, (2, 28, 28, 1), (2, 10)),
    ("small-fc", {}, (2, 7, 7, 1), (2, 10)),
    ("tiny-fc", {}, (2, 7, 7, 1), (2, 5)),
    ("lenet", {}, (2, 28, 28, 1), (2, 10)),
    ("small-lenet", {}, (2, 28, 28), (2, 10)),
    ("small-lenet-ch6", {}, (2, 28, 28, 1), (2, 10)),
    ("lenet-ch2", {}, (2, 28, 28, 1), (2, 10)),
    ("mnist1d-cnn", {}, (2, 40), (2, 10)),
    ("allcnn", {}, (2, 32, 32, 3), (2, 10)),
    ("small-allcnn", {"num_classes": 100}, (2, 32, 32, 3), (2, 100)),
    ("wrn-28-10", {"num_classes": 100}, (2, 32, 32, 3), (2, 100)),
    ("wrn-16-4", {}, (2, 32, 32, 3), (2, 10)),
    ("committee", {}, (2, 200), (2,)),
]


@pytest.mark.parametrize(("name", "kwargs", "in_shape", "out_shape"), SHAPE_CASES)
def test_output_shapes(name, kwargs, in_shape, out_shape):
    model = models.get_model(name, **kwargs)

    def forward(x):
        variables = model.init(KEY, x, train=False)
        eval_out = model.apply(variables, x, train=False)
        train_out, _ = model.apply(
            variables, x, train=True, rngs={"dropout": KEY}, mutable=["batch_stats"]
        )
        return eval_out, train_out

    # Shapes only: jax.eval_shape traces without compiling or allocating.
    eval_out, train_out = jax.eval_shape(forward, jax.ShapeDtypeStruct(in_shape, jnp.float32))
    assert eval_out.shape == train_out.shape == out_shape


def _count_primitive(jaxpr, name):
    """Occurrences of a primitive in a jaxpr, sub-jaxprs (pjit, scan, cond) included."""
    count = 0
    for eqn in jaxpr.eqns:
        count += eqn.primitive.name == name
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    count += _count_primitive(inner, name)
    return count


# (model, input shape, dropout layers): train mode draws one mask per dropout layer,
# eval mode draws none, so eval is deterministic by construction.
DROPOUT_SITES = [
    (models.mnistfc(), (2, 28, 28, 1), 3),
    (models.lenet(), (2, 28, 28, 1), 3),
    (models.small_lenet_ch6(), (2, 28, 28, 1), 3),
    (models.lenet_ch2(), (2, 28, 28, 1), 1),
    (models.small_lenet(), (2, 28, 28, 1), 0),
    (models.allcnn(), (2, 32, 32, 3), 3),
    (models.wrn_16_4(), (2, 32, 32, 3), 6),
    (models.ptb_lstm(vocab_size=10, hidden_size=4), (2, 5), 3),
]


@pytest.mark.parametrize(("model", "in_shape", "sites"), DROPOUT_SITES)
def test_dropout_sites_in_train_and_none_in_eval(model, in_shape, sites):
    dtype = jnp.int32 if len(in_shape) == 2 else jnp.float32
    x = jax.ShapeDtypeStruct(in_shape, dtype)
    variables = jax.eval_shape(lambda x: model.init(KEY, x, train=False), x)

    def graph(train):
        def forward(v, x, key):
            return model.apply(v, x, train=train, rngs={"dropout": key}, mutable=["batch_stats"])

        return jax.make_jaxpr(forward)(variables, x, KEY).jaxpr

    assert _count_primitive(graph(False), "random_bits") == 0
    assert _count_primitive(graph(True), "random_bits") == sites


def test_lstm_shapes():
    for model in (
        models.char_lstm(vocab_size=11, hidden_size=8),
        models.ptb_lstm(vocab_size=13, hidden_size=6),
    ):
        tokens = jax.ShapeDtypeStruct((3, 7), jnp.int32)
        out = jax.eval_shape(
            lambda t, m=model: m.apply(m.init(KEY, t, train=False), t, train=False), tokens
        )
        assert out.shape == (3, 7, model.vocab_size)


def test_dropout_is_active_only_in_training():
    model = models.mnistfc(batch_norm=False)
    x = normal((4, 784))
    variables = _jit_init(model)(x)
    train = jax.jit(lambda key: model.apply(variables, x, train=True, rngs={"dropout": key}))
    a, b, a2 = train(jax.random.key(1)), train(jax.random.key(2)), train(jax.random.key(1))
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, a2)
    # Dropout is inverted (kept units scaled by 1/(1−p)), so without it train ≡ eval here.
    no_dropout = models.mnistfc(batch_norm=False, dropout=0.0, input_dropout=0.0)
    np.testing.assert_allclose(
        jax.jit(lambda: no_dropout.apply(variables, x, train=True))(),
        jax.jit(lambda: model.apply(variables, x, train=False))(),
        rtol=1e-6,
    )


def fake_layer_variables(layer, xs, carry):
    shapes = jax.eval_shape(lambda xs, c: layer.init(KEY, xs, c), xs, carry)
    rng = np.random.default_rng(0)
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape) * 0.5, s.dtype), shapes)


def _jit_init(model):
    return lambda x: fake_variables(model, x)


def _small_fc_by_hand(params, x, mean, var, use_batch):
    h = x.reshape(len(x), -1) @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"]
    if use_batch:
        mean, var = h.mean(0), h.var(0)
    bn = params["BatchNorm_0"]
    h = (h - mean) / jnp.sqrt(var + 1e-5) * bn["scale"] + bn["bias"]
    return jax.nn.relu(h) @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]


def test_batchnorm_eval_uses_running_statistics():
    model = models.small_fc()
    x = normal((5, 7, 7, 1))
    variables = _jit_init(model)(x)
    mean = normal((64,), 1)
    var = jnp.exp(normal((64,), 2))
    stats = {"BatchNorm_0": {"mean": mean, "var": var}}
    variables = {"params": variables["params"], "batch_stats": stats}
    expected = _small_fc_by_hand(variables["params"], x, mean, var, use_batch=False)
    eval_out = jax.jit(lambda v: model.apply(v, x, train=False))(variables)
    np.testing.assert_allclose(eval_out, expected, rtol=2e-5, atol=2e-5)
    # Train mode normalizes with the batch: the running statistics do not matter.
    train_fn = jax.jit(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]))
    train_out, _ = train_fn(variables)
    expected_train = _small_fc_by_hand(variables["params"], x, None, None, use_batch=True)
    np.testing.assert_allclose(train_out, expected_train, rtol=1e-4, atol=1e-4)


def test_batchnorm_running_statistics_update_in_training():
    model = models.mnistfc(dropout=0.0, input_dropout=0.0)
    x = normal((8, 784))
    variables = _jit_init(model)(x)
    apply = jax.jit(model.apply, static_argnames=("train", "mutable"))
    _, updates = apply(variables, x, train=True, mutable=("batch_stats",))
    dense = variables["params"]["Dense_0"]
    h = x @ dense["kernel"] + dense["bias"]
    new = updates["batch_stats"]["BatchNorm_0"]
    # Flax momentum 0.9 ≡ PyTorch 0.1: r ← 0.9 r + 0.1 batch value (biased variance), from (0, 1).
    np.testing.assert_allclose(new["mean"], 0.1 * h.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new["var"], 0.9 + 0.1 * h.var(0), rtol=1e-4, atol=1e-6)
    # Eval mode leaves them untouched.
    _, frozen = apply(variables, x, train=False, mutable=("batch_stats",))
    np.testing.assert_array_equal(frozen["batch_stats"]["BatchNorm_0"]["mean"], jnp.zeros(1024))


def _lstm_reference(params, xs, h_size, input_bias=None):
    c = h = np.zeros((xs.shape[0], h_size))
    outs = []
    for t in range(xs.shape[1]):
        z = xs[:, t] @ params["input_kernel"] + h @ params["hidden_kernel"] + params["bias"]
        if input_bias is not None:
            z = z + input_bias
        i, f, g, o = np.split(z, 4, axis=-1)
        sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        outs.append(h)
    return np.stack(outs, 1), (c, h)


def test_lstm_layer_matches_a_python_loop():
    layer = models.LSTMLayer(hidden_size=3, input_bias=True, bias_init=jax.nn.initializers.normal())
    xs = normal((2, 5, 4))
    carry = (jnp.zeros((2, 3)), jnp.zeros((2, 3)))
    variables = fake_layer_variables(layer, xs, carry)
    hs, (c, h) = jax.jit(layer.apply)(variables, xs, carry)
    p = jax.tree.map(np.asarray, variables["params"])
    ref, (c_ref, h_ref) = _lstm_reference(p, np.asarray(xs), 3, p["input_bias"])
    np.testing.assert_allclose(hs, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, c_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, h_ref, rtol=1e-5, atol=1e-6)


def test_one_hot_lstm_equals_dense_lstm_on_one_hot_inputs():
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, 7, (2, 6)), jnp.int32)
    carry = (jnp.zeros((2, 4)), jnp.zeros((2, 4)))
    lookup = models.LSTMLayer(hidden_size=4, vocab_size=7)
    dense = models.LSTMLayer(hidden_size=4)
    variables = fake_layer_variables(lookup, tokens, carry)
    a, _ = jax.jit(lookup.apply)(variables, tokens, carry)
    b, _ = jax.jit(dense.apply)(variables, jax.nn.one_hot(tokens, 7), carry)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_lstm_state_carries_across_windows():
    model = models.char_lstm(vocab_size=9, hidden_size=5)
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, 9, (2, 8)), jnp.int32)
    variables = _jit_init(model)(tokens)

    @jax.jit
    def run(tokens):
        full = model.apply(variables, tokens, train=False)
        carry = model.initial_carry(2)
        unroll = model.unroll
        first, carry = model.apply(variables, tokens[:, :3], carry, train=False, method=unroll)
        second, _ = model.apply(variables, tokens[:, 3:], carry, train=False, method=unroll)
        return full, jnp.concatenate([first, second], 1)

    full, pieced = run(tokens)
    np.testing.assert_allclose(pieced, full, rtol=1e-5, atol=1e-6)


def test_ptb_init_scale_bounds_every_weight():
    model = models.ptb_lstm(vocab_size=20, hidden_size=8, init_scale=0.04)
    variables = jax.jit(lambda x: model.init(KEY, x, train=False))(jnp.zeros((1, 3), jnp.int32))
    leaves = jax.tree.leaves(variables["params"])
    assert max(float(jnp.abs(leaf).max()) for leaf in leaves) <= 0.04
    assert min(float(jnp.abs(leaf).max()) for leaf in leaves) > 0.02  # uniform, not zeros


def test_committee_machine_teacher_and_student():
    ds, teacher = committee_teacher_student(seed=3, num_train=50, num_test=10)
    sign_model = models.CommitteeMachine(num_hidden=5, activation="sign")
    variables = {"params": {"kernel": jnp.asarray(teacher)}}
    np.testing.assert_array_equal(sign_model.apply(variables, ds.x_train, train=False), ds.y_train)
    student = models.CommitteeMachine(num_hidden=5)
    out = student.apply(variables, ds.x_train[:3], train=False)
    expected = np.tanh(ds.x_train[:3] @ teacher.T / np.sqrt(200)).sum(1) / np.sqrt(5)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="activation='relu'"):
        models.CommitteeMachine(activation="relu").init(KEY, ds.x_train[:1], train=False)


def test_committee_machine_agrees_with_the_toy_implementation():
    # entropix.toys.committee is the pure-JAX version used by the CPU demonstrations; the Flax
    # module must compute the same surrogate output and the same teacher labels.
    toy = pytest.importorskip("entropix.toys.committee")
    ds, teacher = committee_teacher_student(seed=4, num_train=64, num_test=8)
    variables = {"params": {"kernel": jnp.asarray(teacher)}}
    x = jnp.asarray(ds.x_train)
    student = models.CommitteeMachine(num_hidden=5).apply(variables, x, train=False)
    np.testing.assert_allclose(student, toy.committee_output({"w": teacher}, x), rtol=1e-5)
    sign = models.CommitteeMachine(num_hidden=5, activation="sign")
    np.testing.assert_array_equal(
        sign.apply(variables, x, train=False), toy.committee_predict({"w": teacher}, x)
    )
    y = jnp.asarray(ds.y_train)
    np.testing.assert_allclose(
        models.committee_logistic_loss(student, y),
        toy.committee_loss({"w": teacher}, x, y),
        rtol=1e-6,
    )
