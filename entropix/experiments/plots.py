"""Training-curve plots of a run (PNG, matplotlib Agg)."""

from __future__ import annotations

import pathlib
from typing import Any


def plot_history(history: list[dict[str, Any]], path: pathlib.Path) -> pathlib.Path:
    """Test/train error and train loss against effective epochs; returns ``path``.

    ``history`` is the whole run's (``read_metrics``); ``None`` (a non-finite value) is drawn
    as a gap.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def column(key, scale=1.0):
        return [float("nan") if r.get(key) is None else scale * r[key] for r in history]

    epochs = column("effective_epochs")
    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_err.plot(epochs, column("test_error", 100), marker="o", label="test")
    ax_err.plot(epochs, column("train_error", 100), marker="o", label="train")
    ax_err.set(xlabel="effective epochs", ylabel="error (%)")
    ax_err.legend()
    ax_loss.plot(epochs, column("train_loss"), marker="o")
    ax_loss.set(xlabel="effective epochs", ylabel="train loss", yscale="log")
    for ax in (ax_err, ax_loss):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
