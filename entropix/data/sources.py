"""Raw dataset sources: tfds (``tfds.data_source``, no TensorFlow), MNIST-1D, IDX directories.

tensorflow_datasets and mnist1d are imported inside the functions, so ``import entropix.data``
needs neither.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from entropix.data.dataset import Dataset, DatasetNotFoundError, default_cache_dir, how_to_get
from entropix.data.text import char_dataset, encode

TFDS_IMAGE_NAMES = ("mnist", "fashion_mnist", "cifar10", "cifar100", "svhn_cropped")
TFDS_NAMES = (*TFDS_IMAGE_NAMES, "tiny_shakespeare")

_READ_CHUNK = 1024


def _read_examples(source: Any) -> list[dict[str, Any]]:
    """Decodes every record of a tfds data source, in order."""
    examples: list[dict[str, Any]] = []
    for start in range(0, len(source), _READ_CHUNK):
        keys = list(range(start, min(len(source), start + _READ_CHUNK)))
        try:
            # Batched reads are much faster on real ArrayRecord files.
            examples.extend(source.__getitems__(keys))
        except TypeError:
            # tfds.testing.mock_data (tfds 4.9.10) installs an unbound __getitems__; per-item
            # reads work there and give the same records.
            examples.extend(source[k] for k in keys)
    return examples


def _tfds_sources(name: str, splits: list[str], data_dir: str | Path | None, download: bool):
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:  # pragma: no cover - tfds is in the [examples] extra
        raise DatasetNotFoundError(
            f"{name}: tensorflow-datasets is not installed (`pip install entropix-jax[examples]`). "
            + how_to_get(name)
        ) from e
    try:
        return tfds.data_source(
            name,
            split=splits,
            data_dir=None if data_dir is None else os.fspath(data_dir),
            download=download,
        )
    except Exception as e:  # tfds raises a variety of types for "not prepared here"
        where = data_dir if data_dir is not None else "the default tfds data_dir"
        # tfds's own text (prepare-with-flags advice, file formats) does not apply here.
        raise DatasetNotFoundError(
            f"{name}: no prepared tfds copy in {where}. " + how_to_get(name)
        ) from e


def load_tfds_images(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    include_extra: bool = False,
) -> Dataset:
    """Loads an image-classification dataset from tfds as raw arrays (no TensorFlow needed).

    Uses ``tfds.data_source`` (random-access ArrayRecord files). With internet, ``download=True``
    prepares the files once; offline, point ``data_dir`` to a prepared copy. Tests use
    ``tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE)``.

    Args:
      name: one of ``TFDS_IMAGE_NAMES``.
      data_dir: tfds data directory (default: tfds' own, ``~/tensorflow_datasets``).
      download: download and prepare if absent.
      include_extra: SVHN only: append the 531k ``extra`` images to the training set
        (≈600k images, as thesis ch. 5).

    Returns:
      A ``Dataset`` with ``uint8`` NHWC images and ``int32`` labels.

    Raises:
      DatasetNotFoundError: not prepared in ``data_dir`` and ``download=False``.

    Examples:
      >>> import tensorflow_datasets as tfds
      >>> with tfds.testing.mock_data(num_examples=4):
      ...     ds = load_tfds_images("cifar10")
      >>> ds.x_train.shape, ds.num_classes
      ((4, 32, 32, 3), 10)
    """
    if name not in TFDS_IMAGE_NAMES:
        raise ValueError(f"load_tfds_images: unknown name {name!r}; valid: {TFDS_IMAGE_NAMES}.")
    splits = ["train", "test"] + (["extra"] if include_extra and name == "svhn_cropped" else [])
    sources = _tfds_sources(name, splits, data_dir, download)
    arrays = []
    for source in sources:
        examples = _read_examples(source)
        images = np.stack([np.asarray(ex["image"], np.uint8) for ex in examples])
        labels = np.asarray([ex["label"] for ex in examples], np.int32)
        arrays.append((images, labels))
    if len(arrays) == 3:
        arrays[0] = tuple(np.concatenate(pair) for pair in zip(arrays[0], arrays[2], strict=True))
    num_classes = sources[0].dataset_info.features["label"].num_classes
    (x_train, y_train), (x_test, y_test) = arrays[0], arrays[1]
    return Dataset(name, x_train, y_train, x_test, y_test, int(num_classes))


def load_tiny_shakespeare(*, data_dir: str | Path | None = None, download: bool = False) -> Dataset:
    """tiny_shakespeare from tfds as a character corpus (train/validation/test as tfds splits them).

    The vocabulary is built from all three splits (≈65 characters).

    Args:
      data_dir: tfds data directory.
      download: download and prepare if absent.

    Returns:
      A text ``Dataset``.

    Raises:
      DatasetNotFoundError: not prepared and ``download=False``.

    Examples:
      >>> import tensorflow_datasets as tfds
      >>> with tfds.testing.mock_data(num_examples=1):
      ...     ds = load_tiny_shakespeare()
      >>> ds.x_train.dtype.name
      'int32'
    """
    sources = _tfds_sources("tiny_shakespeare", ["train", "validation", "test"], data_dir, download)
    texts = []
    for source in sources:
        parts = [ex["text"] for ex in _read_examples(source)]
        texts.append("".join(p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in parts))
    ds = char_dataset("".join(texts), name="tiny_shakespeare")
    vocab = ds.vocab
    splits = [encode(t, vocab) for t in texts]
    if min(len(s) for s in splits) < 2:
        raise DatasetNotFoundError(f"tiny_shakespeare: an empty split in {data_dir}.")
    return ds._replace(
        x_train=splits[0][:-1],
        y_train=splits[0][1:],
        x_valid=splits[1][:-1],
        y_valid=splits[1][1:],
        x_test=splits[2][:-1],
        y_test=splits[2][1:],
    )


def load_mnist1d(
    cache_dir: str | Path | None = None, *, seed: int = 42, num_samples: int = 5000
) -> Dataset:
    """MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package and cached.

    ``mnist1d.data.make_dataset`` with the package's default arguments (4,000 train / 1,000 test
    sequences of 40 features, 10 classes; ≈2 s). The arrays are cached as
    ``{cache_dir}/mnist1d_seed{seed}_n{num_samples}.npz`` so later loads are instant; a
    read-only cache directory only costs the regeneration. Published baselines: logistic ≈32%,
    MLP ≈68%, CNN ≈94% test accuracy.

    Args:
      cache_dir: cache directory (default ``default_cache_dir()``).
      seed: generation seed (42 is the published dataset's).
      num_samples: train + test size (80/20 split).

    Returns:
      A ``Dataset`` with ``float32`` ``(n, 40)`` inputs.

    Raises:
      DatasetNotFoundError: the ``mnist1d`` package is not installed.

    Examples:
      >>> import tempfile
      >>> ds = load_mnist1d(tempfile.mkdtemp(), num_samples=100)
      >>> ds.x_train.shape, ds.x_test.shape
      ((80, 40), (20, 40))
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / f"mnist1d_seed{seed}_n{num_samples}.npz"
    if path.is_file():
        with np.load(path) as f:
            arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    else:
        arrays = _generate_mnist1d(seed, num_samples)
        _save_npz(path, arrays)
    return Dataset(
        "mnist1d",
        arrays["x"].astype(np.float32),
        arrays["y"].astype(np.int32),
        arrays["x_test"].astype(np.float32),
        arrays["y_test"].astype(np.int32),
        10,
    )


def _generate_mnist1d(seed: int, num_samples: int) -> dict[str, np.ndarray]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise DatasetNotFoundError("mnist1d: " + how_to_get("mnist1d")) from e
    args = get_dataset_args()
    args.seed = seed
    args.num_samples = num_samples
    data = make_dataset(args)
    return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader never sees a half-written cache file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not cache {path.name} in {path.parent}: {e}", stacklevel=3)
