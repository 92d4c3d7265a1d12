"""Every config in configs/ builds and runs one round of every optimizer on tiny data."""

import importlib.util
import pathlib

import numpy as np
import pytest

from entropix.data import Dataset, char_dataset
from entropix.experiments import train
from entropix.experiments.trainer import build_model

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"
INPUT_SHAPES = {
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "cifar10": (32, 32, 3),
    "cifar100": (32, 32, 3),
    "svhn_cropped": (32, 32, 3),
    "mnist1d": (40,),
}
TOKEN_STREAMS = ("ptb", "text", "tiny_shakespeare")
# Each config's network is built (with every optimizer's model overrides) but the round runs
# on a tiny MLP: compiling the papers' convnets would cost minutes on CPU, and their forward
# passes, shapes and parameter counts are tested in tests/models.
TINY_MODEL = dict(model="mlp", model_kwargs={"features": (8,)})
TINY_LANGUAGE_MODEL = dict(model="char-lstm", model_kwargs={"hidden_size": 8}, seq_len=5)


RAN: set[str] = set()  # optimizer entries that already ran a round (see below)


def load(path):
    found = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def cases():
    for path in sorted(p for p in CONFIGS.glob("*.py") if p.name != "__init__.py"):
        module = load(path)
        rows = getattr(module, "ALL_ROWS", None) or getattr(module, "ROWS", None)
        for row in rows or [None]:
            yield pytest.param(path, row, id=f"{path.stem}:{row}" if row else path.stem)


def tiny_dataset(name, num_classes, batch_size):
    rng = np.random.default_rng(0)
    if name in TOKEN_STREAMS:
        text = "".join(rng.choice(list("abcdefghij "), 2000))
        return char_dataset(text, name=name)
    shape = INPUT_SHAPES[name]
    n = 8 * batch_size  # 25% shards (thesis_table5_2:n6_quarter) still hold a batch
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    y = rng.integers(0, num_classes, n).astype(np.int32)
    return Dataset(name, x, y, x[:8], y[:8], num_classes)


@pytest.mark.parametrize(("path", "row"), list(cases()))
def test_config_runs_one_round_of_each_optimizer(path, row):
    module = load(path)
    config = module.get_config(row) if row else module.get_config()
    config = config.to_dict()
    language_model = config["dataset"] in TOKEN_STREAMS
    assert language_model or config["dataset"] in INPUT_SHAPES, config["dataset"]
    assert language_model == (config["seq_len"] > 0)
    assert module.__doc__ and ("Published" in module.__doc__ or "Expected" in module.__doc__)
    num_classes = 100 if config["dataset"] == "cifar100" else 10
    batch_size = 4
    dataset = tiny_dataset(config["dataset"], num_classes, batch_size)
    optimizers = config.get("optimizers") or [config["optimizer"]]
    for optimizer in optimizers:
        kwargs = {**config["model_kwargs"], **optimizer.get("model_kwargs", {})}
        assert build_model(config["model"], kwargs, num_classes) is not None
    config.update(
        batch_size=batch_size,
        budget_epochs=1e-6,  # a single round
        eval_every_epochs=1.0,
        min_round_length=1,
        **(TINY_LANGUAGE_MODEL if language_model else TINY_MODEL),
    )
    for optimizer in optimizers:
        optimizer = {k: v for k, v in optimizer.items() if k != "model_kwargs"}
        # The comparison configs share one line-up: an entry with the same optimizer, the same
        # keys and the same kinds of values (numbers, schedules, names) as one that already ran
        # a round on the same kind of data is not run again; only its values differ.
        kinds = sorted((k, type(v).__name__) for k, v in optimizer.items() if k != "label")
        key = repr((language_model, optimizer["name"], kinds))
        if key in RAN:
            continue
        RAN.add(key)
        result = train(config, optimizer, quiet=True, dataset=dataset)
        record = result.history[-1]
        assert record["round"] == 1 and np.isfinite(record["test_loss"]), optimizer["name"]
        if language_model:
            assert record["test_perplexity"] == pytest.approx(np.exp(record["test_loss"]))


def test_comparison_rows_share_settings_and_name_bad_rows():
    from entropix.experiments import comparison_optimizers

    rows = comparison_optimizers(
        ("sgd", "entropy_sgd", "entropy_sgd_auto", "parle_auto"),
        learning_rate=0.05,
        adam_learning_rate=1e-3,
        sgld_learning_rate=0.02,
        lr_drops=[30],
    )
    sgd, esgd, auto, parle = rows
    assert sgd["learning_rate"] == 0.05 and all(r["lr_drops"] == [30] for r in rows)
    assert esgd["sgld_learning_rate"] == 0.02 and esgd["coupling"] == 0.1
    assert auto == {**esgd, "label": "Entropy-SGD (auto γ)", "coupling": "auto"}
    assert parle["coupling"] == "auto" and parle["num_replicas"] == 3
    with pytest.raises(ValueError, match="unknown comparison row 'sgdd'; valid rows: sgd, adam"):
        comparison_optimizers(("sgdd",), learning_rate=0.1, adam_learning_rate=1e-3)
    with pytest.raises(ValueError, match="needs entropy_adam_learning_rate"):
        comparison_optimizers(("entropy_adam",), learning_rate=0.1, adam_learning_rate=1e-3)
