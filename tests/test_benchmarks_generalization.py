"""benchmarks/generalization.py on a tiny budget: the study configs, tables and README section."""

import copy
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
    sys.modules[found.name] = module
    found.loader.exec_module(module)
    yield module
    sys.modules.pop(found.name, None)


def tiny(config):
    keep = ("SGD (Nesterov)", "rSGD (n=3)")
    config.optimizers = [o for o in config.optimizers if o["label"] in keep]
    config.seeds = (0,)
    config.budget_epochs = 0.25
    config.eval_every_epochs = 0.25
    config.diagnostics_examples = 32
    config.study.update(spectrum_examples=32, spectrum_order=3, spectrum_probes=1)
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("gen")


@pytest.fixture(scope="module")
def result(gen, workdir):
    config = tiny(gen.load_configs().get_config("quick"))
    return gen.run_study(config, workdir, quiet=True)


def test_the_studies_cover_the_datasets_models_and_core_optimizers(gen):
    configs = gen.load_configs()
    quick = configs.get_config(gen.QUICK[0])
    assert (quick.dataset, quick.model) == ("mnist1d", "mlp")
    full = [configs.get_config(row) for row in gen.FULL]
    assert {(c.dataset, c.model) for c in full} == {
        ("mnist1d", "mlp"),
        ("mnist1d", "mnist1d-cnn"),
        ("fashion_mnist", "mlp"),
        ("fashion_mnist", "small-lenet"),
    }
    core = {"SGD (Nesterov)", "Adam", "SAM", "Entropy-SGD", "Entropy-Adam", "Parle (n=3)"}
    for config in full:
        assert len(config.seeds) >= 3
        labels = {o["label"] for o in config.optimizers}
        assert core | {"Parle (n=3, split 50%)", "rSGD (n=3)"} <= labels
        split = next(o for o in config.optimizers if o.get("split_data"))
        assert split["num_replicas"] == 3 and split["split_data"] == 0.5
        # the same budget and the same learning-rate drop for every optimizer
        drops = {tuple(o["lr_drops"]) for o in config.optimizers}
        assert drops == {(0.75 * config.budget_epochs,)}
    lenet = configs.get_config("fashion_lenet")
    assert lenet.dataset_kwargs.max_train_examples == 12_000


def two_seeds(result):
    """The one-seed result with a second, shifted seed (the ± formatting needs two)."""
    result = copy.deepcopy(result)
    result["config"]["seeds"] = [0, 1]
    for label, runs in result["runs"].items():
        runs.append({**runs[0], "seed": 1, "test_error": runs[0]["test_error"] + 0.01})
        result["histories"][label].append(result["histories"][label][0])
    return result


def test_runs_carry_the_landscape_and_the_tables_render(gen, result):
    for runs in result["runs"].values():
        for run in runs:
            assert 0.0 <= run["near_zero_fraction"] <= 1.0
            assert len(run["local_energy_curve"]) == len(result["sigmas"])
            assert run["effective_epochs"] == 0.25  # the same budget per replica
            assert run["llc"] == run["llc"] and run["llc_stderr"] >= 0  # finite λ̂
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
    one, two = (cells for cells in rows if len(cells) == 12)  # the main table of each study
    assert re.fullmatch(r"\d+(\.\d+)?", one[1])  # one seed: test error without ±
    assert re.fullmatch(r"\d+(\.\d+)? ± \d+(\.\d+)?", two[1])  # mean ± std over seeds
    assert one[-1] == two[-1] == "0.25"  # effective epochs
    assert "### Against SGD" in text and "wins/ties/losses" in text
    assert "lower local learning coefficient λ̂" in text


def test_render_only_reads_the_saved_study(gen, result, workdir, capsys):
    assert gen.main(["--render-only", "--quick", "--workdir", str(workdir)]) == 0
    text = (workdir / "generalization.md").read_text()
    assert "`python benchmarks/generalization.py --quick`" in text
    assert text.count("| rSGD (n=3) |") == 3  # main, local-energy and against-SGD tables
    assert text in capsys.readouterr().out + "\n"
    with pytest.raises(SystemExit):
        gen.main(["--render-only", "--studies", "mnist1d_cnn", "--workdir", str(workdir)])


def row(label, error, std=0.0, **values):
    """A summarized row with the given seed-mean test error and other means."""
    base = dict(
        top_eigenvalue=1.0,
        local_energy=0.1,
        near_zero_fraction=0.5,
        llc=10.0,
        train_eval_loss=0.2,
    )
    base.update(values)
    out = {key: (value, 0.0) for key, value in base.items()}
    out.update(optimizer=label, test_error=(error, std), epochs_to_baseline=None)
    return out


def test_verdicts_and_claims_are_counted_from_the_numbers(gen):
    sgd = row("SGD (Nesterov)", 0.30, 0.01)
    assert gen.verdict(row("A", 0.25), sgd) == "wins"
    assert gen.verdict(row("A", 0.295), sgd) == "ties"  # within SGD's std
    assert gen.verdict(row("A", 0.35), sgd) == "loses"
    assert gen.verdict(row("A", 0.297), row("B", 0.30)) == "ties"  # the 0.3-point floor
    studies = [
        [
            sgd,
            row("Entropy-SGD", 0.25, llc=5.0, top_eigenvalue=0.5),
            row("Parle (n=3)", 0.40, llc=20.0),
            row("Adam", 0.20),  # not a local-entropy or replica method: not counted
        ],
        [sgd, row("rSGD (n=3)", 0.30, llc=1.0)],
    ]
    results = [{"config": {"study": {"title": t}}} for t in ("one", "two")]
    verdicts = gen.verdict_table(results, studies)
    assert "| Entropy-SGD | 25.0 (wins) | — | 1/0/0 |" in verdicts
    assert "| Parle (n=3) | 40.0 (loses) | — | 0/0/1 |" in verdicts
    assert "| SGD (Nesterov) | 30.0 | 30.0 | — |" in verdicts
    claims = gen.claims_table(results, studies)
    assert "| lower local learning coefficient λ̂ | 1/2 | 1/1 | 2/3 |" in claims
    assert "| smaller top Hessian eigenvalue λ_max | 1/2 | 0/1 | 1/3 |" in claims


def test_automatic_coupling_rows_are_compared_with_their_hand_set_rows(gen):
    assert gen.hand_set_label("Parle (n=3, auto γ)") == "Parle (n=3)"
    assert gen.hand_set_label("Entropy-SGD (auto γ)") == "Entropy-SGD"
    assert gen.hand_set_label("Parle (n=3)") is None
    studies = [
        [row("Entropy-SGD", 0.30, 0.01), row("Entropy-SGD (auto γ)", 0.305)],
        [row("Entropy-SGD", 0.30), row("Entropy-SGD (auto γ)", 0.35)],
    ]
    results = [{"config": {"study": {"title": t}}} for t in ("one", "two")]
    table = gen.auto_coupling_table(results, studies)
    assert "| Entropy-SGD (auto γ) | 30.5 vs 30.0 (matches) | 35.0 vs 30.0 (worse) | 1/2 |" in table
    assert gen.auto_coupling_table(results, [[row("SGD (Nesterov)", 0.3)]] * 2) is None


def test_readme_section_is_replaced_and_others_kept(gen, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n<!-- speed:start -->\nspeed table\n<!-- speed:end -->\n")
    gen.write_readme("first", readme)
    gen.write_readme("second", readme)
    content = readme.read_text()
    assert "speed table" in content and "<!-- speed:end -->" in content
    assert "second" in content and "first" not in content
    assert content.count("<!-- generalization:start -->") == 1
