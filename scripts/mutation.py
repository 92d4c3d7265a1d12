"""Mutation testing of entropix: plant one small bug at a time, check that a test fails.

Each *mutant* is a copy of one module with a single change of its syntax tree (``+`` for ``-``,
``/ L`` dropped, ``<`` for ``<=``, ``sum`` for ``mean``, a constant moved, ``and`` for ``or`` …).
The driver copies the repository into a scratch directory, writes one mutant at a time into the
copy and runs the module's guarding tests there (``pytest -x``, the files listed for the module in
``scripts/mutation.toml``, fastest first). A failing test *kills* the mutant; a mutant whose tests
all pass *survives*; one that runs past its time limit (an endless loop, a NaN-driven solver)
*times out*. Results are appended to a JSON-lines file, so an interrupted pass resumes where it
stopped; the table at the end counts killed / survived / timed-out mutants per module and lists
the survivors with their line.

The driver needs nothing beyond the project's test dependencies (the standard library's ``ast``
does the mutating). JAX compile times dominate a run, so it keeps a persistent compilation cache
in the scratch directory: code the mutant leaves unchanged compiles once per pass.

Usage (from the repository root)::

    nice -n 10 python scripts/mutation.py                       # every module of the config
    nice -n 10 python scripts/mutation.py entropix/_src/heat.py # one module
    python scripts/mutation.py entropix/_src/heat.py --list     # the mutants, nothing run
    python scripts/mutation.py --report                         # table of the results so far
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = ROOT / "scripts" / "mutation.toml"
# What the scratch copy holds: enough for the tests to run as in the checkout.
COPIED = ("entropix", "tests", "configs", "docs", "notebooks", "benchmarks", "scripts")
COPIED_FILES = ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE")

_SWAP_BINOP = {
    ast.Add: [ast.Sub],
    ast.Sub: [ast.Add],
    ast.Mult: [ast.Div],
    ast.Div: [ast.Mult],
    ast.FloorDiv: [ast.Div],
    ast.Mod: [ast.FloorDiv],
    ast.Pow: [ast.Mult],
    ast.MatMult: [],
    ast.BitAnd: [ast.BitOr],
    ast.BitOr: [ast.BitAnd],
}
_SWAP_CMP = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
# Reductions and element-wise extremes that are easy to confuse.
_SWAP_NAME = {
    "sum": "mean",
    "mean": "sum",
    "max": "min",
    "min": "max",
    "maximum": "minimum",
    "minimum": "maximum",
    "argmax": "argmin",
    "argmin": "argmax",
    "sqrt": "rsqrt",
    "rsqrt": "sqrt",
}


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One single-point change of a module: the ``index``-th node of ``ast.walk``, ``kind``."""

    module: str
    index: int
    kind: str
    line: int
    before: str
    after: str

    @property
    def ident(self) -> str:
        return f"{self.module}:{self.index}:{self.kind}"


def _skipped_nodes(tree: ast.Module, functions: list[str] | None) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, defaults, ``__all__``, type aliases,
    and (when ``functions`` is given) everything outside those functions."""
    skipped: set[int] = set()

    def skip(node: ast.AST | None) -> None:
        if node is not None:
            skipped.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            skip(node.returns)
            for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                skip(arg.annotation)
            for arg in (node.args.vararg, node.args.kwarg):
                if arg is not None:
                    skip(arg.annotation)
            # Defaults are user-facing settings, pinned by their docstrings; a moved default is
            # counted by the signature test, not here.
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                skip(default)
            skip_decorators = node.decorator_list
            for decorator in skip_decorators:
                skip(decorator)
        if isinstance(node, ast.AnnAssign):
            skip(node.annotation)
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in ("__all__", "Params") for t in node.targets
        ):
            skip(node)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip(node)  # docstrings and bare strings
        if isinstance(node, ast.Raise):
            skip(node.exc)  # the message of an error, not whether it is raised
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("warn", "setdefault") or (
                isinstance(node.func.value, ast.Name) and node.func.value.id == "warnings"
            ):
                skip(node)
    if functions:
        kept: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in functions:
                kept.update(id(n) for n in ast.walk(node))
        skipped.update(id(n) for n in ast.walk(tree) if id(n) not in kept)
    return skipped


def _variants(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(kind, replacement node) for every mutation of ``node`` (copies, ``node`` untouched)."""
    if isinstance(node, ast.BinOp):
        for op in _SWAP_BINOP.get(type(node.op), []):
            new = copy.deepcopy(node)
            new.op = op()
            yield f"binop-{type(node.op).__name__}-{op.__name__}", new
        if isinstance(node.op, ast.Mult | ast.Div | ast.Add | ast.Sub):
            # Drop the right operand: `a / L` -> `a`, `x - η g` -> `x`.
            yield f"drop-right-{type(node.op).__name__}", copy.deepcopy(node.left)
    elif isinstance(node, ast.AugAssign):
        for op in _SWAP_BINOP.get(type(node.op), []):
            new = copy.deepcopy(node)
            new.op = op()
            yield f"augassign-{type(node.op).__name__}-{op.__name__}", new
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        yield f"drop-{type(node.op).__name__}", copy.deepcopy(node.operand)
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        swap = _SWAP_CMP.get(type(node.ops[0]))
        if swap is not None:
            new = copy.deepcopy(node)
            new.ops = [swap()]
            yield f"compare-{type(node.ops[0]).__name__}-{swap.__name__}", new
    elif isinstance(node, ast.BoolOp):
        new = copy.deepcopy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield f"boolop-{type(node.op).__name__}", new
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield "constant-bool", ast.Constant(not value)
        elif isinstance(value, int):
            yield "constant-int", ast.Constant(value + 1 if value != 1 else 0)
        elif isinstance(value, float):
            yield "constant-float", ast.Constant(value * 2 if value else 1.0)
    elif isinstance(node, ast.Attribute) and node.attr in _SWAP_NAME:
        new = copy.deepcopy(node)
        new.attr = _SWAP_NAME[node.attr]
        yield f"name-{node.attr}-{new.attr}", new
    elif isinstance(node, ast.IfExp):
        yield "ifexp-body", copy.deepcopy(node.body)
        yield "ifexp-orelse", copy.deepcopy(node.orelse)


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, replacement: ast.AST):
        self.target, self.replacement = target, replacement

    def visit(self, node):
        if node is self.target:
            return ast.copy_location(self.replacement, node)
        return self.generic_visit(node)


def mutants(module: str, functions: list[str] | None = None) -> list[Mutant]:
    """Every mutant of ``module`` (a path relative to the repository root), in a fixed order."""
    tree = ast.parse((ROOT / module).read_text())
    skipped = _skipped_nodes(tree, functions)
    found = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skipped:
            continue
        for kind, new in _variants(node):
            found.append(
                Mutant(module, index, kind, node.lineno, ast.unparse(node), ast.unparse(new))
            )
    return found


def mutated_source(source: str, mutant: Mutant) -> str:
    """``source`` with ``mutant`` applied (re-parsed, so the node index is stable)."""
    tree = ast.parse(source)
    for index, node in enumerate(ast.walk(tree)):
        if index == mutant.index:
            for kind, new in _variants(node):
                if kind == mutant.kind:
                    tree = _Replace(node, new).visit(tree)
                    return ast.unparse(ast.fix_missing_locations(tree))
    raise LookupError(f"mutant {mutant.ident} not found; the module changed since it was listed")


# --------------------------------------------------------------------------------------------
# Running


def _copy_tree(work: pathlib.Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_build", ".ipynb_checkpoints")
    for name in COPIED:
        if (ROOT / name).exists():
            shutil.rmtree(work / name, ignore_errors=True)
            shutil.copytree(ROOT / name, work / name, ignore=ignore)
    for name in COPIED_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, work / name)


def _pytest(
    work: pathlib.Path, tests: list[str], timeout: float, cache: bool = True
) -> tuple[str, float, str]:
    """Runs the tests in ``work``; ('passed' | 'failed' | 'timeout', seconds, output tail)."""
    env = dict(os.environ)
    env.update(PYTHONPATH=str(work), PYTHONDONTWRITEBYTECODE="1", JAX_PLATFORMS="cpu")
    if cache:
        env.update(
            JAX_COMPILATION_CACHE_DIR=str(work / ".jax_cache"),
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        )
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, text=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return "timeout", time.monotonic() - start, out[-2000:]
    outcome = "passed" if proc.returncode == 0 else "failed"
    return outcome, time.monotonic() - start, out[-2000:]


def _first_failure(output: str) -> str | None:
    """The id of the first failing test in pytest's short summary (``FAILED id - …``)."""
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split()[1]
    return None


def _tests_for(config: dict, module: str) -> list[str]:
    entry = config["modules"][module]
    tests = list(entry["tests"])
    if entry.get("doctests", True) and module.startswith("entropix/"):
        tests.append(module)
    return tests


def _module_hash(module: str) -> str:
    return hashlib.sha256((ROOT / module).read_bytes()).hexdigest()[:16]


def _done(results: pathlib.Path) -> dict[tuple[str, str], dict]:
    done = {}
    if results.exists():
        for line in results.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                done[(record["id"], record["source"])] = record
    return done


def run_module(config: dict, module: str, work: pathlib.Path, results: pathlib.Path, args) -> None:
    entry = config["modules"][module]
    found = mutants(module, entry.get("functions"))
    if args.limit:
        found = found[: args.limit]
    source_hash = _module_hash(module)
    done = _done(results)
    todo = [
        m
        for m in found
        if (m.ident, source_hash) not in done
        or (args.rerun_survivors and done[(m.ident, source_hash)]["status"] == "survived")
    ]
    tests = _tests_for(config, module)
    print(f"\n== {module}: {len(found)} mutants, {len(todo)} to run; tests: {' '.join(tests)}")
    if not todo:
        return
    original = (ROOT / module).read_text()
    target = work / module
    target.write_text(original)
    cache = entry.get("compilation_cache", True)
    outcome, baseline, tail = _pytest(work, tests, args.baseline_timeout, cache)
    if outcome != "passed":
        sys.exit(f"the unmutated tests of {module} do not pass ({outcome}):\n{tail}")
    limit = max(args.min_timeout, args.timeout_factor * baseline)
    print(f"   baseline {baseline:.0f} s, limit per mutant {limit:.0f} s")
    try:
        for number, mutant in enumerate(todo, 1):
            target.write_text(mutated_source(original, mutant))
            outcome, seconds, tail = _pytest(work, tests, limit, cache)
            status = {"failed": "killed", "passed": "survived", "timeout": "timeout"}[outcome]
            record = dataclasses.asdict(mutant) | {
                "id": mutant.ident,
                "source": source_hash,
                "status": status,
                "seconds": round(seconds, 1),
                "killed_by": _first_failure(tail) if status == "killed" else None,
                "date": time.strftime("%Y-%m-%d"),
            }
            with results.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(
                f"   [{number}/{len(todo)}] {status:8s} {seconds:5.0f} s  line {mutant.line}: "
                f"{mutant.before[:50]!r} -> {mutant.after[:50]!r}",
                flush=True,
            )
    finally:
        target.write_text(original)


def report(config: dict, results: pathlib.Path, modules: list[str], markdown: bool = False) -> None:
    done = _done(results)
    if markdown:
        print("| module | killed | survived | timed out | total | score | date |")
        print("|---|---:|---:|---:|---:|---:|---|")
    else:
        print(
            f"\n{'module':44s} {'killed':>6s} {'survived':>8s} {'timeout':>7s} {'total':>6s}  score"
        )
    survivors = []
    for module in modules:
        try:
            source_hash = _module_hash(module)
            found = mutants(module, config["modules"][module].get("functions"))
        except FileNotFoundError:
            continue
        records = [done.get((m.ident, source_hash)) for m in found]
        ran = [r for r in records if r is not None]
        if not ran:
            if markdown:
                print(f"| `{module}` | – | – | – | {len(found)} | not run | |")
            else:
                print(f"{module:44s} {'not run':>6s} ({len(found)} mutants)")
            continue
        count = {s: sum(r["status"] == s for r in ran) for s in ("killed", "survived", "timeout")}
        killed = count["killed"] + count["timeout"]
        partial = "" if len(ran) == len(found) else f"  ({len(ran)} of {len(found)} run)"
        if markdown:
            score = f"{100 * killed / len(ran):.0f} %{partial}"
            dates = sorted({r["date"] for r in ran})
            print(
                f"| `{module}` | {count['killed']} | {count['survived']} | {count['timeout']} | "
                f"{len(ran)} | {score} | {dates[-1]} |"
            )
            survivors += [r for r in ran if r["status"] == "survived"]
            continue
        print(
            f"{module:44s} {count['killed']:6d} {count['survived']:8d} {count['timeout']:7d} "
            f"{len(ran):6d}  {100 * killed / len(ran):4.0f}%{partial}"
        )
        survivors += [r for r in ran if r["status"] == "survived"]
    if survivors:
        print("\nsurvivors:")
        for r in survivors:
            print(f"  {r['module']}:{r['line']} [{r['kind']}] {r['before']!r} -> {r['after']!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all configured)")
    parser.add_argument("--config", type=pathlib.Path, default=CONFIG)
    parser.add_argument("--list", action="store_true", help="print the mutants and stop")
    parser.add_argument("--report", action="store_true", help="print the table and stop")
    parser.add_argument("--markdown", action="store_true", help="the table in Markdown")
    parser.add_argument("--limit", type=int, default=0, help="at most this many per module")
    parser.add_argument(
        "--workdir", type=pathlib.Path, default=pathlib.Path("/tmp/entropix-mutation"),
        help="scratch copy of the repository (the checkout itself is never modified)",
    )  # fmt: skip
    parser.add_argument(
        "--results", type=pathlib.Path, default=None,
        help="JSON-lines results file (default: WORKDIR/results.jsonl); reruns skip done mutants",
    )  # fmt: skip
    parser.add_argument(
        "--rerun-survivors", action="store_true",
        help="run the recorded survivors again (after adding tests that should kill them)",
    )  # fmt: skip
    parser.add_argument("--timeout-factor", type=float, default=3.0)
    parser.add_argument("--min-timeout", type=float, default=60.0)
    parser.add_argument("--baseline-timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    config = tomllib.loads(args.config.read_text())
    modules = args.modules or list(config["modules"])
    unknown = [m for m in modules if m not in config["modules"]]
    if unknown:
        parser.error(f"modules {unknown} have no test selection in {args.config}; add them there")
    results = args.results or args.workdir / "results.jsonl"
    if args.list:
        for module in modules:
            for m in mutants(module, config["modules"][module].get("functions")):
                print(f"{m.module}:{m.line} [{m.kind}] {m.before!r} -> {m.after!r}")
        return
    if not args.report:
        args.workdir.mkdir(parents=True, exist_ok=True)
        _copy_tree(args.workdir)
        for module in modules:
            run_module(config, module, args.workdir, results, args)
    report(config, results, modules, markdown=args.markdown)


if __name__ == "__main__":
    main()
