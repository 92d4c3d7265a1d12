"""Local entropy of the training loss: gradient (SGLD chain) and value (thermodynamic integration).

Convention (see the conventions page of the documentation, docs/conventions.md): ``γ`` is a
*coupling strength*. At temperature ``T = ε²/2`` (``ε`` is
the Langevin ``noise`` of Entropy-SGD's inner step
``x' ← x' − η'(∇f(x') + γ (x' − x)) + √η' ε N(0, I)``) the inner chain samples

.. math::

  ρ_γ(x'; x) \\propto \\exp\\Big(-\\frac{f(x') + \\frac γ2 \\|x - x'\\|^2}{T}\\Big),

and the local entropy is reported as the *normalized* local-entropy loss (thesis eq. 4.11,
heat kernel of variance ``T/γ``)

.. math::

  f_γ(x) = -T \\log \\Big[\\Big(\\frac{γ}{2π T}\\Big)^{d/2}
           \\int \\exp\\Big(-\\frac{f(x') + \\frac γ2 \\|x - x'\\|^2}{T}\\Big)\\, dx'\\Big],

which tends to ``f(x)`` as ``γ → ∞`` and is smoother for small ``γ``. The ICLR paper's free
entropy ``F(x, γ) = log ∫ exp(−f(x') − (γ/2)‖x − x'‖²) dx'`` (``T = 1``) is returned as
``free_entropy = −f_γ/T + (d/2) log(2πT/γ)``. Its gradient is ``∇f_γ(x) = γ (x − ⟨x'⟩)``
(ICLR eq. 7; thesis eq. 3.10 with ``γ_thesis = 1/γ``), independent of ``T``.

**Value by thermodynamic integration** (our derivation; not in the papers):
``∂f_γ/∂γ = ½⟨‖x − x'‖²⟩_γ − dT/(2γ)``, and by Stein's identity for ``ρ_γ``,
``γ⟨‖x' − x‖²⟩ − dT = −⟨(x' − x)·∇f(x')⟩``. Hence

.. math::

  f_γ(x) = f(x) + \\frac12 \\int_γ^{∞} ⟨(x' − x) \\cdot ∇f(x')⟩_{γ'}\\, \\frac{dγ'}{γ'},

integrated by the trapezoid rule in ``log γ'`` on a grid up to ``max_coupling``, plus the tail
``½ I(γ_max)`` (the integrand decays as ``1/γ'`` once ``γ'`` exceeds the curvature of ``f``).
The integrand has no ``dT/γ`` free-Gaussian part to cancel, so its Monte-Carlo noise stays
small at large ``γ``.

Exact checks used by the tests (derived from thesis eq. 4.11): for ``f(y) = ½(y − m)ᵀA(y − m)``,
``f_γ(x) = ½(x − m)ᵀA(I + A/γ)⁻¹(x − m) + (T/2) log det(I + A/γ)``; for a Gaussian mixture
``e^{−f/T} = Σ_i w_i N(y; μ_i, s_i² I)``, ``f_γ(x) = −T log Σ_i w_i N(x; μ_i, (s_i² + T/γ) I)``.

References:
  Chaudhari et al., *Entropy-SGD: biasing gradient descent into wide valleys*, ICLR 2017, §3–4.
  Chaudhari, *A picture of the energy landscape of deep neural networks*, PhD thesis, UCLA
  2018, §3.1.2, eq. 4.11.
  Gelman & Meng, *Simulating normalizing constants: from importance sampling to bridge sampling
  to path sampling*, Statistical Science 1998 (thermodynamic integration).
  Roberts & Tweedie, *Exponential convergence of Langevin distributions and their discrete
  approximations*, Bernoulli 1996 (MALA).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from entropix._src import validation
from entropix.landscape import _flat, dataset, lanczos

PyTree = Any


def _batch_grad_fn(loss_fn, batches, stochastic):
    """``grad_fn(params, i)``: full-data gradient, or the gradient on batch ``i mod n``."""
    n = dataset.num_batches(batches)
    if not stochastic or n == 1:
        return lambda p, i: dataset.batch_mean(jax.grad(loss_fn), batches, p)
    if isinstance(batches, dataset.BatchList):
        branches = [(lambda p, b=b: jax.grad(loss_fn)(p, b)) for b in batches.batches]
        return lambda p, i: jax.lax.switch(i % n, branches, p)

    def grad_fn(p, i):
        batch = jax.tree_util.tree_map(lambda leaf: leaf[i % n], batches.tree)
        return jax.grad(loss_fn)(p, batch)

    return grad_fn


class LocalEntropyGradient(NamedTuple):
    """Output of :func:`estimate_local_entropy_gradient`.

    Attributes:
      gradient: the estimate ``γ (x − μ)`` of ``∇f_γ(x)``, averaged over chains.
      mean: the chains' average ``μ ≈ ⟨x'⟩`` (averaged over chains).
      stderr: standard error of ``gradient`` over chains (zeros for one chain).
      num_chains: number of independent chains.
    """

    gradient: PyTree
    mean: PyTree
    stderr: PyTree
    num_chains: int


def _gradient_chains(
    loss_fn,
    stochastic,
    num_steps,
    burn_in,
    average_weight,
    noise,
    params,
    batches,
    coupling,
    lr,
    keys,
):
    from entropix import sgld_chain  # the optimizers' inner chain (no second implementation)

    grad_fn = _batch_grad_fn(loss_fn, batches, stochastic)

    def one(key):
        out = sgld_chain(
            grad_fn,
            params,
            num_steps=num_steps,
            coupling=coupling,
            sgld_learning_rate=lr,
            noise=noise,
            key=key,
            average_weight=average_weight,
            burn_in=burn_in,
        )
        return out.mean

    return jax.vmap(one)(keys)


_gradient_chains_jit = jax.jit(_gradient_chains, static_argnums=(0, 1, 2, 3, 4, 5))


def estimate_local_entropy_gradient(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    batches: Any,
    *,
    coupling: float,
    num_steps: int,
    sgld_learning_rate: float = 0.1,
    noise: float = 0.0,
    average_weight: float | None = None,
    burn_in: int = 0,
    num_chains: int = 1,
    stochastic: bool = False,
    key: jax.Array | None = None,
) -> LocalEntropyGradient:
    """Local-entropy gradient ``∇f_γ(x) = γ (x − ⟨x'⟩)`` estimated by Entropy-SGD's SGLD chain.

    Runs ``num_chains`` independent chains of :func:`entropix.sgld_chain` (the optimizers' inner
    loop, temperature ``T = ε²/2``) from ``x = params`` and returns ``γ (x − μ)`` averaged over
    chains, with its standard error. With ``average_weight=None`` ``μ`` is the uniform mean after
    ``burn_in`` (an estimator of ``⟨x'⟩``); a float gives the optimizers' exponential average
    ``μ ← (1 − α) μ + α x'``. The chain is unadjusted Langevin: its bias is ``O(η')``.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the anchor ``x``, any pytree.
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).
      coupling: ``γ > 0`` (coupling strength; the thesis' γ is ``1/coupling``).
      num_steps: chain length (gradient evaluations per chain).
      sgld_learning_rate: ``η'``.
      noise: ``ε ≥ 0`` (temperature ``ε²/2``); ``0`` gives the deterministic (HJ/proximal) limit.
      average_weight: ``None`` (uniform mean after ``burn_in``) or ``α`` in (0, 1].
      burn_in: steps excluded from the uniform mean.
      num_chains: independent chains (vmapped); ``≥ 2`` gives a standard error.
      stochastic: step ``i`` uses batch ``i mod n`` (as the optimizer does) instead of the
        full-data gradient.
      key: PRNG key (default ``jax.random.key(0)``).

    Returns:
      A :class:`LocalEntropyGradient`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * b * jnp.sum(w**2)       # A = 2 I
      >>> est = landscape.estimate_local_entropy_gradient(
      ...     loss_fn, jnp.ones(2), [2.0], coupling=2.0, num_steps=400, burn_in=100)
      >>> est.gradient.round(3).tolist()                        # A(I + A/γ)⁻¹ x = 1
      [1.0, 1.0]
    """
    coupling = validation.check_positive_finite("coupling", coupling)
    num_steps = validation.check_static_int("num_steps", num_steps)
    burn_in = validation.check_static_int("burn_in", burn_in, minimum=0)
    if burn_in >= num_steps:
        raise ValueError(f"`burn_in` must be < num_steps={num_steps}, got burn_in={burn_in}.")
    num_chains = validation.check_static_int("num_chains", num_chains)
    sgld_learning_rate = validation.check_positive_finite("sgld_learning_rate", sgld_learning_rate)
    noise = validation.check_non_negative_finite("noise", noise)
    if average_weight is not None:
        average_weight = validation.check_fraction("average_weight", average_weight)
    key = lanczos._default_key(key)
    keys = jax.random.split(key, num_chains)
    prepared = dataset.prepare_batches(batches)
    dtype = ravel_pytree(params)[0].dtype
    means = _gradient_chains_jit(
        loss_fn,
        bool(stochastic),
        num_steps,
        burn_in,
        average_weight,
        noise,  # static: noise == 0 lets sgld_chain skip noise generation entirely
        params,
        prepared,
        jnp.asarray(coupling, dtype),
        jnp.asarray(sgld_learning_rate, dtype),
        keys,
    )
    grads = jax.tree_util.tree_map(lambda x, m: coupling * (x[None] - m), params, means)
    gradient = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), grads)
    mean = jax.tree_util.tree_map(lambda m: jnp.mean(m, axis=0), means)
    if num_chains > 1:
        stderr = jax.tree_util.tree_map(
            lambda g: jnp.std(g, axis=0, ddof=1) / np.sqrt(num_chains), grads
        )
    else:
        stderr = jax.tree_util.tree_map(jnp.zeros_like, gradient)
    return LocalEntropyGradient(gradient, mean, stderr, num_chains)


class LocalEntropyValue(NamedTuple):
    """Output of :func:`estimate_local_entropy`.

    Attributes:
      value: the normalized local-entropy loss ``f_γ(x)`` (→ ``f(x)`` as ``γ → ∞``).
      stderr: its Monte-Carlo standard error (chains are independent across couplings); the
        quadrature and tail errors are not included.
      free_entropy: ``log ∫ exp(−(f(x') + γ/2 ‖x − x'‖²)/T) dx'`` (the ICLR ``F(x, γ)`` at
        ``T = 1``); ``−inf`` at ``noise=0``.
      loss_at_params: ``f(x)``.
      couplings: the integration grid ``γ_j`` (log-spaced, ascending).
      integrand: ``I_j = ⟨(x' − x)·∇f(x')⟩_{γ_j}``.
      integrand_stderr: standard errors of ``integrand`` over chains.
      acceptance: Metropolis acceptance rate per coupling (1 without Metropolis).
      temperature: ``T = ε²/2``.
    """

    value: jax.Array
    stderr: jax.Array
    free_entropy: jax.Array
    loss_at_params: jax.Array
    couplings: jax.Array
    integrand: jax.Array
    integrand_stderr: jax.Array
    acceptance: jax.Array
    temperature: float


def _ti_chains(
    loss_fn, unravel, num_steps, burn_in, metropolis, use_noise, x, gamma, eta, temp, keys, batches
):
    value_and_grad = jax.value_and_grad(loss_fn)

    def f_and_grad(y):
        value, grad = dataset.batch_mean(value_and_grad, batches, unravel(y))
        return value, ravel_pytree(grad)[0].astype(y.dtype)

    def energy(y, fy, gy):
        r = y - x
        return fy + 0.5 * gamma * jnp.vdot(r, r), gy + gamma * r

    f0, g0 = f_and_grad(x)

    def chain(key):
        def step(carry, i):
            y, fy, gy, stat_sum, accept_sum = carry
            uy, du_y = energy(y, fy, gy)
            proposal = y - eta * du_y
            if use_noise:
                xi = jax.random.normal(jax.random.fold_in(key, i), y.shape, y.dtype)
                proposal = proposal + jnp.sqrt(2 * eta * temp) * xi
            fp, gp = f_and_grad(proposal)
            if metropolis:
                up, du_p = energy(proposal, fp, gp)
                fwd = proposal - y + eta * du_y
                bwd = y - proposal + eta * du_p
                log_ratio = -(up - uy) / temp + (jnp.vdot(fwd, fwd) - jnp.vdot(bwd, bwd)) / (
                    4 * eta * temp
                )
                u = jax.random.uniform(jax.random.fold_in(key, i + num_steps), (), y.dtype)
                accept = jnp.isfinite(log_ratio) & (jnp.log(u) < log_ratio)
                y = jnp.where(accept, proposal, y)
                fy = jnp.where(accept, fp, fy)
                gy = jnp.where(accept, gp, gy)
            else:
                accept = jnp.array(True)
                y, fy, gy = proposal, fp, gp
            stat = jnp.vdot(y - x, gy)
            stat_sum = stat_sum + jnp.where(i >= burn_in, stat, 0.0)
            return (y, fy, gy, stat_sum, accept_sum + accept.astype(y.dtype)), None

        init = (x, f0, g0, jnp.zeros((), x.dtype), jnp.zeros((), x.dtype))
        (_, _, _, stat_sum, accept_sum), _ = jax.lax.scan(step, init, jnp.arange(num_steps))
        return stat_sum / (num_steps - burn_in), accept_sum / num_steps

    stats, acceptance = jax.vmap(chain)(keys)
    return f0, stats, acceptance


_ti_chains_jit = jax.jit(_ti_chains, static_argnums=(0, 1, 2, 3, 4, 5))


def estimate_local_entropy(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    batches: Any,
    *,
    coupling: float,
    noise: float,
    max_coupling: float | None = None,
    num_couplings: int = 20,
    num_steps: int = 2000,
    burn_in: int = 200,
    num_chains: int = 8,
    sgld_learning_rate: float | Callable[[float], float] | None = None,
    metropolis: bool = True,
    key: jax.Array | None = None,
) -> LocalEntropyValue:
    """Local-entropy value ``f_γ(x)`` by thermodynamic integration over the coupling.

    For each coupling ``γ_j`` of a log-spaced grid from ``coupling`` to ``max_coupling``,
    ``num_chains`` Langevin chains sample ``ρ_{γ_j}(·; x)`` with the full-data gradient and
    average ``(x' − x)·∇f(x')``; then

    .. math::

      f_γ(x) ≈ f(x) + \\frac12 \\Big[\\sum_j c_j I_j + I_J\\Big], \\qquad
      I_j = ⟨(x' − x)\\cdot∇f(x')⟩_{γ_j},

    with trapezoid weights ``c_j`` in ``log γ`` and the tail term ``I_J`` (``γ_J = max_coupling``).
    With ``metropolis=True`` (default) each Langevin step is Metropolis-adjusted (MALA), which
    removes the ``O(η')`` discretization bias of the plain SGLD step (one loss *and* gradient
    evaluation per step); ``metropolis=False`` runs the unadjusted Entropy-SGD step. ``noise=0``
    gives the zero-temperature limit (the Moreau envelope, thesis §4.2.2) with a deterministic,
    unadjusted chain.

    Cost: ``num_couplings × num_chains × num_steps`` full-data gradients. Chains start at ``x``;
    at small ``γ`` on a multi-modal ``f`` they may need a long ``burn_in``. ``max_coupling`` must
    exceed the curvature of ``f`` at ``x`` (e.g. 100 × the top Hessian eigenvalue).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the anchor ``x``, any pytree.
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).
      coupling: ``γ > 0`` at which to evaluate ``f_γ`` (the thesis' γ is ``1/coupling``).
      noise: Langevin ``ε ≥ 0``; temperature ``T = ε²/2``.
      max_coupling: upper end of the grid (default ``1000 × coupling``).
      num_couplings: grid points (``≥ 2``).
      num_steps: chain length per coupling.
      burn_in: initial steps excluded from the averages.
      num_chains: independent chains per coupling (``≥ 2``, for the standard error).
      sgld_learning_rate: step ``η'``: a float, or a function of the coupling; default
        ``0.1 / (1 + γ)`` (assumes a curvature of ``f`` of order 1; otherwise pass e.g.
        ``lambda g: c / (λ_max + g)``).
      metropolis: Metropolis-adjust each step (needs ``noise > 0``; ignored at ``noise=0``).
      key: PRNG key (default ``jax.random.key(0)``).

    Returns:
      A :class:`LocalEntropyValue`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * b * jnp.sum((w - 1.0) ** 2)  # A = I, m = 1
      >>> est = landscape.estimate_local_entropy(
      ...     loss_fn, jnp.zeros(1), [1.0], coupling=1.0, noise=0.0, max_coupling=1e4,
      ...     num_chains=2, num_steps=400, burn_in=300)
      >>> round(float(est.value), 3)      # Moreau envelope ½ (x − m)²/(1 + 1/γ) = 0.25
      0.25
    """
    coupling = validation.check_positive_finite("coupling", coupling)
    noise = validation.check_non_negative_finite("noise", noise)
    max_coupling = 1000.0 * coupling if max_coupling is None else max_coupling
    max_coupling = validation.check_positive_finite("max_coupling", max_coupling)
    if max_coupling <= coupling:
        raise ValueError(
            f"`max_coupling` must be > coupling={coupling}, got max_coupling={max_coupling}."
        )
    num_couplings = validation.check_static_int("num_couplings", num_couplings, minimum=2)
    num_steps = validation.check_static_int("num_steps", num_steps)
    burn_in = validation.check_static_int("burn_in", burn_in, minimum=0)
    if burn_in >= num_steps:
        raise ValueError(f"`burn_in` must be < num_steps={num_steps}, got burn_in={burn_in}.")
    num_chains = validation.check_static_int("num_chains", num_chains, minimum=2)
    if sgld_learning_rate is None:
        lr_fn = lambda g: 0.1 / (1.0 + g)  # noqa: E731
    elif callable(sgld_learning_rate):
        lr_fn = sgld_learning_rate
    else:
        constant = validation.check_positive_finite("sgld_learning_rate", sgld_learning_rate)
        lr_fn = lambda g: constant  # noqa: E731
    key = lanczos._default_key(key)

    flat, unravel = _flat.ravel(params)
    if flat.size == 0:
        raise ValueError("`params` has no parameters.")
    dtype = flat.dtype
    d = flat.size
    temp = 0.5 * noise**2
    use_noise = noise > 0
    prepared = dataset.prepare_batches(batches)
    couplings = np.geomspace(coupling, max_coupling, num_couplings)
    integrand, integrand_se, acceptance = [], [], []
    f0 = None
    for j, gamma in enumerate(couplings):
        eta = validation.check_positive_finite("sgld_learning_rate", lr_fn(float(gamma)))
        keys = jax.random.split(jax.random.fold_in(key, j), num_chains)
        f0, stats, acc = _ti_chains_jit(
            loss_fn,
            unravel,
            num_steps,
            burn_in,
            bool(metropolis and use_noise),
            use_noise,
            flat,
            jnp.asarray(gamma, dtype),
            jnp.asarray(eta, dtype),
            jnp.asarray(temp if use_noise else 1.0, dtype),
            keys,
            prepared,
        )
        integrand.append(jnp.mean(stats))
        integrand_se.append(jnp.std(stats, ddof=1) / np.sqrt(num_chains))
        acceptance.append(jnp.mean(acc))
    integrand = jnp.stack(integrand)
    integrand_se = jnp.stack(integrand_se)
    du = np.log(couplings[1] / couplings[0])
    weights = np.full(num_couplings, du)
    weights[0] = weights[-1] = 0.5 * du
    weights[-1] += 1.0  # tail ∫_{γ_J}^∞ I(γ) dγ/γ ≈ I(γ_J) for I ∝ 1/γ
    weights = jnp.asarray(weights, dtype)
    value = f0 + 0.5 * jnp.sum(weights * integrand)
    stderr = 0.5 * jnp.sqrt(jnp.sum((weights * integrand_se) ** 2))
    if use_noise:
        free_entropy = -value / temp + 0.5 * d * jnp.log(2 * jnp.pi * temp / coupling)
    else:
        free_entropy = jnp.asarray(-jnp.inf, dtype)
    return LocalEntropyValue(
        value=value,
        stderr=stderr,
        free_entropy=free_entropy,
        loss_at_params=f0,
        couplings=jnp.asarray(couplings, dtype),
        integrand=integrand,
        integrand_stderr=integrand_se,
        acceptance=jnp.stack(acceptance),
        temperature=temp,
    )
