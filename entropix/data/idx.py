"""Reader and writer for IDX files (MNIST, Fashion-MNIST, …), raw or gzip-compressed."""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import numpy as np

from entropix.data.dataset import DatasetNotFoundError, how_to_get

# IDX type byte → big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_DTYPE_CODES = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}

# train-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]; also "test" for "t10k".
_IDX_NAME = re.compile(r"(?P<split>train|t10k|test)[-_.](?P<kind>images|labels)[-_.].*idx\d")


class IdxFormatError(ValueError):
    """An IDX file is corrupt: bad magic number, unknown type, wrong size or truncated."""


def _read_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (EOFError, OSError, zlib.error) as e:
            raise IdxFormatError(f"{path}: corrupt or truncated gzip stream ({e}).") from e
    return path.read_bytes()


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parses the bytes of an IDX file.

    Layout: two zero bytes, a type byte, the number of dimensions ``d``, ``d`` big-endian uint32
    sizes, then the values in C order. Anything else is rejected: the size must match exactly
    (no silent truncation or trailing garbage).

    Args:
      data: the (decompressed) file content.
      name: the file name, used in error messages.

    Returns:
      The array, in native byte order.

    Raises:
      IdxFormatError: bad magic, unknown type code, or a size that does not match the header.

    Examples:
      >>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])).tolist()
      [7, 8, 9]
    """
    if len(data) < 4:
        raise IdxFormatError(
            f"{name}: only {len(data)} bytes, not an IDX file (header is 4+ bytes)."
        )
    zero0, zero1, type_code, ndim = data[:4]
    if zero0 or zero1 or type_code not in _IDX_DTYPES or ndim == 0:
        raise IdxFormatError(
            f"{name}: bad IDX magic number 0x{data[:4].hex()} (expected 0x0000TTDD with type TT "
            f"in {sorted(hex(c) for c in _IDX_DTYPES)} and DD ≥ 1 dimensions)."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(f"{name}: truncated header ({len(data)} of {header} bytes).")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise IdxFormatError(
            f"{name}: {what}: header says shape {shape} ({expected} bytes of data), "
            f"file has {actual} bytes of data."
        )
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Reads one IDX file (``.gz`` compressed or raw).

    Args:
      path: file path.

    Returns:
      The array (``uint8`` for image and label files).

    Raises:
      FileNotFoundError: the file does not exist.
      IdxFormatError: the file is corrupt; the message names the file.

    Examples:
      >>> import tempfile, numpy as np
      >>> path = Path(tempfile.mkdtemp()) / "x-idx1-ubyte.gz"
      >>> write_idx(path, np.arange(5, dtype=np.uint8))
      >>> read_idx(path).tolist()
      [0, 1, 2, 3, 4]
    """
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Writes ``array`` as an IDX file, gzip-compressed if the name ends in ``.gz``.

    Args:
      path: destination.
      array: values of a dtype IDX supports (uint8, int8, int16, int32, float32, float64).

    Examples:
      >>> import tempfile, numpy as np
      >>> path = Path(tempfile.mkdtemp()) / "y-idx2-ubyte"
      >>> write_idx(path, np.ones((2, 3), np.float32))
      >>> read_idx(path).shape
      (2, 3)
    """
    array = np.asarray(array)
    code = _DTYPE_CODES.get(array.dtype.newbyteorder("="))
    if code is None or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: dtype {array.dtype} / ndim {array.ndim} not representable.")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(_IDX_DTYPES[code]).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "wb", compresslevel=1) as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def find_idx_files(directory: str | Path) -> dict[tuple[str, str], Path]:
    """Finds ``{(split, kind): path}`` for the IDX files in ``directory``.

    ``split`` is ``"train"`` or ``"test"`` (file names with ``t10k`` or ``test``), ``kind`` is
    ``"images"`` or ``"labels"``. Raw files win over ``.gz`` when both exist.

    Args:
      directory: a directory such as ``/usr/share/datasets/fashion-mnist``.

    Returns:
      The files found (possibly empty).

    Examples:
      >>> find_idx_files("/nonexistent")
      {}
    """
    directory = Path(directory)
    found: dict[tuple[str, str], Path] = {}
    if not directory.is_dir():
        return found
    for path in sorted(directory.iterdir(), key=lambda p: (p.suffix == ".gz", p.name)):
        match = _IDX_NAME.match(path.name)
        if match and path.is_file():
            split = "train" if match["split"] == "train" else "test"
            found.setdefault((split, match["kind"]), path)
    return found


def load_idx_directory(
    directory: str | Path, name: str = "idx", num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Loads ``(x_train, y_train, x_test, y_test, num_classes)`` from a directory of IDX files.

    Expects the MNIST file names ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``
    (``test`` also accepted for ``t10k``). Images are returned as stored (``uint8``,
    ``(n, rows, cols)``); labels as ``int32``.

    Args:
      directory: the directory (real MNIST, Fashion-MNIST from ``apt-get install
        dataset-fashion-mnist``, KMNIST …).
      name: dataset name for error messages.
      num_classes: number of classes; default ``max(label) + 1``.

    Returns:
      The arrays and the number of classes.

    Raises:
      DatasetNotFoundError: a file is missing.
      IdxFormatError: a file is corrupt, labels and images disagree in count, or a label is
        outside ``[0, num_classes)``.

    Examples:
      >>> import tempfile, numpy as np
      >>> d = Path(tempfile.mkdtemp())
      >>> for split, n in (("train", 3), ("t10k", 2)):
      ...     write_idx(d / f"{split}-images-idx3-ubyte", np.zeros((n, 2, 2), np.uint8))
      ...     write_idx(d / f"{split}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8))
      >>> [a.shape for a in load_idx_directory(d)[:4]]
      [(3, 2, 2), (3,), (2, 2, 2), (2,)]
    """
    directory = Path(directory)
    files = find_idx_files(directory)
    missing = [
        f"{s}-{k}" for s in ("train", "test") for k in ("images", "labels") if (s, k) not in files
    ]
    if missing:
        raise DatasetNotFoundError(
            f"{name}: no IDX files for {missing} in {directory} (expected names like "
            "train-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz). " + how_to_get(name)
        )
    arrays = {}
    for split in ("train", "test"):
        images = read_idx(files[split, "images"])
        labels = read_idx(files[split, "labels"])
        if labels.ndim != 1:
            raise IdxFormatError(
                f"{files[split, 'labels']}: labels must be 1-D, got {labels.shape}."
            )
        if len(images) != len(labels):
            raise IdxFormatError(
                f"{name}: {len(images)} images in {files[split, 'images']} but {len(labels)} "
                f"labels in {files[split, 'labels']}; refusing to truncate."
            )
        arrays[split] = (images, labels.astype(np.int32))
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
    if num_classes is None:
        num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    for split, labels in (("train", y_train), ("test", y_test)):
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise IdxFormatError(
                f"{files[split, 'labels']}: labels span [{labels.min()}, {labels.max()}] but "
                f"{name} has {num_classes} classes; the label file belongs to another dataset."
            )
    return x_train, y_train, x_test, y_test, num_classes
