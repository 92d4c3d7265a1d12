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
# # Replicas: Parle, Elastic-SGD and replicated SGD with `vmap` and `shard_map`
#
# Parle runs Entropy-SGD in every replica and pulls the replicas elastically toward
# their mean once per outer step; Elastic-SGD couples plain SGD replicas at every step;
# replicated SGD (rSGD) couples them every `K` steps. entropix writes each of them
# **for one replica**, with collectives over a named axis, so the same optimizer runs
# under `jax.vmap(axis_name="replicas")` on one device and under `jax.shard_map` on a
# device mesh (all devices of a Colab TPU/GPU runtime, or 8 simulated host devices on
# CPU). This notebook trains all three on MNIST-1D at an equal budget of gradient
# evaluations per replica, checks that `vmap` and `shard_map` agree, trains Parle on
# split data (each replica sees a fraction of the training set,
# `entropix.data.replica_shards`), and compares the **master** (replica mean,
# `entropix.replica_mean`) with the **ensemble** of the replicas
# (`entropix.ensemble_probabilities`).
#
# `ENTROPIX_FAST=1` in the environment (the test suite sets it) shrinks every size and budget so
# the whole notebook runs in well under a minute on 2 CPU cores; the numbers it prints are then
# only smoke-test quality. Unset it for the real run.
#
# **Run the cells in order from a fresh runtime**: the next cell sets `XLA_FLAGS` before
# JAX is imported (on CPU it creates 8 host devices; on GPU/TPU it changes nothing).
# If JAX was already imported, restart the runtime first.

# %%
import os

# Before importing JAX: 8 simulated CPU devices (ignored by GPU/TPU backends).
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()

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
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import entropix
from entropix import data, models

NUM_DEVICES = jax.device_count()
FAST = os.environ.get("ENTROPIX_FAST") == "1"  # tiny budgets for the test suite

print("jax", jax.__version__, "|", NUM_DEVICES, "devices:", jax.devices())
print("fast mode:", FAST)

# %% [markdown]
# ## Data, model, budget
#
# `R = 8` replicas (or a multiple of the device count), each with its own shuffled
# minibatches of 100. Every optimizer gets `EPOCHS` effective epochs of gradient
# evaluations *per replica*. Parle uses the compiled form: one `update` is one outer
# step of `L = 5` gradient evaluations followed by the single `pmean` of the elastic
# term.

# %%
ds = data.load_dataset("mnist1d")
x_train, y_train = jax.device_put((ds.x_train, ds.y_train))
x_test, y_test = jax.device_put((ds.x_test, ds.y_test))

R = NUM_DEVICES * max(1, 8 // NUM_DEVICES)  # replicas: a multiple of the device count
BATCH, L = 100, 5
EPOCHS = 2 if FAST else 30
STEPS_PER_EPOCH = data.steps_per_epoch(len(x_train), BATCH)
NUM_GRADS = EPOCHS * STEPS_PER_EPOCH  # gradient evaluations per replica

model = models.MLP(features=(100, 100), num_classes=ds.num_classes)
loss_fn = models.make_loss_fn(model)
params0 = model.init(jax.random.key(0), x_train[:1], train=False)["params"]
replicas0 = jax.tree.map(lambda a: jnp.broadcast_to(a, (R, *a.shape)), params0)


def replica_minibatches(key, sharded, num_steps):
    """(R, num_steps, batch, ...) minibatches: consecutive shuffled epochs per replica."""
    epochs, have = [], 0
    while have < num_steps:
        key, sub = jax.random.split(key)
        epochs.append(data.replica_epochs(sub, sharded, BATCH))
        have += epochs[-1][1].shape[1]
    return jax.tree.map(lambda *e: jnp.concatenate(e, axis=1)[:, :num_steps], *epochs)


# Every replica sees all the data, in its own order.
everything = data.replica_shards(jax.random.key(1), len(x_train), R, fraction=1.0)
full = data.shard_data((x_train, y_train), everything)
batches = replica_minibatches(jax.random.key(2), full, NUM_GRADS)
print(
    f"R = {R} replicas, {NUM_GRADS} gradient evaluations per replica, "
    f"minibatches {jax.tree.map(jnp.shape, batches)}"
)


# %% [markdown]
# ## Evaluation: master vs ensemble
#
# Inside a mapped function `entropix.replica_mean(params, "replicas")` is the master
# (the weights Parle, Elastic-SGD and rSGD are evaluated at) and
# `entropix.ensemble_probabilities(logits, "replicas")` the replicas' averaged softmax.


# %%
def accuracy(scores):
    return jnp.mean(jnp.argmax(scores, -1) == y_test)


def columns(tree, start, stop):
    """Minibatches `start:stop` of every replica (axis 1 of the stacked arrays)."""
    return jax.tree.map(lambda a: a[:, start:stop], tree)


@jax.jit
def evaluate(replicas):
    def per_replica(p):
        logits = model.apply({"params": p}, x_test, train=False)
        master = entropix.replica_mean(p, "replicas")
        master_logits = model.apply({"params": master}, x_test, train=False)
        ensemble = entropix.ensemble_probabilities(logits, "replicas")
        return accuracy(master_logits), accuracy(ensemble), accuracy(logits)

    master, ensemble, each = jax.vmap(per_replica, axis_name="replicas")(replicas)
    return {"master": master[0], "ensemble": ensemble[0], "mean replica": each.mean()}


# %% [markdown]
# ## Parle, Elastic-SGD and rSGD under `vmap` (one device)
#
# The per-replica update is ordinary optax code; `jax.vmap(..., axis_name="replicas")`
# maps it over the stacked replicas and binds the axis its collectives reduce over.
# Hyper-parameters follow `configs/mnist1d_compare.py`.


# %%
def make_parle(axis_name="replicas"):
    return entropix.parle(
        1.0,
        num_inner_steps=L,
        coupling=0.1,
        elastic_coupling=0.1,
        sgld_learning_rate=0.05,
        axis_name=axis_name,
        compiled=True,
    )


def parle_step(opt):
    def step(params, state, group):  # one replica, one outer step: L gradients, one pmean
        grad_fn = data.make_group_grad_fn(loss_fn, group)
        updates, state = opt.update(grad_fn(params, 0), state, params, grad_fn=grad_fn)
        return optax.apply_updates(params, updates), state

    return step


def sgd_step(opt):
    def step(params, state, batch):  # one replica, one minibatch
        updates, state = opt.update(jax.grad(loss_fn)(params, batch), state, params)
        return optax.apply_updates(params, updates), state

    return step


def train(opt, step, minibatches, per_call, evaluate_weights):
    """Trains R replicas with vmap; `per_call` minibatches per update call."""
    vstep = jax.jit(jax.vmap(step(opt), axis_name="replicas"))
    params, state = replicas0, jax.vmap(opt.init)(replicas0)
    num_calls = minibatches[1].shape[1] // per_call
    curve = []
    for call in range(num_calls):
        chunk = columns(minibatches, call * per_call, (call + 1) * per_call)
        if per_call == 1:
            chunk = jax.tree.map(lambda a: a[:, 0], chunk)
        params, state = vstep(params, state, chunk)
        if (call + 1) * per_call % STEPS_PER_EPOCH == 0:  # once per effective epoch
            curve.append(evaluate(evaluate_weights(params, state)))
    return params, state, curve


def anchors(params, state):  # Parle: evaluate the anchors
    return entropix.anchor_params(state)


def itself(params, state):  # Elastic-SGD, rSGD: the parameters themselves
    return params


runs = {}
start = time.perf_counter()
runs["Parle"] = train(make_parle(), parle_step, batches, L, anchors)
runs["Elastic-SGD"] = train(
    entropix.elastic_sgd(0.05, elastic_coupling=0.1, momentum=0.9), sgd_step, batches, 1, itself
)
runs["rSGD (K=5)"] = train(
    entropix.replicated_sgd(0.05, elastic_coupling=0.01, every=5, momentum=0.9, nesterov=True),
    sgd_step,
    batches,
    1,
    itself,
)
print(f"trained 3 × {R} replicas in {time.perf_counter() - start:.1f} s")
for name, (_, _, curve) in runs.items():
    print(f"{name:12s} " + ", ".join(f"{k} {v:.3f}" for k, v in curve[-1].items()))

# %% [markdown]
# ## The same Parle under `shard_map` on all devices
#
# With `D` devices each device holds `R / D` replicas: `shard_map` splits the replica
# axis over the mesh axis `"devices"` and a `vmap` with axis `"local"` maps the block on
# each device. The optimizer reduces over both axes (`axis_name=("devices", "local")`),
# which is the mean over all `R` replicas — the same program as the `vmap` run.
# (`check_vma=False`: the collectives span a mesh axis and a vmapped axis.)
# After one outer step the two agree to float32 rounding; over many steps such rounding
# differences grow with the training dynamics themselves, so we compare the first step
# and then train on the mesh.

# %%
mesh = jax.make_mesh((NUM_DEVICES,), ("devices",))
on_mesh = NamedSharding(mesh, P("devices"))
mesh_opt = make_parle(axis_name=("devices", "local"))
mesh_step = jax.jit(
    jax.shard_map(
        jax.vmap(parle_step(mesh_opt), axis_name="local"),
        mesh=mesh,
        in_specs=P("devices"),
        out_specs=P("devices"),
        check_vma=False,
    )
)

first_group = columns(batches, 0, L)
vmap_opt = make_parle()
vmapped = jax.jit(jax.vmap(parle_step(vmap_opt), axis_name="replicas"))
reference, _ = vmapped(replicas0, jax.vmap(vmap_opt.init)(replicas0), first_group)
mesh_params, mesh_state = jax.device_put((replicas0, jax.vmap(mesh_opt.init)(replicas0)), on_mesh)
mesh_first, _ = mesh_step(mesh_params, mesh_state, jax.device_put(first_group, on_mesh))
vmap_vs_mesh = max(
    float(jnp.max(jnp.abs(a - b)))
    for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(mesh_first), strict=True)
)
print(f"one outer step: max |shard_map − vmap| = {vmap_vs_mesh:.1e}")
print("parameter sharding:", jax.tree.leaves(mesh_first)[0].sharding)

start = time.perf_counter()
for call in range(NUM_GRADS // L):
    group = jax.device_put(columns(batches, call * L, (call + 1) * L), on_mesh)
    mesh_params, mesh_state = mesh_step(mesh_params, mesh_state, group)
mesh_result = evaluate(jax.device_get(entropix.anchor_params(mesh_state)))
print(
    f"Parle on {NUM_DEVICES} devices: {time.perf_counter() - start:.1f} s, "
    + ", ".join(f"{k} {v:.3f}" for k, v in mesh_result.items())
)

# %% [markdown]
# ## Split data
#
# Thesis ch. 5.5: each replica trains on its own subset of the data and only the
# elastic coupling shares information. `data.replica_shards(key, n, R, fraction)` gives
# every replica `fraction · n` distinct examples (every example belongs to at least one
# replica); here each replica sees 25 % of the training set for the same number of
# gradient evaluations.

# %%
FRACTION = 0.25
shards = data.replica_shards(jax.random.key(3), len(x_train), R, FRACTION)
split = data.shard_data((x_train, y_train), shards)
split_batches = replica_minibatches(jax.random.key(4), split, NUM_GRADS)
runs["Parle, split data"] = train(make_parle(), parle_step, split_batches, L, anchors)
print(
    f"each replica: {shards.shape[1]} of {len(x_train)} examples; "
    + ", ".join(f"{k} {v:.3f}" for k, v in runs["Parle, split data"][2][-1].items())
)

# %% [markdown]
# ## Summary

# %%
final = {name: {k: float(v) for k, v in curve[-1].items()} for name, (_, _, curve) in runs.items()}
final[f"Parle, shard_map ({NUM_DEVICES} devices)"] = {k: float(v) for k, v in mesh_result.items()}
print(f"MNIST-1D test accuracy, {R} replicas, {EPOCHS} effective epochs per replica")
print(f"{'':34s} {'master':>8s} {'ensemble':>9s} {'mean replica':>13s}")
for name, r in final.items():
    print(f"{name:34s} {r['master']:8.3f} {r['ensemble']:9.3f} {r['mean replica']:13.3f}")

fig, ax = plt.subplots(figsize=(5, 3.5))
for name, (_, _, curve) in runs.items():
    ax.plot(np.arange(1, len(curve) + 1), [float(c["master"]) for c in curve], "o-", label=name)
ax.set_xlabel("effective epochs per replica")
ax.set_ylabel("master test accuracy")
ax.legend(fontsize=8)
plt.show()

# The claims of this notebook (checked by tests/test_notebooks.py):
assert vmap_vs_mesh < 1e-5, vmap_vs_mesh  # vmap == shard_map
for name, r in final.items():
    assert r["master"] > 0.25, (name, r)  # well above chance (0.1)
    assert r["ensemble"] >= r["mean replica"] - 0.02, (name, r)
