"""The documentation covers every public name, stands alone, and its code runs as written."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PUBLIC_MODULES = (
    "entropix",
    "entropix.landscape",
    "entropix.models",
    "entropix.data",
    "entropix.toys",
    "entropix.experiments",
)


def load_apigen():
    found = importlib.util.spec_from_file_location("apigen", DOCS / "apigen.py")
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def run_page(name: str) -> dict:
    """Executes the ```python blocks of ``docs/NAME.md`` in order, in one namespace."""
    text = (DOCS / f"{name}.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, f"docs/{name}.md has no python block"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, f"docs/{name}.md", "exec"), namespace)
    return namespace


def test_api_reference_documents_every_public_name():
    apigen = load_apigen()
    assert tuple(apigen.MODULES) == PUBLIC_MODULES
    sources = apigen.api_sources()
    for module_name in PUBLIC_MODULES:
        page = sources[f"{module_name}.rst"]
        documented = set(re.findall(r"^\.\. auto(?:class|function|data):: (\S+)$", page, re.M))
        module = importlib.import_module(module_name)
        assert documented == {f"{module_name}.{name}" for name in module.__all__}, module_name


# The docstring sections of every public name, in this order (optax's, with the classes'
# Attributes first): a reader finds the arguments, then what comes back, then how to use it.
SECTION_ORDER = ("Attributes", "Args", "Returns", "Yields", "Raises", "Examples", "References")
SECTION = re.compile(rf"^({'|'.join(SECTION_ORDER)}):\s*$", re.M)


def docstring_sections(doc: str) -> list[str]:
    """The top-level Google-style section headers of a docstring, in order."""
    return SECTION.findall(inspect.cleandoc(doc))


def test_docstring_sections_come_in_one_order():
    assert docstring_sections("S.\n\n  Args:\n    a: x.\n\n  Examples:\n    >>> 1\n") == [
        "Args",
        "Examples",
    ]
    misordered = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            found = docstring_sections(getattr(module, name).__doc__ or "")
            if found != sorted(found, key=SECTION_ORDER.index) or len(set(found)) != len(found):
                misordered.append(f"{module_name}.{name}: {found}")
    assert not misordered, (
        "sections not in the order " + ", ".join(SECTION_ORDER) + ":\n" + ("\n".join(misordered))
    )


def test_shared_arguments_are_described_once_and_expanded():
    import entropix
    from entropix._src import common

    args = {}
    for name in ("local_entropy", "entropy_sgd", "entropy_adam", "hj", "parle"):
        doc = inspect.getdoc(getattr(entropix, name))
        assert "{shared" not in doc, name
        args[name] = doc[doc.index("Args:") : doc.index("Returns:")]
    described = "noise_distribution: " + common.ARGUMENT_DOCS["noise_distribution"][:60]
    for name in ("local_entropy", "entropy_sgd", "entropy_adam", "parle"):
        assert described in args[name].replace("\n    ", " "), name
    assert "accumulator_dtype: dtype of the anchor" in args["hj"]


def test_api_pages_use_the_right_directive():
    page = load_apigen().api_page("entropix")
    assert ".. autofunction:: entropix.entropy_sgd\n" in page
    assert ".. autoclass:: entropix.LocalEntropyState\n" in page  # a NamedTuple: no :members:
    assert page.index("``local_entropy``") < page.index("``replicas``")
    models = load_apigen().api_page("entropix.models")
    assert ".. autoclass:: entropix.models.MLP\n   :members:\n" in models  # not a NamedTuple
    assert ".. autodata:: entropix.models.MODEL_NAMES\n" in models


CITATIONS = [
    r"DESIGN\.md",
    r"\bspec\b",
    r"\bspecs?/",
    r"\bseeds?/",
    r"\bissue\s*#?\d+",
    r"/issues/\d+",
    r"(?<![\w&])#\d{2,}\b",
]


def doc_sources() -> list[pathlib.Path]:
    pages = sorted(DOCS.glob("*.md")) + sorted(DOCS.glob("*.py"))
    return [*pages, ROOT / "benchmarks" / "README.md"]  # included in docs/benchmarks.md


def test_docs_cite_no_internal_notes_or_issue_numbers():
    assert len(doc_sources()) > 10
    for path in doc_sources():
        text = path.read_text()
        for pattern in CITATIONS:
            match = re.search(pattern, text, re.I)
            assert match is None, f"{path.relative_to(ROOT)} cites {match.group(0)!r}"


def test_citation_patterns_catch_what_they_should():
    bad = ["see DESIGN.md", "the spec says", "spec/ch4.md", "seeds/000.txt", "issue 12", "#123"]
    for text in bad:
        assert any(re.search(p, text, re.I) for p in CITATIONS), text
    for text in ["OptimizerSpec", "spectrum", "the Issues tracker", "eq. (4.42)"]:
        assert not any(re.search(p, text, re.I) for p in CITATIONS), text


def test_getting_started_trains_and_both_forms_agree():
    ns = run_page("getting_started")
    loss, x, y = ns["loss"], ns["x"], ns["y"]
    initial = ns["model"].init(ns["jax"].random.key(1), x[:1])
    step_anchor = ns["entropix"].anchor_params(ns["state"])
    compiled_anchor = ns["entropix"].anchor_params(ns["cstate"])
    assert float(loss(step_anchor, x, y)) < 0.2 * float(loss(initial, x, y))
    for a, b in zip(
        ns["jax"].tree.leaves(step_anchor), ns["jax"].tree.leaves(compiled_anchor), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_flax_recipes_train_and_evaluate_the_anchor():
    ns = run_page("flax")
    entropix, jax, x, y = ns["entropix"], ns["jax"], ns["x"], ns["y"]
    assert int(ns["state"].step) == 10 * len(ns["batches"])  # counts inner steps
    anchor = entropix.anchor_params(ns["state"].opt_state)
    initial = ns["net"].init(jax.random.key(1), x[:1])
    assert float(ns["loss_fn"](anchor, x, y)) < 0.2 * float(ns["loss_fn"](initial, x, y))
    nnx = ns["nnx"]
    evaluated = nnx.to_pure_dict(nnx.state(ns["eval_model"], nnx.Param))
    expected = nnx.to_pure_dict(entropix.anchor_params(ns["optimizer"].opt_state))
    for a, b in zip(jax.tree.leaves(evaluated), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(a, b)
    assert float(ns["nnx_loss"](ns["eval_model"], x, y)) < 0.1
    # Compiled form through entropix.models.apply_gradients and nnx.Optimizer: the same
    # minibatches and noise as the step form, so the same anchor.
    assert int(ns["cstate"].step) == 20 == int(entropix.outer_step_count(ns["cstate"].opt_state))
    for a, b in zip(jax.tree.leaves(ns["cstate"].params), jax.tree.leaves(anchor), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    compiled_nnx = nnx.to_pure_dict(nnx.state(ns["cmodel"], nnx.Param))
    for a, b in zip(jax.tree.leaves(compiled_nnx), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_replica_guide_recovers_the_weights():
    ns = run_page("replicas")
    np.testing.assert_allclose(ns["master"], np.arange(5.0), atol=0.05)
    assert ns["mparams"].shape == (ns["devices"], 5)


def test_landscape_guide_numbers_agree():
    ns = run_page("landscape")
    eigs, trace, top = ns["eigs"], ns["trace"], ns["top"]
    np.testing.assert_allclose(float(top.largest[0]), float(eigs.max()), rtol=1e-4)
    assert abs(float(eigs.sum()) - float(trace.trace)) < 5 * float(trace.stderr)


@pytest.mark.parametrize("page", ["index", "conventions", "papers"])
def test_pages_link_the_papers_by_arxiv_number(page):
    text = (DOCS / f"{page}.md").read_text()
    for number in ("1611.01838", "1704.04932", "1707.00424", "2006.07897"):
        assert f"https://arxiv.org/abs/{number}" in text, (page, number)
