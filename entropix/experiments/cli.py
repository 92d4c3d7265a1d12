"""Command line: ``entropix {train,compare,landscape} --config FILE [--config.key=value ...]``.

Examples::

    entropix compare                                   # the default MNIST-1D comparison
    entropix train --config configs/mnist1d_compare.py --config.budget_epochs=20 \\
        --workdir runs/esgd
    entropix train --config configs/mnist1d_compare.py --workdir runs/esgd --resume
    entropix landscape --workdir runs/esgd

Configs are ``ml_collections`` files with a ``get_config()``; every key can be overridden with
``--config.key=value`` and unknown keys are rejected.
"""

from __future__ import annotations

import json
import pathlib
import sys

COMMANDS = ("train", "compare", "landscape")
# The main job's config: `compare` runs all its optimizers, `train` its `optimizer` entry.
DEFAULT_CONFIG = pathlib.Path(__file__).resolve().parents[2] / "configs" / "mnist1d_compare.py"


def _usage() -> str:
    return (
        "usage: entropix {train,compare,landscape} [--config FILE] [--config.KEY=VALUE ...] "
        "[--workdir DIR] [--resume] [--quiet]\n" + (__doc__ or "")
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``entropix`` console script."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] not in COMMANDS:
        given = argv[1] if len(argv) > 1 else "nothing"
        print(f"entropix: expected a command in {COMMANDS}, got {given!r}.\n", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    command = argv.pop(1)
    from absl import flags
    from ml_collections import config_flags

    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config",
        default=str(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else None,
        help_string="experiment config file (configs/*.py)",
        flag_values=flag_values,
        lock_config=True,
    )
    flags.DEFINE_string("workdir", None, "output directory", flag_values=flag_values)
    flags.DEFINE_bool("resume", False, "continue from the last checkpoint", flag_values=flag_values)
    flags.DEFINE_bool("quiet", False, "no progress bars", flag_values=flag_values)
    try:
        flag_values(argv)
    except (flags.Error, AttributeError, KeyError, ValueError, TypeError) as err:
        print(f"entropix {command}: {err}", file=sys.stderr)
        return 2
    if command == "landscape":
        if not flag_values.workdir:
            print("entropix landscape: --workdir of a trained run is required.", file=sys.stderr)
            return 2
        return _landscape(pathlib.Path(flag_values.workdir), flag_values.quiet)
    config = flag_values.config
    if config is None:
        print(f"entropix {command}: --config is required (see configs/).", file=sys.stderr)
        return 2
    workdir = flag_values.workdir or f"runs/{command}-{config.get('name', 'experiment')}"
    return (
        _train(config, workdir, flag_values.resume, flag_values.quiet)
        if command == "train"
        else _compare(config, workdir, flag_values.quiet)
    )


def _train(config, workdir, resume, quiet) -> int:
    from entropix.experiments import plots, trainer

    result = trainer.train(config, workdir=workdir, resume=resume, quiet=quiet)
    final = result.history[-1] if result.history else {}
    plot = plots.plot_history(result.history, pathlib.Path(workdir) / "curves.png")
    perplexity = (
        f", test perplexity {final['test_perplexity']:.4g}" if "test_perplexity" in final else ""
    )
    print(
        f"{result.spec.label}: test error {final.get('test_error', float('nan')) * 100:.2f}%"
        f"{perplexity} after {final.get('effective_epochs', 0):.1f} effective epochs; "
        f"metrics {workdir}/metrics.jsonl, plot {plot}"
    )
    return 0


def _compare(config, workdir, quiet) -> int:
    from entropix.experiments import compare

    out = compare.compare(config, workdir=workdir, quiet=quiet)
    print(out.table)
    print(f"\nTable: {workdir}/compare.md  Plot: {out.plot_path}")
    return 0


def _landscape(workdir: pathlib.Path, quiet: bool) -> int:
    from entropix.experiments import landscape_report

    report = landscape_report.report(workdir, quiet=quiet)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
