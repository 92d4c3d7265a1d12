"""Sphinx configuration of the entropix documentation.

Build (from the repository root, with the ``docs`` extra installed)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Before every build this file (1) writes the API reference pages from the ``__all__`` lists
(``docs/apigen.py`` → ``docs/_api/``) and (2) copies the notebooks ``notebooks/*.ipynb`` into
``docs/_notebooks/``; both folders are generated and ignored by git. Notebooks are rendered
without executing them.
"""

from __future__ import annotations

import pathlib
import shutil
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

import apigen  # noqa: E402

import entropix  # noqa: E402

# -- generated sources ----------------------------------------------------------------------------

apigen.write_api_pages(DOCS)

NOTEBOOKS_OUT = DOCS / "_notebooks"


def _copy_notebooks() -> None:
    NOTEBOOKS_OUT.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    for stale in NOTEBOOKS_OUT.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, source in wanted.items():
        target = NOTEBOOKS_OUT / name
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)


_copy_notebooks()

# -- project --------------------------------------------------------------------------------------

project = "entropix"
author = "The entropix authors"
copyright = "2026, The entropix authors"
release = entropix.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]

# -- MyST / notebooks -----------------------------------------------------------------------------

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # notebooks are rendered as committed (outputs stripped), never run

# -- autodoc / napoleon ---------------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields, not a second description of each member

# -- HTML -----------------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"entropix {release}"
