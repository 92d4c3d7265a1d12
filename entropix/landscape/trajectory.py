"""Trajectory analysis of SGD: spectrum of weight increments, autocorrelation, gradient norm.

Chaudhari & Soatto (thesis §6.3.3, Fig. 6.3) train a tiny network for 10⁵ epochs, keep a weight
snapshot ``x_k`` per epoch and show that SGD does not behave like Brownian motion around a
minimum: (a) the FFT over ``k`` of the increments ``Δx^i_k = x^i_{k+1} − x^i_k`` (mean ± std over
weights ``i``) has low-frequency modes and a rising high-frequency part (coloured, not white,
noise); (b) the autocorrelation of ``x^i_k`` stays significant at very large lags, far outside
the white-noise band ``± z/√n``; (c) the full-gradient norm drops only ≈ 3× over training.

Snapshots are given as a list of parameter pytrees, a stacked pytree with a leading snapshot
axis, or a ``(K, d)`` matrix.

References:
  Chaudhari & Soatto, *Stochastic gradient descent performs variational inference, converges to
  limit cycles for deep networks*, ICLR 2018, §5.
  Chaudhari, *A picture of the energy landscape of deep neural networks*, PhD thesis, UCLA
  2018, §6.3.3.
  Box, Jenkins & Reinsel, *Time series analysis*, §2.1 (autocorrelation and its bands).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from entropix._src import validation
from entropix.landscape import dataset

PyTree = Any


def snapshot_matrix(snapshots: Any) -> jax.Array:
    """Stacks snapshots into a ``(K, d)`` matrix (``ravel_pytree`` order per snapshot).

    Args:
      snapshots: a list of parameter pytrees, or a pytree whose leaves have a leading snapshot
        axis ``K`` (a ``(K, d)`` array included).

    Returns:
      The ``(K, d)`` matrix.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> snaps = [{"a": jnp.zeros(2), "b": jnp.ones(())}, {"a": jnp.ones(2), "b": jnp.zeros(())}]
      >>> landscape.snapshot_matrix(snaps).tolist()
      [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    """
    if isinstance(snapshots, list):
        if not snapshots:
            raise ValueError("`snapshots` is empty.")
        snapshots = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *snapshots)
    leaves = jax.tree_util.tree_leaves(snapshots)
    if not leaves or any(np.ndim(leaf) == 0 for leaf in leaves):
        raise ValueError(
            "`snapshots` must be a list of pytrees or a pytree with a leading snapshot axis."
        )
    k = np.shape(leaves[0])[0]
    if any(np.shape(leaf)[0] != k for leaf in leaves):
        raise ValueError("All snapshot leaves must share the leading snapshot axis.")
    return jnp.concatenate([jnp.reshape(leaf, (k, -1)) for leaf in leaves], axis=1)


class TrajectorySpectrum(NamedTuple):
    """Output of :func:`increment_spectrum`.

    Attributes:
      frequencies: ``rfftfreq(K − 1)`` in cycles per snapshot interval (0 to 0.5).
      mean: mean over coordinates of ``|FFT(Δx^i)|`` (or of the power with ``power=True``).
      std: standard deviation over coordinates.
    """

    frequencies: jax.Array
    mean: jax.Array
    std: jax.Array


def increment_spectrum(snapshots: Any, *, power: bool = False) -> TrajectorySpectrum:
    """FFT magnitude of weight increments ``Δx_k = x_{k+1} − x_k``, mean ± std over coordinates.

    .. math::

      S_i(ν) = \\Big|\\sum_{k=0}^{K-2} Δx^i_k\\, e^{-2πi ν k}\\Big|.

    White-noise increments (Brownian motion) give a flat spectrum in expectation.

    Args:
      snapshots: ``K ≥ 3`` snapshots (see :func:`snapshot_matrix`).
      power: return ``|F|²`` instead of ``|F|``.

    Returns:
      A :class:`TrajectorySpectrum`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import landscape
      >>> walk = jnp.cumsum(jax.random.normal(jax.random.key(0), (513, 200)), axis=0)
      >>> s = landscape.increment_spectrum(walk, power=True)
      >>> bool(jnp.abs(s.mean[1:].mean() / 512 - 1.0) < 0.05)   # white: E|F|² = K − 1
      True
    """
    x = snapshot_matrix(snapshots)
    if x.shape[0] < 3:
        raise ValueError(f"`snapshots` needs at least 3 snapshots, got {x.shape[0]}.")
    inc = jnp.diff(x, axis=0)
    mag = jnp.abs(jnp.fft.rfft(inc, axis=0))
    if power:
        mag = mag**2
    freqs = jnp.fft.rfftfreq(inc.shape[0])
    return TrajectorySpectrum(freqs, jnp.mean(mag, axis=1), jnp.std(mag, axis=1))


class Autocorrelation(NamedTuple):
    """Output of :func:`autocorrelation`.

    Attributes:
      lags: ``0..max_lag``.
      mean: mean over coordinates of the sample autocorrelation ``r_i(h)``.
      std: standard deviation over coordinates.
      band: half-width ``z/√K`` of the white-noise confidence band (``z = 1.96`` at 95 %,
        ``2.576`` at 99 %).
      num_coordinates: coordinates used (constant coordinates are excluded).
    """

    lags: jax.Array
    mean: jax.Array
    std: jax.Array
    band: float
    num_coordinates: int


def autocorrelation(
    snapshots: Any, max_lag: int | None = None, *, confidence: float = 0.95
) -> Autocorrelation:
    """Sample autocorrelation of each weight over snapshots, with a white-noise band.

    .. math::

      r_i(h) = \\frac{\\sum_{k=0}^{K-1-h} (x^i_k - \\bar x^i)(x^i_{k+h} - \\bar x^i)}
                    {\\sum_{k=0}^{K-1} (x^i_k - \\bar x^i)^2},
      \\qquad \\text{band } \\pm \\frac{z_{(1+c)/2}}{\\sqrt K}.

    Args:
      snapshots: ``K ≥ 2`` snapshots (see :func:`snapshot_matrix`).
      max_lag: largest lag (default ``K // 2``; ``< K``).
      confidence: level ``c`` of the white-noise band (0.95 → ±1.96/√K; the thesis' 99 % →
        ±2.576/√K).

    Returns:
      An :class:`Autocorrelation`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import landscape
      >>> noise = jax.random.normal(jax.random.key(0), (400, 50))
      >>> ac = landscape.autocorrelation(noise, max_lag=5)
      >>> float(ac.mean[0]), round(float(ac.band), 3), bool(jnp.all(jnp.abs(ac.mean[1:]) < ac.band))
      (1.0, 0.098, True)
    """
    x = snapshot_matrix(snapshots)
    k = x.shape[0]
    if k < 2:
        raise ValueError(f"`snapshots` needs at least 2 snapshots, got {k}.")
    max_lag = (
        k // 2 if max_lag is None else validation.check_static_int("max_lag", max_lag, minimum=0)
    )
    if max_lag >= k:
        raise ValueError(f"`max_lag` must be < the number of snapshots {k}, got {max_lag}.")
    confidence = validation.check_fraction("confidence", confidence)
    if confidence >= 1:
        raise ValueError(f"`confidence` must be < 1, got confidence={confidence}.")
    centered = x - jnp.mean(x, axis=0)
    denom = jnp.sum(centered**2, axis=0)
    keep = denom > 0
    centered = centered[:, keep]
    denom = denom[keep]
    if centered.shape[1] == 0:
        raise ValueError("Every coordinate is constant over the snapshots: no autocorrelation.")
    # Zero-padded FFT gives all lags in O(K log K) per coordinate.
    size = int(2 ** np.ceil(np.log2(2 * k)))
    f = jnp.fft.rfft(centered, n=size, axis=0)
    acov = jnp.fft.irfft(f * jnp.conj(f), n=size, axis=0)[: max_lag + 1]
    r = acov / denom
    band = float(ndtri((1 + confidence) / 2)) / np.sqrt(k)
    return Autocorrelation(
        lags=jnp.arange(max_lag + 1),
        mean=jnp.mean(r, axis=1),
        std=jnp.std(r, axis=1),
        band=band,
        num_coordinates=int(centered.shape[1]),
    )


def _norms(loss_fn, stacked, batches):
    def one(params):
        loss, grad = dataset.batch_mean(jax.value_and_grad(loss_fn), batches, params)
        sq = sum(jnp.sum(g**2) for g in jax.tree_util.tree_leaves(grad))
        return loss, jnp.sqrt(sq)

    return jax.lax.map(one, stacked)


_norms_jit = jax.jit(_norms, static_argnums=0)


class GradientNorms(NamedTuple):
    """Output of :func:`full_gradient_norms`: dataset loss and ``‖∇f‖`` at each snapshot."""

    loss: jax.Array
    grad_norm: jax.Array


def full_gradient_norms(
    loss_fn: Callable[[PyTree, PyTree], jax.Array], snapshots: Any, batches: Any
) -> GradientNorms:
    """Full-data loss and gradient norm ``‖∇f(x_k)‖`` at each snapshot.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      snapshots: a list of parameter pytrees or a pytree stacked along a leading snapshot axis.
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).

    Returns:
      A :class:`GradientNorms` with arrays of shape ``(K,)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * jnp.sum(w**2)
      >>> out = landscape.full_gradient_norms(loss_fn, [jnp.array([3.0, 4.0]), jnp.zeros(2)], [0])
      >>> out.grad_norm.tolist()
      [5.0, 0.0]
    """
    if isinstance(snapshots, list):
        if not snapshots:
            raise ValueError("`snapshots` is empty.")
        snapshots = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *snapshots)
    loss, norm = _norms_jit(loss_fn, snapshots, dataset.prepare_batches(batches))
    return GradientNorms(loss, norm)
