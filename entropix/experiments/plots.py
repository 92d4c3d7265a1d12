"""Training-curve plots of a run (PNG, matplotlib Agg)."""

from __future__ import annotations

import pathlib
from typing import Any


def plot_history(history: list[dict[str, Any]], path: pathlib.Path) -> pathlib.Path:
    """Test/train error and train loss against effective epochs; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["effective_epochs"] for r in history]
    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_err.plot(epochs, [100 * r["test_error"] for r in history], marker="o", label="test")
    ax_err.plot(epochs, [100 * r["train_error"] for r in history], marker="o", label="train")
    ax_err.set(xlabel="effective epochs", ylabel="error (%)")
    ax_err.legend()
    ax_loss.plot(epochs, [r["train_loss"] for r in history], marker="o")
    ax_loss.set(xlabel="effective epochs", ylabel="train loss", yscale="log")
    for ax in (ax_err, ax_loss):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
