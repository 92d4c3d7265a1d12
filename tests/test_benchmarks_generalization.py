"""benchmarks/generalization.py on a tiny budget: tables, findings and the README section."""

import copy
import dataclasses
import importlib.util
import pathlib
import re
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "generalization.py"


@pytest.fixture(scope="module")
def gen():
    found = importlib.util.spec_from_file_location("benchmarks_generalization", SCRIPT)
    module = importlib.util.module_from_spec(found)
    sys.modules[found.name] = module  # dataclasses look the module up
    found.loader.exec_module(module)
    yield module
    sys.modules.pop(found.name, None)


def tiny(study):
    keep = ("SGD (Nesterov)", "rSGD (n=3)")
    return dataclasses.replace(
        study,
        optimizers=tuple(o for o in study.optimizers if o["label"] in keep),
        seeds=(0,),
        budget_epochs=0.25,
        eval_every_epochs=0.25,
        diagnostics_examples=32,
        spectrum_examples=32,
        spectrum_order=3,
        spectrum_probes=1,
    )


@pytest.fixture(scope="module")
def result(gen, tmp_path_factory):
    study = tiny(gen.studies(quick=True)[0])
    return gen.run_study(study, tmp_path_factory.mktemp("gen"), {}, quiet=True)


def test_modes_cover_the_studies_and_core_optimizers(gen):
    quick, default = gen.studies(quick=True), gen.studies(quick=False)
    assert [s.dataset for s in quick] == ["mnist1d"]
    assert {(s.dataset, s.model) for s in default} == {
        ("mnist1d", "mlp"),
        ("mnist1d", "mnist1d-cnn"),
        ("fashion_mnist", "mlp"),
        ("fashion_mnist", "small-lenet"),
    }
    for study in default:
        assert len(study.seeds) >= 3
        labels = {o["label"] for o in study.optimizers}
        assert set(gen.CORE) <= labels
        parle_split = next(o for o in study.optimizers if o.get("split_data"))
        assert parle_split["num_replicas"] == 3 and parle_split["split_data"] == 0.5


def two_seeds(result):
    """The one-seed result with a second, shifted seed (the ± formatting needs two)."""
    result = copy.deepcopy(result)
    result["study"]["seeds"] = [0, 1]
    for label, runs in result["runs"].items():
        runs.append({**runs[0], "seed": 1, "test_error": runs[0]["test_error"] + 0.01})
        result["histories"][label].append(result["histories"][label][0])
    return result


def test_table_and_findings(gen, result):
    for runs in result["runs"].values():
        for run in runs:
            assert 0.0 <= run["near_zero_fraction"] <= 1.0
            assert len(run["local_energy_curve"]) == len(gen.SIGMAS)
            assert run["effective_epochs"] == 0.25  # the same budget per replica
    text = gen.render(
        [result, two_seeds(result)],
        command="python benchmarks/generalization.py --quick",
        elapsed=1.0,
        date="2000-01-01",
        figure_dir=None,
    )
    assert "`python benchmarks/generalization.py --quick`" in text and "2000-01-01" in text
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| SGD (Nesterov) |")
    ]
    one, two = (cells for cells in rows if len(cells) == 11)  # the main table of each study
    assert len(rows) == 4  # and the local-energy table of each study
    assert re.fullmatch(r"\d+(\.\d+)?", one[1])  # one seed: test error without ±
    assert re.fullmatch(r"\d+(\.\d+)? ± \d+(\.\d+)?", two[1])  # mean ± std over seeds
    assert one[-1] == two[-1] == "0.25"  # effective epochs
    assert any(line.startswith("| rSGD (n=3) |") for line in text.splitlines())
    assert "### Findings" in text and "*Flatter minima*" in text


def test_readme_section_is_replaced_and_others_kept(gen, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n<!-- speed:start -->\nspeed table\n<!-- speed:end -->\n")
    gen.write_readme("first", readme)
    gen.write_readme("second", readme)
    content = readme.read_text()
    assert "speed table" in content and "<!-- speed:end -->" in content
    assert "second" in content and "first" not in content
    assert content.count("<!-- generalization:start -->") == 1
