"""Writes the API reference pages from the ``__all__`` lists of the public modules.

``conf.py`` calls :func:`write_api_pages` before every build, so a name added to an
``__all__`` list appears in the reference without editing the docs. One page per module; on it,
one section per defining submodule, one autodoc directive per public name.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib

#: The documented modules, in the order of the reference, with a one-line caption each.
MODULES: dict[str, str] = {
    "entropix": "Optimizers, schedules, replica helpers and metrics",
    "entropix.landscape": "Landscape diagnostics",
    "entropix.models": "Flax models, losses and metrics",
    "entropix.data": "Datasets and on-device batching",
    "entropix.toys": "Toy landscapes with exact answers",
    "entropix.experiments": "Experiment runner",
}

#: Order of the sections of the core page (private modules); other sections follow by name.
CORE_SECTIONS = ("local_entropy", "heat", "loop", "replicas", "schedules", "trivialize", "metrics")

#: Folder (inside ``docs/``) that receives the generated pages; ignored by git.
OUTPUT_DIR = "_api"


def _directive(module_name: str, name: str, obj: object) -> str:
    target = f"{module_name}.{name}"
    if inspect.isclass(obj):
        if issubclass(obj, tuple) and hasattr(obj, "_fields"):
            # NamedTuple: the fields are documented by the docstring's ``Attributes:`` section
            # and the signature; ``:members:`` would add "Alias for field number N" entries.
            return f".. autoclass:: {target}\n"
        return f".. autoclass:: {target}\n   :members:\n"
    if callable(obj):
        return f".. autofunction:: {target}\n"
    return f".. autodata:: {target}\n   :no-value:\n"


def _section_title(module_name: str, defining: str) -> str:
    """``entropix._src.local_entropy`` → ``local_entropy``; keeps public submodule paths."""
    parts = [p for p in defining.split(".") if p != "_src"]
    if defining.startswith(module_name + ".") and "._src." not in defining:
        return defining
    return parts[-1] if len(parts) > 1 else defining


def api_page(module_name: str) -> str:
    """The reStructuredText page of one module: its docstring, then every name of ``__all__``."""
    module = importlib.import_module(module_name)
    caption = MODULES.get(module_name, "")
    title = f"``{module_name}`` — {caption}" if caption else f"``{module_name}``"
    lines = [title, "=" * len(title), "", f".. automodule:: {module_name}", ""]
    sections: dict[str, list[str]] = {}
    for name in module.__all__:
        obj = getattr(module, name)
        defining = getattr(obj, "__module__", None) or module_name
        if not isinstance(defining, str) or not defining.startswith("entropix"):
            defining = module_name
        sections.setdefault(_section_title(module_name, defining), []).append(
            _directive(module_name, name, obj)
        )

    def order(section: str) -> tuple[int, str]:
        known = section in CORE_SECTIONS
        return (CORE_SECTIONS.index(section) if known else len(CORE_SECTIONS), section)

    for section in sorted(sections, key=order):
        directives = sections[section]
        heading = f"``{section}``"
        lines += [heading, "-" * len(heading), ""]
        for directive in directives:
            lines += [directive]
    return "\n".join(lines)


def api_sources() -> dict[str, str]:
    """``{file name: page text}`` of every generated page (``docs/api.md`` lists them)."""
    return {f"{name}.rst": api_page(name) for name in MODULES}


def write_api_pages(docs_dir: pathlib.Path) -> pathlib.Path:
    """Writes the pages under ``docs_dir/_api`` (only files whose text changed)."""
    out = docs_dir / OUTPUT_DIR
    out.mkdir(exist_ok=True)
    sources = api_sources()
    for stale in out.glob("*.rst"):
        if stale.name not in sources:
            stale.unlink()
    for file_name, text in sources.items():
        path = out / file_name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return out
