"""The runner never loses, mixes or misreports a run: identity, resume checks, verified
checkpoints, atomic metrics, validation, signals and one-line errors."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from run_helpers import CONFIG as BASE_CONFIG
from run_helpers import DATA, ESGD

from entropix.data import write_idx
from entropix.data.dataset import check_dataset
from entropix.experiments import (
    MetricsLog,
    NonFiniteError,
    checkpoints,
    cli,
    landscape_report,
    read_metrics,
    train,
    trainer,
)
from entropix.experiments.config_base import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[2]


CONFIG = dict(BASE_CONFIG, name="blobs", checkpoint_every_rounds=1)
ROUNDS = 12  # 4 epochs of 12 minibatches, 4 updates per round

# A tiny CLI config: MNIST-1D (400 train / 100 test examples), an MLP of 16 units, SGD.
TINY = """
from entropix.experiments.config_base import experiment


def get_config():
    return experiment(
        "tiny",
        dataset="mnist1d",
        dataset_kwargs={"num_samples": 500},
        model="mlp",
        model_kwargs={"features": (16,)},
        batch_size=20,
        budget_epochs=2,
        eval_every_epochs=1.0,
        min_round_length=5,
        checkpoint_every_rounds=1,
        train_eval_examples=100,
        optimizers=[dict(name="sgd", learning_rate=0.05, momentum=0.9)],
    )
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.py"
    path.write_text(TINY)
    return path


ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}


def run_cli(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "entropix", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
        **kwargs,
    )


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def leaves(params):
    import jax

    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(params)])


# 1. Run identity --------------------------------------------------------------------------


def test_fresh_run_into_a_used_workdir_is_refused_and_overwrite_starts_clean(tmp_path):
    train(CONFIG, ESGD, workdir=tmp_path, quiet=True, dataset=DATA, stop_after_rounds=6)
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError, match=r"already holds a run .*--resume.*--overwrite"):
        train(CONFIG, dict(ESGD, learning_rate=0.3), workdir=tmp_path, quiet=True, dataset=DATA)
    assert (tmp_path / "metrics.jsonl").read_text() == before  # nothing touched
    sgd = dict(name="sgd", learning_rate=0.1)
    result = train(CONFIG, sgd, workdir=tmp_path, overwrite=True, quiet=True, dataset=DATA)
    records = read_metrics(tmp_path)
    assert {r["optimizer"] for r in records} == {"sgd"}
    assert [r["round"] for r in records] == [3, 6, 9, 12]
    assert json.loads((tmp_path / "config.json").read_text())["optimizer"]["name"] == "sgd"
    # The newest checkpoint holds the new run's final weights.
    _, _, weights, _ = landscape_report.load_run(tmp_path, DATA)
    np.testing.assert_array_equal(leaves(weights), leaves(result.params))


@pytest.fixture(scope="module")
def partial_run(tmp_path_factory):
    """A run stopped after 2 of 12 rounds (as if killed); the tests below only read it."""
    workdir = tmp_path_factory.mktemp("partial")
    train(CONFIG, ESGD, workdir=workdir, quiet=True, dataset=DATA, stop_after_rounds=2)
    return workdir


def test_config_json_is_written_when_the_run_starts(partial_run):
    meta = json.loads((partial_run / "config.json").read_text())
    assert meta["status"] == "running" and meta["resumes"] == []
    assert meta["optimizer"]["name"] == "entropy_sgd" and meta["config"]["batch_size"] == 20


# 2. Resume checks the config ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "listed"),
    [
        (dict(batch_size=10), "batch_size: 20 -> 10"),
        (dict(model_kwargs={"features": (32,)}), "model_kwargs.features: [16] -> [32]"),
        (dict(seed=1), "seed: 0 -> 1"),
        (dict(optimizer=dict(ESGD, num_inner_steps=2)), "optimizer.num_inner_steps: 4 -> 2"),
        (dict(optimizer=dict(ESGD, name="entropy_adam")), "optimizer.name"),
    ],
    ids=["batch_size", "width", "seed", "num_inner_steps", "family"],
)
def test_resume_refuses_a_config_that_changes_the_saved_state(partial_run, change, listed):
    before = {p: p.read_bytes() for p in partial_run.rglob("*") if p.is_file()}
    change = dict(change)
    optimizer = change.pop("optimizer", ESGD)
    with pytest.raises(ConfigError, match="changes the meaning of the saved run") as info:
        train(
            {**CONFIG, **change},
            optimizer,
            workdir=partial_run,
            resume=True,
            quiet=True,
            dataset=DATA,
        )
    assert listed in str(info.value) and "\n" not in str(info.value)
    assert {p: p.read_bytes() for p in partial_run.rglob("*") if p.is_file()} == before


def test_resume_records_harmless_changes_and_continues(tmp_path, partial_run):
    shutil.copytree(partial_run, tmp_path, dirs_exist_ok=True)
    longer = {**CONFIG, "budget_epochs": 5.0, "eval_every_epochs": 0.5}
    faster = dict(ESGD, learning_rate=0.25)
    result = train(longer, faster, workdir=tmp_path, resume=True, quiet=True, dataset=DATA)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["status"] == "finished"
    (resume,) = meta["resumes"]
    assert resume["from_round"] == 2
    assert resume["changes"]["budget_epochs"] == {"old": 4.0, "new": 5.0}
    assert resume["changes"]["optimizer.learning_rate"] == {"old": 0.5, "new": 0.25}
    assert meta["config"]["budget_epochs"] == 5.0  # config.json says what the run is now
    # Evaluated every 2 rounds now, and once more at the new end (round 15).
    assert [r["round"] for r in result.history] == [4, 6, 8, 10, 12, 14, 15]
    assert [r["round"] for r in read_metrics(tmp_path)] == [4, 6, 8, 10, 12, 14, 15]


# 3. Verified checkpoints --------------------------------------------------------------------


def _flip_bit(directory: pathlib.Path) -> pathlib.Path:
    """Flips one bit of the largest data file of a checkpoint."""
    target = max(
        (p for p in directory.rglob("*") if p.is_file() and p.name != checkpoints.MANIFEST),
        key=lambda p: p.stat().st_size,
    )
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="module")
def straight():
    """The uninterrupted run every resumed one must reproduce."""
    return train(CONFIG, ESGD, quiet=True, dataset=DATA)


@pytest.fixture(scope="module")
def seven_rounds(tmp_path_factory):
    """A run stopped after round 7, with checkpoints 6 and 7."""
    workdir = tmp_path_factory.mktemp("seven")
    train(CONFIG, ESGD, workdir=workdir, quiet=True, dataset=DATA, stop_after_rounds=7)
    return workdir


@pytest.mark.parametrize("damage", ["bit", "metadata", "manifest", "default"])
def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_used(
    tmp_path, damage, capsys, straight, seven_rounds
):
    shutil.copytree(seven_rounds, tmp_path, dirs_exist_ok=True)
    newest = tmp_path / "checkpoints" / "7"
    assert checkpoints.verify(newest) is None
    if damage == "bit":
        _flip_bit(newest)
    elif damage == "metadata":
        (newest / "default" / "_METADATA").unlink()
    elif damage == "manifest":
        (newest / checkpoints.MANIFEST).unlink()
    else:
        shutil.rmtree(newest / "default")
    assert checkpoints.verify(newest) is not None
    capsys.readouterr()
    resumed = train(CONFIG, ESGD, workdir=tmp_path, resume=True, quiet=True, dataset=DATA)
    err = capsys.readouterr().err
    assert f"checkpoint {newest}" in err and "falling back to checkpoint 6" in err
    assert (tmp_path / "corrupt_checkpoints" / "7").is_dir()
    np.testing.assert_allclose(leaves(resumed.params), leaves(straight.params), rtol=1e-6)
    assert resumed.history[-1]["test_loss"] == pytest.approx(straight.history[-1]["test_loss"])


def test_landscape_and_the_divergence_message_use_verified_checkpoints(
    tmp_path, capsys, seven_rounds
):
    shutil.copytree(seven_rounds, tmp_path, dirs_exist_ok=True)
    _flip_bit(tmp_path / "checkpoints" / "7")
    capsys.readouterr()
    landscape_report.load_run(tmp_path, DATA)
    err = capsys.readouterr().err
    assert "checkpoints/7 has a corrupt file" in err
    assert "landscape: checkpoint" in err and err.rstrip().endswith("checkpoints/6")
    # A diverging run names the newest *verified* checkpoint as the last good one.
    diverging = tmp_path / "diverging"
    config = {**CONFIG, "budget_epochs": 40.0}
    with pytest.raises(NonFiniteError, match=r"Last good checkpoint \(verified\): (\S+)") as info:
        exploding = dict(name="sgd", learning_rate=5e2)
        train(config, exploding, workdir=diverging, quiet=True, dataset=DATA)
    good = str(info.value).split("(verified): ")[1].split(". ")[0]
    if good != "none saved yet":
        assert checkpoints.verify(pathlib.Path(good)) is None
        landscape_report.load_run(diverging, DATA)  # the diverged run can be analysed
    else:
        with pytest.raises(ConfigError, match="no verified checkpoint"):
            landscape_report.load_run(diverging, DATA)
    meta = json.loads((diverging / "config.json").read_text())
    assert meta["status"] == "diverged"


# 4. Finished runs and the plot --------------------------------------------------------------


def test_a_finished_run_is_left_alone_and_a_torn_metrics_line_repaired(tmp_path, tiny):
    first = run_cli("train", "--config", tiny, "--workdir", tmp_path, "--quiet")
    assert first.returncode == 0, first.stderr[-2000:]
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = run_cli("train", "--config", tiny, "--workdir", tmp_path, "--quiet", "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already finished" in again.stdout and "nan" not in again.stdout
    assert "test error" in again.stdout
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files
    # A crash mid-write left a torn last line; a resume with a longer budget repairs it.
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"optimizer": "sgd", "se')
    longer = run_cli(
        "train", "--config", tiny, "--config.budget_epochs=3", "--workdir", tmp_path, "--resume",
        "--quiet",
    )  # fmt: skip
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert "dropped a torn last line" in longer.stderr and "Traceback" not in longer.stderr
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("round") for r in records if "round" in r] == [4, 8, 12]


def test_the_plot_is_drawn_from_the_whole_history(tmp_path, tiny, monkeypatch):
    from entropix.experiments import plots

    config = cli.load_config(str(tiny))
    train(config, workdir=tmp_path, quiet=True, stop_after_rounds=5)  # 1 of 2 epochs logged
    drawn = []
    monkeypatch.setattr(plots, "plot_history", lambda history, path: drawn.append(history) or path)
    status = cli.main(
        ["entropix", "train", "--config", str(tiny), "--workdir", str(tmp_path), "--resume"]
    )
    assert status == 0
    (history,) = drawn
    assert [r["round"] for r in history] == [4, 8]


# 5. Metrics files ---------------------------------------------------------------------------


def test_a_torn_last_line_is_dropped_before_appending_and_when_reading(tmp_path):
    log = MetricsLog(tmp_path)
    log.write({"optimizer": "sgd", "seed": 0, "round": 1, "test_loss": 1.0})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"optimizer": "sgd", "seed": 0, "round": 2, "test_lo')  # a crash mid-write
    with pytest.warns(UserWarning, match="skipped a torn last line"):
        assert [r["round"] for r in read_metrics(tmp_path)] == [1]
    with pytest.warns(UserWarning, match="dropped a torn last line"):
        log.write({"optimizer": "sgd", "seed": 0, "round": 2, "test_loss": float("nan")})
    text = (tmp_path / "metrics.jsonl").read_text()
    assert text.endswith("\n") and text.count("\n") == 2
    strict = [json.loads(line, parse_constant=pytest.fail) for line in text.splitlines()]
    assert strict[1]["test_loss"] is None  # non-finite values are JSON null
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r["round"] for r in read_metrics(tmp_path)] == [1, 2]


def test_a_run_whose_every_round_was_skipped_is_not_a_success(tmp_path):
    config = {**CONFIG, "skip_nonfinite": True, "budget_epochs": 1.0}
    with pytest.raises(NonFiniteError, match="every one of the 3 rounds"):
        huge = dict(name="sgd", learning_rate=1e38)
        train(config, huge, workdir=tmp_path, quiet=True, dataset=DATA)
    records = read_metrics(tmp_path)
    assert records[-1]["train_loss"] is None and records[-1]["skipped_rounds"] == 3
    assert json.loads((tmp_path / "config.json").read_text())["status"] == "diverged"


# 6. Validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "optimizer", "message"),
    [
        ({}, dict(name="sgd", learning_rate=-0.1, lr_drops=[2]), "optimizer.learning_rate=-0.1"),
        ({}, dict(name="sgd", learning_rate=0.0), "optimizer.learning_rate=0.0"),
        ({}, dict(ESGD, num_inner_steps=0), "optimizer.num_inner_steps=0"),
        ({}, dict(ESGD, lr_drops=[-1]), "optimizer.lr_drops"),
        ({}, dict(name="rsgd", num_replicas=0), "optimizer.num_replicas=0"),
        ({"budget_epochs": 0.0}, ESGD, "budget_epochs=0.0"),
        ({"budget_epochs": -3.0}, ESGD, "budget_epochs=-3.0"),
        ({"batch_size": 0}, ESGD, "batch_size=0"),
        ({"eval_every_epochs": 0}, ESGD, "eval_every_epochs=0"),
        ({"seed": -1}, ESGD, "seed=-1"),
        ({"augment": "mirror"}, ESGD, "unknown augment='mirror'"),
    ],
)
def test_invalid_values_are_named_before_anything_runs(config, optimizer, message):
    with pytest.raises(ConfigError) as info:
        train({**CONFIG, **config}, optimizer, quiet=True, dataset=DATA)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert "Lower the learning rate" not in text


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d._replace(y_train=d.y_train + 1), r"train targets span \[1, 3\].*classes=3"),
        (lambda d: d._replace(x_test=np.where(d.x_test > 2, np.nan, d.x_test)), "non-finite"),
        (lambda d: d._replace(x_test=d.x_test[:0], y_test=d.y_test[:0]), "test split is empty"),
        (lambda d: d._replace(x_test=d.x_test[:, :4]), r"shape \(4,\) but training samples \(6,\)"),
    ],
    ids=["labels", "nan", "empty", "shape"],
)
def test_bad_data_is_rejected_at_load(edit, message):
    with pytest.raises(ConfigError, match=message):
        train(CONFIG, ESGD, quiet=True, dataset=edit(DATA))
    with pytest.raises(ValueError, match=message):
        check_dataset(edit(DATA))


def test_idx_labels_beyond_the_class_count_are_rejected(tmp_path):
    from entropix.data import IdxFormatError, load_idx_directory

    for split, n in (("train", 4), ("t10k", 2)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", np.zeros((n, 2, 2), np.uint8))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", np.array([0, 12, 1, 2][:n], np.uint8))
    with pytest.raises(IdxFormatError, match=r"labels span \[0, 12\] but mnist has 10 classes"):
        load_idx_directory(tmp_path, "mnist", 10)


# 7. Command line ----------------------------------------------------------------------------


def test_overrides_reach_lists_nested_entries_and_loader_arguments():
    config = cli.load_config("mnist1d_compare")
    cli.apply_override(config, "optimizers.3.coupling", "0.3")
    cli.apply_override(config, "optimizer.lr_drops", "[10,20]")
    cli.apply_override(config, "dataset_kwargs.num_samples", "600")
    cli.apply_override(config, "optimizer.coupling", "{'schedule': 'linear', 'rate': 0.1}")
    cli.apply_override(config, "seeds", "[3]")
    cli.apply_override(config, "budget_epochs", "7")
    assert config["optimizers"][3]["coupling"] == 0.3
    assert config["optimizer"]["lr_drops"] == [10, 20]
    assert config["dataset_kwargs"] == {"num_samples": 600}
    assert config["optimizer"]["coupling"] == {"schedule": "linear", "rate": 0.1}
    assert config["seeds"] == (3,) and config["budget_epochs"] == 7.0
    assert isinstance(config["budget_epochs"], float)
    with pytest.raises(cli._UsageError, match=r"unknown config key 'budget_epoch'; valid keys: "):
        cli.apply_override(config, "budget_epoch", "3")
    with pytest.raises(cli._UsageError, match=r"--config.optimizer.lr_drops"):
        cli.apply_override(config, "lr_drops", "[1]")
    with pytest.raises(cli._UsageError, match=r"index 0\.\.5"):
        cli.apply_override(config, "optimizers.9.coupling", "0.3")
    with pytest.raises(cli._UsageError, match="expected a number"):
        cli.apply_override(config, "batch_size", "many")


def test_configs_by_name_rows_and_one_line_errors(capsys):
    assert cli.load_config("iclr17_table1:ptb")["dataset"] == "ptb"
    assert cli.load_config("configs/mnist1d_compare.py")["name"] == "mnist1d_compare"
    assert "mnist1d_compare" in cli.config_names() and "__init__" not in cli.config_names()
    cases = [
        (["--config", "mnist1d_compare:ptb"], "has no rows; drop ':ptb'"),
        (["--config", "iclr17_table1:resnet"], "valid rows: mnistfc, lenet"),
        (["--config", "no_such_config"], "available config names: char_lstm_compare"),
        (["--config.budget_epoch=3"], "valid keys: augment, batch_size"),
        (["--config.optimizer.learning_rate=-1"], "optimizer.learning_rate=-1.0"),
        (["--bogus"], "unknown argument '--bogus'"),
    ]
    for args, message in cases:
        status = cli.main(["entropix", "train", *args, "--workdir", "/nonexistent/never"])
        err = capsys.readouterr().err
        assert status == 2 and message in err, (args, err)
        assert len(lines(err)) == 1, err


def test_help_exits_zero_with_plain_usage(capsys):
    assert cli.main(["entropix", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: entropix COMMAND") and ":class:" not in out
    assert cli.main(["entropix", "train", "--help"]) == 0
    assert "config names:" in capsys.readouterr().out
    status = cli.main(["entropix", "compare", "--config", "mnist1d_compare", "--help"])
    out = capsys.readouterr().out
    assert status == 0
    assert "--config.budget_epochs=60.0\n      training budget in effective epochs" in out
    assert "--config.optimizers.3.num_inner_steps=5\n      inner steps per outer step" in out
    assert cli.main(["entropix"]) == 2 and "expected a command" in capsys.readouterr().err


def test_missing_data_is_one_line_with_the_cli_flag(tmp_path, capsys):
    status = cli.main(
        ["entropix", "train", "--config", "iclr17_table1:mnistfc", f"--config.data_dir={tmp_path}",
         "--workdir", str(tmp_path / "run")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and len(lines(err)) == 1, err
    assert "neither IDX files" in err and str(tmp_path) in err and "--config.data_dir=DIR" in err
    assert "TFRECORD" not in err and "--data_dir" not in err.replace("--config.data_dir", "")
    assert not (tmp_path / "run" / "config.json").exists()  # a failed start leaves no run


def test_compare_refuses_to_mix_and_resumes(tmp_path):
    from entropix.experiments import compare

    config = {
        **CONFIG,
        "budget_epochs": 1.0,
        "seeds": (0,),
        "optimizers": [dict(name="sgd", learning_rate=0.1)],
        "diagnostics": False,
    }
    first = compare.compare(config, workdir=tmp_path, quiet=True, dataset=DATA)
    with pytest.raises(ConfigError, match="already holds a run"):
        compare.compare(config, workdir=tmp_path, quiet=True, dataset=DATA)
    longer = {**config, "budget_epochs": 2.0}
    resumed = compare.compare(longer, workdir=tmp_path, resume=True, quiet=True, dataset=DATA)
    (history,) = resumed.histories["sgd"]
    assert [r["round"] for r in history] == [3, 6]
    assert history[0]["test_loss"] == pytest.approx(first.histories["sgd"][0][0]["test_loss"])
    assert [r["round"] for r in read_metrics(tmp_path / "runs" / "sgd-seed0")] == [3, 6]


def test_without_the_examples_extra_every_command_names_it():
    script = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('flax', 'orbax', 'ml_collections'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from entropix.experiments.cli import main\n"
        "for command in ('train', 'compare', 'landscape'):\n"
        "    print(main(['entropix', command, '--workdir', 'x']))\n"
        "print(main(['entropix', '--help']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split()[:3] == ["2", "2", "2"] and "usage:" in result.stdout
    assert result.stdout.rstrip().endswith("0")  # --help needs no extra
    assert lines(result.stderr) == [
        f"entropix {command}: needs the `examples` extra (missing: ml-collections, flax, "
        'orbax-checkpoint); install it with: pip install "entropix-jax[examples]"'
        for command in ("train", "compare", "landscape")
    ]


def test_a_failed_write_is_one_line_naming_the_path(tmp_path, tiny):
    from entropix.data import load_dataset

    load_dataset("mnist1d", num_samples=500)  # cached before the write limit applies
    # Files may grow to 4 kB (a full disk, as the process sees it); SIGXFSZ ignored so that
    # writes fail with EFBIG instead of killing the process.
    limited = (
        "import os, resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'entropix', *sys.argv[1:]])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", limited, "train", "--config", str(tiny),
         "--workdir", str(tmp_path / "run"), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=ENV,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert len(lines(result.stderr)) == 1, result.stderr[-3000:]
    assert f"cannot write or read {tmp_path / 'run'}" in result.stderr
    assert "File too large" in result.stderr


def test_a_failed_write_in_process_is_one_line_and_returns(tmp_path, tiny, capsys):
    # Called as a function (not the console script) main prints the line and returns: the
    # process is the caller's, so it is not ended early.
    from entropix.experiments import cli

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    argv = ["entropix", "train", "--config", str(tiny), "--workdir", str(blocker / "run")]
    assert cli.main([*argv, "--quiet"]) == 1
    err = lines(capsys.readouterr().err)
    assert len(err) == 1, err
    assert err[0].startswith("entropix train: cannot write or read")
    assert f"workdir {str(blocker / 'run')!r} is not writable" in err[0]


# 8. Signals and 9. landscape of an unfinished run ----------------------------------------------


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_finishes_the_round_saves_and_says_how_to_resume(tmp_path, tiny, signum, status):
    workdir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "entropix", "train", "--config", str(tiny),
         "--config.budget_epochs=100000", "--config.checkpoint_every_rounds=0",
         "--workdir", str(workdir), "--quiet"],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if (workdir / "metrics.jsonl").exists():
            break
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()[1][-2000:]
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status, err[-3000:]
    assert len(lines(err)) == 1 and "Traceback" not in err, err
    name = signal.Signals(signum).name
    assert f"interrupted by {name} after round" in err and "--resume" in err
    done = int(err.split("after round ")[1].split(";")[0])
    saved = checkpoints.verified_steps(workdir / "checkpoints")
    assert saved[0] == done
    assert json.loads((workdir / "config.json").read_text())["status"] == "interrupted"
    # landscape works on the stopped run (config.json exists from the start).
    _, setup, weights, _ = landscape_report.load_run(workdir)
    assert setup.spec.name == "sgd" and np.all(np.isfinite(leaves(weights)))


def test_packages_listed_in_pyproject_match_the_source_tree():
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(p.relative_to(ROOT).parts)
        for p in (ROOT / "entropix").rglob("*")
        if p.is_dir() and p.name != "__pycache__" and any(p.glob("*.py"))
    }
    assert set(setuptools["packages"]) == found | {"entropix", "entropix.configs"}
    assert setuptools["package-dir"] == {"entropix.configs": "configs"}
    assert (ROOT / "configs" / "__init__.py").is_file()
    assert trainer.RUN_FILE == "config.json"


def test_config_differences_sorts_each_change_into_significant_or_harmless():
    # One change of each kind, checked key by key (no training: the function is pure).
    saved = {
        "model": "mlp",
        "batch_size": 32,
        "budget_epochs": 2,
        "diagnostics": {"every": 1},
        "model_kwargs": {},
        "seeds": [0],
        "optimizers": ["a"],
    }
    config = {
        "model": "mlp",
        "batch_size": 64,
        "budget_epochs": 5,
        "diagnostics": {"every": 2},
        "model_kwargs": {"width": 8},
        "seeds": [1, 2],
        "optimizers": ["b"],
        "new_key": 1,
    }
    saved_opt = {
        "name": "entropy_sgd",
        "learning_rate": 0.1,
        "sgld_learning_rate": 0.1,
        "lr_factor": 0.5,
        "lr_drops": [[3, 0.2]],
        "inner_drops": [],
        "num_inner_steps": 5,
    }
    optimizer = {
        "name": "entropy_sgd",
        "learning_rate": 0.05,
        "sgld_learning_rate": True,
        "lr_factor": "0.5",
        "lr_drops": [[4, 0.2]],
        "inner_drops": [[1, 0.5]],
        "num_inner_steps": 5,
    }
    significant, harmless = trainer.config_differences(saved, config, saved_opt, optimizer)
    assert significant == [
        ("batch_size", 32, 64),
        ("diagnostics.every", 1, 2),  # only the top-level key itself is harmless
        ("model_kwargs", {}, None),
        ("model_kwargs.width", None, 8),
        ("new_key", None, 1),
        ("optimizer.inner_drops", [], [[1, 0.5]]),
        ("optimizer.lr_factor", 0.5, "0.5"),  # a number becoming a string
        ("optimizer.sgld_learning_rate", 0.1, True),  # a bool is not a learning rate
    ]
    assert harmless == [
        ("budget_epochs", 2, 5),
        ("optimizer.learning_rate", 0.1, 0.05),
        ("optimizer.lr_drops", [[3, 0.2]], [[4, 0.2]]),
    ]
    assert trainer.config_differences(saved, saved, saved_opt, saved_opt) == ([], [])
    # Moving learning-rate drops is harmless; adding the first drop (or removing the last) is not.
    no_drops = {**saved_opt, "lr_drops": []}
    assert trainer.config_differences(saved, saved, no_drops, saved_opt) == (
        [("optimizer.lr_drops", [], [[3, 0.2]])],
        [],
    )


def test_resume_into_an_empty_workdir_starts_fresh_and_into_a_foreign_one_is_refused(tmp_path):
    meta, resuming = trainer._open_run(
        tmp_path, {"model": "mlp"}, {"name": "sgd"}, resume=True, overwrite=False
    )
    assert resuming is False
    assert (meta["config"], meta["optimizer"], meta["status"], meta["resumes"]) == (
        {"model": "mlp"},
        {"name": "sgd"},
        "running",
        [],
    )
    (tmp_path / "metrics.jsonl").write_text("")  # run files without the run's config.json
    with pytest.raises(ConfigError, match=r"config\.json not found, so --resume cannot check"):
        trainer._open_run(tmp_path, {"model": "mlp"}, {"name": "sgd"}, resume=True, overwrite=False)


def test_latest_verified_is_none_without_a_verified_step(tmp_path):
    assert checkpoints.latest_verified(tmp_path / "missing") is None
    (tmp_path / "3").mkdir()  # a step directory without its manifest does not verify
    assert checkpoints.verified_steps(tmp_path) == []
    assert checkpoints.latest_verified(tmp_path) is None
