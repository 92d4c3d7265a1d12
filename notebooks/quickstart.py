# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # entropix quickstart: Entropy-SGD in an optax/Flax training loop
#
# Entropy-SGD (Chaudhari et al., ICLR 2017) replaces the back-propagated gradient by the
# gradient of the *local entropy*, estimated by a short Langevin (SGLD) chain around the
# current weights, and so biases training toward wide valleys. This notebook chains
# `entropix.entropy_sgd` into a plain optax/Flax loop on MNIST-1D (generated offline,
# 4,000 training sequences of 40 features, 10 classes) in its two forms — the **step
# form** (one `update` per minibatch gradient, drops into any loop) and the **compiled
# form** (one `update` per outer step, the `L` inner steps in one `lax.scan`) — checks
# that both give the same weights, evaluates the **anchor** `x` (not the SGLD walker),
# and compares with SGD at the same number of gradient evaluations.
#
# `ENTROPIX_FAST=1` in the environment (the test suite sets it) shrinks every size and budget so
# the whole notebook runs in well under a minute on 2 CPU cores; the numbers it prints are then
# only smoke-test quality. Unset it for the real run.

# %%
# Install entropix (the `entropix-jax` distribution with its examples extra: Flax, matplotlib,
# mnist1d, ...) unless it is importable already. ENTROPIX_SOURCE is where pip gets it: a Git
# URL (append @<branch or tag> to pin a version) or the path of a local or uploaded checkout.
# (The unrelated `entropix` package on PyPI is not this library.)
ENTROPIX_SOURCE = "git+https://github.com/entropix-jax/entropix"

import importlib.util
import pathlib
import subprocess
import sys

if importlib.util.find_spec("entropix") is None:
    source = ENTROPIX_SOURCE
    if pathlib.Path(source).exists():  # a checkout on this machine: pip wants a file:// URL
        source = pathlib.Path(source).resolve().as_uri()
    requirement = f"entropix-jax[examples] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", requirement], check=True)
    importlib.invalidate_caches()

# %%
import os
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import entropix
from entropix import data, models

FAST = os.environ.get("ENTROPIX_FAST") == "1"  # tiny budgets for the test suite

print("jax", jax.__version__, "| devices:", jax.devices(), "| fast mode:", FAST)

# %% [markdown]
# ## Data and model
#
# `entropix.data.load_dataset("mnist1d")` generates MNIST-1D with the `mnist1d` package
# (cached in `~/.cache/entropix`). Published baselines on this data: logistic regression
# ≈ 32 % accuracy, MLP ≈ 68 %, CNN ≈ 94 %. The model is a 40-100-100-10 MLP;
# `make_loss_fn` gives the pure `loss_fn(params, (x, y))` the optimizers need.
# Progress is counted in **effective epochs** = gradient evaluations / minibatches per
# epoch, the papers' unit (one Entropy-SGD outer step costs `L` gradients).

# %%
ds = data.load_dataset("mnist1d")
x_train, y_train = jax.device_put((ds.x_train, ds.y_train))
x_test, y_test = jax.device_put((ds.x_test, ds.y_test))

BATCH, L = 100, 5
EPOCHS = 3 if FAST else 40  # effective epochs per optimizer
STEPS_PER_EPOCH = data.steps_per_epoch(len(x_train), BATCH)  # minibatches per epoch

model = models.MLP(features=(100, 100), num_classes=ds.num_classes)
params0 = model.init(jax.random.key(0), x_train[:1], train=False)["params"]
loss_fn = models.make_loss_fn(model)  # loss_fn(params, (x, y)) -> mean cross-entropy
metrics_fn = jax.jit(models.make_metrics_fn(model))  # {"loss", "error"}


def test_accuracy(params):
    return 1.0 - float(metrics_fn(params, (x_test, y_test))["error"])


print(
    f"train {x_train.shape}, test {x_test.shape}, {STEPS_PER_EPOCH} steps/epoch, "
    f"{models.count_params(model, (1, 40))} parameters"
)

# %% [markdown]
# ## Step form
#
# Each `opt.update(grads, state, params)` is one SGLD step of the walker `x'` on the
# gradient the caller computed at `params`; every `L`-th call also performs the outer
# (Nesterov) step on `x − μ` and returns the jump to the new anchor. So it drops into any
# loop — here a `lax.scan` over one shuffled epoch. Hyper-parameters are those of
# `configs/mnist1d_compare.py` (its Entropy-SGD entry): outer learning rate 1, `L = 5`, coupling
# `γ = 0.1`, SGLD step 0.05, noise `ε = 10⁻⁴`.

# %%
HYPER = dict(num_inner_steps=L, coupling=0.1, sgld_learning_rate=0.05, noise=1e-4, key=0)
opt = entropix.entropy_sgd(1.0, **HYPER)


@jax.jit
def train_epoch(params, state, batches):
    def step(carry, batch):
        params, state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    (params, state), losses = jax.lax.scan(step, (params, state), batches)
    return params, state, losses.mean()


epoch_keys = jax.random.split(jax.random.key(1), EPOCHS)  # the same batches for every run
params, state = params0, opt.init(params0)
esgd_curve = []
start = time.perf_counter()
for epoch, key in enumerate(epoch_keys):
    batches = data.shuffle_epoch(key, (x_train, y_train), BATCH)
    params, state, loss = train_epoch(params, state, batches)
    anchor = entropix.anchor_params(state)  # evaluate the anchor x, not the walker x'
    esgd_curve.append(test_accuracy(anchor))
    if epoch == 0:
        anchor_step_epoch1 = anchor
step_seconds = time.perf_counter() - start
anchor_step = entropix.anchor_params(state)
print(
    f"step form: {EPOCHS} effective epochs in {step_seconds:.1f} s (incl. compile), "
    f"train loss {float(loss):.3f}, anchor test accuracy {esgd_curve[-1]:.3f}"
)

# %% [markdown]
# ## Compiled form
#
# With `compiled=True` one `update` is a whole outer step: `grads` is the gradient on
# minibatch 0 and the extra argument `grad_fn(params, i)` supplies minibatches
# `1 … L−1` inside one `lax.scan` (compile time flat in `L`).
# `entropix.data.make_group_grad_fn` builds `grad_fn` from a stacked group of `L`
# minibatches (`data.group_batches` regroups an epoch into `(steps/L, L, batch, …)`).
# Fed the same batches and key, the two forms produce the same weights up to float32
# rounding. (Over many epochs such rounding differences are amplified by the training
# dynamics themselves — perturbing the initial weights by 10⁻⁷ does the same — so the
# check compares the anchors after the first epoch.)

# %%
copt = entropix.entropy_sgd(1.0, compiled=True, **HYPER)


@jax.jit
def train_epoch_compiled(params, state, groups):
    def outer_step(carry, group):
        params, state = carry
        grad_fn = data.make_group_grad_fn(loss_fn, group)
        updates, state = copt.update(grad_fn(params, 0), state, params, grad_fn=grad_fn)
        return (optax.apply_updates(params, updates), state), None

    (params, state), _ = jax.lax.scan(outer_step, (params, state), groups)
    return params, state


cparams, cstate = params0, copt.init(params0)
start = time.perf_counter()
for epoch, key in enumerate(epoch_keys):
    groups = data.group_batches(data.shuffle_epoch(key, (x_train, y_train), BATCH), L)
    cparams, cstate = train_epoch_compiled(cparams, cstate, groups)
    if epoch == 0:
        anchor_compiled_epoch1 = entropix.anchor_params(cstate)
compiled_seconds = time.perf_counter() - start
anchor_compiled = entropix.anchor_params(cstate)

forms_difference = max(
    float(jnp.max(jnp.abs(a - b)))
    for a, b in zip(
        jax.tree.leaves(anchor_step_epoch1),
        jax.tree.leaves(anchor_compiled_epoch1),
        strict=True,
    )
)
print(
    f"compiled form: {compiled_seconds:.1f} s (incl. compile), anchor test accuracy "
    f"{test_accuracy(anchor_compiled):.3f}"
)
print(
    f"after one epoch ({STEPS_PER_EPOCH} gradients): "
    f"max |step-form anchor − compiled-form anchor| = {forms_difference:.1e}"
)

# %% [markdown]
# ## In a Flax `TrainState`
#
# `TrainState.apply_gradients(grads=...)` drives the step form unchanged: its `params` are the
# walker and its `step` counts inner steps, so evaluate `entropix.anchor_params(ts.opt_state)`
# and read the outer-step count with `entropix.outer_step_count(ts.opt_state)`. It hands extra
# keyword arguments to `.replace`, not to the optimizer, so the compiled form goes through
# `entropix.models.apply_gradients`, which passes them to `tx.update`. Here the first epoch of
# the compiled form again, one outer step per call, from a `TrainState`.

# %%
from flax.training import train_state

ts = train_state.TrainState.create(apply_fn=model.apply, params=params0, tx=copt)
groups = data.group_batches(data.shuffle_epoch(epoch_keys[0], (x_train, y_train), BATCH), L)


@jax.jit
def train_state_outer_step(ts, group):
    grad_fn = data.make_group_grad_fn(loss_fn, group)
    return models.apply_gradients(ts, grad_fn(ts.params, 0), grad_fn=grad_fn)


for index in range(len(groups[0])):
    ts = train_state_outer_step(ts, jax.tree.map(lambda a, i=index: a[i], groups))
train_state_difference = max(
    float(jnp.max(jnp.abs(a - b)))
    for a, b in zip(
        jax.tree.leaves(entropix.anchor_params(ts.opt_state)),
        jax.tree.leaves(anchor_compiled_epoch1),
        strict=True,
    )
)
print(
    f"TrainState: {int(ts.step)} calls = {int(entropix.outer_step_count(ts.opt_state))} outer "
    f"steps; max |TrainState anchor − compiled-form anchor| = {train_state_difference:.1e}"
)

# %% [markdown]
# ## SGD at the same budget
#
# SGD with Nesterov momentum (learning rate 0.05, momentum 0.9, the
# `configs/mnist1d_compare.py` setting) gets the same number of gradient evaluations:
# `EPOCHS` effective epochs on the same shuffled batches.

# %%
sgd = optax.sgd(0.05, momentum=0.9, nesterov=True)


@jax.jit
def sgd_epoch(params, state, batches):
    def step(carry, batch):
        params, state = carry
        updates, state = sgd.update(jax.grad(loss_fn)(params, batch), state, params)
        return (optax.apply_updates(params, updates), state), None

    return jax.lax.scan(step, (params, state), batches)[0]


sgd_params, sgd_state = params0, sgd.init(params0)
sgd_curve = []
for key in epoch_keys:
    batches = data.shuffle_epoch(key, (x_train, y_train), BATCH)
    sgd_params, sgd_state = sgd_epoch(sgd_params, sgd_state, batches)
    sgd_curve.append(test_accuracy(sgd_params))

epochs = np.arange(1, EPOCHS + 1)
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(epochs, sgd_curve, "o-", label="SGD (Nesterov)")
ax.plot(epochs, esgd_curve, "s-", label="Entropy-SGD (anchor)")
ax.axhline(0.1, color="gray", ls=":", label="chance")
ax.set_xlabel("effective epochs (gradient evaluations / steps per epoch)")
ax.set_ylabel("test accuracy")
ax.legend()
plt.show()

# %% [markdown]
# ## Summary

# %%
results = {
    "SGD (Nesterov)": sgd_curve[-1],
    "Entropy-SGD, step form (anchor)": test_accuracy(anchor_step),
    "Entropy-SGD, compiled form (anchor)": test_accuracy(anchor_compiled),
}
print(
    f"MNIST-1D test accuracy after {EPOCHS} effective epochs "
    f"({EPOCHS * STEPS_PER_EPOCH} gradient evaluations each):"
)
for name, accuracy in results.items():
    print(f"  {name:38s} {accuracy:.3f}")

# The claims of this notebook (checked by tests/test_notebooks.py):
assert forms_difference < 1e-5, forms_difference  # step form == compiled form
assert results["Entropy-SGD, step form (anchor)"] > 0.25  # well above chance (0.1)
assert results["SGD (Nesterov)"] > 0.25
