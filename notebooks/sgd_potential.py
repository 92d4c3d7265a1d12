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
# # SGD's steady state is not the loss: non-isotropic noise, a potential Φ and limit cycles
#
# Chaudhari & Soatto (ICLR 2018; thesis ch. 6) model SGD with learning rate `η` and batch
# size `b` as the diffusion `dX = −∇f dt + sqrt(2β⁻¹D(X)) dB` with temperature
# `β⁻¹ = η/(2b)` (thesis eq. 6.2, 6.6) and argue three things: the gradient noise `D` is
# highly non-isotropic (low rank); because of that, SGD's steady state is `e^{−βΦ}` for a
# potential `Φ` that is **not** the loss `f` (Lemma 6.27: `Φ = f` iff `D ∝ I`); and the
# dynamics is out of equilibrium, with a probability current that makes SGD circulate —
# limit cycles (Example 6.43, Theorems 6.46 and 6.48). This notebook checks the three
# claims with `entropix`: the double well of Example 6.43 in its three rotation regimes
# (`entropix.toys.nonequilibrium`: exact steady state, critical points, simulated
# trajectories, density and current), the linearized theory at a minimum (Lemma 6.44,
# `entropix.landscape.linearized_potential`) checked against SGD runs with and without
# replacement, the potential of least squares on real data (MNIST-1D) where `F` and `D`
# are exact, and the gradient-noise spectrum and top-Hessian-subspace potential of a small
# network.
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
import math
import os

import jax

jax.config.update("jax_enable_x64", True)  # closed-form comparisons below need float64

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from entropix import data, landscape, models, toys

FAST = os.environ.get("ENTROPIX_FAST") == "1"  # fewer chains and steps for the tests

print("jax", jax.__version__, "| devices:", jax.devices(), "| fast mode:", FAST)

# %% [markdown]
# ## 1. A double well whose drift rotates (thesis Example 6.43)
#
# `Φ(x) = (x₁² − 1)²/4 + x₂²/2` and `∇f = ∇Φ − j` with `j = λ e^{Φ − r⁴/4} (−x₂, x₁)`:
# SGD-like dynamics `dX = −∇f dt + √2 dB`. Since `∇·(j e^{−Φ}) = 0`, the steady state is
# `e^{−Φ}/Z` **for every λ**: the most likely locations stay at `(±1, 0)`. But the critical
# points of `f` move (`±(0.9024, 0.3888)` at `λ = 0.5`) and disappear for
# `λ > λ_c = e^{−1/4}`: then only the saddle `(0, 0)` is critical and trajectories circle it.
# The steady-state current `J = (λ/Z) e^{−r⁴/4}(−x₂, x₁)` gives the mean angular velocity
# `E[x₁ẋ₂ − x₂ẋ₁] = 2πλ/Z` exactly (`toys.double_well_angular_velocity`).

# %%
LAMBDAS = (0.0, 0.5, 1.5)
CHAINS = 400 if FAST else 4000
STEPS = 3000 if FAST else 20000
DT, RECORD = 2e-3, 10
moments = toys.double_well_moments()
print(f"Z = {moments.normalizer:.6f}, E[x1^2] = {moments.x1_squared:.6f}, E[x2^2] = 1")
print(f"critical strength λ_c = {toys.double_well_critical_strength():.6f} (e^-1/4)")
paths = {}
print(" λ   critical points of f                 E[x1²] sim   E[x1x2'-x2x1'] sim / exact   winding")
for i, lam in enumerate(LAMBDAS):
    x0 = jax.random.normal(jax.random.key(i), (CHAINS, 2))
    paths[lam] = toys.simulate_sde(
        lambda x, lam=lam: -toys.double_well_gradient(x, lam),
        x0,
        jax.random.key(100 + i),
        dt=DT,
        num_steps=STEPS,
        burn_in=STEPS // 4,
        record_every=RECORD,
    )
    crit = toys.double_well_critical_points(lam)
    s = paths[lam].samples
    x1sq = float(jnp.mean(s[..., 0] ** 2))
    omega = np.asarray(paths[lam].angular_momentum[:, 0, 1])
    wind = float(jnp.mean(toys.winding_rate(s, dt=DT * RECORD)))
    crit_text = ", ".join(f"({a:+.3f},{b:+.3f})" for a, b in crit)
    print(
        f"{lam:3.1f}  {crit_text:37s} {x1sq:6.3f}       "
        f"{omega.mean():6.3f} ± {omega.std() / math.sqrt(CHAINS):5.3f} / "
        f"{toys.double_well_angular_velocity(lam):6.3f}      {wind:6.3f}"
    )

# %%
grid = np.linspace(-2.2, 2.2, 121)
X1, X2 = np.meshgrid(grid, grid)
pts = jnp.stack([X1, X2], -1)
phi = np.asarray(toys.double_well_potential(pts))
fig, axes = plt.subplots(2, 3, figsize=(13, 8))
for col, lam in enumerate(LAMBDAS):
    ax = axes[0, col]
    ax.contour(X1, X2, phi, levels=15, cmap="Greys", linewidths=0.7)
    drift = -np.asarray(toys.double_well_gradient(pts, lam))
    ax.streamplot(
        X1, X2, drift[..., 0], drift[..., 1], density=0.7, color="tab:blue", linewidth=0.6
    )
    traj = np.asarray(paths[lam].samples[0, :300])
    ax.plot(traj[:, 0], traj[:, 1], color="tab:orange", lw=0.8, label="one SGD-like path")
    crit = toys.double_well_critical_points(lam)
    ax.plot(crit[:, 0], crit[:, 1], "rx", ms=9, mew=2, label="∇f = 0")
    ax.plot([-1, 1], [0, 0], "go", ms=6, label="max of e^{-Φ}")
    ax.set_title(f"λ = {lam}: drift −∇f, Φ contours")
    ax.set_xlim(-2.2, 2.2)
    ax.set_ylim(-2.2, 2.2)
    if col == 0:
        ax.legend(loc="lower left", fontsize=8)
    ax = axes[1, col]
    samples = np.asarray(paths[lam].samples).reshape(-1, 2)
    ax.hist(samples[:, 0], bins=80, range=(-3, 3), density=True, alpha=0.5, label="x₁ simulated")
    ax.hist(samples[:, 1], bins=80, range=(-3, 3), density=True, alpha=0.5, label="x₂ simulated")
    s = np.linspace(-3, 3, 400)
    ax.plot(s, np.exp(-((s**2 - 1) ** 2) / 4) * math.sqrt(2 * math.pi) / moments.normalizer, "k")
    ax.plot(s, np.exp(-(s**2) / 2) / math.sqrt(2 * math.pi), "k--")
    ax.set_title("marginals vs e^(-Φ)/Z (same for every λ)")
    if col == 0:
        ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The steady-state current `J = ρ^{ss} j` (zero at `λ = 0`: detailed balance) circulates around
# the saddle, strongest on the ring `r ≈ 1`:

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
rho = np.asarray(toys.double_well_density(pts))
for ax, lam in zip(axes, LAMBDAS, strict=True):
    current = rho[..., None] * np.asarray(toys.double_well_rotation(pts, lam))
    speed = np.linalg.norm(current, axis=-1)
    ax.contourf(X1, X2, rho, levels=20, cmap="Blues")
    if lam > 0:
        ax.streamplot(
            X1,
            X2,
            current[..., 0],
            current[..., 1],
            color="k",
            linewidth=3 * speed / speed.max() + 0.2,
            density=0.8,
        )
    ax.set_title(f"λ = {lam}: density e^(-Φ)/Z and current ρ j")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. At a minimum: the linearized potential (thesis Lemma 6.44)
#
# Near a critical point with Hessian `F` and constant `D`, SGD is an Ornstein–Uhlenbeck
# process (eq. 6.46) with stationary covariance `β⁻¹C`, `F C + C Fᵀ = 2D`. Then
# `Φ = ½ xᵀUx` with `U = C⁻¹`, and `F = (D + Q)U` with `Q = F C − D` antisymmetric
# (eq. 6.47): `Q ≠ 0` is the rotation, the current. `Q = 0` iff `FD = DF`; `U ∝ F` iff
# `D ∝ I`. Below: least squares with heteroscedastic noise (`F`, `D` exact), SGD runs with
# minibatches drawn with replacement (`β⁻¹ = η/(2b)`) and without (`β⁻¹ = (η/(2b))(1 − b/N)`
# with `D_wo`, equivalently a factor `(N − b)/(N − 1)` on the with-replacement prediction).
# The continuous-time prediction is off by `O(ηλ_max)`; `discrete=True` solves the exact
# equation of the linear recursion.


# %%
def least_squares(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 3)) * np.array([1.0, 0.8, 0.6])
    a[:, 1] += 0.5 * a[:, 0]
    y = a @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=n) * (0.3 + np.abs(a[:, 0]))
    w = np.linalg.lstsq(a, y, rcond=None)[0]
    return (
        jnp.asarray(a),
        jnp.asarray(y),
        jnp.asarray(w),
        jnp.asarray(a.T @ a / n),
        a * (a @ w - y)[:, None],
    )


def run_sgd(a, y, w0, eta, b, chains, steps, replacement, key):
    n = a.shape[0]

    def step(x, k):
        if replacement:
            idx = jax.random.randint(k, (b,), 0, n)
        else:
            idx = jax.lax.top_k(jax.random.uniform(k, (n,)), b)[1]
        x = x - eta * a[idx].T @ (a[idx] @ x - y[idx]) / b
        return x, x

    def chain(k):
        x, _ = jax.lax.scan(step, w0, jax.random.split(jax.random.fold_in(k, 1), 500))
        return jax.lax.scan(step, x, jax.random.split(k, steps))[1]

    return jax.jit(jax.vmap(chain))(jax.random.split(key, chains))


ETA = 0.05
SGD_CHAINS, SGD_STEPS = (32, 6000) if FAST else (128, 40000)
ls_results = {}
for label, n, b, replacement in (("with replacement", 2000, 8, True), ("without", 20, 10, False)):
    a, y, w, F, grads = least_squares(n, 0 if replacement else 2)
    D = landscape.noise_covariance(grads, replacement=replacement)
    kw = dict(learning_rate=ETA, batch_size=b, num_examples=None if replacement else n)
    xs = run_sgd(a, y, w, ETA, b, SGD_CHAINS, SGD_STEPS, replacement, jax.random.key(7))
    est = landscape.iterate_covariance(xs, center=w)
    cont = landscape.sgd_stationary_covariance(F, D, **kw)
    disc = landscape.sgd_stationary_covariance(F, D, discrete=True, **kw)
    naive = landscape.sgd_stationary_covariance(
        F, landscape.noise_covariance(grads), learning_rate=ETA, batch_size=b, discrete=True
    )

    def rel(m, ref):
        return float(jnp.linalg.norm(m - ref) / jnp.linalg.norm(ref))

    se = float(jnp.linalg.norm(est.standard_error) / jnp.linalg.norm(cont))
    L = landscape.angular_momentum(xs, dt=ETA, center=w)
    pot = landscape.linearized_potential(F, D)
    two_tq = (
        2 * landscape.sgd_temperature(ETA, b, num_examples=kw["num_examples"]) * pot.antisymmetric
    )
    ls_results[label] = dict(
        cont=rel(est.covariance, cont),
        disc=rel(est.covariance, disc),
        naive=rel(est.covariance, naive),
        se=se,
        L=float(L.value[0, 1]),
        L_se=float(L.standard_error[0, 1]),
        L_pred=float(two_tq[0, 1]),
    )
    print(
        f"{label:17s} N={n:4d} b={b:2d}: |Σ_sgd − β⁻¹C|/|β⁻¹C| = {ls_results[label]['cont']:.3f}, "
        f"vs discrete {ls_results[label]['disc']:.3f} (SE {se:.3f})"
        + (
            ""
            if replacement
            else f", vs the with-replacement formula {ls_results[label]['naive']:.3f}"
        )
    )
    print(
        f"{'':17s} angular momentum E[x1ẋ2 − x2ẋ1] = {L.value[0, 1]:.5f} ± "
        f"{L.standard_error[0, 1]:.5f}, 2β⁻¹Q12 = {two_tq[0, 1]:.5f}"
    )

# %% [markdown]
# ## 3. Real data: least squares on MNIST-1D
#
# For a linear model the Hessian `F = AᵀA/N` and the diffusion `D` at the minimizer are exact
# (40 MNIST-1D features + a bias, target `+1` for digits 0–4, `−1` otherwise). If SGD's
# potential were the loss, `U` would be a multiple of `F`.

# %%
ds = data.load_mnist1d()
feats = np.asarray(ds.x_train, np.float64)
A = np.concatenate([feats, np.ones((len(feats), 1))], axis=1)
yy = np.where(np.asarray(ds.y_train) < 5, 1.0, -1.0)
w_star = np.linalg.lstsq(A, yy, rcond=None)[0]
F_lin = jnp.asarray(A.T @ A / len(yy))
D_lin = landscape.noise_covariance(A * (A @ w_star - yy)[:, None])
pot_lin = landscape.linearized_potential(F_lin, D_lin)
mis_lin = landscape.potential_mismatch(F_lin, D_lin, potential=pot_lin)
iso_lin = landscape.potential_mismatch(
    F_lin, jnp.trace(D_lin) / F_lin.shape[0] * jnp.eye(F_lin.shape[0])
)
print(
    f"MNIST-1D least squares, d = {F_lin.shape[0]}: Lyapunov residual {float(pot_lin.residual):.1e}"
)
print(
    f"angle(U, F) = {np.degrees(float(mis_lin.angle)):.1f}°, ‖[F, D]‖ (relative) = "
    f"{float(mis_lin.commutator):.3f}, ‖Q‖/‖D‖ = {float(mis_lin.rotation):.3f}, "
    f"current fraction of the drift = {float(mis_lin.current_fraction):.4f}"
)
print(f"same F with isotropic D of equal trace: angle {np.degrees(float(iso_lin.angle)):.1e}°")

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
U_lin = np.asarray(pot_lin.curvature)
ax = axes[0]
ax.scatter(
    np.asarray(F_lin).ravel() / np.linalg.norm(F_lin), U_lin.ravel() / np.linalg.norm(U_lin), s=3
)
ax.set_xlabel("F / ‖F‖ (entries)")
ax.set_ylabel("U / ‖U‖ (entries)")
ax.set_title("Φ ∝ f would put every entry on the diagonal")
ax = axes[1]
ax.semilogy(np.sort(np.linalg.eigvalsh(np.asarray(F_lin)))[::-1], label="eig F")
ax.semilogy(
    np.sort(np.linalg.eigvalsh(U_lin))[::-1] * np.trace(np.asarray(D_lin)) / 41,
    label="eig U × tr(D)/d",
)
ax.semilogy(np.sort(np.linalg.eigvalsh(np.asarray(D_lin)))[::-1], label="eig D")
ax.legend()
ax.set_title("spectra")
ax = axes[2]
im = ax.imshow(np.asarray(pot_lin.antisymmetric), cmap="RdBu")
plt.colorbar(im, ax=ax)
ax.set_title("Q = F C − D (antisymmetric: the current)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. A small network: the noise spectrum and the potential on the top Hessian subspace
#
# Thesis Fig. 6.1–6.2: the eigenvalues of `D` of a trained network are mostly zero (rank
# 0.3–2% of `d`). Here an MLP on MNIST-1D trained briefly by SGD; `landscape.noise_spectrum`
# on per-example gradients, then `landscape.projected_linearization`: Lanczos on
# Hessian-vector products gives the top-`k` Hessian subspace, and Lemma 6.44 is applied to
# `F` and `D` restricted to it — matrix-free, so it scales to the networks of the chapter.

# %%
NET = models.MLP(features=(32,), num_classes=10)
x_tr, y_tr = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
params = NET.init(jax.random.key(0), x_tr[:1], train=False)["params"]
loss_fn = models.make_loss_fn(NET)
opt = optax.sgd(0.1, momentum=0.9)
opt_state = opt.init(params)
EPOCHS, NB = (3 if FAST else 30), 100


@jax.jit
def sgd_epoch(carry, perm):
    def step(carry, idx):
        params, opt_state = carry
        g = jax.grad(loss_fn)(params, (x_tr[idx], y_tr[idx]))
        updates, opt_state = opt.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    return jax.lax.scan(step, carry, perm.reshape(-1, NB))[0]


carry = (params, opt_state)
for epoch in range(EPOCHS):
    perm = jax.random.permutation(jax.random.key(epoch), len(y_tr))[: (len(y_tr) // NB) * NB]
    carry = sgd_epoch(carry, perm)
params = carry[0]
d_net = sum(p.size for p in jax.tree_util.tree_leaves(params))
NUM_NOISE = 256 if FAST else 2000
noise_batch = (x_tr[:NUM_NOISE], y_tr[:NUM_NOISE])
grads_net = landscape.per_example_gradients(loss_fn, params, [noise_batch])
noise = landscape.noise_spectrum(grads_net, learning_rate=0.1, batch_size=NB)
print(
    f"MLP d = {d_net}, train loss {float(loss_fn(params, (x_tr, y_tr))):.3f}: "
    f"rank(D) = {noise.rank} of d ({100 * noise.rank_fraction:.2f}%, "
    f"at most N − 1 = {NUM_NOISE - 1}), "
    f"eigenvalues mean {noise.mean:.2e} ± {noise.std:.2e}"
)
K = 8
proj = landscape.projected_linearization(
    loss_fn, params, [(x_tr[:1000], y_tr[:1000])], k=K, noise_batches=[noise_batch]
)
print(
    f"top-{K} Hessian subspace: Ritz values {np.round(np.asarray(proj.ritz_values), 3)}; "
    f"angle(U_k, F_k) = {np.degrees(float(proj.mismatch.angle)):.1f}°, "
    f"‖Q‖/‖D‖ = {float(proj.mismatch.rotation):.3f}, "
    f"current fraction {float(proj.mismatch.current_fraction):.4f}"
)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(np.asarray(noise.eigenvalues[: min(NUM_NOISE, d_net)]) + 1e-20)
ax.axhline(noise.tolerance, color="k", ls="--", lw=0.8, label="rank tolerance")
ax.set_xlabel("index")
ax.set_ylabel("eigenvalue of D")
ax.legend()
plt.show()

# %% [markdown]
# ## Claims
#
# The cell below asserts what this notebook shows (the tolerances hold in fast mode too):
# the simulated double-well marginals and angular velocities match the exact `e^{−Φ}` and
# `2πλ/Z`; for `λ = 1.5` only the saddle is critical and the chains wind around it; SGD's
# iterate covariance on least squares matches `β⁻¹C` within the `O(η)` bias, and the
# without-replacement factor is needed; on MNIST-1D `U` is far from `∝ F` while isotropic
# noise would give `Φ ∝ f`; the network's noise matrix is low rank.

# %%
for lam in LAMBDAS:
    s = paths[lam].samples
    per_chain = np.asarray(jnp.mean(s[..., 0] ** 2, axis=1))
    assert (
        abs(per_chain.mean() - moments.x1_squared) < 4 * per_chain.std() / math.sqrt(CHAINS) + 0.01
    )
    omega = np.asarray(paths[lam].angular_momentum[:, 0, 1])
    exact = toys.double_well_angular_velocity(lam)
    assert abs(omega.mean() - exact) < 4 * omega.std() / math.sqrt(CHAINS) + 0.01, (
        lam,
        omega.mean(),
    )
assert len(toys.double_well_critical_points(0.5)) == 3
assert toys.double_well_critical_points(1.5).tolist() == [[0.0, 0.0]]
assert float(jnp.mean(toys.winding_rate(paths[1.5].samples, dt=DT * RECORD) > 0)) > 0.9
r = ls_results["with replacement"]
assert r["disc"] < 3 * r["se"] + 0.01 and r["cont"] < 3 * r["se"] + 0.05
assert abs(r["L"] - r["L_pred"]) < 4 * r["L_se"] + 0.1 * abs(r["L_pred"])
r = ls_results["without"]
assert r["disc"] < 3 * r["se"] + 0.02 and r["naive"] > 0.3
assert float(pot_lin.residual) < 1e-10
assert np.degrees(float(mis_lin.angle)) > 45 and float(mis_lin.current_fraction) > 1e-3
assert float(iso_lin.angle) < 1e-6
assert noise.rank <= min(NUM_NOISE - 1, d_net) and noise.std > 2 * noise.mean  # non-isotropic
assert float(proj.potential.residual) < 1e-4  # the network runs in float32
print("all claims hold")
