"""The common ``Dataset`` container, its errors and small dataset-level operations."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np


class Dataset(NamedTuple):
    """Train/test arrays of one benchmark, on the host (NumPy).

    Image data is ``float32`` NHWC (``(n, 28, 28, 1)``, ``(n, 32, 32, 3)``), vectors are
    ``(n, d)``, labels ``int32``. Language-model corpora store the token stream as 1-D arrays:
    ``x_*`` are input ids and ``y_*`` the next ids (``y[t] = x[t + 1]``), ``num_classes`` is the
    vocabulary size and ``vocab`` maps ids to tokens.

    Attributes:
      name: dataset name.
      x_train: training inputs.
      y_train: training targets.
      x_test: test inputs.
      y_test: test targets.
      num_classes: number of classes (vocabulary size for text).
      x_valid: validation inputs, if the dataset has a separate split.
      y_valid: validation targets.
      vocab: id → token table of text corpora.

    Examples:
      >>> import numpy as np
      >>> ds = Dataset("toy", np.zeros((4, 2)), np.arange(4), np.zeros((1, 2)), np.zeros(1), 4)
      >>> ds.num_train, ds.num_test
      (4, 1)
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    x_valid: np.ndarray | None = None
    y_valid: np.ndarray | None = None
    vocab: tuple[str, ...] | None = None

    @property
    def num_train(self) -> int:
        """Number of training examples (tokens for text)."""
        return len(self.x_train)

    @property
    def num_test(self) -> int:
        """Number of test examples (tokens for text)."""
        return len(self.x_test)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Returns ``(x, y)`` of split ``"train"``, ``"valid"`` or ``"test"``.

        ``Dataset`` itself holds a string and ``None`` fields, so put a split on the device
        with ``jax.device_put(ds.split("train"))`` rather than the whole container.
        """
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split {name!r}: use 'train', 'valid' or 'test'.")
        x, y = getattr(self, f"x_{name}"), getattr(self, f"y_{name}")
        if x is None:
            raise ValueError(
                f"{self.name} has no validation split; create one with split_validation(ds, 0.1)."
            )
        return x, y


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are absent; the message says how to get them."""


# Debian/Ubuntu package `dataset-fashion-mnist` installs the real IDX files here.
FASHION_MNIST_APT_DIR = Path("/usr/share/datasets/fashion-mnist")


def how_to_get(name: str) -> str:
    """Instructions for obtaining dataset ``name`` offline or with internet.

    Args:
      name: dataset name.

    Returns:
      A sentence for error messages.

    Examples:
      >>> "apt-get install dataset-fashion-mnist" in how_to_get("fashion_mnist")
      True
    """
    if name == "mnist1d":
        return "MNIST-1D is generated offline by the `mnist1d` package: `pip install mnist1d`."
    if name == "ptb":
        return (
            "PTB is read from a local directory with ptb.train.txt, ptb.valid.txt, ptb.test.txt "
            "(Mikolov's simple-examples.tgz, data/ folder): pass data_dir=DIR "
            "(--config.data_dir=DIR on the CLI)."
        )
    if name == "text":
        return (
            "Pass path=FILE (a UTF-8 text file) or data_dir=DIR (its *.txt files, or those "
            "matching pattern=GLOB, are concatenated)."
        )
    hints = []
    if name == "fashion_mnist":
        hints.append(
            "Offline: `apt-get install dataset-fashion-mnist` installs the IDX files in "
            f"{FASHION_MNIST_APT_DIR} (used automatically)."
        )
    if name in ("mnist", "fashion_mnist", "idx"):
        hints.append(
            "Any directory of IDX files works: pass data_dir=DIR "
            "(--config.data_dir=DIR on the CLI)."
        )
    hints.append(
        "With internet: load_dataset(name, download=True) prepares it with tfds (or run "
        '`python -c "import tensorflow_datasets as tfds; '
        f"tfds.data_source('{name}', download=True)\"`); "
        "a prepared tfds copy elsewhere is found with data_dir=DIR "
        "(--config.data_dir=DIR on the CLI)."
    )
    return " ".join(hints)


def check_dataset(ds: Dataset, *, chunk: int = 4096) -> None:
    """Checks that ``ds`` can be trained on and evaluated, before anything is compiled.

    Every split present must be non-empty, hold as many targets as inputs and samples of the
    training split's shape; every target must be an integer in ``[0, num_classes)``; floating
    inputs must be finite.

    Args:
      ds: the dataset.
      chunk: examples checked at a time (bounds the temporary memory of the finiteness test).

    Raises:
      ValueError: the first problem, naming the split, what is wrong and the fix.

    Examples:
      >>> x = np.zeros((2, 3), np.float32)
      >>> ds = Dataset("toy", x, np.array([0, 1]), x, np.array([1, 0]), 2)
      >>> check_dataset(ds)
      >>> try:
      ...     check_dataset(ds._replace(y_test=np.array([0, 2])))
      ... except ValueError as err:
      ...     print(str(err).split(":")[0])
      test targets span [0, 2] but num_classes=2
    """
    if not isinstance(ds.num_classes, (int, np.integer)) or ds.num_classes < 1:
        raise ValueError(f"num_classes={ds.num_classes!r} must be an integer >= 1.")
    sample_shape = np.shape(ds.x_train)[1:]
    for split in ("train", "valid", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        if x is None and split == "valid":
            continue
        if x is None or len(x) == 0:
            raise ValueError(f"the {split} split is empty; the data source holds no {split} data.")
        if y is None or len(y) != len(x):
            count = "no" if y is None else len(y)
            raise ValueError(f"the {split} split has {len(x)} inputs but {count} targets.")
        if np.shape(x)[1:] != sample_shape:
            raise ValueError(
                f"{split} samples have shape {np.shape(x)[1:]} but training samples "
                f"{sample_shape}; every split must hold samples of one shape."
            )
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.integer):
            if not np.issubdtype(y.dtype, np.floating) or not np.all(np.round(y) == y):
                raise ValueError(f"{split} targets must be integer class labels, got {y.dtype}.")
        low, high = y.min(), y.max()
        if low < 0 or high >= ds.num_classes:
            raise ValueError(
                f"{split} targets span [{low:g}, {high:g}] but num_classes={ds.num_classes}: "
                f"every label must lie in [0, {ds.num_classes}); check the label files or "
                "the dataset's num_classes."
            )
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.inexact):
            for start in range(0, len(x), chunk):
                part = x[start : start + chunk]
                if not np.all(np.isfinite(part)):
                    finite = np.isfinite(part.reshape(len(part), -1))
                    bad = int(np.sum(~finite))
                    first = start + int(np.argmax(~np.all(finite, axis=1)))
                    raise ValueError(
                        f"{split} inputs hold non-finite values (NaN or inf), e.g. {bad} in "
                        f"example {first}; clean or drop those examples."
                    )


def default_cache_dir() -> Path:
    """Cache directory for generated/converted arrays: ``$ENTROPIX_CACHE`` or ``~/.cache/entropix``.

    Returns:
      The path (not created).

    Examples:
      >>> isinstance(default_cache_dir(), Path)
      True
    """
    env = os.environ.get("ENTROPIX_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "entropix"


def split_validation(ds: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """Holds out a random ``fraction`` of the training set as the validation split.

    The thesis holds out 12% of the training data to tune baselines (ch. 2).

    Args:
      ds: a classification dataset.
      fraction: held-out fraction in (0, 1).
      seed: seed of the NumPy permutation.

    Returns:
      The dataset with ``x_valid``/``y_valid`` set and the training set reduced.

    Examples:
      >>> import numpy as np
      >>> ds = Dataset("toy", np.arange(100.0), np.arange(100), np.zeros(1), np.zeros(1), 100)
      >>> v = split_validation(ds, 0.12)
      >>> v.num_train, len(v.x_valid)
      (88, 12)
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split_validation: fraction={fraction} must lie in (0, 1).")
    n = ds.num_train
    n_valid = round(fraction * n)
    order = np.random.default_rng(seed).permutation(n)
    valid, train = order[:n_valid], order[n_valid:]
    return ds._replace(
        x_train=ds.x_train[train],
        y_train=ds.y_train[train],
        x_valid=ds.x_train[valid],
        y_valid=ds.y_train[valid],
    )


def select_classes(ds: Dataset, classes: Sequence[int]) -> Dataset:
    """Keeps the examples of ``classes`` and relabels them ``0 … len(classes) − 1``.

    E.g. tiny-fc (thesis ch. 6) trains on the MNIST digits 0–4 (≈30,000 images).

    Args:
      ds: a classification dataset.
      classes: the labels to keep, in their new order.

    Returns:
      The filtered dataset with ``num_classes = len(classes)``.

    Examples:
      >>> import numpy as np
      >>> y = np.array([0, 1, 2, 0, 1, 2])
      >>> ds = Dataset("toy", np.arange(6.0), y, np.zeros(1), np.zeros(1, int), 3)
      >>> small = select_classes(ds, [2, 0])
      >>> small.x_train.tolist(), small.y_train.tolist()
      ([0.0, 2.0, 3.0, 5.0], [1, 0, 1, 0])
    """
    classes = [int(c) for c in classes]
    if len(set(classes)) != len(classes):
        raise ValueError(f"select_classes: classes={classes} contains duplicates.")
    lookup = np.full(max(ds.num_classes, max(classes) + 1), -1, np.int32)
    lookup[classes] = np.arange(len(classes), dtype=np.int32)

    def keep(x, y):
        if y is None:
            return x, y
        new = lookup[np.asarray(y)]
        mask = new >= 0
        return x[mask], new[mask]

    x_train, y_train = keep(ds.x_train, ds.y_train)
    x_test, y_test = keep(ds.x_test, ds.y_test)
    x_valid, y_valid = keep(ds.x_valid, ds.y_valid)
    return ds._replace(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        x_valid=x_valid,
        y_valid=y_valid,
        num_classes=len(classes),
    )
