r"""Local learning coefficient (LLC) ``λ̂`` of singular learning theory, sampled by SGLD.

The learning coefficient ``λ`` measures the effective dimension of a minimum ``w*``: near it the
volume of ``{w : L(w) − L(w*) < ε}`` scales as ``ε^λ`` (up to logarithms), with ``λ = d/2`` for
a regular (non-degenerate) minimum in ``d`` parameters and ``λ < d/2`` for singular ones. Lau et
al. estimate its local version at ``w*`` from the tempered, localized posterior

.. math::

  ρ(w) \propto \exp\Big(-nβ\, L_n(w) - \frac{γ}{2} \lVert w - w^* \rVert^2\Big),
  \qquad \hat λ = nβ\, \big(\mathbb{E}_ρ[L_n(w)] - L_n(w^*)\big),

where ``L_n`` is the training loss (a mean over ``n`` examples), ``nβ`` the inverse temperature
and ``γ`` the localization.

**The sampler is Entropy-SGD's inner loop.** Its SGLD step

.. math::

  w \leftarrow w - η' \big(\nabla L(w) + c\, (w - w^*)\big) + \sqrt{η'}\, ε\, ξ

samples ``∝ exp(−(L(w) + (c/2)‖w − w*‖²)/T)`` at temperature ``T = ε²/2`` (see
:func:`entropix.sgld_chain`). It is the LLC posterior for

.. math::

  T = 1/nβ \;\; (ε = \sqrt{2/nβ}), \qquad c = γ / nβ,

so :func:`estimate_llc` takes ``nbeta``, the package's ``coupling`` ``c`` (the localization in
loss units) and ``sgld_learning_rate`` ``η'``. With these, the expectation of ``λ̂`` for a
quadratic loss ``L_n(w) = L_n(w*) + ½ (w − w*)ᵀH(w − w*)`` is

.. math::

  \mathbb{E}[\hat λ] = \frac12 \sum_i \frac{h_i}{h_i + c}
    = \frac12 \sum_i \frac{nβ h_i}{nβ h_i + γ} \;\xrightarrow{c \to 0}\; \frac d2,

and for ``L(w) = w^{2k}`` in one dimension with ``c = 0`` it is ``1/(2k)`` exactly, at any
``nβ`` (the learning coefficient of that potential).

**devinterp's parametrization.** devinterp's SGLD (Lau et al.'s implementation) steps
``Δw = −(ε_dv/2)(nβ ∇L_m(w) + γ (w − w*) + λ_dv w) + √ε_dv N(0, 1)`` with learning rate ``ε_dv``,
localization ``γ`` and weight decay ``λ_dv``, and defaults ``nβ = m / log m`` for a batch of
``m`` examples. The same chain in this package's terms has ``η' = ε_dv nβ / 2``, ``c = γ / nβ``,
``weight_decay = λ_dv / nβ``: :func:`llc_settings_from_devinterp` and
:func:`llc_settings_to_devinterp` convert. devinterp reports
``nβ (mean of the minibatch losses − init loss)`` over every step of every chain; with
``burn_in=0``, ``thinning=1`` and the same batches :func:`estimate_llc` computes the same
average.

References:
  Lau, Furman, Wang, Murfet, Wei, *The local learning coefficient: a singularity-aware
  complexity measure*, AISTATS 2025 (`arXiv:2308.12108 <https://arxiv.org/abs/2308.12108>`_),
  eqs. (9)–(10) and Appendix on SGLD.
  Watanabe, *Algebraic geometry and statistical learning theory*, Cambridge University Press
  2009 (the learning coefficient).
  Chaudhari et al., *Entropy-SGD: biasing gradient descent into wide valleys*, ICLR 2017,
  Algorithm 1 (the SGLD inner loop).
  Roberts & Tweedie, *Exponential convergence of Langevin distributions and their discrete
  approximations*, Bernoulli 1996 (MALA).
  Vehtari, Gelman, Simpson, Carpenter, Bürkner, *Rank-normalization, folding, and localization:
  an improved R̂ for assessing convergence of MCMC*, Bayesian Analysis 2021 (split R̂, ESS).
"""

from __future__ import annotations

import math
import warnings as _warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from entropix._src import common, validation
from entropix._src.local_entropy import sgld_rule
from entropix.landscape import dataset

PyTree = Any

#: Split R̂ above which the chains are reported as not mixed.
RHAT_THRESHOLD = 1.1


class LLCWarning(UserWarning):
    """Raised (as a warning) by :func:`estimate_llc` when the chains look unhealthy."""


class LLCSettings(NamedTuple):
    """Sampler settings of :func:`estimate_llc` in this package's conventions.

    Attributes:
      nbeta: inverse temperature ``nβ`` (temperature ``T = 1/nβ``).
      coupling: ``c = γ / nβ``, the localization in loss units.
      sgld_learning_rate: ``η'``, the SGLD step on the loss.
      weight_decay: ``λ'``, an ℓ2 prior ``(λ'/2)‖w‖²`` in loss units.
    """

    nbeta: float
    coupling: float
    sgld_learning_rate: float
    weight_decay: float = 0.0


class DevinterpSettings(NamedTuple):
    """Sampler settings in devinterp's conventions.

    Pass them as ``devinterp.optim.SGMCMC.sgld(params, lr=s.lr, nbeta=s.nbeta,
    localization=s.localization, weight_decay=s.weight_decay)`` or to devinterp's
    ``slt.llc.llc`` / ``slt.sampling.sample`` as ``lr=s.lr, n_beta=s.nbeta,
    localization=s.localization, llc_weight_decay=s.weight_decay``.

    Attributes:
      lr: devinterp's learning rate ``ε_dv``.
      nbeta: inverse temperature ``nβ``.
      localization: ``γ``.
      weight_decay: ``λ_dv``.
    """

    lr: float
    nbeta: float
    localization: float
    weight_decay: float = 0.0


def default_nbeta(batch_size: int) -> float:
    """devinterp's default inverse temperature ``nβ = m / log m`` for a batch of ``m`` examples.

    Args:
      batch_size: ``m ≥ 2``, examples per SGLD step.

    Returns:
      ``m / log m``.

    Examples:
      >>> from entropix import landscape
      >>> round(landscape.default_nbeta(100), 4)
      21.7147
    """
    m = validation.check_static_int("batch_size", batch_size, minimum=2)
    return m / math.log(m)


def llc_settings_from_devinterp(
    *,
    lr: float,
    localization: float,
    nbeta: float | None = None,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
) -> LLCSettings:
    """Converts devinterp's SGLD settings to :func:`estimate_llc`'s.

    devinterp steps ``Δw = −(ε_dv/2)(nβ ∇L(w) + γ (w − w*) + λ_dv w) + √ε_dv ξ``; the package's
    SGLD step ``Δw = −η'(∇L(w) + c (w − w*) + λ' w) + √η' ε ξ`` is the same map for

    .. math::

      η' = ε_{dv}\\, nβ / 2, \\qquad c = γ / nβ, \\qquad λ' = λ_{dv} / nβ,
      \\qquad ε = \\sqrt{2 / nβ}.

    Args:
      lr: devinterp's learning rate ``ε_dv > 0``.
      localization: devinterp's localization ``γ ≥ 0``.
      nbeta: inverse temperature; ``None`` uses devinterp's default ``m / log m``
        (see :func:`default_nbeta`), which needs ``batch_size``.
      batch_size: ``m``, used only when ``nbeta`` is ``None``.
      weight_decay: devinterp's (``llc_``)``weight_decay`` ``λ_dv ≥ 0``.

    Returns:
      An :class:`LLCSettings`; pass it as ``estimate_llc(..., **settings._asdict())``.

    Raises:
      ValueError: for a non-positive ``lr`` or ``nbeta``, a negative ``localization`` or
        ``weight_decay``, or neither ``nbeta`` nor ``batch_size``.

    Examples:
      >>> from entropix import landscape
      >>> s = landscape.llc_settings_from_devinterp(lr=1e-3, localization=100.0, nbeta=50.0)
      >>> s.sgld_learning_rate, s.coupling
      (0.025, 2.0)
    """
    lr = validation.check_positive_finite("lr", lr)
    localization = validation.check_non_negative_finite("localization", localization)
    weight_decay = validation.check_non_negative_finite("weight_decay", weight_decay)
    if nbeta is None:
        if batch_size is None:
            raise ValueError(
                "`nbeta` is None and `batch_size` is None: pass nbeta, or batch_size for "
                "devinterp's default nbeta = batch_size / log(batch_size)."
            )
        nbeta = default_nbeta(batch_size)
    nbeta = validation.check_positive_finite("nbeta", nbeta)
    return LLCSettings(
        nbeta=nbeta,
        coupling=localization / nbeta,
        sgld_learning_rate=0.5 * lr * nbeta,
        weight_decay=weight_decay / nbeta,
    )


def llc_settings_to_devinterp(
    *, nbeta: float, coupling: float, sgld_learning_rate: float, weight_decay: float = 0.0
) -> DevinterpSettings:
    """Converts :func:`estimate_llc`'s settings to devinterp's (inverse of the function above).

    ``ε_dv = 2η'/nβ``, ``γ = c nβ``, ``λ_dv = λ' nβ``.

    Args:
      nbeta: inverse temperature ``nβ > 0``.
      coupling: ``c ≥ 0``.
      sgld_learning_rate: ``η' > 0``.
      weight_decay: ``λ' ≥ 0``.

    Returns:
      A :class:`DevinterpSettings`.

    Raises:
      ValueError: for a non-positive ``nbeta`` or ``sgld_learning_rate`` or a negative
        ``coupling`` or ``weight_decay``.

    Examples:
      >>> from entropix import landscape
      >>> landscape.llc_settings_to_devinterp(nbeta=50.0, coupling=2.0, sgld_learning_rate=0.025)
      DevinterpSettings(lr=0.001, nbeta=50.0, localization=100.0, weight_decay=0.0)
    """
    nbeta = validation.check_positive_finite("nbeta", nbeta)
    coupling = validation.check_non_negative_finite("coupling", coupling)
    sgld_learning_rate = validation.check_positive_finite("sgld_learning_rate", sgld_learning_rate)
    weight_decay = validation.check_non_negative_finite("weight_decay", weight_decay)
    return DevinterpSettings(
        lr=2.0 * sgld_learning_rate / nbeta,
        nbeta=nbeta,
        localization=coupling * nbeta,
        weight_decay=weight_decay * nbeta,
    )


class LLCEstimate(NamedTuple):
    """Output of :func:`estimate_llc`.

    Attributes:
      llc: ``λ̂``, the mean over chains of the per-chain estimates.
      stderr: standard error of ``llc`` across chains (``nan`` for one chain).
      llc_per_chain: ``nβ (mean of the chain's kept losses − L_n(w*))``, shape ``(chains,)``.
      loss_trace: the kept losses, shape ``(chains, draws)``: the loss at the walker before
        each kept step (the minibatch loss with ``stochastic=True``).
      init_loss: ``L_n(w*)``, the full-data loss at ``params``.
      acceptance: mean Metropolis acceptance rate (``nan`` without ``metropolis``).
      rhat: split R̂ of the loss traces (``nan`` for fewer than 4 draws).
      ess: effective sample size of the loss traces, all chains together.
      warnings: the health messages (empty when the chains look healthy).
    """

    llc: jax.Array
    stderr: jax.Array
    llc_per_chain: jax.Array
    loss_trace: jax.Array
    init_loss: jax.Array
    acceptance: jax.Array
    rhat: float
    ess: float
    warnings: tuple[str, ...]


def _tree_vdot(a: PyTree, b: PyTree) -> jax.Array:
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _tree_where(cond: jax.Array, a: PyTree, b: PyTree) -> PyTree:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _step_value_and_grad(loss_fn, batches, stochastic):
    """``f(params, i) -> (loss, grads)``: on batch ``i mod n``, or on all batches."""
    value_and_grad = jax.value_and_grad(loss_fn)
    n = dataset.num_batches(batches)
    if not stochastic or n == 1:
        return lambda p, i: dataset.batch_mean(value_and_grad, batches, p)
    if isinstance(batches, dataset.BatchList):
        branches = [(lambda p, b=b: value_and_grad(p, b)) for b in batches.batches]
        return lambda p, i: jax.lax.switch(i % n, branches, p)

    def value_and_grad_at(p, i):
        batch = jax.tree.map(lambda leaf: leaf[i % n], batches.tree)
        return value_and_grad(p, batch)

    return value_and_grad_at


def _run_chains(
    loss_fn,
    stochastic,
    metropolis,
    num_steps,
    noise_distribution,
    use_weight_decay,
    params,
    batches,
    nbeta,
    coupling,
    step_size,
    weight_decay,
    keys,
):
    value_and_grad_at = _step_value_and_grad(loss_fn, batches, stochastic)
    init_loss, init_grad = dataset.batch_mean(jax.value_and_grad(loss_fn), batches, params)
    temperature = 1.0 / nbeta
    decay = weight_decay if use_weight_decay else 0.0
    settings = dict(
        coupling=coupling,
        sgld_learning_rate=step_size,
        average_weight=1.0,
        inner=optax.identity(),
        noise_distribution=noise_distribution,
        weight_decay=decay,
        scale_outer_gradient=True,
    )
    # The package's SGLD step at T = 1/nβ, and (for the Metropolis ratio) its drift alone.
    rule = sgld_rule(noise=jnp.sqrt(2.0 * temperature), **settings)
    drift = sgld_rule(noise=0.0, **settings)
    outer_count = jnp.zeros([], jnp.int32)
    empty = optax.EmptyState()

    def energy(w, loss):
        r = jax.tree.map(jnp.subtract, w, params)
        value = loss + 0.5 * coupling * _tree_vdot(r, r)
        if use_weight_decay:
            value = value + 0.5 * decay * _tree_vdot(w, w)
        return value

    def chain(key):
        base_key = common.as_key(key)

        def body(carry, index):
            walker, loss, grad = carry
            if not metropolis:
                loss, grad = value_and_grad_at(walker, index)
            proposal, _, _ = rule.step(
                grad,
                walker,
                params,
                walker,
                empty,
                common.step_key(base_key, index, 0),
                outer_count,
            )
            if metropolis:
                new_loss, new_grad = value_and_grad_at(proposal, index)
                fwd = jax.tree.map(
                    jnp.subtract,
                    proposal,
                    drift.step(grad, walker, params, walker, empty, base_key, outer_count)[0],
                )
                bwd = jax.tree.map(
                    jnp.subtract,
                    walker,
                    drift.step(new_grad, proposal, params, proposal, empty, base_key, outer_count)[
                        0
                    ],
                )
                log_ratio = (energy(walker, loss) - energy(proposal, new_loss)) / temperature + (
                    _tree_vdot(fwd, fwd) - _tree_vdot(bwd, bwd)
                ) / (4.0 * step_size * temperature)
                uniform = jax.random.uniform(common.step_key(base_key, index, 1), (), loss.dtype)
                accept = jnp.isfinite(log_ratio) & (jnp.log(uniform) < log_ratio)
                new_carry = _tree_where(
                    accept, (proposal, new_loss, new_grad), (walker, loss, grad)
                )
            else:
                accept = jnp.array(True)
                new_carry = (proposal, loss, grad)
            return new_carry, (loss, accept)

        init = (params, init_loss, init_grad)
        _, (losses, accepts) = jax.lax.scan(body, init, jnp.arange(num_steps))
        return losses, jnp.mean(accepts.astype(losses.dtype))

    traces, acceptance = jax.vmap(chain)(keys)
    return init_loss, traces, acceptance


_run_chains_jit = jax.jit(_run_chains, static_argnums=tuple(range(6)))


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Autocovariance of each row of ``x`` at lags ``0 … N−1`` (biased, FFT)."""
    n = x.shape[-1]
    centered = x - x.mean(axis=-1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centered, size, axis=-1)
    return np.fft.irfft(spectrum * np.conj(spectrum), size, axis=-1)[..., :n] / n


def _split(draws: np.ndarray) -> np.ndarray:
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, -half:]], axis=0)


def _split_rhat(draws: np.ndarray) -> float:
    """Split R̂ (Gelman et al., BDA3 §11.4) of ``(chains, draws)``; ``nan`` if undefined."""
    if draws.shape[1] < 4:
        return float("nan")
    seqs = _split(draws)
    n = seqs.shape[1]
    within = np.mean(np.var(seqs, axis=1, ddof=1))
    between = n * np.var(np.mean(seqs, axis=1), ddof=1)
    if not within > 0:
        return float("nan")
    var_plus = (n - 1) / n * within + between / n
    return float(np.sqrt(var_plus / within))


def _effective_sample_size(draws: np.ndarray) -> float:
    """Multi-chain ESS with Geyer's initial monotone sequence (BDA3 §11.5, Vehtari et al.)."""
    seqs = _split(draws) if draws.shape[1] >= 4 else draws
    m, n = seqs.shape
    if n < 2:
        return float("nan")
    acov = _autocovariance(seqs)
    within = np.mean(acov[:, 0]) * n / (n - 1)
    var_plus = within * (n - 1) / n
    if m > 1:
        var_plus += np.var(np.mean(seqs, axis=1), ddof=1)
    if not var_plus > 0:
        return float("nan")
    rho = 1.0 - (within - np.mean(acov, axis=0)) / var_plus
    rho[0] = 1.0
    # Sums of consecutive pairs, kept while positive and made non-increasing.
    pairs = rho[: 2 * (n // 2)].reshape(-1, 2).sum(axis=1)
    positive = np.nonzero(pairs <= 0)[0]
    pairs = pairs[: positive[0]] if positive.size else pairs
    pairs = np.minimum.accumulate(pairs)
    tau = -1.0 + 2.0 * np.sum(pairs)
    tau = max(tau, 1.0 / np.log10(m * n)) if m * n > 1 else tau
    return float(m * n / tau)


def _health(llc, stderr, traces, rhat, acceptance, num_params, metropolis):
    messages = []
    finite = np.all(np.isfinite(traces), axis=1)
    if not np.all(finite):
        messages.append(
            f"{int(np.sum(~finite))} of {finite.size} chains produced non-finite losses "
            "(diverged): lower sgld_learning_rate."
        )
    elif np.isfinite(llc):
        margin = 3.0 * stderr if np.isfinite(stderr) else 0.0
        if llc < 0:
            messages.append(
                f"llc = {llc:.4g} < 0: the chains found losses below L_n(params), so params is "
                "not a local minimum (train longer) or the chains are not stationary."
            )
        elif llc - margin > 0.5 * num_params:
            messages.append(
                f"llc = {llc:.4g} exceeds d/2 = {0.5 * num_params:g}, the value for a regular "
                "minimum: the chains left the neighbourhood of params or the step's O(η') bias "
                "dominates (lower sgld_learning_rate, raise coupling, or use metropolis=True)."
            )
    if np.isfinite(rhat) and rhat > RHAT_THRESHOLD:
        messages.append(
            f"split R-hat of the loss traces = {rhat:.3f} > {RHAT_THRESHOLD}: the chains have "
            "not mixed (more steps, a longer burn_in, or a larger sgld_learning_rate)."
        )
    if metropolis and np.isfinite(acceptance) and acceptance < 0.1:
        messages.append(
            f"Metropolis acceptance rate {acceptance:.3f} < 0.1: lower sgld_learning_rate."
        )
    return tuple(messages)


def estimate_llc(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    batches: Any,
    *,
    nbeta: float,
    coupling: float,
    sgld_learning_rate: float,
    num_steps: int = 1000,
    burn_in: int = 0,
    thinning: int = 1,
    num_chains: int = 4,
    stochastic: bool = True,
    metropolis: bool = False,
    weight_decay: float = 0.0,
    noise_distribution: str = "gaussian",
    key: jax.Array | None = None,
    warn: bool = True,
) -> LLCEstimate:
    r"""Local learning coefficient ``λ̂ = nβ (E_ρ[L_n] − L_n(w*))`` at ``w* = params``.

    Runs ``num_chains`` SGLD chains (in one ``jax.vmap``, each a ``jax.lax.scan``) of the
    package's Entropy-SGD inner step from ``params`` on ``L_n(w) + (c/2)‖w − w*‖²`` at
    temperature ``1/nβ``:

    .. math::

      w_{t+1} = w_t - η' \big(\nabla L(w_t) + c (w_t - w^*)\big) + \sqrt{2η'/nβ}\; ξ_t,

    records the loss ``L(w_t)`` at every walker (free: it comes with the gradient) and returns

    .. math::

      \hat λ = nβ \Big(\frac{1}{|K|} \sum_{t \in K} L(w_t) - L_n(w^*)\Big),
      \qquad K = \{\texttt{burn\_in}, \texttt{burn\_in} + \texttt{thinning}, …\},

    per chain and averaged over chains, with the standard error across chains, split R̂ and
    the effective sample size of the loss traces. The localization ``γ`` of Lau et al. is
    ``c nβ`` (see the module docstring and :func:`llc_settings_from_devinterp`).

    **Gradients.** With ``stochastic=True`` (default, SGLD proper) step ``t`` uses batch
    ``t mod n`` of ``batches`` for both the gradient and the recorded loss (each minibatch
    loss is an unbiased estimate of ``L_n``); with ``stochastic=False`` every step uses the
    full-data loss (a mean over all batches). To index data yourself, pass
    ``batches=jnp.arange(n)`` and a ``loss_fn(params, i)`` of the batch index.

    **Metropolis adjustment.** The Euler step has an ``O(η')`` bias (for a quadratic loss the
    sampled variance is ``T/(a (1 − η' a / 2))`` rather than ``T/a`` in a direction of curvature
    ``a = h + c``). ``metropolis=True`` accepts each step with the MALA probability for the
    target ``exp(−nβ (L_n + (c/2)‖w − w*‖²))``, which removes the bias; it needs full-data
    losses (``stochastic=False``) and Gaussian noise.

    **Health.** ``warnings`` lists (and, with ``warn=True``, :class:`LLCWarning` reports)
    non-finite losses, ``λ̂ < 0`` (``params`` is not a local minimum), ``λ̂`` above ``d/2``
    (the chains escaped), split R̂ ``> 1.1`` and a Metropolis acceptance below 0.1.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``, the mean loss on a batch.
      params: ``w*``, any pytree (the trained weights).
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).
      nbeta: inverse temperature ``nβ > 0`` (devinterp's default is ``m / log m`` for batches
        of ``m`` examples, :func:`default_nbeta`).
      coupling: ``c ≥ 0``, localization in loss units (``γ = c nβ``).
      sgld_learning_rate: ``η' > 0``, the SGLD step on the loss.
      num_steps: steps per chain (gradient evaluations), burn-in included; static.
      burn_in: initial steps excluded from ``λ̂``; ``< num_steps``.
      thinning: keep every ``thinning``-th step after ``burn_in`` (1 keeps all; the loss is
        free, so thinning only shortens ``loss_trace``).
      num_chains: independent chains (``≥ 2`` for a standard error and R̂).
      stochastic: minibatch gradients (step ``t`` on batch ``t mod n``) or full-data ones.
      metropolis: Metropolis-adjust every step (MALA); needs ``stochastic=False``.
      weight_decay: ``λ' ≥ 0``, an ℓ2 prior ``(λ'/2)‖w‖²`` added to the sampled loss (not to
        the recorded one), as devinterp's weight decay (``λ_dv = λ' nβ``).
      noise_distribution: ``"gaussian"`` (default) or ``"rademacher"`` (iid ±1: the same
        first two moments, the same ``O(η')`` Langevin limit, cheaper on CPU; unadjusted only).
      key: PRNG key (default ``jax.random.key(0)``).
      warn: issue an :class:`LLCWarning` when ``warnings`` is not empty.

    Returns:
      An :class:`LLCEstimate`.

    Raises:
      ValueError: for a non-positive ``nbeta`` or ``sgld_learning_rate``, a negative
        ``coupling`` or ``weight_decay``, ``burn_in ≥ num_steps``, ``metropolis`` with
        ``stochastic=True`` or Rademacher noise, an unknown ``noise_distribution``, or
        ``params`` without parameters.
      TypeError: for non-integer step counts.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * jnp.sum(b * w**2)      # H = diag(b), minimum at 0
      >>> est = landscape.estimate_llc(
      ...     loss_fn, jnp.zeros(4), [jnp.ones(4)], nbeta=100.0, coupling=0.01,
      ...     sgld_learning_rate=0.1, num_steps=4000, burn_in=200, num_chains=16,
      ...     stochastic=False, metropolis=True)
      >>> round(float(est.llc), 1)                    # ½ Σ h/(h + c) = 2/1.01 ≈ 1.98
      2.0

    References:
      Lau et al., *The local learning coefficient: a singularity-aware complexity measure*,
      AISTATS 2025, `arXiv:2308.12108 <https://arxiv.org/abs/2308.12108>`_, eq. (10).
    """
    nbeta = validation.check_positive_finite("nbeta", nbeta)
    coupling = validation.check_non_negative_finite("coupling", coupling)
    sgld_learning_rate = validation.check_positive_finite("sgld_learning_rate", sgld_learning_rate)
    weight_decay = validation.check_non_negative_finite("weight_decay", weight_decay)
    num_steps = validation.check_static_int("num_steps", num_steps)
    burn_in = validation.check_static_int("burn_in", burn_in, minimum=0)
    if burn_in >= num_steps:
        raise ValueError(
            f"`burn_in` must be < num_steps={num_steps}, got burn_in={burn_in}: lower burn_in "
            "or raise num_steps."
        )
    thinning = validation.check_static_int("thinning", thinning)
    num_chains = validation.check_static_int("num_chains", num_chains)
    validation.check_noise_distribution(noise_distribution)
    if metropolis and stochastic:
        raise ValueError(
            "`metropolis=True` needs full-data losses, got stochastic=True: pass "
            "stochastic=False (a minibatch Metropolis ratio is not a valid correction)."
        )
    if metropolis and noise_distribution != "gaussian":
        raise ValueError(
            f"`metropolis=True` needs Gaussian proposals, got "
            f"noise_distribution={noise_distribution!r}: pass noise_distribution='gaussian'."
        )
    leaves = jax.tree.leaves(params)
    num_params = sum(int(np.size(leaf)) for leaf in leaves)
    if num_params == 0:
        raise ValueError("`params` has no parameters: pass the trained weights (a pytree).")
    if key is None:
        key = jax.random.key(0)
    keys = jax.random.split(key, num_chains)
    prepared = dataset.prepare_batches(batches)
    dtype = jnp.result_type(*leaves)
    init_loss, losses, accepts = _run_chains_jit(
        loss_fn,
        bool(stochastic),
        bool(metropolis),
        num_steps,
        noise_distribution,
        weight_decay > 0,
        params,
        prepared,
        jnp.asarray(nbeta, dtype),
        jnp.asarray(coupling, dtype),
        jnp.asarray(sgld_learning_rate, dtype),
        jnp.asarray(weight_decay, dtype),
        keys,
    )
    traces = losses[:, burn_in::thinning]
    per_chain = nbeta * (jnp.mean(traces, axis=1) - init_loss)
    llc = jnp.mean(per_chain)
    if num_chains > 1:
        stderr = jnp.std(per_chain, ddof=1) / np.sqrt(num_chains)
    else:
        stderr = jnp.asarray(jnp.nan, per_chain.dtype)
    acceptance = jnp.mean(accepts) if metropolis else jnp.asarray(jnp.nan, per_chain.dtype)
    host = np.asarray(traces, np.float64)
    finite = bool(np.all(np.isfinite(host)))
    rhat = _split_rhat(host) if finite and num_chains > 1 else float("nan")
    ess = _effective_sample_size(host) if finite else float("nan")
    messages = _health(
        float(llc),
        float(stderr),
        host,
        rhat,
        float(acceptance),
        num_params,
        metropolis,
    )
    if warn and messages:
        _warnings.warn("estimate_llc: " + " ".join(messages), LLCWarning, stacklevel=2)
    return LLCEstimate(
        llc=llc,
        stderr=stderr,
        llc_per_chain=per_chain,
        loss_trace=traces,
        init_loss=init_loss,
        acceptance=acceptance,
        rhat=rhat,
        ess=ess,
        warnings=messages,
    )
