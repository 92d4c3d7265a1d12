"""Command line of the experiment runner: ``entropix {train,compare,landscape}``.

See :data:`USAGE` (``entropix --help``). Every user error (a bad value, an unknown key, a
missing config or data set, a workdir that holds another run) is one line on stderr and exit
status 2; a failed write names the path (status 1); SIGINT/SIGTERM finish the current round,
save a checkpoint and exit with 130/143.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import logging
import os
import pathlib
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Mapping
from typing import Any

COMMANDS = ("train", "compare", "landscape")
# The main job: `compare` runs all its optimizers, `train` its `optimizer` entry.
DEFAULT_CONFIG = "mnist1d_compare"
EXTRA = 'pip install "entropix-jax[examples]"'
# module → distribution of the `examples` extra that the runner cannot work without.
EXTRA_MODULES = {
    "ml_collections": "ml-collections",
    "flax": "flax",
    "orbax.checkpoint": "orbax-checkpoint",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
}
# Mappings whose keys are free (loader/model/optimizer arguments): --config may add keys there.
OPEN_MAPPINGS = ("dataset_kwargs", "model_kwargs", "optimizer")

USAGE = """\
usage: entropix COMMAND [--config NAME|FILE[:ROW]] [--config.KEY=VALUE ...] [--workdir DIR]
                        [--resume | --overwrite] [--quiet] [--help]

commands:
  train       train the config's `optimizer` entry; writes config.json, metrics.jsonl/.csv,
              checkpoints/ and curves.png into --workdir (default runs/train-<name>)
  compare     train every entry of `optimizers` for every seed of `seeds` at an equal budget;
              writes compare.md/.csv, curves.png and runs/<label>-seed<seed>/ (default
              runs/compare-<name>)
  landscape   Hessian spectrum, local energy and gradient-noise rank of a train run's newest
              verified checkpoint (--workdir of the run)

options:
  --config NAME|FILE[:ROW]  a config name of the package (default: mnist1d_compare) or a
                            config file; ROW selects a row of a multi-row config
                            (e.g. iclr17_table1:ptb)
  --config.KEY=VALUE        override any key, also nested and list entries:
                            --config.optimizer.learning_rate=0.5
                            --config.optimizers.3.coupling=0.3
                            --config.optimizer.lr_drops=[10,20]
                            --config.dataset_kwargs.path=corpus.txt
  --workdir DIR             output directory of the run
  --resume                  continue the run in --workdir from its newest verified checkpoint
  --overwrite               delete the run already in --workdir and start over
  --quiet                   no progress bars
  --help                    this text; with --config: the config's keys, values and meaning

examples:
  entropix compare
  entropix train --config mnist1d_compare --config.budget_epochs=20 --workdir runs/esgd
  entropix train --config mnist1d_compare --workdir runs/esgd --resume
  entropix train --config mnist1d_compare --help
  entropix landscape --workdir runs/esgd

exit status: 0 success (also: a finished run resumed), 1 divergence or a failed write,
2 a user error (one line naming the key, the value and the fix), 130/143 stopped by
SIGINT/SIGTERM after saving a checkpoint (resume with --resume)."""


class _UsageError(Exception):
    """A command-line error (printed as one line, exit status 2)."""


class _Terminated(Exception):
    """SIGTERM arrived outside a training round."""


def _raise_terminated(signum, frame):
    del signum, frame
    raise _Terminated


def _missing_extras() -> list[str]:
    missing = []
    for module, package in EXTRA_MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return missing


def configs_dir() -> pathlib.Path | None:
    """The directory of the packaged configs (``entropix.configs``, or ``configs/`` of a
    source checkout)."""
    try:
        package = importlib.util.find_spec("entropix.configs")
    except (ImportError, ValueError):
        package = None
    if package is not None and package.submodule_search_locations:
        return pathlib.Path(next(iter(package.submodule_search_locations)))
    checkout = pathlib.Path(__file__).resolve().parents[2] / "configs"
    return checkout if checkout.is_dir() else None


def config_names() -> list[str]:
    """Names ``--config`` accepts without a path."""
    directory = configs_dir()
    if directory is None:
        return []
    return sorted(p.stem for p in directory.glob("*.py") if not p.stem.startswith("_"))


def resolve_config(arg: str) -> tuple[pathlib.Path, str | None]:
    """``NAME|FILE[:ROW]`` → (config file, row)."""
    target, _, row = arg.partition(":")
    path = pathlib.Path(target).expanduser()
    if not path.is_file():
        name = path.name[:-3] if path.name.endswith(".py") else path.name
        directory = configs_dir()
        candidate = directory / f"{name}.py" if directory is not None else None
        if str(path.parent) in ("", ".", "configs") and candidate and candidate.is_file():
            path = candidate
        else:
            raise _UsageError(
                f"--config {arg!r}: no such config file or name; available config names: "
                f"{', '.join(config_names()) or 'none found'}."
            )
    return path, row or None


def load_config(arg: str) -> dict[str, Any]:
    """Loads ``NAME|FILE[:ROW]`` and returns the config as plain Python (dicts and lists)."""
    from entropix.experiments import trainer

    path, row = resolve_config(arg)
    module_spec = importlib.util.spec_from_file_location(f"_entropix_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        raise _UsageError(
            f"config file {path} failed to load ({type(err).__name__}: {err})."
        ) from err
    get_config = getattr(module, "get_config", None)
    if get_config is None:
        raise _UsageError(f"config file {path} has no get_config() function.")
    rows = getattr(module, "ALL_ROWS", None) or getattr(module, "ROWS", None)
    takes_row = bool(inspect.signature(get_config).parameters)
    if row is not None and not takes_row:
        raise _UsageError(f"--config {arg!r}: config {path.stem} has no rows; drop ':{row}'.")
    if row is not None and rows and row not in rows:
        raise _UsageError(
            f"--config {arg!r}: unknown row {row!r} of {path.stem}; valid rows: {', '.join(rows)}."
        )
    try:
        config = get_config(row) if row is not None else get_config()
    except ValueError as err:
        raise _UsageError(f"--config {arg!r}: {err}") from err
    return trainer.as_plain(config)


# --------------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------------


def _category(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _parse(text: str, current: Any, key: str) -> Any:
    """The value of ``--config.KEY=text`` given the key's current value."""
    if isinstance(current, str):
        return text
    if isinstance(current, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise _UsageError(f"--config.{key}={text!r}: expected true or false.")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = text
    if current is None:
        return value
    kind, expected = _category(value), _category(current)
    if value == "auto" and key.rsplit(".", 1)[-1] == "coupling" and expected != "list":
        return value  # the automatic coupling replaces a constant or a scoping schedule
    allowed = {
        "number": ("number", "mapping"),  # a scoping schedule may replace a constant
        "mapping": ("mapping", "number"),
        "list": ("list",),
    }.get(expected, (expected,))
    if kind not in (*allowed, "none"):
        example = {"number": "a number", "list": "a list such as [10, 20]"}.get(
            expected, f"a {expected}"
        )
        raise _UsageError(f"--config.{key}={text!r}: expected {example} (now {current!r}).")
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    return value


def apply_override(config: dict[str, Any], dotted: str, text: str) -> None:
    """Sets ``config[a][b]...`` from ``--config.a.b=text``; list entries by index."""
    parts = dotted.split(".")
    node: Any = config
    for depth, part in enumerate(parts):
        key = ".".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        if isinstance(node, list | tuple):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                raise _UsageError(
                    f"--config.{dotted}: {key!r} is not an entry of a list of {len(node)} "
                    f"(use an index 0..{len(node) - 1})."
                )
            index = int(part)
            if last:
                if isinstance(node, tuple):
                    raise _UsageError(f"--config.{dotted}: set the whole tuple instead.")
                node[index] = _parse(text, node[index], key)
            else:
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise _UsageError(
                f"--config.{dotted}: {'.'.join(parts[:depth])} is {node!r}, not a mapping."
            )
        parent = ".".join(parts[:depth])
        open_mapping = (
            parent in OPEN_MAPPINGS
            or (parent.startswith("optimizers.") and parent.count(".") == 1)
            or parent.endswith(".model_kwargs")
        )
        if part not in node and not (last and open_mapping):
            hint = ""
            if (
                depth == 0
                and isinstance(config.get("optimizer"), dict)
                and (part in config["optimizer"])
            ):
                hint = f" (an optimizer key: --config.optimizer.{part}=...)"
            where = f"{parent}." if parent else ""
            raise _UsageError(
                f"unknown config key {where + part!r}{hint}; valid keys"
                f"{' of ' + parent if parent else ''}: {', '.join(sorted(map(str, node)))}."
            )
        if last:
            node[part] = _parse(text, node.get(part), key)
        else:
            node = node[part]


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------


class Arguments:
    """Parsed command line."""

    def __init__(self, command: str):
        self.command = command
        self.config: str | None = None
        self.overrides: list[tuple[str, str]] = []
        self.workdir: str | None = None
        self.resume = self.overwrite = self.quiet = self.help = False
        # After a failed write: the message to print last, then exit at once (see main).
        self.last_words: str | None = None


def parse_arguments(command: str, args: list[str]) -> Arguments:
    """Parses the options after the command (see :data:`USAGE`)."""
    parsed = Arguments(command)
    i = 0

    def value_of(option: str, inline: str | None) -> str:
        nonlocal i
        if inline is not None:
            return inline
        if i + 1 >= len(args) or args[i + 1].startswith("--"):
            raise _UsageError(f"{option} needs a value.")
        i += 1
        return args[i]

    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        inline = inline if eq else None
        if arg in ("-h", "--help", "-help", "--helpfull"):
            parsed.help = True
        elif name == "--config":
            parsed.config = value_of(name, inline)
        elif name.startswith("--config."):
            parsed.overrides.append((name[len("--config.") :], value_of(name, inline)))
        elif name == "--workdir":
            parsed.workdir = value_of(name, inline)
        elif name in ("--resume", "--overwrite", "--quiet") and inline is None:
            setattr(parsed, name[2:], True)
        else:
            raise _UsageError(
                f"unknown argument {arg!r}; options: --config, --config.KEY=VALUE, --workdir, "
                "--resume, --overwrite, --quiet, --help (see entropix --help)."
            )
        i += 1
    if parsed.resume and parsed.overwrite:
        raise _UsageError("--resume continues the run and --overwrite deletes it; pick one.")
    return parsed


def describe_config(config: Mapping[str, Any]) -> str:
    """The keys of ``config`` with their values and meaning (``--help`` with ``--config``)."""
    from entropix.experiments.config_base import KEY_HELP, OPTIMIZER_KEY_HELP

    lines = []

    def meaning(path: list[str]) -> str:
        if len(path) == 1:
            return KEY_HELP.get(path[0], "")
        if path[0] in ("optimizer", "optimizers"):
            key = path[1] if path[0] == "optimizer" else (path[2] if len(path) > 2 else "")
            if path[0] == "optimizers" and len(path) == 2:
                return "optimizer entry"
            return OPTIMIZER_KEY_HELP.get(key, "argument of the optimizer factory")
        if path[0] == "model_kwargs":
            return "argument of the model"
        if path[0] == "dataset_kwargs":
            return "argument of the dataset loader"
        return ""

    def walk(value: Any, path: list[str]) -> None:
        if isinstance(value, Mapping) and value and path[-1:] != ["coupling"]:
            for k, v in value.items():
                walk(v, [*path, str(k)])
            return
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, v in enumerate(value):
                walk(v, [*path, str(i)])
            return
        key = ".".join(path)
        text = meaning(path)
        lines.append(f"  --config.{key}={value!r}" + (f"\n      {text}" if text else ""))

    for key, value in config.items():
        walk(value, [key])
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``entropix`` console script; returns the exit status."""
    console = argv is None
    argv = list(sys.argv if argv is None else argv)
    args = argv[1:]
    if args and args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if not args or args[0] not in COMMANDS:
        given = args[0] if args else "nothing"
        print(
            f"entropix: expected a command in {COMMANDS}, got {given!r}; see entropix --help.",
            file=sys.stderr,
        )
        return 2
    command = args[0]
    try:
        parsed = parse_arguments(command, args[1:])
    except _UsageError as err:
        print(f"entropix {command}: {err}", file=sys.stderr)
        return 2
    if parsed.help and parsed.config is None:
        print(USAGE)
        names = config_names()
        if names:
            print(f"\nconfig names: {', '.join(names)}")
        return 0
    missing = _missing_extras()
    if missing:
        print(
            f"entropix {command}: needs the `examples` extra (missing: {', '.join(missing)}); "
            f"install it with: {EXTRA}",
            file=sys.stderr,
        )
        return 2
    warnings.formatwarning = lambda message, *_, **__: f"entropix: warning: {message}\n"
    status = _run(parsed, argv)
    if parsed.last_words is None:
        return status
    if not console:
        print(parsed.last_words, file=sys.stderr)
        return status
    # The threads of a failed checkpoint write (orbax, tensorstore) keep printing tracebacks
    # until the process ends, at shutdown too: stderr is closed to them before the one line
    # that says everything is written, and the process ends without running shutdown.
    sys.stdout.flush()
    sys.stderr.flush()
    terminal = os.dup(2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    sys.stderr = open(os.devnull, "w")
    os.write(terminal, (parsed.last_words + "\n").encode())
    os._exit(status)


def _run(parsed: Arguments, argv: list[str]) -> int:
    from entropix.experiments import trainer
    from entropix.experiments.config_base import ConfigError

    command = parsed.command
    # orbax logs through absl; its messages repeat what the runner reports in one line.
    logging.getLogger("absl").setLevel(logging.CRITICAL)
    # SIGTERM outside a training round (loading data, compiling, diagnostics) stops with one
    # line too; inside a round the trainer finishes the round and saves first.
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if command == "landscape":
            if parsed.config is not None or parsed.overrides or parsed.resume:
                raise _UsageError(
                    "landscape reads the run's own config.json; pass only --workdir DIR."
                )
            if not parsed.workdir:
                raise _UsageError("--workdir of a trained run is required.")
            return _landscape(pathlib.Path(parsed.workdir), parsed.quiet)
        config = load_config(parsed.config or DEFAULT_CONFIG)
        for key, text in parsed.overrides:
            apply_override(config, key, text)
        if parsed.help:
            print(USAGE.splitlines()[0])
            print(f"\nkeys of {parsed.config} (with their current values):")
            print(describe_config(config))
            return 0
        workdir = parsed.workdir or f"runs/{command}-{config.get('name', 'experiment')}"
        parsed.workdir = workdir
        if command == "train":
            return _train(config, workdir, parsed)
        return _compare(config, workdir, parsed)
    except (_UsageError, ConfigError) as err:
        print(f"entropix {command}: {err}", file=sys.stderr)
        return 2
    except trainer.Interrupted as err:
        resume = [a for a in argv[1:] if a != "--overwrite"]
        resume = resume if "--resume" in resume else [*resume, "--resume"]
        if "--workdir" not in " ".join(resume):
            resume += ["--workdir", str(parsed.workdir or err.workdir)]
        print(
            f"entropix {command}: {err}; continue with: entropix {shlex.join(resume)}",
            file=sys.stderr,
        )
        return 128 + err.signum
    except (KeyboardInterrupt, _Terminated) as err:
        signum = signal.SIGTERM if isinstance(err, _Terminated) else signal.SIGINT
        print(
            f"entropix {command}: stopped by {signal.Signals(signum).name} before the current "
            "round could be saved; checkpoints saved before are kept (continue with --resume).",
            file=sys.stderr,
        )
        return 128 + signum
    except trainer.NonFiniteError as err:
        print(f"entropix {command}: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        where = err.filename or "a file"
        parsed.last_words = (
            f"entropix {command}: cannot write or read {where}: {err.strerror or err}."
        )
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)


def _summary(record: Mapping[str, Any]) -> str:
    def number(key, scale=1.0, fmt=".2f"):
        value = record.get(key)
        return "n/a" if value is None else format(value * scale, fmt)

    perplexity = (
        f", test perplexity {number('test_perplexity', fmt='.4g')}"
        if "test_perplexity" in record
        else ""
    )
    return (
        f"test error {number('test_error', 100)}%{perplexity} after "
        f"{number('effective_epochs', fmt='.1f')} effective epochs"
    )


def _train(config, workdir, parsed) -> int:
    from entropix.experiments import plots, trainer
    from entropix.experiments.metrics_log import read_metrics

    result = trainer.train(
        config,
        workdir=workdir,
        resume=parsed.resume,
        overwrite=parsed.overwrite,
        quiet=parsed.quiet,
    )
    history = read_metrics(workdir)
    final = history[-1] if history else {}
    if result.already_finished:
        print(
            f"{result.spec.label}: the run in {workdir} is already finished "
            f"({_summary(final)}); nothing changed. Raise --config.budget_epochs to train on."
        )
        return 0
    plot = plots.plot_history(history, pathlib.Path(workdir) / "curves.png")
    print(f"{result.spec.label}: {_summary(final)}; metrics {workdir}/metrics.jsonl, plot {plot}")
    return 0


def _compare(config, workdir, parsed) -> int:
    from entropix.experiments import compare

    out = compare.compare(
        config,
        workdir=workdir,
        resume=parsed.resume,
        overwrite=parsed.overwrite,
        quiet=parsed.quiet,
    )
    print(out.table)
    print(f"\nTable: {workdir}/compare.md  Plot: {out.plot_path}")
    return 0


def _landscape(workdir: pathlib.Path, quiet: bool) -> int:
    import json

    from entropix.experiments import landscape_report

    report = landscape_report.report(workdir, quiet=quiet)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
