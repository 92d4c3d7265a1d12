"""Writes each ``notebooks/<name>.ipynb`` from its jupytext source ``notebooks/<name>.py``.

The ``.py`` files (jupytext percent format: ``# %%`` code cells, ``# %% [markdown]`` cells) are
the sources; the ``.ipynb`` files are what Colab opens. From the repository root,

    python notebooks/sync.py          # rewrite every .ipynb from its .py
    python notebooks/sync.py --check  # only report the notebooks that are out of date

The written notebooks carry no outputs, no execution counts and no cell metadata, and their
cell ids are ``<name>-<index>``, so regenerating an unchanged source changes no byte. Every
notebook has the same install cell, :data:`INSTALL_CELL`; a source whose install cell (the code
cell that assigns ``ENTROPIX_SOURCE``) differs from it gets it rewritten, so editing
:data:`INSTALL_CELL` and running this script updates all notebooks. Needs ``jupytext`` (the
``notebooks`` extra).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import nbformat

try:
    import jupytext
except ImportError as err:  # pragma: no cover - depends on the environment
    raise SystemExit(
        "notebooks/sync.py needs jupytext: pip install -e '.[notebooks]' (or pip install jupytext)"
    ) from err

HERE = pathlib.Path(__file__).resolve().parent
SOURCE_MARKER = "# jupyter:\n#   jupytext:\n"  # in the YAML header of every notebook source

INSTALL_CELL = """\
# Install entropix (the `entropix-jax` distribution with its examples extra: Flax, matplotlib,
# mnist1d, ...) unless it is importable already. ENTROPIX_SOURCE is where pip gets it: a Git
# URL (append @<branch or tag> to pin a version) or the path of a local or uploaded checkout.
# (The unrelated `entropix` package on PyPI is not this library.)
ENTROPIX_SOURCE = "git+https://github.com/entropix-jax/entropix"

import importlib.util
import pathlib
import subprocess
import sys

if importlib.util.find_spec("entropix") is None:
    source = ENTROPIX_SOURCE
    if pathlib.Path(source).exists():  # a checkout on this machine: pip wants a file:// URL
        source = pathlib.Path(source).resolve().as_uri()
    requirement = f"entropix-jax[examples] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", requirement], check=True)
    importlib.invalidate_caches()"""

METADATA = {
    "colab": {"provenance": []},
    "jupytext": {"formats": "ipynb,py:percent"},
    "language_info": {"name": "python"},
}


def names() -> list[str]:
    """The notebooks: every ``notebooks/*.py`` with a jupytext header, sorted."""
    return sorted(p.stem for p in HERE.glob("*.py") if SOURCE_MARKER in p.read_text()[:500])


def install_cell_index(nb: nbformat.NotebookNode, name: str) -> int:
    """Index of the install cell: the one code cell among the first three assigning the source."""
    found = [
        i
        for i, cell in enumerate(nb.cells[:3])
        if cell.cell_type == "code" and "\nENTROPIX_SOURCE = " in f"\n{cell.source}"
    ]
    if len(found) != 1:
        raise ValueError(
            f"notebooks/{name}.py has {len(found)} install cells among its first three cells; "
            "it needs exactly one: copy INSTALL_CELL from notebooks/sync.py into a `# %%` cell "
            "right after the title cell."
        )
    return found[0]


def read_source(name: str) -> nbformat.NotebookNode:
    return jupytext.read(HERE / f"{name}.py", fmt="py:percent")


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` as committed: source cells, no outputs, deterministic ids."""
    nb = read_source(name)
    if "kernelspec" not in nb.metadata:
        raise ValueError(f"notebooks/{name}.py: its jupytext header has no kernelspec.")
    install_cell_index(nb, name)
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": nb.metadata["kernelspec"]})
    notebook.metadata.update(METADATA)
    new_cell = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type not in new_cell:
            raise ValueError(f"notebooks/{name}.py: cell {index} is a {cell.cell_type} cell.")
        cell_id = f"{name.replace('_', '-')}-{index:02d}"
        notebook.cells.append(new_cell[cell.cell_type](cell.source, id=cell_id))
    nbformat.validate(notebook)
    return notebook


def render(name: str) -> str:
    """The exact text of ``notebooks/<name>.ipynb``."""
    return nbformat.writes(build(name)) + "\n"


def refresh_install_cell(name: str) -> bool:
    """Replaces a stale install cell in ``notebooks/<name>.py``; returns whether it did."""
    nb = read_source(name)
    cell = nb.cells[install_cell_index(nb, name)]
    if cell.source == INSTALL_CELL:
        return False
    path = HERE / f"{name}.py"
    text = path.read_text()
    if text.count(cell.source) != 1:
        raise ValueError(f"notebooks/{name}.py: cannot locate its install cell; fix it by hand.")
    path.write_text(text.replace(cell.source, INSTALL_CELL))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, do not write")
    args = parser.parse_args(argv)
    stale = []
    for name in names():
        source = HERE / f"{name}.py"
        if args.check:
            nb = read_source(name)
            if nb.cells[install_cell_index(nb, name)].source != INSTALL_CELL:
                stale.append(f"{source.relative_to(HERE.parent)} (install cell)")
        elif refresh_install_cell(name):
            print("refreshed the install cell of", source.relative_to(HERE.parent))
        path = HERE / f"{name}.ipynb"
        text = render(name)
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(str(path.relative_to(HERE.parent)))
        else:
            path.write_text(text)
            print("wrote", path.relative_to(HERE.parent))
    orphans = sorted(set(p.stem for p in HERE.glob("*.ipynb")) - set(names()))
    stale += [f"notebooks/{name}.ipynb (no notebooks/{name}.py source)" for name in orphans]
    if stale:
        print("out of date:", *stale, sep="\n  ", file=sys.stderr)
        if args.check:
            print("run: python notebooks/sync.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
