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
# # Trivialized-SGD: a random field that trivializes the p-spin glass
#
# Thesis ch. 2: adding a random magnetic field `h ~ N(0, ν² I)` to the spherical
# 3-spin glass `H(σ) = −N⁻¹ Σ J_ijk σ_i σ_j σ_k − hᵀσ` changes the topology of its
# landscape. Without a field, gradient descent from random starts ends in many distinct
# local minima; above the critical field `ν_c = √(p(p−2)) = √3` every start reaches the
# same minimum ("total trivialization"). Trivialized-SGD (`entropix.trivialized_sgd`)
# adds a field of fixed random direction to the gradient, starting on the trivialized
# side (`√2 ν_c`) and annealing it to zero. This notebook counts the distinct minima
# projected gradient descent finds as a function of the field strength
# (`entropix.toys.spin_glass`), plots the field schedule and the order parameter it
# sweeps, and runs Trivialized-SGD on the field-free glass against plain gradient
# descent and the resampled-noise baseline.
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
import matplotlib.pyplot as plt
import numpy as np
import optax

import entropix
from entropix import toys

FAST = os.environ.get("ENTROPIX_FAST") == "1"  # smaller glass for the test suite

print("jax", jax.__version__, "| fast mode:", FAST)

# %% [markdown]
# ## Distinct minima vs field strength
#
# One coupling tensor `J` (kept fixed with `field_key`) and one field direction, scaled
# to several strengths `ν`. Projected gradient descent on the sphere `|σ|² = N`
# (`toys.projected_gradient_descent`, thesis step 0.1, stop at `|∇_tan H|² ≤ 10⁻⁴`)
# from the same random starts; `toys.distinct_minima` clusters the end points by overlap
# `σ·σ'/N > 0.99`. The thesis reports a mean cosine distance of 1.16 between minima
# without field and 0.02 in the trivial regime (`N = 100`).

# %%
N, NUM_STARTS = (40, 64) if FAST else (100, 128)
key_j, key_h, key_s = jax.random.split(jax.random.key(0), 3)
starts = toys.random_sphere_points(key_s, NUM_STARTS, N)
nu_c = float(entropix.critical_field(1.0, 3))  # √3 for p = 3, J = 1
FIELDS = [0.0, 0.5, 1.0, nu_c, 3.0, 5.0]

counts, energies = {}, {}
print(f"N = {N}, {NUM_STARTS} starts, critical field ν_c = {nu_c:.3f}")
print(f"{'ν':>6s} {'B':>7s} {'distinct':>9s} {'cosine dist':>12s} {'mean E/N':>9s}")
for nu in FIELDS:
    glass = toys.make_spin_glass(key_j, N, field_std=nu, field_key=key_h)
    sigma, _, converged = toys.projected_gradient_descent(starts, glass, max_steps=5000)
    counts[nu] = int(toys.distinct_minima(sigma).max()) + 1
    energies[nu] = np.asarray(toys.spin_glass_energy(sigma, glass)) / N
    order = float(entropix.trivialization_order_parameter(nu, 1.0, 3))
    print(
        f"{nu:6.3f} {order:7.3f} {counts[nu]:9d} "
        f"{toys.mean_cosine_distance(sigma):12.3f} {energies[nu].mean():9.3f}"
        + ("" if bool(converged.all()) else "  (some runs did not converge)")
    )

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].semilogy(FIELDS, [counts[nu] for nu in FIELDS], "o-")
axes[0].axvline(nu_c, color="gray", ls=":", label="ν_c = √3")
axes[0].set_xlabel("field strength ν")
axes[0].set_ylabel(f"distinct minima ({NUM_STARTS} starts)")
axes[0].legend()
u = np.linspace(-1.75, -1.2, 300)
for k in [0, 1, 2]:
    axes[1].plot(u, toys.complexity(u, 3, k=k), label=f"Θ_{k}(u)")
axes[1].axhline(0.0, color="k", lw=0.5)
axes[1].axvline(toys.complexity_zero(3, 0), color="gray", ls=":", label="−E₀ (ground state)")
axes[1].axvline(-toys.complexity_e_inf(3), color="gray", ls="--", label="−E_∞ (threshold)")
ax2 = axes[1].twinx()
ax2.hist(energies[0.0], bins=20, color="tab:gray", alpha=0.3)
ax2.set_ylabel("minima found at ν = 0")
axes[1].set_xlabel("energy per spin u")
axes[1].set_title("complexity of index-k critical points (N → ∞)")
axes[1].legend(fontsize=7, loc="upper left")
plt.show()

# %% [markdown]
# ## The field schedule of Trivialized-SGD
#
# `entropix.field_schedule(i, τ0) = √2 e^{−i/(2τ0)}` multiplies a field drawn once with
# standard deviation `ν_c = J√(p(p−2))`: the effective field starts at `√2 ν_c`
# (order parameter `B < 0`, trivial), crosses `ν_c` (`B = 0`) at `i = τ0 ln 2`, and
# decays to zero (`B → (p−2)/p`, glassy).

# %%
TAU0 = 200.0
iterations = np.arange(0, 1500)
field = nu_c * np.asarray(entropix.field_schedule(iterations, TAU0))
order = np.asarray(entropix.trivialization_order_parameter(field, 1.0, 3))
crossing = int(np.argmax(order > 0))
print(f"B = 0 at iteration {crossing} (τ0 ln 2 = {TAU0 * np.log(2):.1f})")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(iterations, field, label="field strength ν(i)")
ax.axhline(nu_c, color="gray", ls=":", label="ν_c")
ax.plot(iterations, order, label="order parameter B(i)")
ax.axhline(0.0, color="k", lw=0.5)
ax.axvline(TAU0 * np.log(2), color="gray", ls="--", label="τ0 ln 2")
ax.set_xlabel("iteration i")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Trivialized-SGD on the field-free glass
#
# The optimizers act on the tangent gradient of the field-free `H`; after every update
# the point is projected back to the sphere. `entropix.trivialized_sgd(..., momentum=None)`
# adds the annealed fixed-direction field (`J = 1`, `p = 3`, `τ0 = 200`: on the sphere
# the order is the spin glass's own `p`); `resample=True` is the annealed-noise
# baseline (a fresh field every step). All runs share one field direction (one `key`).
# After 3,000 steps a final projected gradient descent without field makes sure every
# run ends in a minimum of the original landscape.

# %%
glass = toys.make_spin_glass(key_j, N, field_std=0.0)
NUM_STEPS = 3000


def run(tx):
    def one(sigma):
        def body(carry, _):
            sigma, state = carry
            grad = toys.riemannian_gradient(sigma, toys.spin_glass_gradient(sigma, glass))
            updates, state = tx.update(grad, state, sigma)
            sigma = toys.project_to_sphere(sigma + updates)
            return (sigma, state), toys.spin_glass_energy(sigma, glass) / N

        (sigma, _), trace = jax.lax.scan(body, (sigma, tx.init(sigma)), None, length=NUM_STEPS)
        return sigma, trace

    sigma, trace = jax.jit(jax.vmap(one))(starts)
    sigma, _, _ = toys.projected_gradient_descent(sigma, glass, max_steps=5000)
    return sigma, trace


methods = {
    "gradient descent": optax.sgd(0.1),
    "Trivialized-SGD": entropix.trivialized_sgd(
        0.1, spin_coupling=1.0, num_layers=3, tau0=TAU0, key=1, momentum=None
    ),
    "resampled field (baseline)": entropix.trivialized_sgd(
        0.1, spin_coupling=1.0, num_layers=3, tau0=TAU0, key=1, momentum=None, resample=True
    ),
}
outcome = {}
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, tx in methods.items():
    sigma, trace = run(tx)
    final_energy = np.asarray(toys.spin_glass_energy(sigma, glass)) / N
    outcome[name] = (
        int(toys.distinct_minima(sigma).max()) + 1,
        float(final_energy.mean()),
        float(final_energy.min()),
    )
    ax.plot(np.asarray(trace).mean(0), label=name)
    print(
        f"{name:28s} {outcome[name][0]:3d} distinct minima, "
        f"mean E/N {outcome[name][1]:.4f}, best {outcome[name][2]:.4f}"
    )
ax.axhline(toys.complexity_zero(3, 0), color="gray", ls=":", label="−E₀ (N → ∞)")
ax.set_xlabel("iteration")
ax.set_ylabel("mean field-free energy per spin")
ax.set_ylim(-1.8, -1.0)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Under the fixed-direction field every start is first carried to the single minimum
# of the trivialized landscape and then follows it as the field decays, so all runs
# end in the *same* minimum, lower than the minimum a typical gradient-descent run
# reaches (though not necessarily as deep as the best of many restarts). A field
# resampled every step averages out and leaves the landscape as glassy as plain
# gradient descent finds it.

# %% [markdown]
# ## Summary

# %%
print("distinct minima vs field strength:", counts)
print("field-free glass (distinct minima, mean E/N, best E/N):", outcome)

# The claims of this notebook (checked by tests/test_notebooks.py):
ordered = [counts[nu] for nu in FIELDS]
assert ordered == sorted(ordered, reverse=True), ordered  # fewer minima with more field
assert counts[0.0] >= 5 and all(counts[nu] == 1 for nu in FIELDS if nu >= nu_c), counts
assert abs(crossing - TAU0 * np.log(2)) <= 1
gd, trivialized = outcome["gradient descent"], outcome["Trivialized-SGD"]
assert trivialized[0] < gd[0] and trivialized[1] < gd[1], outcome
