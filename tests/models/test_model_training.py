"""Every benchmark network trains with every optimizer family, in step and compiled forms.

A training step is one gradient of the train-mode loss on a fixed minibatch; "trains" means the
evaluation weights (anchor, replica mean) reach a lower loss on that minibatch than at the start,
with dropout keys held fixed so the comparison is exact.

Compiling a network's gradient dominates the cost on CPU, so each network's gradient is compiled
once and shared by the step-form families (their updates are compiled separately and are cheap);
the compiled form, whose inner loop must trace the gradient, is exercised on every network with
Entropy-SGD and on the small networks with every two-loop family.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import entropix
from entropix import models

AXIS = "replicas"
L = 2
NUM_STEPS = 3 * L
NUM_REPLICAS = 2


def step_families(lr, adam_lr=1e-2):
    """The optimizer families in step form (one gradient per update)."""
    return {
        "entropy_sgd": entropix.entropy_sgd(
            lr, num_inner_steps=L, coupling=0.1, sgld_learning_rate=lr, noise=1e-4
        ),
        "entropy_adam": entropix.entropy_adam(
            adam_lr, num_inner_steps=L, coupling=0.1, sgld_learning_rate=lr
        ),
        "hj": entropix.hj(1.0, num_inner_steps=L, coupling=0.1, sgld_learning_rate=lr),
        "heat": entropix.heat(lr, num_inner_steps=L, coupling=1e6),
        "trivialized_sgd": entropix.trivialized_sgd(
            lr, spin_coupling=1e-6, num_layers=3, tau0=10.0, key=0
        ),
        "parle": entropix.parle(
            1.0, num_inner_steps=L, coupling=0.1, elastic_coupling=0.5, sgld_learning_rate=lr
        ),
        "elastic_sgd": entropix.elastic_sgd(lr, elastic_coupling=0.5),
        "rsgd": entropix.replicated_sgd(lr, elastic_coupling=0.5, every=2, momentum=0.9),
    }


def compiled_families(lr):
    """The two-loop families in compiled form (one outer step per update)."""
    return {
        "entropy_sgd": entropix.entropy_sgd(
            lr, num_inner_steps=L, coupling=0.1, sgld_learning_rate=lr, compiled=True
        ),
        "entropy_adam": entropix.entropy_adam(
            1e-2, num_inner_steps=L, coupling=0.1, sgld_learning_rate=lr, compiled=True
        ),
        "hj": entropix.hj(
            1.0, num_inner_steps=L, coupling=0.1, sgld_learning_rate=lr, compiled=True
        ),
        "heat": entropix.heat(lr, num_inner_steps=L, coupling=1e6, compiled=True),
        "parle": entropix.parle(
            1.0,
            num_inner_steps=L,
            coupling=0.1,
            elastic_coupling=0.5,
            sgld_learning_rate=lr,
            compiled=True,
        ),
    }


REPLICATED = {"parle", "elastic_sgd", "rsgd"}

# (constructor overrides, learning rate[, Adam learning rate]). Big networks are shrunk: their
# full parameter counts are asserted in test_model_params.py.
MODELS = {
    "mnistfc": ({}, 0.05),
    "small-mnistfc": ({}, 0.1),
    "deep-mnistfc": ({"depth": 4}, 0.05),
    "small-fc": ({}, 0.1),
    "tiny-fc": ({}, 0.1),
    "lenet": ({}, 0.05),
    "small-lenet": ({}, 0.05),
    "small-lenet-ch6": ({}, 0.05),
    "lenet-ch2": ({}, 0.005, 2e-3),
    "allcnn": ({}, 0.02),
    "small-allcnn": ({}, 0.05),
    "mnist1d-cnn": ({}, 0.05),
    "wrn": ({"depth": 10, "width": 1}, 0.05),
    "char-lstm": ({"vocab_size": 12, "hidden_size": 16}, 0.5),
    "char-lstm-hessian": ({"vocab_size": 12}, 0.5),
    "ptb-lstm": ({"vocab_size": 12, "hidden_size": 16}, 0.5),
    "committee": ({}, 0.1),
}
ALL_COMPILED_FAMILIES = ("mnistfc", "char-lstm-hessian", "committee")


def make_problem(name, overrides):
    model = models.get_model(name, **overrides)
    spec = models.example_input(name, batch_size=8)
    key = jax.random.PRNGKey(0)
    if spec.dtype == jnp.int32:
        tokens = jax.random.randint(key, (8, 9), 0, overrides["vocab_size"])
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
    else:
        inputs = jax.random.normal(key, spec.shape)
        targets = jax.random.randint(jax.random.PRNGKey(1), (8,), 0, 5)  # tiny-fc has 5
    loss_fn = models.cross_entropy_loss
    if name == "committee":
        targets = jnp.where(targets % 2 == 0, 1.0, -1.0)
        loss_fn = models.committee_logistic_loss
    variables = jax.jit(lambda x: model.init(jax.random.PRNGKey(2), x, train=False))(inputs)
    state = {k: v for k, v in variables.items() if k != "params"}
    loss = models.make_loss_fn(model, train=True, loss=loss_fn, model_state=state)
    rng = jax.random.PRNGKey(3)
    return (lambda p: loss(p, (inputs, targets), rng)), variables["params"]


def evaluation_weights(state, params, replicated):
    found = entropix.anchor_params(state) if _has_anchor(state) else params
    return jax.tree.map(lambda p: p.mean(0), found) if replicated else found


def _has_anchor(state):
    try:
        entropix.anchor_params(state)
    except ValueError:
        return False
    return True


def run_step_form(family, opt, grad, params):
    """Gradients from the network's shared compiled gradient; only the update is compiled."""
    replicated = family in REPLICATED
    if replicated:
        params = jax.tree.map(lambda p: jnp.stack([p] * NUM_REPLICAS), params)
        state = jax.vmap(opt.init)(params)
        update = jax.jit(jax.vmap(opt.update, axis_name=AXIS))
    else:
        state = opt.init(params)
        update = jax.jit(opt.update)
    for _ in range(NUM_STEPS):
        if replicated:
            grads = [grad(jax.tree.map(lambda p, a=a: p[a], params)) for a in range(NUM_REPLICAS)]
            grads = jax.tree.map(lambda *g: jnp.stack(g), *grads)
        else:
            grads = grad(params)
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return evaluation_weights(state, params, replicated)


def run_compiled_form(family, opt, loss, params):
    grad = jax.grad(loss)
    replicated = family in REPLICATED

    def outer_step(p, s):
        updates, s = opt.update(grad(p), s, p, grad_fn=lambda q, i: grad(q))
        return optax.apply_updates(p, updates), s

    if replicated:
        params = jax.tree.map(lambda p: jnp.stack([p] * NUM_REPLICAS), params)
        state = jax.vmap(opt.init)(params)
        outer_step = jax.vmap(outer_step, axis_name=AXIS)
    else:
        state = opt.init(params)
    outer_step = jax.jit(outer_step)
    for _ in range(NUM_STEPS // L):
        params, state = outer_step(params, state)
    return evaluation_weights(state, params, replicated)


@pytest.mark.parametrize("name", list(MODELS))
def test_network_trains_with_every_optimizer_family(name):
    overrides, lr, *adam_lr = MODELS[name]
    loss, params = make_problem(name, overrides)
    loss = jax.jit(loss)
    grad = jax.jit(jax.grad(loss))
    before = float(loss(params))
    results = {}
    for family, opt in step_families(lr, *adam_lr).items():
        results[f"{family} (step)"] = float(loss(run_step_form(family, opt, grad, params)))
    compiled = compiled_families(lr)
    chosen = compiled if name in ALL_COMPILED_FAMILIES else {"entropy_sgd": compiled["entropy_sgd"]}
    for family, opt in chosen.items():
        results[f"{family} (compiled)"] = float(loss(run_compiled_form(family, opt, loss, params)))
    failed = {k: v for k, v in results.items() if not (np.isfinite(v) and v < before)}
    assert not failed, (before, failed)
