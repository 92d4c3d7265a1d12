"""Several optimizers × seeds at an equal gradient-evaluation budget: table and curves."""

from __future__ import annotations

import csv
import pathlib
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from entropix.experiments import trainer
from entropix.experiments.config_base import validate_config

COLUMNS = (
    ("test_error", "test error (%)", 100.0),
    ("train_loss", "train loss", 1.0),
    ("local_energy", "local energy δE(σ)", 1.0),
    ("top_eigenvalue", "top Hessian eigenvalue", 1.0),
    ("wall_clock", "wall-clock (s)", 1.0),
    ("effective_epochs", "effective epochs", 1.0),
)


class Comparison(NamedTuple):
    """Result of :func:`compare`.

    Attributes:
      rows: one dict per optimizer with ``(mean, std)`` pairs for every column.
      runs: every run's final record (plus diagnostics), per optimizer label.
      histories: every run's evaluation records, per optimizer label.
      table: the markdown table.
      plot_path: the PNG of the curves (None without a workdir).
    """

    rows: list[dict[str, Any]]
    runs: dict[str, list[dict[str, Any]]]
    histories: dict[str, list[list[dict[str, Any]]]]
    table: str
    plot_path: pathlib.Path | None


def diagnostics(result: trainer.TrainResult, config: Mapping[str, Any]) -> dict[str, float]:
    """Local energy at ``σ`` and the top Hessian eigenvalue of the evaluation weights."""
    from entropix import landscape

    count = int(config.get("diagnostics_examples", 512))
    ds, model = result.dataset, result.model
    inputs, labels = trainer.diagnostic_batch(config, ds, count)
    state = result.model_state

    def loss_fn(params, batch):
        x, y = batch
        logits = model.apply({"params": params, **state}, x, train=False)
        return trainer.cross_entropy(logits, y)

    def error_fn(params, batch):
        x, y = batch
        logits = model.apply({"params": params, **state}, x, train=False)
        return jnp.mean(jnp.argmax(logits, -1) != y)

    batches = [(inputs, labels)]
    sigma = float(config.get("local_energy_sigma", 0.2))
    energy = landscape.local_energy(
        loss_fn,
        result.params,
        batches,
        jnp.array([sigma]),
        error_fn=error_fn,
        num_samples=int(config.get("local_energy_samples", 8)),
        key=jax.random.PRNGKey(0),
        skip=landscape.is_normalization_param,
    )
    eigen = landscape.hessian_eigenvalues(
        loss_fn, result.params, batches, k=1, num_steps=20, key=jax.random.PRNGKey(1)
    )
    return {
        "local_energy": float(energy.error[0]),
        "top_eigenvalue": float(eigen.largest[0]),
    }


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


PERPLEXITY_COLUMN = ("test_perplexity", "test perplexity", 1.0)


def columns_of(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> tuple:
    """The table's columns: language models add the test perplexity after the test error."""
    records = [r for rs in runs.values() for r in rs]
    if records and all("test_perplexity" in r for r in records):
        return (COLUMNS[0], PERPLEXITY_COLUMN, *COLUMNS[1:])
    return COLUMNS


def format_table(rows: list[dict[str, Any]], num_seeds: int, columns=COLUMNS) -> str:
    """Markdown table of mean ± std over seeds."""
    header = "| optimizer | " + " | ".join(title for _, title, _ in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        cells = []
        for key, _, scale in columns:
            mean, std = row[key]
            cells.append(
                f"{mean * scale:.3g} ± {std * scale:.2g}"
                if num_seeds > 1
                else f"{mean * scale:.3g}"
            )
        lines.append(f"| {row['optimizer']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(histories: dict[str, list[list[dict[str, Any]]]], path: pathlib.Path):
    """Test error and train loss against effective epochs, mean over seeds per optimizer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for label, runs in histories.items():
        length = min(len(h) for h in runs)
        epochs = [r["effective_epochs"] for r in runs[0][:length]]
        error = np.mean([[r["test_error"] * 100 for r in h[:length]] for h in runs], axis=0)
        loss = np.mean([[r["train_loss"] for r in h[:length]] for h in runs], axis=0)
        ax_err.plot(epochs, error, marker="o", ms=3, label=label)
        ax_loss.plot(epochs, loss, marker="o", ms=3, label=label)
    ax_err.set(xlabel="effective epochs (gradient evaluations / epoch)", ylabel="test error (%)")
    ax_loss.set(
        xlabel="effective epochs (gradient evaluations / epoch)", ylabel="train loss", yscale="log"
    )
    ax_err.legend(fontsize=8)
    ax_err.grid(alpha=0.3)
    ax_loss.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def compare(
    config: Mapping[str, Any],
    *,
    workdir: str | pathlib.Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    dataset=None,
) -> Comparison:
    """Trains every optimizer of ``config["optimizers"]`` for every seed of ``config["seeds"]``.

    All runs get the same budget of gradient evaluations per replica (``budget_epochs``
    effective epochs) on the same data; the table reports the mean ± std over seeds of the
    final test error, train loss, local energy at ``local_energy_sigma`` (training error),
    top Hessian eigenvalue, wall-clock and effective epochs.

    Args:
      config: the experiment config with ``optimizers`` and ``seeds``.
      workdir: where ``compare.md``, ``compare.csv``, ``curves.png`` and per-run metrics go
        (one ``train`` run per optimizer and seed under ``runs/<label>-seed<seed>``).
      resume: continue every run from its last verified checkpoint (finished runs are only
        restored for the table).
      overwrite: delete the comparison already in ``workdir`` first (without ``resume``).
      quiet: no progress bars.
      dataset: an already loaded dataset (default: load ``config["dataset"]``).

    Returns:
      A :class:`Comparison`.

    Raises:
      ConfigError: an invalid value in any optimizer entry, or a workdir that already holds a
        comparison (without ``resume`` or ``overwrite``).
    """
    config = trainer.as_plain(config)
    validate_config(config)
    path = trainer.check_workdir(workdir) if workdir is not None else None
    if path is not None and not resume:
        trainer.refuse_mixed_run(path, overwrite=overwrite, command="compare")
    dataset = dataset if dataset is not None else trainer.load_data(config)
    seeds = list(config.get("seeds") or [config.get("seed", 0)])
    runs: dict[str, list[dict[str, Any]]] = {}
    histories: dict[str, list[list[dict[str, Any]]]] = {}
    with_diagnostics = bool(config.get("diagnostics", True))
    for optimizer in config["optimizers"]:
        optimizer = dict(optimizer)
        label = optimizer.get("label") or optimizer["name"]
        for seed in seeds:
            run_dir = path / "runs" / f"{label}-seed{seed}" if path is not None else None
            result = trainer.train(
                {**config, "seed": seed},
                optimizer,
                workdir=run_dir,
                resume=resume,
                quiet=quiet,
                dataset=dataset,
            )
            final = dict(result.history[-1])
            if with_diagnostics:
                final.update(diagnostics(result, config))
            else:
                final.update(local_energy=float("nan"), top_eigenvalue=float("nan"))
            runs.setdefault(label, []).append(final)
            histories.setdefault(label, []).append(result.history)
    columns = columns_of(runs)
    rows = [
        {"optimizer": label, **{k: _mean_std([r[k] for r in rs]) for k, _, _ in columns}}
        for label, rs in runs.items()
    ]
    table = format_table(rows, len(seeds), columns)
    plot_path = None
    if path is not None:
        (path / "compare.md").write_text(table + "\n")
        with open(path / "compare.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(
                ["optimizer", *[f"{k}_{s}" for k, _, _ in columns for s in ("mean", "std")]]
            )
            for row in rows:
                writer.writerow([row["optimizer"], *[v for k, _, _ in columns for v in row[k]]])
        plot_path = plot_curves(histories, path / "curves.png")
    return Comparison(rows, runs, histories, table, plot_path)
