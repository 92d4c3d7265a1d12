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
# # Landscape diagnostics: Hessian spectra, local energy and gradient-noise rank
#
# Chaudhari et al. (ICLR 2017, Fig. 1) found that the Hessian of a trained network has
# most of its eigenvalues near zero, a few large positive ones and a few small negative
# ones — the *wide valleys* Entropy-SGD is built to seek. This notebook trains
# small-LeNet on Fashion-MNIST with SGD and with Entropy-SGD and measures, with
# `entropix.landscape`: the exact eigenvalue histogram with log-scale tail insets
# (Fig. 1) of a scaled-down LeNet whose dense Hessian fits in memory, the spectral
# density of the full small-LeNet by stochastic Lanczos quadrature plus its extreme
# eigenvalues by Lanczos, the local-energy curves `δE(σ)` (how fast the training error
# grows under multiplicative weight noise) of the two optimizers, and the rank of the
# minibatch gradient-noise covariance. If Fashion-MNIST is not available (offline:
# `apt-get install dataset-fashion-mnist`; on Colab tfds downloads it) the notebook
# falls back to MNIST-1D with two MLPs in place of the two LeNets, so it always runs.
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
import sys
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import entropix
from entropix import data, landscape, models

FAST = os.environ.get("ENTROPIX_FAST") == "1"  # tiny subset and orders for the tests

print("jax", jax.__version__, "| devices:", jax.devices(), "| fast mode:", FAST)

# %% [markdown]
# ## Data and networks
#
# small-LeNet (`entropix.models.small_lenet`, 47,658 parameters: conv 5×5 10 → pool →
# conv 5×5 20 → pool → 128 → 10) is the network of the paper's Fig. 1. Its dense
# Hessian has 2.3·10⁹ entries, so the exact histogram uses *tiny-LeNet*, the same
# architecture with 2 and 4 channels and 16 hidden units (1,466 parameters); the full
# small-LeNet is measured matrix-free. Run this on a GPU/TPU runtime: on a CPU the
# convolutional Hessian-vector products take minutes.
#
# Fallback and fast mode: without Fashion-MNIST, and in fast mode (the CPU test
# budget), the pair of networks is a 40-100-100-10 MLP ("small") and a 40-24-10 MLP
# ("tiny", 1,234 parameters) on MNIST-1D; set `ENTROPIX_NOTEBOOK_NETWORK=lenet` or
# `=mlp` to choose explicitly.

# %%
NETWORK = os.environ.get("ENTROPIX_NOTEBOOK_NETWORK", "mlp" if FAST else "lenet")
ds = None
if NETWORK == "lenet":
    try:
        ds = data.load_dataset("fashion_mnist", download="google.colab" in sys.modules)
        DATA = "Fashion-MNIST"
        SMALL = models.small_lenet(num_classes=ds.num_classes)
        TINY = models.LeNet(
            channels=(2, 4),
            pool_sizes=(2, 2),
            hidden=16,
            num_classes=ds.num_classes,
            conv_batch_norm=False,
            fc_batch_norm=False,
        )
    except Exception as err:  # any failure: use the offline fallback
        print(f"Fashion-MNIST unavailable ({type(err).__name__}: {err}); using MNIST-1D")
if ds is None:
    ds = data.load_dataset("mnist1d")
    DATA = "MNIST-1D"
    SMALL = models.MLP(features=(100, 100), num_classes=ds.num_classes)
    TINY = models.MLP(features=(24,), num_classes=ds.num_classes)

NUM_TRAIN = 4000 if FAST else len(ds.x_train)
x_train, y_train = jax.device_put((ds.x_train[:NUM_TRAIN], ds.y_train[:NUM_TRAIN]))
x_test, y_test = jax.device_put((ds.x_test, ds.y_test))
BATCH, L = 100, 5
EPOCHS = 3 if FAST else 10
NUM_DIAG = 256 if FAST else 1024  # training examples the diagnostics average over
diag_batch = (x_train[:NUM_DIAG], y_train[:NUM_DIAG])
for name, net in [("small", SMALL), ("tiny", TINY)]:
    print(f"{DATA}: {name} network, {models.count_params(net, (1, *x_train.shape[1:]))} parameters")


# %% [markdown]
# ## Training: SGD vs Entropy-SGD at the same number of gradient evaluations
#
# SGD with Nesterov momentum (learning rate 0.05) and Entropy-SGD in compiled form
# (`L = 5`, coupling 0.1, SGLD step 0.05, noise 10⁻⁴), each for `EPOCHS` effective
# epochs on the same shuffled minibatches. Entropy-SGD is evaluated at its anchor.


# %%
def train(model, method):
    params = model.init(jax.random.key(0), x_train[:1], train=False)["params"]
    loss_fn = models.make_loss_fn(model)
    if method == "SGD":
        opt = optax.sgd(0.05, momentum=0.9, nesterov=True)

        def step(carry, batch):
            params, state = carry
            updates, state = opt.update(jax.grad(loss_fn)(params, batch), state, params)
            return (optax.apply_updates(params, updates), state), None
    else:
        opt = entropix.entropy_sgd(
            1.0, num_inner_steps=L, coupling=0.1, sgld_learning_rate=0.05, noise=1e-4, compiled=True
        )

        def step(carry, group):
            params, state = carry
            grad_fn = data.make_group_grad_fn(loss_fn, group)
            updates, state = opt.update(grad_fn(params, 0), state, params, grad_fn=grad_fn)
            return (optax.apply_updates(params, updates), state), None

    epoch = jax.jit(lambda carry, batches: jax.lax.scan(step, carry, batches)[0])
    carry = (params, opt.init(params))
    for key in jax.random.split(jax.random.key(1), EPOCHS):
        batches = data.shuffle_epoch(key, (x_train, y_train), BATCH)
        carry = epoch(carry, batches if method == "SGD" else data.group_batches(batches, L))
    params, state = carry
    return params if method == "SGD" else entropix.anchor_params(state)


def eval_fns(model):
    def loss_fn(params, batch):
        logits = model.apply({"params": params}, batch[0], train=False)
        return models.cross_entropy_loss(logits, batch[1])

    def error_fn(params, batch):
        logits = model.apply({"params": params}, batch[0], train=False)
        return models.error_rate(logits, batch[1])

    return loss_fn, error_fn


METHODS = ["SGD", "Entropy-SGD"]
trained, accuracy = {}, {}
start = time.perf_counter()
for size, model in [("small", SMALL), ("tiny", TINY)]:
    _, error_fn = eval_fns(model)
    for method in METHODS:
        trained[size, method] = train(model, method)
        test_error = jax.jit(error_fn)(trained[size, method], (x_test, y_test))
        accuracy[size, method] = 1.0 - float(test_error)
        print(f"{size:5s} {method:12s} test accuracy {accuracy[size, method]:.3f}")
print(f"training: {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Fig. 1: the exact eigenvalue histogram with tail insets
#
# `landscape.hessian_spectrum` builds the dense Hessian of the training loss (on
# `NUM_DIAG` examples) from blocks of vmapped Hessian-vector products and returns all
# eigenvalues; `landscape.plot_eigenvalue_histogram` draws the histogram on a log
# frequency axis with insets for the negative and positive tails;
# `landscape.spectrum_summary` gives the near-zero fraction, the extremes and the index.
# Lanczos (`landscape.hessian_eigenvalues`, matrix-free) must agree with the exact
# extremes.

# %%
tiny_loss, _ = eval_fns(TINY)
exact, lanczos_check = {}, {}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, method in zip(axes, METHODS, strict=True):
    weights = trained["tiny", method]
    # chunk_size: Hessian columns per vmapped batch of HVPs (small chunks keep conv
    # HVPs fast on CPU; raise it on a GPU).
    hessian = landscape.hessian_spectrum(tiny_loss, weights, [diag_batch], chunk_size=32)
    eigenvalues = np.asarray(hessian)
    summary = landscape.spectrum_summary(eigenvalues, threshold=1e-4)
    exact[method] = (eigenvalues, summary)
    top = landscape.hessian_eigenvalues(
        tiny_loss, weights, [diag_batch], k=1, num_steps=40, key=jax.random.key(2)
    )
    lanczos_check[method] = (float(top.largest[0]), float(eigenvalues[-1]))
    landscape.plot_eigenvalue_histogram(
        eigenvalues,
        ax=ax,
        bins=80,
        title=f"tiny {DATA} network, {method}: {100 * summary.fraction_near_zero:.0f}% |λ| < 1e-4",
    )
    print(
        f"{method:12s} d = {eigenvalues.size}, |λ| < 1e-4: {summary.fraction_near_zero:.3f}, "
        f"median |λ| / λ_max = {np.median(np.abs(eigenvalues)) / summary.largest:.4f}, "
        f"λ_max {summary.largest:.3f} (Lanczos {lanczos_check[method][0]:.3f}), "
        f"λ_min {summary.most_negative:.4f}, index {summary.index:.3f}"
    )
plt.show()

# %% [markdown]
# ## small-LeNet: spectral density by stochastic Lanczos quadrature
#
# `landscape.hessian_density` estimates the eigenvalue density of the full 47,658 × 47,658
# Hessian from `order × num_probes` Hessian-vector products (Rademacher probes, Gaussian
# broadening); `landscape.hessian_eigenvalues` gives the top and bottom Ritz values with
# their residuals. Small orders in fast mode only resolve the outline.

# %%
small_loss, small_error = eval_fns(SMALL)
ORDER, PROBES = (20, 2) if FAST else (80, 10)
densities, extremes = {}, {}
fig, ax = plt.subplots(figsize=(6, 4))
for method in METHODS:
    densities[method] = landscape.hessian_density(
        small_loss,
        trained["small", method],
        [diag_batch],
        order=ORDER,
        num_probes=PROBES,
        key=jax.random.key(3),
    )
    extremes[method] = landscape.hessian_eigenvalues(
        small_loss,
        trained["small", method],
        [diag_batch],
        k=3,
        num_steps=ORDER,
        key=jax.random.key(4),
    )
    landscape.plot_density(densities[method], ax=ax, label=method)
    print(
        f"{method:12s} Lanczos top λ {np.round(np.asarray(extremes[method].largest), 3)}, "
        f"bottom λ {np.round(np.asarray(extremes[method].smallest), 4)}"
    )
ax.set_title(f"small-network Hessian density ({DATA})")
plt.show()

# %% [markdown]
# ## Local energy: SGD vs Entropy-SGD
#
# `landscape.local_energy` perturbs every weight multiplicatively, `w + σ z ⊙ w` with
# `z ~ N(0, I)`, and reports the mean increase `δE(σ)` of the training loss and error
# (Pittorino et al., ICLR 2021). Flatter minima have flatter curves.

# %%
SIGMAS = jnp.array([0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0])
curves = {
    method: landscape.local_energy(
        small_loss,
        trained["small", method],
        [diag_batch],
        SIGMAS,
        error_fn=small_error,
        num_samples=4 if FAST else 16,
        key=jax.random.key(5),
    )
    for method in METHODS
}
for method, curve in curves.items():
    print(
        f"{method:12s} train error {float(curve.error_at_params):.3f}, δE_train(σ) = "
        + " ".join(f"{float(v):.3f}" for v in curve.error)
    )
fig = landscape.plot_local_energy(curves, metric="error", title=f"local energy ({DATA})")
fig

# %% [markdown]
# ## Gradient-noise rank
#
# The covariance of per-example gradients, `D = (1/N) Σ_i (∇ℓ_i − ∇f)(∇ℓ_i − ∇f)ᵀ`,
# is the diffusion matrix of SGD (temperature `η/(2b)`). From `N` examples its rank is
# at most `N − 1`, a vanishing fraction of the `d` parameters: SGD's noise is highly
# anisotropic (thesis ch. 6). `landscape.per_example_gradients` +
# `landscape.noise_spectrum`.

# %%
NUM_NOISE = 64 if FAST else 512
noise = {}
fig, ax = plt.subplots(figsize=(6, 3.5))
for method in METHODS:
    grads = landscape.per_example_gradients(
        small_loss, trained["small", method], [(x_train[:NUM_NOISE], y_train[:NUM_NOISE])]
    )
    noise[method] = landscape.noise_spectrum(grads, learning_rate=0.05, batch_size=BATCH)
    ax.semilogy(np.asarray(noise[method].eigenvalues[:NUM_NOISE]), label=method)
    print(
        f"{method:12s} rank {noise[method].rank} of d = {noise[method].dim} "
        f"({100 * noise[method].rank_fraction:.2f}%), "
        f"λ_max {float(noise[method].eigenvalues[0]):.3g}"
    )
ax.set_xlabel("eigenvalue index")
ax.set_ylabel("eigenvalue of D")
ax.legend()
plt.show()

# %% [markdown]
# ## Summary

# %%
print(f"{DATA}, {EPOCHS} effective epochs on {NUM_TRAIN} examples")
for (size, method), acc in accuracy.items():
    print(f"  {size:5s} {method:12s} test accuracy {acc:.3f}")

# The claims of this notebook (checked by tests/test_notebooks.py):
for acc in accuracy.values():
    assert acc > 0.3, accuracy  # trained: well above chance (0.1)
for method in METHODS:
    eigenvalues, summary = exact[method]
    lanczos_top, exact_top = lanczos_check[method]
    assert abs(lanczos_top - exact_top) < 1e-2 * abs(exact_top), lanczos_check  # Lanczos == exact
    assert np.median(np.abs(eigenvalues)) < 0.02 * summary.largest  # most λ near zero
    assert summary.largest > 5 * abs(summary.most_negative)  # large λ are positive
    assert float(extremes[method].largest[0]) > 0
    curve = curves[method]
    assert abs(float(curve.error[0])) < 1e-6 and float(curve.error[-1]) > 0.05  # δE(0) = 0, grows
    assert noise[method].rank <= NUM_NOISE - 1 and noise[method].rank_fraction < 0.05
