"""Figures of the landscape diagnostics (matplotlib, an optional dependency).

matplotlib is imported inside each function, never at import time of
:mod:`entropix.landscape`. Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no
global state, works headless); save them with ``fig.savefig(path)``. Each function accepts an
existing ``ax`` to draw into instead.

References:
  Chaudhari et al., *Entropy-SGD: biasing gradient descent into wide valleys*, ICLR 2017, Fig. 1
  (eigenvalue histogram with log-scale insets of both tails).
  Pittorino et al., *Entropic gradient descent algorithms and wide flat minima*, ICLR 2021
  (local-energy curves of several optimizers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def _figure_and_axes(ax: Any, figsize: tuple[float, float]):
    if ax is not None:
        return ax.figure, ax
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "entropix.landscape.plots needs matplotlib: pip install 'entropix-jax[examples]' "
            "(or pip install matplotlib)."
        ) from err
    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot(1, 1, 1)


def plot_eigenvalue_histogram(
    eigenvalues: Any,
    *,
    bins: int = 100,
    threshold: float = 1e-4,
    insets: bool = True,
    ax: Any = None,
    title: str | None = None,
    figsize: tuple[float, float] = (6.0, 4.0),
) -> Any:
    """Histogram of Hessian eigenvalues with log-scale insets of both tails (ICLR'17 Fig. 1).

    The main panel is the full histogram (frequency on a log scale, so the peak at 0 does not
    hide the tails); the left inset shows the negative tail ``λ < −τ``, the right inset the
    positive tail ``λ > τ``, each with a log-scale frequency axis.

    Args:
      eigenvalues: array of eigenvalues.
      bins: number of bins of the main histogram (insets use ``bins // 2``).
      threshold: ``τ`` separating the near-zero peak from the tails.
      insets: draw the two tail insets.
      ax: optional matplotlib ``Axes`` to draw into.
      title: optional title (default: the near-zero fraction).
      figsize: size of a new figure.

    Returns:
      The matplotlib ``Figure``.

    Examples:
      >>> import numpy as np
      >>> from entropix import landscape
      >>> lam = np.concatenate([np.zeros(900), -np.random.rand(20), 40 * np.random.rand(80)])
      >>> fig = landscape.plot_eigenvalue_histogram(lam)
      >>> fig.savefig("/tmp/hessian_hist.png")
    """
    lam = np.asarray(eigenvalues, dtype=np.float64).ravel()
    if lam.size == 0:
        raise ValueError("`eigenvalues` is empty.")
    fig, ax = _figure_and_axes(ax, figsize)
    ax.hist(lam, bins=bins, color="tab:blue", alpha=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue λ")
    ax.set_ylabel("frequency")
    near = float(np.mean(np.abs(lam) < threshold))
    ax.set_title(title if title is not None else f"|λ| < {threshold:g}: {100 * near:.1f}%")
    if insets:
        tails = [
            (lam[lam < -threshold], [0.08, 0.55, 0.3, 0.35], "tab:red", "λ < −τ"),
            (lam[lam > threshold], [0.62, 0.55, 0.3, 0.35], "tab:green", "λ > τ"),
        ]
        for values, bounds, color, label in tails:
            inset = ax.inset_axes(bounds)
            if values.size:
                inset.hist(values, bins=max(bins // 2, 1), color=color, alpha=0.8)
                inset.set_yscale("log")
            inset.set_title(f"{label} ({values.size})", fontsize=7)
            inset.tick_params(labelsize=6)
    return fig


def plot_local_energy(
    curves: Mapping[str, Any],
    *,
    metric: str = "error",
    ax: Any = None,
    title: str | None = None,
    figsize: tuple[float, float] = (5.0, 4.0),
) -> Any:
    """Local-energy curves ``δE(σ)`` of several optimizers on one axis, with ±1 s.e. bands.

    Args:
      curves: mapping from a label (e.g. the optimizer) to a
        :class:`~entropix.landscape.LocalEnergy`.
      metric: ``"error"`` (training error, the slides' choice) or ``"loss"``.
      ax: optional matplotlib ``Axes``.
      title: optional title.
      figsize: size of a new figure.

    Returns:
      The matplotlib ``Figure``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * jnp.sum(b * w**2)
      >>> sig = jnp.linspace(0.0, 0.5, 6)
      >>> curves = {name: landscape.local_energy(loss_fn, w, [jnp.ones(2)], sig, num_samples=8)
      ...           for name, w in [("sgd", jnp.ones(2)), ("entropy-sgd", 0.5 * jnp.ones(2))]}
      >>> fig = landscape.plot_local_energy(curves, metric="loss")
    """
    if metric not in ("error", "loss"):
        raise ValueError(f"`metric` must be 'error' or 'loss', got metric={metric!r}.")
    if not curves:
        raise ValueError("`curves` is empty.")
    fig, ax = _figure_and_axes(ax, figsize)
    for label, curve in curves.items():
        values = getattr(curve, metric)
        if values is None:
            raise ValueError(
                f"Curve {label!r} has no {metric!r} values: pass error_fn to local_energy."
            )
        se = np.asarray(getattr(curve, f"{metric}_stderr"))
        sigmas = np.asarray(curve.sigmas)
        values = np.asarray(values)
        (line,) = ax.plot(sigmas, values, marker="o", markersize=3, label=str(label))
        ax.fill_between(sigmas, values - se, values + se, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("σ")
    ax.set_ylabel(f"local energy δ{'E_train' if metric == 'error' else 'loss'}")
    if title is not None:
        ax.set_title(title)
    ax.legend()
    return fig


def plot_density(
    density: Any,
    *,
    log: bool = True,
    ax: Any = None,
    label: str | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (6.0, 4.0),
) -> Any:
    """Plot an eigenvalue density (e.g. from :func:`~entropix.landscape.slq_density`).

    Args:
      density: a :class:`~entropix.landscape.SpectralDensity` (or any object with ``grid`` and
        ``density``).
      log: logarithmic density axis (the tails span many decades).
      ax: optional matplotlib ``Axes`` (draw several densities into one).
      label: optional legend label.
      title: optional title.
      figsize: size of a new figure.

    Returns:
      The matplotlib ``Figure``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> dens = landscape.slq_density(jnp.diag(jnp.linspace(-1.0, 5.0, 64)), order=16)
      >>> fig = landscape.plot_density(dens)
    """
    grid = np.asarray(density.grid)
    values = np.asarray(density.density)
    fig, ax = _figure_and_axes(ax, figsize)
    if log:
        floor = max(values.max() * 1e-12, np.finfo(np.float64).tiny)
        ax.semilogy(grid, np.maximum(values, floor), label=label)
    else:
        ax.plot(grid, values, label=label)
    ax.set_xlabel("eigenvalue λ")
    ax.set_ylabel("density")
    if title is not None:
        ax.set_title(title)
    if label is not None:
        ax.legend()
    return fig
