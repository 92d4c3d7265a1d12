"""Generalization study: entropic optimizers vs SGD, Adam and SAM at equal gradient budgets.

Every optimizer of a study gets the same number of gradient evaluations *per replica*
(``budget_epochs`` effective epochs, see the conventions page of the documentation,
docs/conventions.md, "Counting cost: effective epochs") on the same data, model and seeds, and
the same step decay of its learning rate (×0.2 at 75% of the budget). Training and the
end-of-run diagnostics come from the library: :func:`entropix.experiments.compare.compare`
trains optimizers × seeds and measures the test error, train loss, local energy δE(σ) and the
top Hessian eigenvalue; each run's final checkpoint is then restored
(:func:`entropix.experiments.landscape_report.load_run`) to estimate the fraction of near-zero
Hessian eigenvalues by stochastic Lanczos quadrature (:func:`entropix.landscape.hessian_density`
+ :func:`entropix.landscape.spectrum_summary`) and the local-energy curve δE(σ)
(:func:`entropix.landscape.local_energy`). The markdown tables, the findings paragraph and the
figures are generated from those numbers.

    python benchmarks/generalization.py --quick          # MNIST-1D MLP only, <= 5 min on 2 cores
    python benchmarks/generalization.py                  # all studies, <= 60 min on 2 cores
    python benchmarks/generalization.py --quick --write  # also rewrites benchmarks/README.md
                                                         # and benchmarks/figures/

Only the section between ``<!-- generalization:start -->`` and ``<!-- generalization:end -->``
of ``benchmarks/README.md`` is replaced (the speed suite owns its own section).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
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
import jax.numpy as jnp
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
README = HERE / "README.md"
FIGURES = HERE / "figures"
SECTION = "generalization"
MAX_FIGURE_BYTES = 150_000
SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)  # local-energy curve (multiplicative noise)
LOCAL_ENERGY_SIGMA = 0.2  # the table's δE column (σ = 0.5 saturates for the small models)
LR_DROP_AT = 0.75  # every optimizer: learning rate × LR_FACTOR at 75% of the budget
LR_FACTOR = 0.2
BASELINE = "SGD (Nesterov)"
ENTROPIC = ("Entropy-SGD", "Entropy-Adam", "Parle", "rSGD", "Elastic-SGD")


# --------------------------------------------------------------------------------------------
# Studies and optimizer entries
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Study:
    """One dataset × model comparison.

    Attributes:
      key: short name (figure file names, work directories).
      title: heading in the README.
      dataset: ``load_dataset`` name.
      model: ``"mlp"`` or a name of ``entropix.models.MODEL_NAMES``.
      model_kwargs: model overrides.
      model_doc: human description of the model.
      batch_size: minibatch size.
      budget_epochs: gradient evaluations per replica, in effective epochs.
      eval_every_epochs: evaluation period (effective epochs).
      seeds: seeds (the mean ± std are over these).
      optimizers: optimizer entries (see ``entropix.experiments.optimizers``).
      diagnostics_examples: training examples for δE(σ) and the top eigenvalue.
      spectrum_examples: training examples for the near-zero fraction.
      spectrum_order: Lanczos order per probe of the density estimate.
      spectrum_probes: number of probes of the density estimate.
      near_zero: the threshold τ of the near-zero fraction ``|λ| < τ``.
      train_examples: use only the first ``train_examples`` training examples (None: all).
    """

    key: str
    title: str
    dataset: str
    model: str
    model_kwargs: dict[str, Any]
    model_doc: str
    batch_size: int
    budget_epochs: float
    eval_every_epochs: float
    seeds: tuple[int, ...]
    optimizers: tuple[dict[str, Any], ...]
    diagnostics_examples: int = 512
    spectrum_examples: int = 1024
    spectrum_order: int = 40
    spectrum_probes: int = 4
    near_zero: float = 1e-2
    train_examples: int | None = None


def optimizer_entries(
    *,
    lr_sgd: float,
    lr_adam: float,
    lr_entropy_adam: float,
    budget_epochs: float,
    names: Sequence[str] | None = None,
) -> tuple[dict[str, Any], ...]:
    """The optimizers of the study, hyper-parameters as in ``configs/*_compare.py``.

    Local-entropy methods use L = 5 inner steps, coupling γ = 0.1, SGD's learning rate in the
    inner (SGLD) loop (a larger one made Entropy-SGD diverge on small-LeNet), outer learning
    rate 1 on the scaled gradient ``x − μ``; replica methods use n = 3 replicas vmapped on one
    device and are evaluated at the replica mean.
    """
    drop = {"lr_drops": [LR_DROP_AT * budget_epochs], "lr_factor": LR_FACTOR}
    local = dict(num_inner_steps=5, coupling=0.1, sgld_learning_rate=lr_sgd, **drop)
    entries = [
        dict(name="sgd", label=BASELINE, learning_rate=lr_sgd, momentum=0.9, **drop),
        dict(name="adam", label="Adam", learning_rate=lr_adam, **drop),
        dict(name="sam", label="SAM", learning_rate=lr_sgd, rho=0.05, **drop),
        dict(name="entropy_sgd", label="Entropy-SGD", learning_rate=1.0, noise=1e-4, **local),
        dict(
            name="entropy_adam",
            label="Entropy-Adam",
            learning_rate=lr_entropy_adam,
            noise=1e-4,
            **local,
        ),
        dict(
            name="parle",
            label="Parle (n=3)",
            learning_rate=1.0,
            elastic_coupling=0.1,
            num_replicas=3,
            **local,
        ),
        dict(
            name="parle",
            label="Parle (n=3, split 50%)",
            learning_rate=1.0,
            elastic_coupling=0.1,
            num_replicas=3,
            split_data=0.5,
            **local,
        ),
        dict(
            name="elastic_sgd",
            label="Elastic-SGD (n=3)",
            learning_rate=lr_sgd,
            momentum=0.9,
            elastic_coupling=0.1,
            num_replicas=3,
            **drop,
        ),
        dict(
            name="rsgd",
            label="rSGD (n=3)",
            learning_rate=lr_sgd,
            momentum=0.9,
            nesterov=True,
            elastic_coupling=0.01,
            num_replicas=3,
            **drop,
        ),
    ]
    if names is not None:
        entries = [e for e in entries if e["label"] in names]
    return tuple(entries)


ALL = None  # every optimizer
CORE = (  # eight representative optimizers; Elastic-SGD is left out (n=3 costs three replicas)
    BASELINE,
    "Adam",
    "SAM",
    "Entropy-SGD",
    "Entropy-Adam",
    "Parle (n=3)",
    "Parle (n=3, split 50%)",
    "rSGD (n=3)",
)


def studies(quick: bool) -> list[Study]:
    """The studies of one mode.

    ``quick``: MNIST-1D MLP only, every optimizer, 2 seeds, 20 effective epochs and a cheaper
    spectrum (≈ 3–4 minutes on 2 shared CPU cores). Default: MNIST-1D MLP and small CNN (every
    optimizer, 3 seeds, 60 epochs), Fashion-MNIST mnistfc-sized MLP and small-LeNet (the
    8 optimizers of ``CORE``, 3 seeds, short budgets sized to fit 60 minutes on 2 CPU cores; see
    ``FASHION_*`` below).
    """

    def mnist1d(budget, seeds, names, cnn=False, **spectrum):
        if cnn:
            key, title, model, kwargs = "mnist1d-cnn", "MNIST-1D, small CNN", "mnist1d-cnn", {}
            doc = (
                "MNIST-1D CNN of Greydanus (2020): conv1d 25 (k5, s2) → 25 (k3, s2) → 25 (k3, "
                "s2) → 10, ReLU (5,210 parameters)"
            )
        else:
            key, title, model = "mnist1d-mlp", "MNIST-1D, MLP 40-100-100-10", "mlp"
            kwargs = {"features": (100, 100)}
            doc = "MLP 40-100-100-10, ReLU, no BN/dropout (15,210 parameters)"
        return Study(
            key=key,
            title=title,
            dataset="mnist1d",
            model=model,
            model_kwargs=kwargs,
            model_doc=doc,
            batch_size=100,
            budget_epochs=budget,
            eval_every_epochs=budget / 10,
            seeds=seeds,
            optimizers=optimizer_entries(
                lr_sgd=0.05,
                lr_adam=2e-3,
                lr_entropy_adam=2e-2,  # tuned on {2e-3, 5e-3, 1e-2, 2e-2, 5e-2}, 20 epochs
                budget_epochs=budget,
                names=names,
            ),
            diagnostics_examples=512,
            **spectrum,
        )

    if quick:
        return [
            mnist1d(20.0, (0, 1), ALL, spectrum_examples=1000, spectrum_order=30, spectrum_probes=2)
        ]

    def fashion(key, title, model, kwargs, doc, budget, train_examples, batch_size, **spectrum):
        return Study(
            key=key,
            title=title,
            dataset="fashion_mnist",
            model=model,
            model_kwargs=kwargs,
            model_doc=doc,
            batch_size=batch_size,
            budget_epochs=budget,
            eval_every_epochs=budget / 6,
            seeds=(0, 1, 2),
            optimizers=optimizer_entries(
                lr_sgd=0.02,
                lr_adam=1e-3,
                lr_entropy_adam=3e-3,  # better than 1e-2 after one epoch of the MLP
                budget_epochs=budget,
                names=CORE,
            ),
            diagnostics_examples=512,
            train_examples=train_examples,
            **spectrum,
        )

    return [
        # All 4,000 examples: the Hessian rank bound 4000·9 exceeds the 15,210 parameters.
        mnist1d(60.0, (0, 1, 2), ALL, spectrum_examples=4000),
        # 5,210 parameters: 1,000 examples already bound the Hessian rank above that.
        mnist1d(60.0, (0, 1, 2), ALL, cnn=True, spectrum_examples=1000),
        fashion(
            "fashion-mlp",
            "Fashion-MNIST, MLP 784-1024-1024-10",
            "mlp",
            {"features": (1024, 1024)},
            "MLP 784-1024-1024-10 (mnistfc's size, without its BN and dropout; "
            "1,863,690 parameters)",
            FASHION_MLP_EPOCHS,
            FASHION_MLP_TRAIN,
            128,
            spectrum_examples=1024,
            spectrum_order=30,
            spectrum_probes=2,
        ),
        fashion(
            "fashion-lenet",
            "Fashion-MNIST, small-LeNet",
            "small-lenet",
            {},
            "small-LeNet conv 10 → conv 20 → 128 → 10, no BN/dropout (47,658 parameters)",
            FASHION_LENET_EPOCHS,
            FASHION_LENET_TRAIN,
            64,
            spectrum_examples=256,
            spectrum_order=20,
            spectrum_probes=2,
        ),
    ]


# Default-mode Fashion-MNIST budgets, sized from timings on the 2 CPU cores (idle), per seed and
# per effective epoch: the mnistfc-sized MLP on all 60,000 examples ≈ 7 s (SGD, Adam, SAM),
# 10 s (Entropy-SGD/Adam), 24 s (Parle, split Parle, rSGD: 3 replicas); small-LeNet (batch 64)
# on 12,000 examples ≈ 9 s (SGD) to 27 s (Parle); plus compilation and diagnostics per run.
# Estimated default suite: MNIST-1D MLP ≈ 5 min, CNN ≈ 6 min, Fashion MLP ≈ 18 min, LeNet
# ≈ 15 min, ≈ 45 min in all (the quick mode takes 2–3.5 min).
FASHION_MLP_TRAIN = None
FASHION_MLP_EPOCHS = 3.0
FASHION_LENET_TRAIN = 12_000
FASHION_LENET_EPOCHS = 2.0


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def make_config(study: Study):
    """The ml_collections config of a study (``entropix compare`` could run it too)."""
    from entropix.experiments.config_base import experiment

    config = experiment(
        f"generalization_{study.key}",
        dataset=study.dataset,
        model=study.model,
        model_kwargs=dict(study.model_kwargs),
        optimizers=[dict(o) for o in study.optimizers],
        budget_epochs=study.budget_epochs,
        batch_size=study.batch_size,
        eval_every_epochs=study.eval_every_epochs,
        seeds=study.seeds,
    )
    config.checkpoint_every_rounds = 0  # only the final state (for the spectrum)
    config.diagnostics_examples = study.diagnostics_examples
    config.local_energy_sigma = LOCAL_ENERGY_SIGMA
    config.train_eval_examples = 10_000
    return config


def load(study: Study, cache: dict):
    """The study's dataset (cached per dataset name, optionally truncated)."""
    from entropix import data

    key = (study.dataset, study.train_examples)
    if key not in cache:
        ds = data.load_dataset(study.dataset)
        if study.train_examples is not None:
            n = study.train_examples
            ds = ds._replace(x_train=ds.x_train[:n], y_train=ds.y_train[:n])
        cache[key] = ds
    return cache[key]


def run_dir(workdir: pathlib.Path, label: str, seed: int) -> pathlib.Path:
    """Where :func:`compare` put a run (``runs/<label>-seed<seed>``)."""
    return workdir / "runs" / f"{label}-seed{seed}"


_OBJECTIVES: dict[str, tuple[Callable, Callable]] = {}


def _objectives(model, state, key: str) -> tuple[Callable, Callable]:
    """Training loss and error of ``model`` as ``fn(params, batch)``.

    The landscape functions jit with the loss function as a static argument, so reusing one
    function object per study (possible when the model has no BatchNorm state) compiles the
    Hessian-vector products and the local-energy curves once instead of once per run.
    """
    from entropix.experiments import trainer

    if not jax.tree.leaves(state) and key in _OBJECTIVES:
        return _OBJECTIVES[key]

    def loss_fn(p, batch):
        logits = model.apply({"params": p, **state}, batch[0], train=False)
        return trainer.cross_entropy(logits, batch[1])

    def error_fn(p, batch):
        logits = model.apply({"params": p, **state}, batch[0], train=False)
        return jnp.mean(jnp.argmax(logits, -1) != batch[1])

    if not jax.tree.leaves(state):
        _OBJECTIVES[key] = (loss_fn, error_fn)
    return loss_fn, error_fn


def end_landscape(path: pathlib.Path, dataset, study: Study) -> dict[str, Any]:
    """Near-zero fraction (SLQ) and local-energy curve at a run's final evaluation weights."""
    from entropix import landscape
    from entropix.experiments import landscape_report

    _, setup, params, state = landscape_report.load_run(path, dataset)
    loss_fn, error_fn = _objectives(setup.model, state, study.key)

    n = min(study.spectrum_examples, dataset.num_train)
    batch = (jnp.asarray(dataset.x_train[:n]), jnp.asarray(dataset.y_train[:n]))
    start = time.perf_counter()
    density = landscape.hessian_density(
        loss_fn,
        params,
        [batch],
        order=study.spectrum_order,
        num_probes=study.spectrum_probes,
        key=jax.random.PRNGKey(3),
    )
    summary = landscape.spectrum_summary(density, threshold=study.near_zero)
    m = min(study.diagnostics_examples, dataset.num_train)
    small = (jnp.asarray(dataset.x_train[:m]), jnp.asarray(dataset.y_train[:m]))
    energy = landscape.local_energy(
        loss_fn,
        params,
        [small],
        jnp.array(SIGMAS),
        error_fn=error_fn,
        num_samples=8,
        key=jax.random.PRNGKey(0),
        skip=landscape.is_normalization_param,
    )
    return {
        "near_zero_fraction": summary.fraction_near_zero,
        "slq_largest": summary.largest,
        "slq_most_negative": summary.most_negative,
        "local_energy_curve": [float(v) for v in energy.error],
        "landscape_seconds": time.perf_counter() - start,
    }


def run_study(study: Study, workdir: pathlib.Path, cache: dict, quiet: bool) -> dict[str, Any]:
    """Runs :func:`compare` for one study, then the end-of-training spectrum of every run."""
    from entropix.experiments import compare

    dataset = load(study, cache)
    path = workdir / study.key
    if path.exists():
        shutil.rmtree(path)  # stale checkpoints would be mistaken for this run's
    start = time.perf_counter()
    comparison = compare.compare(make_config(study), workdir=path, quiet=quiet, dataset=dataset)
    train_seconds = time.perf_counter() - start
    runs: dict[str, list[dict[str, Any]]] = {}
    for label, finals in comparison.runs.items():
        for seed, final in zip(study.seeds, finals, strict=True):
            record = {k: _plain(v) for k, v in final.items()}
            record.update(end_landscape(run_dir(path, label, seed), dataset, study))
            runs.setdefault(label, []).append(record)
    histories = {
        label: [
            [
                {k: _plain(r[k]) for k in ("effective_epochs", "test_error", "train_eval_loss")}
                for r in history
            ]
            for history in seed_histories
        ]
        for label, seed_histories in comparison.histories.items()
    }
    result = {
        "study": dataclasses.asdict(study),
        "num_train": int(dataset.num_train),
        "runs": runs,
        "histories": histories,
        "curves_png": str(comparison.plot_path) if comparison.plot_path else None,
        "local_energy_sigma": LOCAL_ENERGY_SIGMA,
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - start,
    }
    (path / "study.json").write_text(json.dumps(result, indent=1))
    return result


def _plain(value):
    if isinstance(value, (np.generic, jax.Array)):
        return value.item()
    return value


# --------------------------------------------------------------------------------------------
# Summaries, tables, findings
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


def summarize(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per optimizer: mean ± std over seeds of every reported quantity."""
    rows = []
    baseline = result["runs"].get(BASELINE)
    target = mean_std([r["test_error"] for r in baseline])[0] if baseline else None
    for label, runs in result["runs"].items():
        row = {"optimizer": label}
        for key in (
            "test_error",
            "train_loss",
            "train_eval_loss",
            "local_energy",
            "top_eigenvalue",
            "near_zero_fraction",
            "wall_clock",
            "effective_epochs",
        ):
            row[key] = mean_std([r[key] for r in runs])
        row["curve"] = [
            mean_std([r["local_energy_curve"][i] for r in runs])[0] for i in range(len(SIGMAS))
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
        row["plateaus"] = plateaus(losses)
        rows.append(row)
    return rows


def plateaus(losses: Sequence[float], tolerance: float = 0.02) -> int:
    """Evaluation intervals (before the learning-rate drop) where the train loss fell < 2%."""
    stop = max(1, int(len(losses) * LR_DROP_AT))
    return sum(
        1
        for before, after in itertools.pairwise(losses[:stop])
        if before > 0 and (before - after) / before < tolerance
    )


def _pm(mean_and_std, scale=1.0, digits=3, seeds=2):
    mean, std = mean_and_std
    if not math.isfinite(mean):
        return "—"
    if seeds > 1:
        return f"{mean * scale:.{digits}g} ± {std * scale:.2g}"
    return f"{mean * scale:.{digits}g}"


def table(result: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    study = result["study"]
    seeds = len(study["seeds"])
    tau = study["near_zero"]
    header = (
        "| optimizer | test error (%) | train loss | train loss (minibatch) | "
        f"δE(σ={LOCAL_ENERGY_SIGMA:g}) (points) | "
        f"λ_max | near-zero (\\|λ\\|<{tau:g}) | epochs to SGD's error | plateaus | "
        "wall-clock (s) | eff. epochs |"
    )
    lines = [header, "|---|" + "---:|" * 10]
    for row in rows:
        reached = row["epochs_to_baseline"]
        lines.append(
            "| "
            + " | ".join(
                [
                    row["optimizer"],
                    _pm(row["test_error"], 100.0, 3, seeds),
                    _pm(row["train_eval_loss"], 1.0, 3, seeds),
                    _pm(row["train_loss"], 1.0, 3, seeds),
                    _pm(row["local_energy"], 100.0, 2, seeds),
                    _pm(row["top_eigenvalue"], 1.0, 3, seeds),
                    _pm(row["near_zero_fraction"], 1.0, 2, seeds),
                    "never" if reached is None else f"{reached:.3g}",
                    str(row["plateaus"]),
                    f"{row['wall_clock'][0]:.0f}",
                    f"{row['effective_epochs'][0]:.3g}",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def energy_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| optimizer | " + " | ".join(f"σ={s:g}" for s in SIGMAS[1:]) + " |",
        "|---|" + "---:|" * (len(SIGMAS) - 1),
    ]
    for row in rows:
        lines.append(
            f"| {row['optimizer']} | "
            + " | ".join(f"{100 * v:.2g}" for v in row["curve"][1:])
            + " |"
        )
    return "\n".join(lines)


def _family(label: str) -> str:
    return label.split(" (")[0]


def verdict(row, base) -> str:
    """win / tie / loss of a test error against the baseline: differences within the
    seeds' spread (the larger std, at least 0.3 points) are ties."""
    (m, s), (mb, sb) = row["test_error"], base["test_error"]
    margin = max(s, sb, 0.003)
    if m < mb - margin:
        return "wins"
    if m > mb + margin:
        return "loses"
    return "ties"


def claim_checks(row: dict[str, Any], base: dict[str, Any]) -> dict[str, bool]:
    """Which of the papers' qualitative claims ``row`` satisfies against SGD's ``base`` row."""
    reached, reached_base = row["epochs_to_baseline"], base["epochs_to_baseline"]
    return {
        "flat_eig": row["top_eigenvalue"][0] < base["top_eigenvalue"][0],
        "flat_energy": row["local_energy"][0] < base["local_energy"][0],
        "flat_zero": row["near_zero_fraction"][0] > base["near_zero_fraction"][0],
        "loss": row["train_eval_loss"][0] < base["train_eval_loss"][0],
        "faster": reached is not None and reached_base is not None and reached < reached_base,
    }


def findings(results: list[dict[str, Any]], all_rows: list[list[dict[str, Any]]]) -> str:
    """The findings: a paragraph per study, then the papers' claims checked one by one."""
    out = []
    verdicts: dict[str, list[str]] = {}
    claims: dict[str, list[bool]] = {
        "flat_eig": [],
        "flat_energy": [],
        "flat_zero": [],
        "loss": [],
        "faster": [],
    }
    any_plateau = False
    orderings = []
    for result, rows in zip(results, all_rows, strict=True):
        title = result["study"]["title"]
        by = {r["optimizer"]: r for r in rows}
        base = by.get(BASELINE)
        if base is None:
            continue
        best = min(rows, key=lambda r: r["test_error"][0])
        groups = {"wins": [], "ties": [], "loses": []}
        for row in rows:
            if row is base:
                continue
            v = verdict(row, base)
            groups[v].append(f"{row['optimizer']} {100 * row['test_error'][0]:.1f}%")
            verdicts.setdefault(row["optimizer"], []).append(v)
        parts = [
            f"**{title}** (SGD {100 * base['test_error'][0]:.1f} ± "
            f"{100 * base['test_error'][1]:.1f}% test error; best: {best['optimizer']} "
            f"{100 * best['test_error'][0]:.1f}%)."
        ]
        for key, word in (
            ("wins", "Better than SGD"),
            ("ties", "Tied with SGD"),
            ("loses", "Worse than SGD"),
        ):
            if groups[key]:
                parts.append(f"{word}: {', '.join(groups[key])}.")
        entropic = [r for r in rows if _family(r["optimizer"]) in ENTROPIC]
        results_of = {r["optimizer"]: claim_checks(r, base) for r in entropic}
        passed = {k: [name for name, c in results_of.items() if c[k]] for k in claims}
        for c in results_of.values():
            for k in claims:
                claims[k].append(c[k])
        n = len(entropic)
        parts.append(
            f"Against SGD, the {n} local-entropy/replica methods have a smaller λ_max: "
            f"{len(passed['flat_eig'])}/{n}{_names(passed['flat_eig'])}; a lower "
            f"δE(σ={LOCAL_ENERGY_SIGMA:g}): {len(passed['flat_energy'])}/{n}"
            f"{_names(passed['flat_energy'])}; a larger near-zero fraction: "
            f"{len(passed['flat_zero'])}/{n}{_names(passed['flat_zero'])}; a lower train "
            f"loss: {len(passed['loss'])}/{n}{_names(passed['loss'])}; reach SGD's final test "
            f"error sooner: {len(passed['faster'])}/{n}{_names(passed['faster'])}."
        )
        plateaued = [f"{r['optimizer']} {r['plateaus']}" for r in rows if r["plateaus"]]
        any_plateau |= bool(plateaued)
        if plateaued:
            parts.append(f"Plateau intervals: {', '.join(plateaued)} (all others 0).")
        parle, elastic = by.get("Parle (n=3)"), by.get("Elastic-SGD (n=3)")
        if parle and elastic:
            ordered = sorted([parle, elastic, base], key=lambda r: r["test_error"][0])
            orderings.append(
                (title, verdict(parle, elastic), verdict(elastic, base), verdict(parle, base))
            )
            parts.append(
                "Test-error ordering (best first): "
                + " < ".join(f"{r['optimizer']} {100 * r['test_error'][0]:.1f}%" for r in ordered)
                + "."
            )
        out.append(" ".join(parts))

    def share(key):
        values = claims[key]
        k, n = sum(values), len(values)
        word = "mostly holds" if k >= 2 * n / 3 else ("mixed" if k >= n / 3 else "not seen")
        return f"{word} ({k}/{n} method × study pairs)"

    tally = "; ".join(
        f"{label} {vs.count('wins')}/{vs.count('ties')}/{vs.count('loses')}"
        for label, vs in verdicts.items()
    )
    claim_lines = [
        "**The papers' claims, measured** (pairs = each local-entropy/replica method in each "
        "study, compared with SGD's seed mean):",
        f"- *Flatter minima*: smaller top Hessian eigenvalue — {share('flat_eig')}; lower "
        f"local energy δE(σ={LOCAL_ENERGY_SIGMA:g}) — {share('flat_energy')}; larger "
        f"near-zero fraction of the spectrum — {share('flat_zero')}.",
        f"- *Lower training loss* (at the evaluated weights) — {share('loss')}.",
        "- *No plateaus*: "
        + (
            "some runs show plateau intervals (listed per study above)."
            if any_plateau
            else "no method, SGD included, has a plateau interval at this evaluation "
            "resolution, so these budgets do not test the claim."
        )
        + f" Reaching SGD's final test error in fewer effective epochs — {share('faster')}.",
    ]
    if orderings:
        claim_lines.append(
            "- *Parle > Elastic-SGD > SGD* (test error): "
            + "; ".join(
                f"{title}: Parle {pe} against Elastic-SGD, Elastic-SGD {es} against SGD, "
                f"Parle {ps} against SGD"
                for title, pe, es, ps in orderings
            )
            + "."
        )
    else:
        claim_lines.append("- *Parle > Elastic-SGD > SGD*: Elastic-SGD was not run in this mode.")
    claim_lines.append(
        f"- *Generalization* (wins/ties/losses against SGD over the studies; a difference "
        f"within the larger seed std, at least 0.3 points, is a tie): {tally}."
    )
    out.append("\n".join(claim_lines))
    out.append(
        "These are short CPU budgets on small models (see each study's budget), not the "
        "papers' long GPU runs with tuned schedules. Hyper-parameters come from "
        "`configs/mnist1d_compare.py` and `configs/fashion_mnist_compare.py`, with SGD's "
        "learning rate in the SGLD loop of Entropy-SGD/Adam and Parle (Entropy-Adam's "
        "learning rate was tuned briefly on MNIST-1D and one Fashion-MNIST MLP epoch; nothing "
        "was re-tuned for the CNNs or the wider MLP), and 3 seeds resolve differences of about "
        "a point at best."
    )
    return "\n\n".join(out)


def _names(labels: Sequence[str]) -> str:
    return f" ({', '.join(labels)})" if labels else ""


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
    key = result["study"]["key"]
    paths = []
    curves = directory / f"generalization-{key}-curves.png"
    source = result.get("curves_png")
    if source and pathlib.Path(source).exists():
        shutil.copyfile(source, curves)
        if curves.stat().st_size > MAX_FIGURE_BYTES:
            image = plt.imread(source)
            plt.imsave(curves, image[::2, ::2])
        paths.append(curves)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for row in rows:
        ax.plot(SIGMAS, [100 * v for v in row["curve"]], marker="o", ms=3, label=row["optimizer"])
    ax.set(
        xlabel="σ (multiplicative weight noise)",
        ylabel="δE(σ): training-error increase (points)",
        title=f"local energy at the end — {result['study']['title']}",
    )
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    energy = directory / f"generalization-{key}-local-energy.png"
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


def render(
    results: list[dict[str, Any]],
    *,
    command: str,
    elapsed: float,
    date: str,
    figure_dir: str | None,
) -> str:
    """The README section: provenance, one table per study, local energy, findings."""
    all_rows = [summarize(r) for r in results]
    out = [
        "## Generalization study",
        "",
        f"Generated by `{command}` on {date} ({machine()}); "
        f"{elapsed / 60:.1f} min in all. Do not edit by hand: rerun the script with `--write`.",
        "",
        "Every optimizer gets the same number of gradient evaluations **per replica** "
        "(effective epochs = gradient evaluations / minibatches per epoch) and the same step "
        f"decay of its learning rate (×{LR_FACTOR:g} at {LR_DROP_AT:.0%} of the budget); "
        "replica methods (n = 3, vmapped) are evaluated at the replica mean, local-entropy "
        "methods at the anchor. SAM spends two gradient evaluations per update, so it makes "
        "half as many updates. Columns: mean ± std over seeds of the final test error, "
        "train loss of the evaluated weights (on up to 10,000 training examples), train loss "
        "(minibatch) = mean minibatch loss of the last evaluation period at the trained "
        "iterate (the SGLD walker of a local-entropy method, every replica of a replica "
        f"method); δE(σ={LOCAL_ENERGY_SIGMA:g}) = "
        "increase of the training error under multiplicative Gaussian weight noise σ "
        "(Pittorino et al.; 8 draws; δE(0.5) saturates for these small models, the full "
        "curve is given below; δE is an increase over the run's own training error, so a "
        "method that fits the training set less has less room to increase); λ_max = top "
        "Hessian eigenvalue of the training loss "
        "(Lanczos, 20 steps); near-zero = weight of the Hessian eigenvalue density with "
        "\\|λ\\| < τ, by stochastic Lanczos quadrature on a training subset (resolution limited "
        "by the Lanczos order, and a subset of n examples gives the Hessian rank ≤ 9n, so "
        "over-parametrized models show large fractions by construction); epochs to SGD's "
        "error = first evaluation at which the seed-mean test error is ≤ SGD's final one; "
        "plateaus = evaluation intervals before the learning-rate drop in which the train "
        "loss of the evaluated weights fell by less than 2%; wall-clock per run includes "
        "compilation.",
    ]
    for result, rows in zip(results, all_rows, strict=True):
        study = result["study"]
        optimizers = {o["label"]: o for o in study["optimizers"]}
        out += [
            "",
            f"### {study['title']}",
            "",
            f"{study['model_doc']}; {result['num_train']:,} training examples, batch "
            f"{study['batch_size']}, budget {study['budget_epochs']:g} effective epochs, "
            f"seeds {', '.join(map(str, study['seeds']))}; diagnostics on "
            f"{study['diagnostics_examples']} training examples, spectrum (order "
            f"{study['spectrum_order']}, {study['spectrum_probes']} probes) on "
            f"{min(study['spectrum_examples'], result['num_train'])}. "
            f"`compare` (training, δE, λ_max) {result['train_seconds'] / 60:.1f} min; with "
            f"the spectra and δE curves {result['total_seconds'] / 60:.1f} min.",
            "",
            table(result, rows),
            "",
            "Hyper-parameters: "
            + "; ".join(
                f"{label}: "
                + ", ".join(
                    f"{k}={v}"
                    for k, v in entry.items()
                    if k not in ("name", "label", "lr_drops", "lr_factor")
                )
                for label, entry in optimizers.items()
            )
            + ".",
            "",
            "Local-energy curve δE(σ) (training-error increase, points; mean over seeds):",
            "",
            energy_table(rows),
        ]
        if figure_dir is not None:
            key = study["key"]
            out += [
                "",
                f"![test error and train loss vs effective epochs — {study['title']}]"
                f"({figure_dir}/generalization-{key}-curves.png)",
                f"![local energy — {study['title']}]"
                f"({figure_dir}/generalization-{key}-local-energy.png)",
            ]
    out += ["", "### Findings", "", findings(results, all_rows)]
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


def main(argv: Sequence[str] | None = None, *, select: Callable | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="MNIST-1D MLP only, <= 5 minutes")
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
        help="re-render the tables and findings from WORKDIR/results.json (no training)",
    )
    args = parser.parse_args(argv)
    workdir = pathlib.Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    saved = workdir / "results.json"
    if args.render_only:
        state = json.loads(saved.read_text())
        results, elapsed, date = state["results"], state["elapsed"], state["date"]
        if state["quick"] != args.quick:
            parser.error(f"{saved} holds a {'quick' if state['quick'] else 'default'} run.")
        if any(r.get("local_energy_sigma") != LOCAL_ENERGY_SIGMA for r in results):
            parser.error(f"{saved} used another local-energy σ; rerun without --render-only.")
    else:
        chosen = studies(args.quick)
        if select is not None:
            chosen = select(chosen)
        start = time.perf_counter()
        cache: dict = {}
        results = []
        for study in chosen:
            print(
                f"[generalization] {study.title}: {len(study.optimizers)} optimizers × "
                f"{len(study.seeds)} seeds × {study.budget_epochs:g} epochs",
                file=sys.stderr,
            )
            results.append(run_study(study, workdir, cache, quiet=not args.verbose))
            print(
                f"[generalization]   done in {results[-1]['total_seconds']:.0f} s",
                file=sys.stderr,
            )
        elapsed = time.perf_counter() - start
        date = str(datetime.date.today())
        state = {"quick": args.quick, "elapsed": elapsed, "date": date, "results": results}
        saved.write_text(json.dumps(state, indent=1))
    command = "python benchmarks/generalization.py" + (" --quick" if args.quick else "")
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
