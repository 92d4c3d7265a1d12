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
# # Local entropy on 1-D landscapes: viscous vs non-viscous smoothing
#
# Entropy-SGD descends the *local entropy* `f_γ` — the loss smoothed by a Gaussian
# of variance `1/(βγ)` in the exponent (the viscous Hamilton–Jacobi solution) — while
# the non-viscous HJ variant descends the Moreau envelope `u = min_y f(y) + γ/2 |x−y|²`.
# On exact 1-D landscapes from `entropix.toys` this notebook reproduces the analogue
# of thesis Fig. 4.1 (a rugged function and its two smoothings for several couplings
# `γ`; smaller coupling = more smoothing), shows on the wide-vs-sharp Gaussian mixture
# that the viscous smoothing prefers the *wide* well below a crossover coupling while
# the Moreau envelope keeps the sharp global minimum, runs the library optimizers
# (GD, `entropix.entropy_sgd`, `entropix.hj`) on the rugged loss, and evolves Langevin
# particle densities under `f`, `f_γ` and `u`.
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

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import entropix
from entropix import toys

FAST = os.environ.get("ENTROPIX_FAST") == "1"  # smaller particle clouds for the tests

print("jax", jax.__version__, "| fast mode:", FAST)

# %% [markdown]
# ## The rugged function and its smoothings (thesis Fig. 4.1 analogue)
#
# `toys.rugged_1d(x) = x²/10 + 0.8 sin 3x + 0.3 sin(7x + 1)` has 10 local minima on
# `[−6, 6]`, the global one at `x ≈ −0.415`. `toys.grid_local_entropy` computes the
# viscous `f_γ` by quadrature (β = 1) and `toys.grid_moreau_envelope` the non-viscous
# HJ solution exactly on a grid; the quadrature grid is wider than the plotted range so
# the truncated integral does not bend the edges. Both are evaluated on a coarser set
# of points (`points=`), where we also count local minima with
# `toys.grid_local_minima`.

# %%
y = jnp.linspace(-8.0, 8.0, 1601)  # quadrature grid
f_grid = toys.rugged_1d(y)
x = jnp.linspace(-6.0, 6.0, 241)  # where we look
COUPLINGS = [10.0, 3.0, 1.0, 0.3, 0.1]

viscous = {c: toys.grid_local_entropy(f_grid, y, c, points=x) for c in COUPLINGS}
moreau = {c: toys.grid_moreau_envelope(f_grid, y, c, points=x) for c in COUPLINGS}
minima = {"f": len(toys.grid_local_minima(toys.rugged_1d(x)))}
print(f"{'coupling γ':>10s} {'minima of f_γ (viscous)':>24s} {'minima of u (HJ)':>17s}")
print(f"{'∞ (f)':>10s} {minima['f']:>24d} {minima['f']:>17d}")
for c in COUPLINGS:
    minima[c] = (len(toys.grid_local_minima(viscous[c])), len(toys.grid_local_minima(moreau[c])))
    print(f"{c:>10g} {minima[c][0]:>24d} {minima[c][1]:>17d}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, curves, title in [
    (axes[0], viscous, "viscous: local entropy $f_γ$"),
    (axes[1], moreau, "non-viscous HJ: Moreau envelope $u$"),
]:
    ax.plot(x, toys.rugged_1d(x), "k", lw=2, label="f")
    for c in COUPLINGS:
        ax.plot(x, curves[c], label=f"γ = {c:g}")
    ax.set_title(title)
    ax.set_xlabel("x")
axes[0].legend(fontsize=8)
plt.show()

# %% [markdown]
# Smoothing removes local minima monotonically as the coupling decreases. The two
# smoothings differ: `u ≤ f` keeps the minimum value and the global minimizer of `f`
# for every coupling, while `f_γ` (a log-partition function) moves its minimum toward
# the region with the most low-loss *volume*.
#
# ## Wide vs sharp: the Gaussian mixture
#
# `toys.wide_vs_sharp_mixture()` is `f = −log(0.3 N(2, 0.05²) + 0.7 N(−2, 0.5²))`: the
# sharp well at `+2` is deeper (global minimum), the wide one at `−2` holds more mass.
# The local entropy has a closed form (`toys.mixture_local_entropy`); below the crossover
# coupling `toys.wide_vs_sharp_crossover()` its minimum jumps to the wide well. The
# Moreau envelope keeps the sharp global minimum for every coupling.

# %%
mixture = toys.wide_vs_sharp_mixture()
crossover = toys.wide_vs_sharp_crossover()
ym = jnp.linspace(-4.0, 4.0, 801)
f_mix = jax.vmap(lambda z: toys.mixture_loss(z[None], mixture))(ym)
MIX_COUPLINGS = [100.0, 30.0, 10.0, 3.0]
argmin = {}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax in axes:
    ax.plot(ym, f_mix, "k", lw=2, label="f")
for c in MIX_COUPLINGS:
    f_gamma = jax.vmap(lambda z, c=c: toys.mixture_local_entropy(z[None], mixture, c))(ym)
    u = toys.grid_moreau_envelope(f_mix, ym, c)
    argmin[c] = (float(ym[jnp.argmin(f_gamma)]), float(ym[jnp.argmin(u)]))
    axes[0].plot(ym, f_gamma, label=f"γ = {c:g}")
    axes[1].plot(ym, u, label=f"γ = {c:g}")
    print(
        f"γ = {c:5g} ({'below' if c < crossover else 'above'} crossover "
        f"{crossover:.1f}): argmin f_γ = {argmin[c][0]:+.2f}, argmin u = {argmin[c][1]:+.2f}"
    )
axes[0].set_title("viscous $f_γ$ (closed form)")
axes[1].set_title("non-viscous HJ $u$")
axes[0].set_ylim(-2.5, 6)
axes[0].legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Trajectories: GD vs Entropy-SGD vs HJ on the rugged loss
#
# The library optimizers run in step form on the 1-D loss from 12 starts spread over
# `[−5.5, 5.5]`, each for 2,000 gradient evaluations:
#
# * GD: `optax.sgd(0.02)`;
# * Entropy-SGD: `entropix.entropy_sgd` with `L = 20` SGLD steps per outer step at
#   temperature `ε²/2 = 0.5`, no momentum, and the coupling scoped from 0.2 up by 5 %
#   per outer step (`entropix.exponential_scoping`) so the anchor settles in a minimum
#   of `f` at the end;
# * HJ: `entropix.hj` (proximal point with the prox computed by `L = 20` gradient steps)
#   at coupling 0.3.
#
# For reference, the *exact* proximal-point iteration `x ← prox_{f/γ}(x)` is computed by
# grid search with `toys.grid_prox` (not a gradient method).

# %%
grad_f = jax.grad(lambda w: jnp.sum(toys.rugged_1d(w)))
starts = jnp.linspace(-5.5, 5.5, 12)
NUM_GRADS, L = 2000, 20


def anchor_path(opt, starts, local_entropy=True):
    """Runs `opt` in step form from every start; returns the anchors (or iterates)."""

    def one(x0):
        def body(carry, _):
            w, state = carry
            updates, state = opt.update(grad_f(w), state, w)
            w = optax.apply_updates(w, updates)
            return (w, state), entropix.anchor_params(state) if local_entropy else w

        return jax.lax.scan(body, (x0, opt.init(x0)), None, length=NUM_GRADS)[1]

    return jax.jit(jax.vmap(one))(starts)


optimizers = {
    "GD": (optax.sgd(0.02), False),
    "Entropy-SGD": (
        entropix.entropy_sgd(
            1.0,
            num_inner_steps=L,
            coupling=entropix.exponential_scoping(0.2, 0.05),
            sgld_learning_rate=0.02,
            noise=1.0,
            momentum=0.0,
            inner_momentum=0.0,
        ),
        True,
    ),
    "HJ": (entropix.hj(1.0, num_inner_steps=L, coupling=0.3, sgld_learning_rate=0.02), True),
}
paths = {name: anchor_path(opt, starts, le) for name, (opt, le) in optimizers.items()}


def exact_proximal_point(x0, coupling=0.3, num_steps=NUM_GRADS // L):
    def body(w, _):
        w = toys.grid_prox(f_grid, y, coupling, points=w)
        return w, w

    return jax.lax.scan(body, x0, None, length=num_steps)[1]


prox_path = exact_proximal_point(starts)  # (outer steps, starts)

final = {name: np.asarray(path[:, -1]) for name, path in paths.items()}
final["exact prox (grid)"] = np.asarray(prox_path[-1])
summary = {}
for name, w in final.items():
    distinct = len(np.unique(np.round(w, 1)))
    summary[name] = (distinct, float(toys.rugged_1d(w).mean()))
    print(
        f"{name:18s} end points {np.round(w, 2)}\n{'':18s} "
        f"{distinct} distinct, mean final loss {summary[name][1]:+.3f}"
    )

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
steps = np.arange(1, NUM_GRADS + 1)
pick = 10  # the start at x0 = 4.5
for name, path in paths.items():
    axes[0].plot(steps, path[pick], label=name)
axes[0].plot(
    np.arange(1, NUM_GRADS // L + 1) * L, prox_path[:, pick], "--", label="exact prox (grid)"
)
axes[0].set_xlabel("gradient evaluations")
axes[0].set_ylabel("anchor x")
axes[0].set_title(f"from x0 = {float(starts[pick]):.1f}")
axes[0].legend(fontsize=8)
axes[1].plot(x, toys.rugged_1d(x), "k", lw=1)
for marker, (name, w) in zip("ovs^", final.items(), strict=True):
    axes[1].plot(w, toys.rugged_1d(w), marker, ms=9, alpha=0.6, label=name)
axes[1].set_title("end points of the 12 runs")
axes[1].legend(fontsize=8)
plt.show()

# %% [markdown]
# GD stops in the local minimum nearest to each start. Entropy-SGD's anchor follows the
# smoothed loss while the coupling is small and ends in a few low minima. The library's
# HJ behaves like GD here: its inner gradient steps find the *nearest* minimizer of the
# proximal objective `f(y) + γ/2 |y − x|²`, which is non-convex for `γ < −min f'' ≈ 21`,
# so it does not realize the Moreau envelope's smoothing; the exact (grid) proximal
# point does, and reaches the global basin from most starts.
#
# ## Densities evolved under each potential
#
# Langevin particles `dX = −∇V(X) dt + √(2T) dW` at temperature `T = 0.1`, started
# uniformly on `[−6, 6]`, for `V = f`, the viscous `f_γ` and the Moreau envelope `u`
# (coupling 1). The smoothed drifts come from the toys: `∇f_γ(x) = γ (x − ⟨y⟩)` with
# the local Gibbs mean `toys.grid_local_mean`, and `∇u(x) = γ (x − prox(x))` with
# `toys.grid_prox`.

# %%
C, T, DT, NUM_STEPS = 1.0, 0.1, 0.02, 1000
NUM_PARTICLES = 500 if FAST else 5000
y_coarse = jnp.linspace(-8.0, 8.0, 801)
f_coarse = toys.rugged_1d(y_coarse)
drifts = {
    "f": grad_f,
    "viscous f_γ": lambda w: C * (w - toys.grid_local_mean(f_coarse, y_coarse, C, points=w)),
    "HJ u": lambda w: C * (w - toys.grid_prox(f_coarse, y_coarse, C, points=w)),
}


@jax.jit
def evolve(x0, key):
    snapshots = {}
    for name, drift in drifts.items():

        def body(w, k, drift=drift):
            w = w - DT * drift(w) + jnp.sqrt(2 * T * DT) * jax.random.normal(k, w.shape)
            return w, w

        snapshots[name] = jax.lax.scan(body, x0, jax.random.split(key, NUM_STEPS))[1]
    return snapshots


x0 = jax.random.uniform(jax.random.key(0), (NUM_PARTICLES,), minval=-6.0, maxval=6.0)
snapshots = evolve(x0, jax.random.key(1))
global_basin = {}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5), sharey=True)
for ax, name in zip(axes, drifts, strict=True):  # jit returns the dict sorted by key
    snap = snapshots[name]
    for step in [0, 99, NUM_STEPS - 1]:
        ax.hist(
            np.asarray(snap[step]),
            bins=80,
            range=(-6, 6),
            density=True,
            histtype="step",
            label=f"t = {(step + 1) * DT:g}",
        )
    global_basin[name] = float(jnp.mean(jnp.abs(snap[-1] + 0.415) < 0.6))
    ax.set_title(f"V = {name}: {100 * global_basin[name]:.0f}% in the global basin")
    ax.set_xlabel("x")
axes[0].legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Summary

# %%
print("local minima on [−6, 6]:", minima)
print("mixture argmin (viscous, HJ):", argmin)
print("trajectories (distinct end points, mean final loss):", summary)
print("fraction of particles in the global basin at t =", NUM_STEPS * DT, global_basin)

# The claims of this notebook (checked by tests/test_notebooks.py):
viscous_counts = [minima["f"]] + [minima[c][0] for c in COUPLINGS]
moreau_counts = [minima["f"]] + [minima[c][1] for c in COUPLINGS]
assert viscous_counts == sorted(viscous_counts, reverse=True) and viscous_counts[-1] == 1
assert moreau_counts == sorted(moreau_counts, reverse=True) and moreau_counts[-1] < 10
for c in MIX_COUPLINGS:  # viscous: wide well below the crossover; HJ: always sharp
    assert abs(argmin[c][0] - (-2.0 if c < crossover else 2.0)) < 0.1, (c, argmin[c])
    assert abs(argmin[c][1] - 2.0) < 0.1, (c, argmin[c])
assert summary["Entropy-SGD"][0] < summary["GD"][0]
assert summary["Entropy-SGD"][1] < summary["GD"][1]
assert min(global_basin["viscous f_γ"], global_basin["HJ u"]) > 1.5 * global_basin["f"]
