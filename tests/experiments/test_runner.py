"""The experiment runner: registry, training loop, resume, failures, compare, CLI."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from run_helpers import CONFIG, DATA, ESGD

from entropix.data import Dataset
from entropix.experiments import (
    NonFiniteError,
    build_optimizer,
    checkpoints,
    compare,
    landscape_report,
    read_metrics,
    train,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_registry_lists_valid_names_and_arguments():
    with pytest.raises(ValueError, match="valid names: sgd, adam"):
        build_optimizer({"name": "sgdd"}, steps_per_epoch=10)
    with pytest.raises(ValueError, match=r"no argument\(s\) \['couplng'\]"):
        build_optimizer({"name": "entropy_sgd", "couplng": 0.1}, steps_per_epoch=10)
    with pytest.raises(ValueError, match="split_data"):
        build_optimizer({"name": "sgd", "split_data": 0.5}, steps_per_epoch=10)


def test_round_length_is_a_whole_number_of_outer_steps():
    spec = build_optimizer(
        {"name": "entropy_sgd", "num_inner_steps": 3}, steps_per_epoch=10, min_round_length=10
    )
    assert spec.round_length == 12 and spec.num_replicas == 0
    parle = build_optimizer({"name": "parle", "num_inner_steps": 5}, steps_per_epoch=10)
    assert parle.num_replicas == 3 and parle.round_length == 5


def test_learning_rate_drops_at_effective_epochs():
    # Entropy-SGD with L=4 and 10 steps/epoch: epoch 2 is outer step 5.
    spec = build_optimizer(
        {
            "name": "entropy_sgd",
            "num_inner_steps": 4,
            "learning_rate": 1.0,
            "lr_drops": [2],
            "lr_factor": 0.1,
        },
        steps_per_epoch=10,
    )
    assert spec.round_length % 4 == 0
    from entropix.experiments.optimizers import _learning_rate

    schedule = _learning_rate(1.0, [2], 0.1, 10 / 4)
    assert float(schedule(4)) == 1.0 and float(schedule(5)) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "optimizer",
    [
        dict(name="sgd", learning_rate=0.1),
        ESGD,
        dict(
            name="parle",
            learning_rate=0.5,
            num_inner_steps=4,
            coupling=0.1,
            elastic_coupling=0.1,
            num_replicas=2,
        ),
        dict(name="rsgd", learning_rate=0.1, elastic_coupling=0.01, num_replicas=2, split_data=0.5),
    ],
    ids=["sgd", "entropy_sgd", "parle", "rsgd-split"],
)
def test_training_learns_and_counts_gradient_evaluations(optimizer):
    result = train(CONFIG, optimizer, quiet=True, dataset=DATA)
    first, last = result.history[0], result.history[-1]
    assert last["effective_epochs"] == pytest.approx(
        last["grad_evals"] / (DATA.num_train // CONFIG["batch_size"])
    )
    assert last["effective_epochs"] >= CONFIG["budget_epochs"]
    assert last["test_error"] < 0.2 < 1 - 1 / DATA.num_classes
    assert last["train_loss"] < first["train_loss"] + 1e-6


def test_resume_reaches_the_same_metrics(tmp_path):
    config = {**CONFIG, "checkpoint_every_rounds": 2}
    full = train(config, ESGD, quiet=True, dataset=DATA, workdir=tmp_path / "full")
    partial_dir = tmp_path / "resumed"
    train(config, ESGD, quiet=True, dataset=DATA, workdir=partial_dir, stop_after_rounds=5)
    lines_before = (partial_dir / "metrics.jsonl").read_text().count("\n")
    resumed = train(config, ESGD, quiet=True, dataset=DATA, workdir=partial_dir, resume=True)
    assert resumed.history[-1]["test_loss"] == pytest.approx(
        full.history[-1]["test_loss"], rel=1e-6
    )
    assert resumed.history[-1]["round"] == full.history[-1]["round"]
    assert resumed.history[-1]["train_loss"] == pytest.approx(full.history[-1]["train_loss"])
    # The log is appended to, never truncated; readers keep one record per round.
    assert (partial_dir / "metrics.jsonl").read_text().count("\n") > lines_before
    rounds = [r["round"] for r in read_metrics(partial_dir)]
    assert rounds == sorted(set(rounds)) == [r["round"] for r in full.history]


def test_non_finite_loss_stops_and_keeps_the_good_checkpoint(tmp_path):
    config = {**CONFIG, "checkpoint_every_rounds": 1, "budget_epochs": 40.0}
    exploding = dict(name="sgd", learning_rate=5e2, momentum=0.9)
    with pytest.raises(NonFiniteError, match=r"Non-finite loss .* round \d+ .*Last good"):
        train(config, exploding, quiet=True, dataset=DATA, workdir=tmp_path)
    manager = checkpoints.manager(tmp_path / "checkpoints")
    if manager.latest_step() is not None:
        setup = landscape_report.trainer.setup(config, exploding, DATA)
        like = (*landscape_report.trainer.init_state(setup, 0), np.zeros(3))
        _, state = checkpoints.restore_latest(manager, like)
        import jax

        assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state))


def test_skip_nonfinite_rounds_keeps_training_finite():
    config = {**CONFIG, "skip_nonfinite": True, "budget_epochs": 6.0}
    result = train(
        config, dict(name="sgd", learning_rate=5e2, momentum=0.9), quiet=True, dataset=DATA
    )
    assert all(np.isfinite(r["test_loss"]) for r in result.history)
    assert result.history[-1]["skipped_rounds"] >= 1


def test_unwritable_workdir_is_reported_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(PermissionError, match="not writable"):
        train(CONFIG, ESGD, quiet=True, dataset=DATA, workdir=blocker / "run")


def test_compare_table_plot_and_landscape(tmp_path):
    config = {
        **CONFIG,
        "budget_epochs": 2.0,
        "seeds": (0, 1),
        "optimizers": [dict(name="sgd", learning_rate=0.1), ESGD],
        "diagnostics_examples": 64,
        "local_energy_samples": 2,
        "local_energy_sigma": 0.3,
    }
    out = compare.compare(config, workdir=tmp_path, quiet=True, dataset=DATA)
    assert [row["optimizer"] for row in out.rows] == ["sgd", "entropy_sgd"]
    assert out.table.count("\n") == 3 and "±" in out.table
    assert out.plot_path.exists() and out.plot_path.stat().st_size > 10_000
    for runs in out.runs.values():
        assert len(runs) == 2
        assert all(np.isfinite(r["top_eigenvalue"]) and r["top_eigenvalue"] > 0 for r in runs)
        assert all(r["local_energy"] >= -0.05 for r in runs)
    run_dir = tmp_path / "runs" / "entropy_sgd-seed0"
    summary = landscape_report.report(run_dir, examples=64, dataset=DATA)
    assert summary["optimizer"] == "entropy_sgd"
    assert summary["top_eigenvalues"][0] >= summary["top_eigenvalues"][-1]
    assert 0 < summary["noise_rank"] <= 64
    assert np.isfinite(summary["llc"]) and np.isfinite(summary["llc_stderr"])
    assert (run_dir / "spectrum.png").exists() and (run_dir / "local_energy.png").exists()


def run_cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "entropix", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


def test_cli_train_end_to_end_on_mnist1d(tmp_path):
    result = run_cli(
        "train",
        "--config",
        "configs/mnist1d_compare.py",
        "--config.budget_epochs=3",
        "--config.eval_every_epochs=1",
        "--workdir",
        str(tmp_path),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test error" in result.stdout
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 3 and records[-1]["effective_epochs"] >= 3
    assert (tmp_path / "curves.png").exists()


def test_cli_rejects_typos_and_unknown_names(tmp_path):
    typo = run_cli(
        "train",
        "--config",
        "configs/mnist1d_compare.py",
        "--config.budget_epoch=3",
        "--workdir",
        str(tmp_path),
    )
    assert typo.returncode != 0 and "budget_epoch" in typo.stderr
    unknown = run_cli(
        "train",
        "--config",
        "configs/mnist1d_compare.py",
        "--config.optimizer.name=sgdd",
        "--workdir",
        str(tmp_path),
    )
    assert unknown.returncode != 0 and "valid names" in unknown.stderr
    bad_command = run_cli("trian")
    assert bad_command.returncode == 2 and "expected a command" in bad_command.stderr


def test_cli_killed_run_resumes_to_the_same_result(tmp_path):
    """SIGKILL a training process mid-run, resume it, and match an uninterrupted run."""
    import signal
    import time

    args = [
        "--config",
        "configs/mnist1d_compare.py",
        "--config.budget_epochs=40",
        "--config.eval_every_epochs=5",
        "--config.checkpoint_every_rounds=4",
        "--quiet",
    ]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "entropix", "train", *args, "--workdir", str(killed)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 300
    checkpoints_dir = killed / "checkpoints"
    while time.time() < deadline and process.poll() is None:
        saved = (
            [p for p in checkpoints_dir.glob("*") if p.name.isdigit()]
            if (checkpoints_dir.exists())
            else []
        )
        if len(saved) >= 2 and (killed / "metrics.jsonl").exists():
            break
        time.sleep(0.2)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    lines_at_kill = (killed / "metrics.jsonl").read_text().count("\n")

    resumed = run_cli("train", *args, "--workdir", str(killed), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = run_cli("train", *args, "--workdir", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    final_resumed = read_metrics(killed)[-1]
    final_straight = read_metrics(tmp_path / "straight")[-1]
    assert final_resumed["round"] == final_straight["round"]
    for key in ("test_loss", "test_error", "train_eval_loss", "train_loss"):
        assert final_resumed[key] == pytest.approx(final_straight[key], rel=1e-6), key
    assert (killed / "metrics.jsonl").read_text().count("\n") > lines_at_kill


def tiny_images(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 1)).astype(np.float32)
    y = (x[:, :, :4].mean(axis=(1, 2, 3)) > x[:, :, 4:].mean(axis=(1, 2, 3))).astype(np.int32)
    return Dataset("images", x, y, x[:16], y[:16], 2)


def test_augmentation_runs_on_device_and_changes_the_minibatches():
    images = tiny_images()
    config = {**CONFIG, "dataset": "images", "batch_size": 8, "budget_epochs": 2.0}
    sgd = dict(name="sgd", learning_rate=0.1)
    plain = train(config, sgd, quiet=True, dataset=images)
    again = train({**config, "augment": "none"}, sgd, quiet=True, dataset=images)
    flipped = train({**config, "augment": "flip_crop"}, sgd, quiet=True, dataset=images)
    leaves = lambda r: np.concatenate([np.ravel(x) for x in jax.tree.leaves(r.params)])  # noqa: E731
    np.testing.assert_array_equal(leaves(plain), leaves(again))
    assert np.max(np.abs(leaves(plain) - leaves(flipped))) > 1e-3
    assert np.isfinite(flipped.history[-1]["test_loss"])


def test_augmentation_names_and_inputs_are_checked():
    with pytest.raises(ValueError, match="unknown augment='mirror'; valid: none, flip"):
        train({**CONFIG, "augment": "mirror"}, dict(name="sgd"), quiet=True, dataset=DATA)
    with pytest.raises(ValueError, match=r"needs images \(H, W, C\)"):
        train({**CONFIG, "augment": "flip"}, dict(name="sgd"), quiet=True, dataset=DATA)
