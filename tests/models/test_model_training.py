"""Every benchmark network trains with the optimizer families (step and compiled forms).

A training step is one gradient of the train-mode loss on a fixed minibatch; "trains" means the
evaluation weights (anchor, replica mean) reach a lower loss on that minibatch than at the start,
with dropout keys held fixed so the comparison is exact.
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

FAMILIES = {
    "entropy_sgd-step": lambda lr: entropix.entropy_sgd(
        lr, num_inner_steps=L, coupling=0.1, sgld_learning_rate=lr, noise=1e-4
    ),
    "entropy_adam-compiled": lambda lr: entropix.entropy_adam(
        1e-2, num_inner_steps=L, coupling=0.1, sgld_learning_rate=lr, compiled=True
    ),
    "hj-compiled": lambda lr: entropix.hj(
        1.0, num_inner_steps=L, coupling=0.1, sgld_learning_rate=lr, compiled=True
    ),
    "heat-step": lambda lr: entropix.heat(lr, num_inner_steps=L, coupling=1e6),
    "parle-compiled": lambda lr: entropix.parle(
        1.0,
        num_inner_steps=L,
        coupling=0.1,
        elastic_coupling=0.5,
        sgld_learning_rate=lr,
        compiled=True,
    ),
    "elastic_sgd": lambda lr: entropix.elastic_sgd(lr, coupling=0.5),
    "rsgd": lambda lr: entropix.replicated_sgd(lr, coupling=0.5, every=2, momentum=0.9),
    "trivialized_sgd": lambda lr: entropix.trivialized_sgd(
        lr, spin_coupling=1e-6, num_layers=3, tau0=10.0, key=0
    ),
}
REPLICATED = {"parle-compiled", "elastic_sgd", "rsgd"}

# (registry name, constructor overrides, learning rate). Big networks are shrunk: their full
# parameter counts are asserted in test_model_params.py.
MODELS = {
    "mnistfc": ({}, 0.05),
    "small-mnistfc": ({}, 0.1),
    "deep-mnistfc": ({"depth": 4}, 0.05),
    "small-fc": ({}, 0.1),
    "tiny-fc": ({}, 0.1),
    "lenet": ({}, 0.05),
    "small-lenet": ({}, 0.05),
    "small-lenet-ch6": ({}, 0.05),
    "lenet-ch2": ({}, 0.02),
    "allcnn": ({}, 0.02),
    "small-allcnn": ({}, 0.05),
    "wrn": ({"depth": 10, "width": 1}, 0.05),
    "char-lstm": ({"vocab_size": 12, "hidden_size": 16}, 0.5),
    "char-lstm-hessian": ({"vocab_size": 12}, 0.5),
    "ptb-lstm": ({"vocab_size": 12, "hidden_size": 16}, 0.5),
    "committee": ({}, 0.1),
}
# Every family on a BN + dropout MLP, an LSTM and the committee machine; every other network
# with Entropy-SGD (the families share one code path, tested exhaustively elsewhere).
ALL_FAMILY_MODELS = ("mnistfc", "char-lstm-hessian", "committee")


def cases():
    for name in MODELS:
        families = FAMILIES if name in ALL_FAMILY_MODELS else ("entropy_sgd-step",)
        for family in families:
            yield pytest.param(name, family, id=f"{name}-{family}")


def make_problem(name, overrides):
    model = models.get_model(name, **overrides)
    spec = models.example_input(name, batch_size=8)
    key = jax.random.PRNGKey(0)
    if spec.dtype == jnp.int32:
        vocab = overrides["vocab_size"]
        tokens = jax.random.randint(key, (8, 9), 0, vocab)
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
    return jax.jit(lambda p: loss(p, (inputs, targets), rng)), variables["params"]


def run(family, opt, loss, params):
    grad = jax.grad(loss)
    if family in REPLICATED:
        params = jax.tree.map(lambda p: jnp.stack([p, p]), params)
        state = jax.vmap(opt.init)(params)
    else:
        state = opt.init(params)
    compiled = family.endswith("compiled")

    def one(p, s):
        extra = {"grad_fn": lambda q, i: grad(q)} if compiled else {}
        updates, s = opt.update(grad(p), s, p, **extra)
        return optax.apply_updates(p, updates), s

    step = jax.jit(jax.vmap(one, axis_name=AXIS) if family in REPLICATED else one)
    for _ in range(NUM_STEPS // L if compiled else NUM_STEPS):
        params, state = step(params, state)
    found = (
        entropix.anchor_params(state)
        if "entropy" in family or family in ("hj-compiled", "heat-step", "parle-compiled")
        else params
    )
    if family in REPLICATED:
        found = jax.tree.map(lambda p: p.mean(0), found)
    return found


@pytest.mark.parametrize(("name", "family"), list(cases()))
def test_model_trains_with_optimizer_family(name, family):
    overrides, lr = MODELS[name]
    loss, params = make_problem(name, overrides)
    before = float(loss(params))
    after = float(loss(run(family, FAMILIES[family](lr), loss, params)))
    assert np.isfinite(after) and after < before, (before, after)
