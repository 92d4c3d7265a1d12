"""The Colab notebooks: stripped in the repository, in sync with their jupytext sources
``notebooks/<name>.py``, and executed top to bottom in fast mode (``ENTROPIX_FAST=1``) by a
fresh ``python3`` kernel.

Each notebook ends with a cell that asserts its claims (e.g. step form ≡ compiled form, fewer
local minima under more smoothing, vmap ≡ shard_map, Lanczos ≡ exact spectrum, fewer spin-glass
minima under a stronger field); the execution tests below also read the numbers the notebooks
print and check them here. The notebooks are discovered from their sources: a new
``notebooks/<name>.py`` is checked and executed without touching this file, and a function
``test_<name>`` below replaces its plain execution test with one that also reads its numbers.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
SOURCE_MARKER = "# jupyter:\n#   jupytext:\n"  # the jupytext header of a notebook source
NAMES = tuple(
    sorted(p.stem for p in NOTEBOOK_DIR.glob("*.py") if SOURCE_MARKER in p.read_text()[:500])
)
CELL_TIMEOUT_S = 300


def read(name: str):
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def load_sync():
    """``notebooks/sync.py`` (it needs jupytext: skips the test where it is not installed)."""
    pytest.importorskip("jupytext")
    found = importlib.util.spec_from_file_location("notebooks_sync", NOTEBOOK_DIR / "sync.py")
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def test_every_notebook_is_there():
    assert {"quickstart", "local_entropy_landscapes", "parle_replicas"} <= set(NAMES)
    assert {"landscape_diagnostics", "trivialized_sgd_spin_glass"} <= set(NAMES)
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NAMES), (
        "every notebooks/<name>.ipynb needs its source notebooks/<name>.py and vice versa: "
        "run python notebooks/sync.py"
    )


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stripped_and_opens_with_purpose_and_install(name):
    nb = read(name)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: committed outputs in cell {cell.id}"
            assert cell.execution_count is None, f"{name}: execution count in cell {cell.id}"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), name
    assert len(first.source.split("\n\n")[1]) > 200, f"{name}: no purpose paragraph"
    install = [c for c in nb.cells[:3] if c.cell_type == "code" and "ENTROPIX_SOURCE" in c.source]
    assert len(install) == 1 and "entropix-jax[examples] @ {source}" in install[0].source, name
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_matches_its_source(name):
    sync = load_sync()
    assert (NOTEBOOK_DIR / f"{name}.ipynb").read_text() == sync.render(name), (
        f"notebooks/{name}.ipynb differs from notebooks/{name}.py: run python notebooks/sync.py"
    )
    nb = read(name)
    assert [c.id for c in nb.cells] == [
        f"{name.replace('_', '-')}-{i:02d}" for i in range(len(nb.cells))
    ]
    (install,) = [c for c in nb.cells[:3] if "ENTROPIX_SOURCE" in c.source]
    assert install.source == sync.INSTALL_CELL, f"{name}: run python notebooks/sync.py"


def run_install_cell(monkeypatch, cell: str, *, importable: bool, source=None) -> list:
    """Executes the install cell with pip stubbed out; returns the pip commands it ran."""
    if source is not None:
        default = re.search(r'^ENTROPIX_SOURCE = "(.*)"$', cell, re.M).group(1)
        cell = cell.replace(f'"{default}"', repr(source))
    commands = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: commands.append((cmd, check)))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if importable else None)
    exec(compile(cell, "install cell", "exec"), {})
    return commands


def test_install_cell_installs_entropix_jax_from_the_chosen_source(monkeypatch, tmp_path):
    cell = load_sync().INSTALL_CELL
    assert run_install_cell(monkeypatch, cell, importable=True) == []  # importable: no pip
    [(command, check)] = run_install_cell(monkeypatch, cell, importable=False)
    assert command == [
        sys.executable,
        *("-m", "pip", "install", "-q"),
        "entropix-jax[examples] @ git+https://github.com/entropix-jax/entropix",
    ]
    assert check is True
    [(command, _)] = run_install_cell(monkeypatch, cell, importable=False, source=str(tmp_path))
    assert command[-1] == f"entropix-jax[examples] @ {tmp_path.resolve().as_uri()}"
    url = "git+https://github.com/entropix-jax/entropix@v0.1.0"
    [(command, _)] = run_install_cell(monkeypatch, cell, importable=False, source=url)
    assert command[-1] == f"entropix-jax[examples] @ {url}"
    assert not any(arg == "entropix" or arg.startswith("entropix[") for arg in command)


def test_sync_reports_and_rewrites_a_stale_notebook(tmp_path, monkeypatch, capsys):
    # A copy of the directory with one edited source: --check reports it, a run rewrites it.
    sync = load_sync()
    for path in NOTEBOOK_DIR.glob("quickstart.*"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "quickstart.py").write_text(
        (NOTEBOOK_DIR / "quickstart.py")
        .read_text()
        .replace("BATCH, L = 100, 5", "BATCH, L = 50, 5")
    )
    monkeypatch.setattr(sync, "HERE", tmp_path)
    assert sync.names() == ["quickstart"]
    assert sync.main(["--check"]) == 1
    assert "quickstart.ipynb" in capsys.readouterr().err
    assert sync.main([]) == 0 and sync.main(["--check"]) == 0
    assert "BATCH, L = 50, 5" in nbformat.read(tmp_path / "quickstart.ipynb", 4).cells[4].source
    # A stale install cell (the cell assigning ENTROPIX_SOURCE) is replaced by the shared one.
    source = (tmp_path / "quickstart.py").read_text()
    (tmp_path / "quickstart.py").write_text(
        source.replace(sync.INSTALL_CELL, 'ENTROPIX_SOURCE = "."')
    )
    assert sync.main(["--check"]) == 1
    assert "quickstart.py (install cell)" in capsys.readouterr().err
    assert sync.main([]) == 0 and (tmp_path / "quickstart.py").read_text() == source


def execute(name: str, monkeypatch) -> str:
    """Runs the notebook in a fresh kernel with ENTROPIX_FAST=1; returns its printed text."""
    monkeypatch.setenv("ENTROPIX_FAST", "1")
    nb = read(name)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        shutdown_kernel="immediate",  # the kernel is discarded: a graceful shutdown costs ~1.5 s
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{name}.ipynb failed:\n{str(err)[-4000:]}")
    text = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{name}: {output}"
            if output.output_type == "stream":
                text.append(output.text)
    return "".join(text)


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the notebook output:\n{text[-3000:]}"
    return float(match.group(1))


def test_quickstart(monkeypatch):
    text = execute("quickstart", monkeypatch)
    assert "fast mode: True" in text
    assert number(r"max \|step-form anchor − compiled-form anchor\| = (\S+)", text) < 1e-5
    assert number(r"max \|TrainState anchor − compiled-form anchor\| = (\S+)", text) < 1e-5
    esgd = number(r"Entropy-SGD, step form \(anchor\)\s+([\d.]+)", text)
    sgd = number(r"SGD \(Nesterov\)\s+([\d.]+)", text)
    assert esgd > 0.25 and sgd > 0.25  # chance is 0.1


def test_local_entropy_landscapes(monkeypatch):
    text = execute("local_entropy_landscapes", monkeypatch)
    rows = re.findall(r"^\s+([\d.]+)\s+(\d+)\s+(\d+)$", text, flags=re.MULTILINE)
    viscous = [int(v) for _, v, _ in rows]
    moreau = [int(u) for _, _, u in rows]
    assert len(rows) == 5 and number(r"∞ \(f\)\s+(\d+)", text) == 10
    assert viscous == sorted(viscous, reverse=True) and viscous[-1] == 1 < 10
    assert moreau == sorted(moreau, reverse=True) and moreau[-1] < 10
    assert "argmin f_γ = -2.00" in text and "argmin u = -2.00" not in text


def test_parle_replicas(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # the notebook sets it before importing JAX
    text = execute("parle_replicas", monkeypatch)
    assert "8 devices" in text
    assert number(r"max \|shard_map − vmap\| = (\S+)", text) < 1e-5
    assert number(r"Parle, split data\s+([\d.]+)", text) > 0.25


def test_landscape_diagnostics(monkeypatch):
    text = execute("landscape_diagnostics", monkeypatch)
    for method in ("SGD", "Entropy-SGD"):
        exact = number(rf"{method}\s+d = \d+, .*λ_max ([\d.]+) \(Lanczos", text)
        lanczos = number(rf"{method}\s+d = \d+, .*\(Lanczos ([\d.]+)\)", text)
        assert abs(exact - lanczos) < 1e-2 * exact
        rank = number(rf"{method}\s+rank (\d+) of d", text)
        assert 1 <= rank < 64


def test_trivialized_sgd_spin_glass(monkeypatch):
    text = execute("trivialized_sgd_spin_glass", monkeypatch)
    distinct = [int(n) for n in re.findall(r"^\s*[\d.]+\s+-?[\d.]+\s+(\d+)\s", text, re.M)]
    assert len(distinct) == 6 and distinct[0] > 1 and distinct[-1] == 1
    assert number(r"Trivialized-SGD\s+(\d+) distinct minima", text) < number(
        r"gradient descent\s+(\d+) distinct minima", text
    )


def test_fast_mode_is_read_from_the_environment():
    # Every notebook must shrink itself when the test suite sets ENTROPIX_FAST=1.
    for name in NAMES:
        sources = "\n".join(c.source for c in read(name).cells if c.cell_type == "code")
        assert 'os.environ.get("ENTROPIX_FAST") == "1"' in sources, name


# Keep this last: every notebook without a `test_<name>` above is executed here (its own final
# cell asserts its claims).
WITHOUT_OWN_TEST = tuple(name for name in NAMES if f"test_{name}" not in globals())

if WITHOUT_OWN_TEST:

    @pytest.mark.parametrize("name", WITHOUT_OWN_TEST)
    def test_notebook_executes(name, monkeypatch):
        assert execute(name, monkeypatch)
