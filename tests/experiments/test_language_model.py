"""The runner's language-model path: BPTT windows, carried state, perplexity, resume, errors."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from entropix import data, models
from entropix.experiments import build_optimizer, compare, landscape_report, sequences, train
from entropix.experiments.trainer import diagnostic_batch

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOCAB = 7
HIDDEN = 8


def token_stream(length=400, seed=0):
    """A learnable stream: mostly a repeating pattern, some random tokens."""
    rng = np.random.default_rng(seed)
    tokens = np.tile(np.arange(VOCAB), length // VOCAB + 1)[:length]
    noisy = rng.random(length) < 0.2
    tokens[noisy] = rng.integers(0, VOCAB, noisy.sum())
    return "".join("abcdefg"[t] for t in tokens)


DATA = data.char_dataset(token_stream())
CONFIG = dict(
    dataset="text",
    model="char-lstm",
    model_kwargs={"hidden_size": HIDDEN},
    batch_size=4,
    seq_len=5,
    eval_batch_size=3,
    budget_epochs=2.0,
    eval_every_epochs=1.0,
    seed=0,
    min_round_length=1,
    train_eval_examples=200,
)
WINDOWS_PER_EPOCH = (len(DATA.x_train) // 4) // 5


def test_window_schedule_resets_exactly_where_the_stream_breaks():
    pools = sequences.window_pools(10, 0, None)
    windows, resets = sequences.window_schedule(pools[0], 8, 5)
    np.testing.assert_array_equal(windows, [8, 9, 0, 1, 2])
    np.testing.assert_array_equal(resets, [False, False, True, False, False])
    _, resets = sequences.window_schedule(pools[0], 0, 2)
    np.testing.assert_array_equal(resets, [True, False])

    replicas = sequences.window_pools(10, 3, None)
    assert [int(p[0]) for p in replicas] == [0, 3, 6]  # different offsets, same windows
    assert all(sorted(p.tolist()) == list(range(10)) for p in replicas)
    windows, resets = sequences.window_schedule(replicas[1], 5, 4)
    np.testing.assert_array_equal(windows, [8, 9, 0, 1])
    np.testing.assert_array_equal(resets, [False, False, True, False])

    split = sequences.window_pools(10, 3, 0.5)
    assert [p.tolist() for p in split][2] == [6, 7, 8, 9, 0]
    windows, resets = sequences.window_schedule(split[0], 3, 4)  # block 0-4 wraps to 0
    np.testing.assert_array_equal(windows, [3, 4, 0, 1])
    np.testing.assert_array_equal(resets, [False, False, True, False])


def _model_and_params():
    model = models.char_lstm(vocab_size=VOCAB, hidden_size=HIDDEN)
    params = model.init(jax.random.PRNGKey(3), jnp.zeros((1, 5), jnp.int32), train=False)["params"]
    return model, params


def test_stream_evaluation_carries_the_state_across_windows():
    model, params = _model_and_params()
    x, y = DATA.x_test, DATA.y_test
    windows = sequences.windows(x, y, 3, 4)
    loss, error = sequences.eval_fn(model)(params, {}, windows)
    # The same rows unrolled in one piece from the zero state.
    rows = windows[0].transpose(1, 0, 2).reshape(3, -1)
    targets = windows[1].transpose(1, 0, 2).reshape(3, -1)
    logits = model.apply({"params": params}, rows, train=False)
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert error == pytest.approx(float(jnp.mean(jnp.argmax(logits, -1) != targets)))
    # A state reset at every window would give a different (worse) number.
    reset_logits = model.apply({"params": params}, windows[0].reshape(-1, 4), train=False)
    reset = optax.softmax_cross_entropy_with_integer_labels(
        reset_logits, windows[1].reshape(-1, 4)
    ).mean()
    assert abs(float(reset) - loss) > 1e-4


def test_training_equals_truncated_bptt_by_hand():
    """SGD in the runner = a plain loop over windows carrying the state, reset each epoch."""
    steps = WINDOWS_PER_EPOCH + 3  # crosses an epoch boundary
    config = {**CONFIG, "budget_epochs": steps / WINDOWS_PER_EPOCH, "eval_every_epochs": 100.0}
    sgd = dict(name="sgd", learning_rate=0.5, momentum=0.0)
    result = train(config, sgd, quiet=True, dataset=DATA)

    model, _ = _model_and_params()
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 5), jnp.int32), train=False)["params"]
    x_windows, y_windows = data.language_model_batches(DATA.x_train, DATA.y_train, 4, 5)

    def loss(p, x, y, hidden):
        logits, hidden = model.apply({"params": p}, x, hidden, train=True, method=model.unroll)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), hidden

    grad = jax.jit(jax.grad(loss, has_aux=True))
    hidden = model.initial_carry(4)
    for step in range(steps):
        window = step % WINDOWS_PER_EPOCH
        if window == 0:
            hidden = model.initial_carry(4)
        grads, hidden = grad(params, x_windows[window], y_windows[window], hidden)
        params = jax.tree.map(lambda w, g: w - 0.5 * g, params, grads)
    for got, want in zip(jax.tree.leaves(result.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)


@pytest.mark.parametrize(
    "optimizer",
    [
        dict(name="adam", learning_rate=0.02),
        dict(name="entropy_adam", learning_rate=0.05, num_inner_steps=3, coupling=0.01),
        dict(
            name="parle",
            learning_rate=1.0,
            sgld_learning_rate=0.5,
            num_inner_steps=3,
            coupling=0.01,
            elastic_coupling=0.1,
            num_replicas=2,
            split_data=0.75,
        ),
    ],
    ids=lambda o: o["name"],
)
def test_language_models_learn_with_every_family(optimizer):
    result = train({**CONFIG, "budget_epochs": 6.0}, optimizer, quiet=True, dataset=DATA)
    first, last = result.history[0], result.history[-1]
    assert last["test_perplexity"] == pytest.approx(np.exp(last["test_loss"]))
    assert last["valid_perplexity"] == pytest.approx(np.exp(last["valid_loss"]))
    assert last["test_perplexity"] < 0.8 * VOCAB  # uniform guessing has perplexity VOCAB
    assert last["train_loss"] < first["train_loss"]
    assert last["effective_epochs"] == pytest.approx(6.0, abs=0.5)


def test_resume_restores_the_carried_state(tmp_path):
    sgd = dict(name="sgd", learning_rate=0.5, momentum=0.9)
    config = {**CONFIG, "checkpoint_every_rounds": 1, "min_round_length": 3}
    full = train(config, sgd, quiet=True, dataset=DATA)
    train(config, sgd, workdir=tmp_path, quiet=True, dataset=DATA, stop_after_rounds=2)
    resumed = train(config, sgd, workdir=tmp_path, resume=True, quiet=True, dataset=DATA)
    assert resumed.history[-1]["test_loss"] == pytest.approx(full.history[-1]["test_loss"])
    for got, want in zip(
        jax.tree.leaves(resumed.params), jax.tree.leaves(full.params), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_compare_reports_perplexity_and_landscape_reads_sequences(tmp_path):
    config = {
        **CONFIG,
        "budget_epochs": 1.0,
        "seeds": (0,),
        "diagnostics_examples": 6,
        "optimizers": [dict(name="sgd", learning_rate=0.5, momentum=0.9)],
    }
    out = compare.compare(config, workdir=tmp_path, quiet=True, dataset=DATA)
    assert "test perplexity" in out.table.splitlines()[0]
    assert np.isfinite(out.runs["sgd"][0]["top_eigenvalue"])
    inputs, targets = diagnostic_batch(config, DATA, 6)
    assert inputs.shape == targets.shape == (6, 5)
    np.testing.assert_array_equal(inputs[1], DATA.x_train[5:10])
    run = tmp_path / "runs" / "sgd-seed0"
    summary = landscape_report.report(run, dataset=DATA, examples=6)
    assert len(summary["top_eigenvalues"]) == 5 and summary["noise_examples"] == 6


def test_clip_norm_clips_the_gradient_before_the_optimizer():
    spec = build_optimizer(
        {"name": "sgd", "learning_rate": 1.0, "momentum": 0.0, "clip_norm": 2.0}, steps_per_epoch=1
    )
    grads = {"w": jnp.array([30.0, 40.0])}
    updates, _ = spec.transform.update(grads, spec.transform.init(grads), grads)
    np.testing.assert_allclose(updates["w"], [-1.2, -1.6], rtol=1e-6)


def test_task_mismatches_are_named():
    images = data.Dataset(
        "blobs",
        np.zeros((40, 6), np.float32),
        np.zeros(40, np.int32),
        np.zeros((8, 6), np.float32),
        np.zeros(8, np.int32),
        3,
    )
    with pytest.raises(ValueError, match="not a token stream"):
        train({**CONFIG, "model": "mlp", "model_kwargs": {}}, dict(name="sgd"), dataset=images)
    with pytest.raises(ValueError, match="set seq_len"):
        train({**CONFIG, "seq_len": 0}, dict(name="sgd"), dataset=DATA)
    with pytest.raises(ValueError, match="augment='flip' transforms images"):
        train({**CONFIG, "augment": "flip"}, dict(name="sgd"), dataset=DATA)
    with pytest.raises(ValueError, match="unroll"):
        train({**CONFIG, "model": "mlp", "model_kwargs": {}}, dict(name="sgd"), dataset=DATA)


def test_cli_trains_a_char_lstm_on_a_given_corpus(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(token_stream(6000))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "entropix",
            "train",
            "--config",
            "configs/char_lstm_compare.py",
            f"--config.dataset_kwargs.path={corpus}",
            "--config.batch_size=8",
            "--config.budget_epochs=1",
            "--config.eval_every_epochs=0.5",
            "--workdir",
            str(tmp_path / "run"),
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test perplexity" in result.stdout
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
