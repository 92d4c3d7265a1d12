"""IDX reader: round trips on files the test writes, corrupt-file errors, real Fashion-MNIST."""

import gzip

import numpy as np
import pytest

from entropix import data
from entropix.data import IdxFormatError

FASHION = data.FASHION_MNIST_APT_DIR


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, suffix, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = tmp_path / f"a-idx3{suffix}"
    data.write_idx(path, array)
    back = data.read_idx(path)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


def test_header_layout_is_big_endian(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    data.write_idx(path, np.array([7, 8, 9], np.uint8))
    # magic 0x00000801, then the size 3 as a big-endian uint32, then the values.
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])
    data.write_idx(path, np.array([258], np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 1, 1, 2])


def _write_raw(path, payload, gz=False):
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]), "bad IDX magic"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]), "bad IDX magic"),
        (bytes([0, 0, 8, 0]), "bad IDX magic"),
        (bytes([0, 0, 8]), "not an IDX file"),
        (bytes([0, 0, 8, 2, 0, 0]), "truncated header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3]), "truncated"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]), "trailing bytes"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_files_are_rejected_with_their_name(tmp_path, payload, message, gz):
    path = _write_raw(tmp_path / ("broken-idx1-ubyte" + (".gz" if gz else "")), payload, gz)
    with pytest.raises(IdxFormatError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_stream_is_rejected(tmp_path):
    good = tmp_path / "good-idx1-ubyte.gz"
    data.write_idx(good, np.arange(1000, dtype=np.uint8))
    cut = tmp_path / "cut-idx1-ubyte.gz"
    cut.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(IdxFormatError, match=r"cut-idx1-ubyte\.gz"):
        data.read_idx(cut)


def _write_mnist_dir(directory, n_train=6, n_test=4, gz=True, n_train_labels=None):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    arrays = {}
    for split, n, n_labels in (
        ("train", n_train, n_train_labels or n_train),
        ("t10k", n_test, n_test),
    ):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n_labels, dtype=np.uint8)
        data.write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images)
        data.write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels)
        arrays[split] = images, labels
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_directory(tmp_path, gz):
    arrays = _write_mnist_dir(tmp_path, gz=gz)
    x_train, y_train, x_test, y_test, num_classes = data.load_idx_directory(tmp_path)
    np.testing.assert_array_equal(x_train, arrays["train"][0])
    np.testing.assert_array_equal(y_train, arrays["train"][1])
    np.testing.assert_array_equal(x_test, arrays["t10k"][0])
    assert y_test.dtype == np.int32
    assert num_classes == max(arrays["train"][1].max(), arrays["t10k"][1].max()) + 1


def test_raw_files_win_over_gz(tmp_path):
    data.write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([1], np.uint8))
    data.write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([2], np.uint8))
    found = data.find_idx_files(tmp_path)
    assert found["train", "labels"].name == "train-labels-idx1-ubyte"


def test_label_count_mismatch_is_an_error(tmp_path):
    _write_mnist_dir(tmp_path, n_train=6, n_train_labels=5)
    with pytest.raises(IdxFormatError, match=r"6 images .* but 5 labels .*refusing to truncate"):
        data.load_idx_directory(tmp_path, "mnist")


def test_missing_files_say_how_to_get_them(tmp_path):
    data.write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_idx_directory(tmp_path, "fashion_mnist")
    message = str(info.value)
    assert "train-labels" in message and "test-images" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "download=True" in message and "data_dir" in message


def test_load_dataset_reads_an_idx_directory_with_the_papers_scaling(tmp_path):
    arrays = _write_mnist_dir(tmp_path)
    ds = data.load_dataset("mnist", data_dir=tmp_path)
    assert ds.x_train.shape == (6, 28, 28, 1) and ds.x_train.dtype == np.float32
    expected = arrays["train"][0][..., None] / 127.5 - 1.0
    np.testing.assert_allclose(ds.x_train, expected, rtol=1e-6, atol=1e-6)
    assert ds.num_classes == 10
    unit = data.load_dataset("mnist", data_dir=tmp_path, preprocessing="unit")
    np.testing.assert_allclose(unit.x_test, arrays["t10k"][0][..., None] / 255.0, atol=1e-7)


@pytest.mark.skipif(
    not FASHION.is_dir(),
    reason=f"{FASHION} absent (apt-get install dataset-fashion-mnist to run this test)",
)
def test_real_fashion_mnist():
    ds = data.load_dataset("fashion_mnist", preprocessing="none")
    assert ds.x_train.shape == (60_000, 28, 28, 1) and ds.x_test.shape == (10_000, 28, 28, 1)
    # Fashion-MNIST is balanced: 6,000 / 1,000 images per class.
    np.testing.assert_array_equal(np.bincount(ds.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_test), [1000] * 10)
    assert ds.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # ankle boot, T-shirt, …
    assert ds.x_train.min() == 0 and ds.x_train.max() == 255
