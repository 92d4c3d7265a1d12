"""``entropix landscape``: diagnostics of a trained run's newest verified checkpoint."""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from entropix.experiments import checkpoints, trainer
from entropix.experiments.config_base import ConfigError


def load_run(workdir: pathlib.Path, dataset=None):
    """Rebuilds a run from ``config.json`` and restores its newest verified checkpoint.

    ``config.json`` is written when a run starts, so a killed or diverged run can be analysed
    at its last verified checkpoint. Checkpoints that fail verification are reported and
    skipped (left in place).

    Raises:
      ConfigError: no run in ``workdir``, or no verified checkpoint.
    """
    workdir = pathlib.Path(workdir)
    saved = trainer.read_run(workdir)
    config, optimizer = saved["config"], saved["optimizer"]
    setup = trainer.setup(config, optimizer, dataset)
    like = trainer.checkpoint_tree(trainer.init_state(setup, int(config["seed"])))
    manager = checkpoints.manager(workdir / "checkpoints")
    try:
        restored = checkpoints.restore_latest(manager, like, quarantine=False)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if restored is None:
        raise ConfigError(
            f"no verified checkpoint in {workdir / 'checkpoints'} (status "
            f"{saved.get('status', 'unknown')!r}); train the run further with --resume first."
        )
    step, tree = restored
    print(f"entropix landscape: checkpoint {workdir / 'checkpoints' / str(step)}", file=sys.stderr)
    trained, _ = trainer.from_checkpoint_tree(tree)
    weights, state = trainer.evaluation_weights(
        trained.params, trained.model_state, trained.opt_state, setup.spec.num_replicas
    )
    return config, setup, weights, state


# The landscape functions jit with the loss as a static argument: one loss object per model
# (Flax modules compare equal when their fields do), used when the model carries no state
# such as BatchNorm statistics, lets every run of a study share their compiled code instead of
# compiling them once per run.
_OBJECTIVES: dict[Any, tuple[Callable, Callable]] = {}

SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)  # the local-energy curve's noise scales


def objectives(model, state) -> tuple[Callable, Callable]:
    """Training loss and error of ``model`` as ``fn(params, batch)`` at fixed ``state``."""
    key = model
    if not jax.tree.leaves(state) and key in _OBJECTIVES:
        return _OBJECTIVES[key]

    def loss_fn(p, b):
        logits = model.apply({"params": p, **state}, b[0], train=False)
        return trainer.cross_entropy(logits, b[1])

    def error_fn(p, b):
        logits = model.apply({"params": p, **state}, b[0], train=False)
        return jnp.mean(jnp.argmax(logits, -1) != b[1])

    if not jax.tree.leaves(state):
        _OBJECTIVES[key] = (loss_fn, error_fn)
    return loss_fn, error_fn


def report(
    workdir: str | pathlib.Path,
    *,
    quiet: bool = False,
    examples: int = 512,
    dataset=None,
    spectrum_examples: int | None = None,
    spectrum_order: int = 40,
    spectrum_probes: int = 4,
    near_zero: float = 1e-2,
    plots: bool = True,
) -> dict:
    """Spectrum, local-energy curve, gradient-noise rank and λ̂ (LLC) of a run.

    Writes ``landscape.json`` (and, with ``plots``, ``spectrum.png`` and ``local_energy.png``)
    into ``workdir``.

    Args:
      workdir: a ``train`` run's directory (``config.json`` and ``checkpoints/``).
      quiet: unused (the diagnostics are single jitted calls).
      examples: training examples of the eigenvalues, local energy, noise rank and λ̂.
      dataset: the run's dataset if it cannot be loaded by name.
      spectrum_examples: training examples of the eigenvalue density (default ``examples``).
      spectrum_order: Lanczos steps per probe of the density.
      spectrum_probes: random probes of the density.
      near_zero: the threshold τ of the density's near-zero weight ``|λ| < τ``.
      plots: write the two figures.

    Returns:
      The summary written to ``landscape.json``.
    """
    from entropix import landscape

    workdir = pathlib.Path(workdir)
    config, setup, params, state = load_run(workdir, dataset)
    ds = setup.dataset
    batch = trainer.diagnostic_batch(config, ds, examples)
    spectrum_batch = (
        batch
        if spectrum_examples is None
        else trainer.diagnostic_batch(config, ds, spectrum_examples)
    )
    loss_fn, error_fn = objectives(setup.model, state)

    eigen = landscape.hessian_eigenvalues(loss_fn, params, [batch], k=5, key=jax.random.PRNGKey(0))
    density = landscape.hessian_density(
        loss_fn,
        params,
        [spectrum_batch],
        order=spectrum_order,
        num_probes=spectrum_probes,
        key=jax.random.PRNGKey(1),
    )
    spectrum = landscape.spectrum_summary(density, threshold=near_zero)
    sigmas = jnp.array(SIGMAS)
    energy = landscape.local_energy(
        loss_fn,
        params,
        [batch],
        sigmas,
        error_fn=error_fn,
        num_samples=8,
        key=jax.random.PRNGKey(2),
        skip=landscape.is_normalization_param,
    )
    per_example = [(batch[0][i : i + 1], batch[1][i : i + 1]) for i in range(min(128, examples))]
    grads = landscape.per_example_gradients(loss_fn, params, per_example)
    noise = landscape.noise_spectrum(grads)
    summary: dict[str, Any] = {
        "optimizer": setup.spec.label,
        "top_eigenvalues": np.asarray(eigen.largest).tolist(),
        "bottom_eigenvalues": np.asarray(eigen.smallest).tolist(),
        "near_zero_fraction": float(spectrum.fraction_near_zero),
        "near_zero_threshold": near_zero,
        "density_largest": float(spectrum.largest),
        "density_most_negative": float(spectrum.most_negative),
        "local_energy_sigmas": np.asarray(sigmas).tolist(),
        "local_energy_error": np.asarray(energy.error).tolist(),
        "local_energy_loss": np.asarray(energy.loss).tolist(),
        "noise_rank": int(noise.rank),
        "noise_rank_percent": 100 * float(noise.rank_fraction),
        "noise_examples": int(noise.num_examples),
    }
    # Local learning coefficient of the trained weights: devinterp's default nβ = m / log m and
    # localization γ = 100, a step well inside the stability limit 2 / λ_max.
    nbeta = landscape.default_nbeta(len(batch[1]))
    llc = landscape.estimate_llc(
        loss_fn,
        params,
        [batch],
        nbeta=nbeta,
        coupling=100.0 / nbeta,
        sgld_learning_rate=min(0.05, 0.5 / max(float(eigen.largest[0]), 1e-3)),
        num_steps=200,
        burn_in=50,
        stochastic=False,
        key=jax.random.PRNGKey(3),
        warn=False,
    )
    summary.update(llc=float(llc.llc), llc_stderr=float(llc.stderr), llc_warnings=llc.warnings)
    if plots:
        _plots(workdir, density, energy, setup.spec.label)
    (workdir / "landscape.json").write_text(json.dumps(summary, indent=2))
    del quiet
    return summary


def _plots(workdir, density, energy, label):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from entropix import landscape

    fig = landscape.plot_density(density, title=f"Hessian eigenvalue density ({label})")
    fig.savefig(workdir / "spectrum.png", dpi=120)
    plt.close(fig)
    fig = landscape.plot_local_energy({label: energy}, title="local energy (training error)")
    fig.savefig(workdir / "local_energy.png", dpi=120)
    plt.close(fig)
