"""Generalization study: runs the studies of ``configs/generalization.py`` and renders them.

Each study is an ``entropix compare`` config (its rows: quick, mnist1d_mlp, mnist1d_cnn,
fashion_mlp, fashion_lenet). This script trains a study with
:func:`entropix.experiments.compare.compare` (test error, train loss, local energy δE(σ), top
Hessian eigenvalue), restores every run's final evaluation weights and measures its landscape
with :func:`entropix.experiments.landscape_report.report` — the code behind
``entropix landscape``: Hessian eigenvalue density by stochastic Lanczos quadrature and its
near-zero weight, the local-energy curve δE(σ), and the local learning coefficient λ̂ — then
renders tables and figures from those numbers:

    python benchmarks/generalization.py --quick          # the quick study, <= 5 min on 2 cores
    python benchmarks/generalization.py                  # the four studies, ~60 min on 2 cores
    python benchmarks/generalization.py --write          # also rewrites benchmarks/README.md
                                                         # and benchmarks/figures/
    python benchmarks/generalization.py --studies fashion_mlp   # any rows of the config
    python benchmarks/generalization.py --render-only --write   # render the studies' saved
                                                                # WORKDIR/<name>/study.json

Only the section between ``<!-- generalization:start -->`` and ``<!-- generalization:end -->``
of ``benchmarks/README.md`` is replaced (the speed suite owns its own section).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import itertools
import json
import math
import os
import pathlib
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
CONFIG_FILE = HERE.parent / "configs" / "generalization.py"
README = HERE / "README.md"
FIGURES = HERE / "figures"
SECTION = "generalization"
MAX_FIGURE_BYTES = 150_000
BASELINE = "SGD (Nesterov)"
# The local-entropy and replica methods whose claims are checked against SGD.
ENTROPIC = ("Entropy-SGD", "Entropy-Adam", "Parle", "rSGD", "Elastic-SGD")
QUICK = ("quick",)
FULL = ("mnist1d_mlp", "mnist1d_cnn", "fashion_mlp", "fashion_lenet")


def load_configs():
    """``configs/generalization.py`` as a module (the configs are not a package here)."""
    found = importlib.util.spec_from_file_location("generalization_configs", CONFIG_FILE)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def plain(value: Any) -> Any:
    """JSON-ready copy of metrics and configs (NumPy/JAX scalars → Python numbers)."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (np.generic, jax.Array)):
        return value.item()
    return value


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def run_study(config, workdir: pathlib.Path, quiet: bool, dataset=None) -> dict[str, Any]:
    """Trains one study with :func:`compare`, then measures the landscape of every run."""
    from entropix.experiments import compare, landscape_report, trainer

    if dataset is None:
        dataset = trainer.load_data(config)
    path = workdir / config.name
    if path.exists():
        shutil.rmtree(path)  # stale checkpoints would be mistaken for this run's
    study = config.study
    start = time.perf_counter()
    comparison = compare.compare(config, workdir=path, quiet=quiet, dataset=dataset)
    train_seconds = time.perf_counter() - start
    runs: dict[str, list[dict[str, Any]]] = {}
    for label, finals in comparison.runs.items():
        for seed, final in zip(config.seeds, finals, strict=True):
            began = time.perf_counter()
            landscape = landscape_report.report(
                path / "runs" / f"{label}-seed{seed}",
                examples=config.diagnostics_examples,
                dataset=dataset,
                spectrum_examples=study.spectrum_examples,
                spectrum_order=study.spectrum_order,
                spectrum_probes=study.spectrum_probes,
                near_zero=study.near_zero,
                plots=False,
            )
            record = plain(dict(final))
            record.update(
                near_zero_fraction=landscape["near_zero_fraction"],
                local_energy_curve=landscape["local_energy_error"],
                llc=landscape["llc"],
                llc_stderr=landscape["llc_stderr"],
                landscape_seconds=time.perf_counter() - began,
            )
            runs.setdefault(label, []).append(record)
    histories = {
        label: [
            [
                plain({k: r[k] for k in ("effective_epochs", "test_error", "train_eval_loss")})
                for r in h
            ]
            for h in seed_histories
        ]
        for label, seed_histories in comparison.histories.items()
    }
    result = {
        "config": plain(config),
        "num_train": int(dataset.num_train),
        "sigmas": list(landscape_report.SIGMAS),
        "runs": runs,
        "histories": histories,
        "curves_png": str(comparison.plot_path) if comparison.plot_path else None,
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - start,
        "date": str(datetime.date.today()),
    }
    (path / "study.json").write_text(json.dumps(result, indent=1))
    return result


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def mean_curve(histories: list[list[dict[str, Any]]], key: str) -> tuple[list[float], list[float]]:
    length = min(len(h) for h in histories)
    epochs = [r["effective_epochs"] for r in histories[0][:length]]
    return epochs, [statistics.fmean(h[i][key] for h in histories) for i in range(length)]


SUMMARY_KEYS = (
    "test_error",
    "train_loss",
    "train_eval_loss",
    "local_energy",
    "top_eigenvalue",
    "near_zero_fraction",
    "llc",
    "wall_clock",
    "effective_epochs",
)


def summarize(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per optimizer: mean ± std over seeds of every reported quantity."""
    rows = []
    baseline = result["runs"].get(BASELINE)
    target = mean_std([r["test_error"] for r in baseline])[0] if baseline else None
    for label, runs in result["runs"].items():
        row = {"optimizer": label}
        for key in SUMMARY_KEYS:
            row[key] = mean_std([r[key] for r in runs])
        row["curve"] = [
            mean_std([r["local_energy_curve"][i] for r in runs])[0]
            for i in range(len(result["sigmas"]))
        ]
        epochs, errors = mean_curve(result["histories"][label], "test_error")
        row["epochs_to_baseline"] = next(
            (
                e
                for e, err in zip(epochs, errors, strict=True)
                if target is not None and err <= target
            ),
            None,
        )
        _, losses = mean_curve(result["histories"][label], "train_eval_loss")
        row["plateaus"] = plateaus(losses, drop_at=_drop_at(result))
        rows.append(row)
    return rows


def _drop_at(result: dict[str, Any]) -> float:
    """Fraction of the budget at which the learning rates drop (1 when they do not)."""
    config = result["config"]
    drops = [d for o in config["optimizers"] for d in o.get("lr_drops") or []]
    return min(drops) / config["budget_epochs"] if drops else 1.0


def plateaus(losses: Sequence[float], drop_at: float = 1.0, tolerance: float = 0.02) -> int:
    """Evaluation intervals (before the learning-rate drop) where the train loss fell < 2%."""
    stop = max(1, int(len(losses) * drop_at))
    return sum(
        1
        for before, after in itertools.pairwise(losses[:stop])
        if before > 0 and (before - after) / before < tolerance
    )


def verdict(row: dict[str, Any], base: dict[str, Any]) -> str:
    """``wins`` / ``ties`` / ``loses`` of a test error against ``base``: differences within the
    seeds' spread (the larger std, at least 0.3 points) are ties."""
    (m, s), (mb, sb) = row["test_error"], base["test_error"]
    margin = max(s, sb, 0.003)
    if m < mb - margin:
        return "wins"
    if m > mb + margin:
        return "loses"
    return "ties"


# The papers' qualitative claims, each checked for one method's row against SGD's row.
CLAIMS: dict[str, tuple[str, Callable[[dict, dict], bool]]] = {
    "flat_eig": (
        "smaller top Hessian eigenvalue λ_max",
        lambda r, b: r["top_eigenvalue"][0] < b["top_eigenvalue"][0],
    ),
    "flat_energy": (
        "lower local energy δE(σ)",
        lambda r, b: r["local_energy"][0] < b["local_energy"][0],
    ),
    "flat_zero": (
        "larger near-zero weight of the Hessian density",
        lambda r, b: r["near_zero_fraction"][0] > b["near_zero_fraction"][0],
    ),
    "llc": (
        "lower local learning coefficient λ̂",
        lambda r, b: r["llc"][0] < b["llc"][0],
    ),
    "loss": (
        "lower train loss",
        lambda r, b: r["train_eval_loss"][0] < b["train_eval_loss"][0],
    ),
    "faster": (
        "reaches SGD's final test error in fewer effective epochs",
        lambda r, b: (
            r["epochs_to_baseline"] is not None
            and b["epochs_to_baseline"] is not None
            and r["epochs_to_baseline"] < b["epochs_to_baseline"]
        ),
    ),
}


def _entropic(label: str) -> bool:
    return label.split(" (")[0] in ENTROPIC


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _pm(mean_and_std, scale=1.0, digits=3, seeds=2):
    mean, std = mean_and_std
    if not math.isfinite(mean):
        return "—"
    if seeds > 1:
        return f"{mean * scale:.{digits}g} ± {std * scale:.2g}"
    return f"{mean * scale:.{digits}g}"


def _markdown(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """A markdown table: the first column left-aligned, the others right-aligned."""
    out = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out)


def table(result: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The study's main table: one row per optimizer."""
    config = result["config"]
    seeds = len(config["seeds"])
    header = (
        "optimizer",
        "test error (%)",
        "train loss",
        "train loss (minibatch)",
        f"δE(σ={config['local_energy_sigma']:g}) (points)",
        "λ_max",
        f"near-zero (\\|λ\\|<{config['study']['near_zero']:g})",
        "λ̂ (LLC)",
        "epochs to SGD's error",
        "plateaus",
        "wall-clock (s)",
        "eff. epochs",
    )
    lines = []
    for row in rows:
        reached = row["epochs_to_baseline"]
        lines.append(
            (
                row["optimizer"],
                _pm(row["test_error"], 100.0, 3, seeds),
                _pm(row["train_eval_loss"], 1.0, 3, seeds),
                _pm(row["train_loss"], 1.0, 3, seeds),
                _pm(row["local_energy"], 100.0, 2, seeds),
                _pm(row["top_eigenvalue"], 1.0, 3, seeds),
                _pm(row["near_zero_fraction"], 1.0, 2, seeds),
                _pm(row["llc"], 1.0, 3, seeds),
                "never" if reached is None else f"{reached:.3g}",
                str(row["plateaus"]),
                f"{row['wall_clock'][0]:.0f}",
                f"{row['effective_epochs'][0]:.3g}",
            )
        )
    return _markdown(header, lines)


def energy_table(result: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """δE(σ) for every σ > 0 of the local-energy curve (points, mean over seeds)."""
    sigmas = result["sigmas"]
    header = ("optimizer", *(f"σ={s:g}" for s in sigmas[1:]))
    lines = [(r["optimizer"], *(f"{100 * v:.2g}" for v in r["curve"][1:])) for r in rows]
    return _markdown(header, lines)


def hyperparameters(result: dict[str, Any]) -> str:
    """Each optimizer's settings (without the shared learning-rate drop)."""
    skip = ("name", "label", "lr_drops", "lr_factor")
    return "; ".join(
        f"{o['label']}: " + ", ".join(f"{k}={v}" for k, v in o.items() if k not in skip)
        for o in result["config"]["optimizers"]
    )


def verdict_table(results: list[dict[str, Any]], all_rows: list[list[dict[str, Any]]]) -> str:
    """Test error of every optimizer against SGD's, per study, and the wins/ties/losses tally."""
    titles = [r["config"]["study"]["title"] for r in results]
    labels: list[str] = []
    cells: dict[tuple[str, int], str] = {}
    tally: dict[str, list[str]] = {}
    for i, rows in enumerate(all_rows):
        by = {r["optimizer"]: r for r in rows}
        base = by.get(BASELINE)
        for row in rows:
            label = row["optimizer"]
            if label not in labels:
                labels.append(label)
            error = f"{100 * row['test_error'][0]:.1f}"
            if base is None or row is base:
                cells[label, i] = error
                continue
            v = verdict(row, base)
            tally.setdefault(label, []).append(v)
            cells[label, i] = f"{error} ({v})"
    lines = [
        (
            label,
            *(cells.get((label, i), "—") for i in range(len(results))),
            "/".join(str(tally.get(label, []).count(v)) for v in ("wins", "ties", "loses"))
            if label in tally
            else "—",
        )
        for label in labels
    ]
    return _markdown(("optimizer", *titles, "wins/ties/losses"), lines)


def hand_set_label(label: str) -> str | None:
    """The hand-set-γ row an automatic-coupling row is compared with (None for other rows)."""
    if "auto γ" not in label:
        return None
    return label.replace(" (auto γ)", "").replace(", auto γ)", ")")


def auto_coupling_table(
    results: list[dict[str, Any]], all_rows: list[list[dict[str, Any]]]
) -> str | None:
    """Test error of each automatic-coupling row against its hand-set-γ row, per study: a
    difference within the larger seed std (at least 0.3 points) is a match."""
    titles = [r["config"]["study"]["title"] for r in results]
    pairs: dict[str, list[str]] = {}
    for i, rows in enumerate(all_rows):
        by = {r["optimizer"]: r for r in rows}
        for row in rows:
            hand = by.get(hand_set_label(row["optimizer"]) or "")
            if hand is None:
                continue
            cells = pairs.setdefault(row["optimizer"], ["—"] * len(results))
            v = {"ties": "matches", "wins": "better", "loses": "worse"}[verdict(row, hand)]
            cells[i] = (
                f"{100 * row['test_error'][0]:.1f} vs {100 * hand['test_error'][0]:.1f} ({v})"
            )
    if not pairs:
        return None
    lines = [
        (
            label,
            *cells,
            f"{sum(c.endswith('(matches)') or c.endswith('(better)') for c in cells)}"
            f"/{sum(c != '—' for c in cells)}",
        )
        for label, cells in pairs.items()
    ]
    return _markdown(("automatic coupling vs hand-set γ", *titles, "matched or better"), lines)


def claims_table(results: list[dict[str, Any]], all_rows: list[list[dict[str, Any]]]) -> str:
    """For each claim, how many local-entropy/replica methods satisfy it, per study and in all."""
    titles = [r["config"]["study"]["title"] for r in results]
    lines = []
    for claim, holds in CLAIMS.values():
        cells, held, checked = [], 0, 0
        for rows in all_rows:
            base = next((r for r in rows if r["optimizer"] == BASELINE), None)
            methods = [r for r in rows if _entropic(r["optimizer"])]
            if base is None or not methods:
                cells.append("—")
                continue
            k = sum(holds(r, base) for r in methods)
            cells.append(f"{k}/{len(methods)}")
            held, checked = held + k, checked + len(methods)
        lines.append((claim, *cells, f"{held}/{checked}" if checked else "—"))
    return _markdown(("claim (against SGD)", *titles, "all studies"), lines)


# --------------------------------------------------------------------------------------------
# Figures and README
# --------------------------------------------------------------------------------------------


def figures(result: dict[str, Any], rows, directory: pathlib.Path) -> list[pathlib.Path]:
    """The study's test-error/train-loss curves (compare's ``curves.png``) and its
    local-energy curves, each < 150 KB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    name, title = result["config"]["name"], result["config"]["study"]["title"]
    paths = []
    curves = directory / f"{name}-curves.png"
    source = result.get("curves_png")
    if source and pathlib.Path(source).exists():
        shutil.copyfile(source, curves)
        if curves.stat().st_size > MAX_FIGURE_BYTES:
            plt.imsave(curves, plt.imread(source)[::2, ::2])
        paths.append(curves)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for row in rows:
        ax.plot(
            result["sigmas"],
            [100 * v for v in row["curve"]],
            marker="o",
            ms=3,
            label=row["optimizer"],
        )
    ax.set(
        xlabel="σ (multiplicative weight noise)",
        ylabel="δE(σ): training-error increase (points)",
        title=f"local energy at the end — {title}",
    )
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    energy = directory / f"{name}-local-energy.png"
    fig.savefig(energy, dpi=90)
    plt.close(fig)
    paths.append(energy)
    return paths


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {jax.default_backend().upper()}, JAX {jax.__version__}, "
        f"Python {platform.python_version()}"
    )


COLUMNS_TEXT = (
    "Every optimizer gets the same number of gradient evaluations **per replica** (effective "
    "epochs = gradient evaluations / minibatches per epoch) and the same step decay of its "
    "learning rate; replica methods (n = 3, vmapped) are evaluated at the replica mean, "
    "local-entropy methods at the anchor. SAM spends two gradient evaluations per update, so it "
    "makes half as many updates. Columns: mean ± std over seeds of the final test error; train "
    "loss of the evaluated weights (on up to 10,000 training examples); train loss (minibatch) "
    "= mean minibatch loss of the last evaluation period at the trained iterate (the SGLD walker "
    "of a local-entropy method, every replica of a replica method); δE(σ) = increase of the "
    "training error under multiplicative Gaussian weight noise σ (Pittorino et al.; 8 draws; "
    "an increase over the run's own training error, so a method that fits the training set "
    "less has less room to increase; the full curve is given below each table); λ_max = top "
    "Hessian eigenvalue of the training loss (Lanczos); near-zero = weight of the Hessian "
    "eigenvalue density with \\|λ\\| < τ, by stochastic Lanczos quadrature on a training subset "
    "(resolution limited by the Lanczos order; a subset of n examples bounds the Hessian rank by "
    "9n, so over-parametrized models show large fractions by construction); λ̂ (LLC) = local "
    "learning coefficient of singular learning theory at the evaluated weights, from a "
    "localized tempered SGLD chain on the diagnostics examples (devinterp's default nβ = m/log m "
    "and localization 100; lower = a simpler, more degenerate solution); epochs to SGD's error "
    "= first evaluation at which the seed-mean test error is ≤ SGD's final one; plateaus = "
    "evaluation intervals before the learning-rate drop in which the train loss of the "
    "evaluated weights fell by less than 2%; wall-clock per run includes compilation."
)


def render(
    results: list[dict[str, Any]],
    *,
    command: str,
    elapsed: float,
    date: str,
    figure_dir: str | None,
) -> str:
    """The README section: provenance, one table per study, then the computed comparisons."""
    all_rows = [summarize(r) for r in results]
    out = [
        "## Generalization study",
        "",
        f"Generated by `{command}` on {date} ({machine()}); {elapsed / 60:.1f} min in all. "
        "Do not edit by hand: rerun the script with `--write`. The studies are the rows of "
        "`configs/generalization.py` (`entropix compare --config generalization:ROW` trains one).",
        "",
        COLUMNS_TEXT,
    ]
    for result, rows in zip(results, all_rows, strict=True):
        config, study = result["config"], result["config"]["study"]
        out += [
            "",
            f"### {study['title']}",
            "",
            f"{study['model_doc']}; {result['num_train']:,} training examples, batch "
            f"{config['batch_size']}, budget {config['budget_epochs']:g} effective epochs, "
            f"learning rates ×{config['optimizers'][0].get('lr_factor', 1):g} at "
            f"{_drop_at(result):.0%} of it, seeds {', '.join(map(str, config['seeds']))}; "
            f"diagnostics on {config['diagnostics_examples']} training examples, Hessian "
            f"density (order {study['spectrum_order']}, {study['spectrum_probes']} probes) on "
            f"{min(study['spectrum_examples'], result['num_train'])}. Training and the "
            f"`compare` diagnostics {result['train_seconds'] / 60:.1f} min; with the landscape "
            f"of every run {result['total_seconds'] / 60:.1f} min.",
            "",
            table(result, rows),
            "",
            f"Hyper-parameters: {hyperparameters(result)}.",
            "",
            "Local-energy curve δE(σ) (training-error increase, points; mean over seeds):",
            "",
            energy_table(result, rows),
        ]
        if figure_dir is not None:
            name = config["name"]
            out += [
                "",
                f"![test error and train loss vs effective epochs — {study['title']}]"
                f"({figure_dir}/{name}-curves.png)",
                f"![local energy — {study['title']}]({figure_dir}/{name}-local-energy.png)",
            ]
    out += [
        "",
        "### Against SGD",
        "",
        "Test error (%, seed mean) of every optimizer, and whether it beats SGD's: a difference "
        "within the larger seed std (at least 0.3 points) is a tie.",
        "",
        verdict_table(results, all_rows),
        "",
    ]
    auto = auto_coupling_table(results, all_rows)
    if auto is not None:
        out += [
            'The automatic coupling (`coupling="auto"`, the same defaults in every study) '
            "against the hand-set γ = 0.1 of the same method: test error (%, seed mean), a "
            "difference within the larger seed std (at least 0.3 points) is a match.",
            "",
            auto,
            "",
        ]
    out += [
        "The papers' claims, counted over the local-entropy and replica methods of each study "
        "(k/n: k of the n methods satisfy the claim against SGD's seed mean):",
        "",
        claims_table(results, all_rows),
        "",
        "These are short CPU budgets on small models, not the papers' long GPU runs with tuned "
        "schedules, and 3 seeds resolve differences of about a point at best.",
    ]
    return "\n".join(out)


def write_readme(text: str, path: pathlib.Path = README) -> None:
    """Replaces (or appends) only this script's section of ``path``."""
    content = path.read_text() if path.exists() else "# Benchmarks\n"
    start, end = f"<!-- {SECTION}:start -->", f"<!-- {SECTION}:end -->"
    block = f"{start}\n{text}\n{end}"
    if start in content and end in content:
        before, rest = content.split(start, 1)
        content = before + block + rest.split(end, 1)[1]
    else:
        content = content.rstrip() + "\n\n" + block + "\n"
    path.write_text(content)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick study only, <= 5 minutes")
    parser.add_argument("--studies", nargs="+", help="rows of configs/generalization.py to run")
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    parser.add_argument(
        "--workdir",
        default=os.path.join(tempfile.gettempdir(), "entropix-generalization"),
        help="runs, checkpoints, per-study JSON and curves",
    )
    parser.add_argument("--verbose", action="store_true", help="progress bars")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-render the tables from the studies' WORKDIR/<name>/study.json (no training)",
    )
    args = parser.parse_args(argv)
    workdir = pathlib.Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = args.studies or (QUICK if args.quick else FULL)
    configs = load_configs()
    unknown = [row for row in rows if row not in configs.ROWS]
    if unknown:
        parser.error(f"unknown studies {unknown}; valid: {', '.join(configs.ROWS)}.")
    results = []
    for row in rows:
        config = configs.get_config(row)
        saved = workdir / config.name / "study.json"
        if args.render_only:
            if not saved.exists():
                parser.error(f"{saved} is missing; run the study {row!r} first.")
            results.append(json.loads(saved.read_text()))
            continue
        print(
            f"[generalization] {row}: {len(config.optimizers)} optimizers × "
            f"{len(config.seeds)} seeds × {config.budget_epochs:g} epochs",
            file=sys.stderr,
        )
        results.append(run_study(config, workdir, quiet=not args.verbose))
        print(f"[generalization]   done in {results[-1]['total_seconds']:.0f} s", file=sys.stderr)
    # Studies may run in separate processes: the provenance is the sum of their times and
    # the day the last one finished.
    elapsed = sum(r["total_seconds"] for r in results)
    date = max(r["date"] for r in results)
    command = "python benchmarks/generalization.py" + (
        " --quick"
        if rows == QUICK
        else ""
        if tuple(rows) == FULL
        else f" --studies {' '.join(rows)}"
    )
    figure_dir = None
    if args.write:
        for result in results:
            figures(result, summarize(result), FIGURES)
        figure_dir = "figures"
    text = render(results, command=command, elapsed=elapsed, date=date, figure_dir=figure_dir)
    (workdir / "generalization.md").write_text(text + "\n")
    print(text)
    if args.write:
        write_readme(text)
        print(f"[generalization] wrote {README} and {FIGURES}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
