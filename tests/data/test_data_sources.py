"""tfds pipelines (mock data, no TensorFlow), MNIST-1D generation and caching, text corpora."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from entropix import data
from entropix.data import preprocess

tfds = pytest.importorskip("tensorflow_datasets")


def _mock(num_examples):
    return tfds.testing.mock_data(
        policy=tfds.testing.MockPolicy.USE_CODE, num_examples=num_examples
    )


@pytest.mark.parametrize(
    ("name", "shape", "classes"),
    [
        ("mnist", (28, 28, 1), 10),
        ("fashion_mnist", (28, 28, 1), 10),
        ("cifar10", (32, 32, 3), 10),
        ("cifar100", (32, 32, 3), 100),
        ("svhn_cropped", (32, 32, 3), 10),
    ],
)
def test_tfds_image_sources(tmp_path, name, shape, classes):
    with _mock(6):
        ds = data.load_tfds_images(name, data_dir=tmp_path)
    assert ds.name == name and ds.num_classes == classes
    assert ds.x_train.shape == (6, *shape) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (6, *shape)
    assert ds.y_train.dtype == np.int32
    assert 0 <= ds.y_train.min() and ds.y_train.max() < classes


def test_tfds_svhn_extra_split_is_appended(tmp_path):
    with _mock(5):
        ds = data.load_tfds_images("svhn_cropped", data_dir=tmp_path, include_extra=True)
    assert ds.x_train.shape[0] == 10 and ds.x_test.shape[0] == 5


def test_load_dataset_cifar_defaults_to_gcn_then_zca_fitted_on_train(tmp_path, monkeypatch):
    # A real 3072-dim ZCA fit costs tens of seconds here; the ZCA maths is tested in
    # test_data_preprocess. This test checks the wiring: GCN, fit on train, apply to both.
    fitted = []

    def fake_fit(x, eps):
        fitted.append((x.copy(), eps))
        return data.ZCA(mean=x.reshape(len(x), -1).mean(0), matrix=2.0 * np.eye(3072), rank=3072)

    monkeypatch.setattr(preprocess, "fit_zca", fake_fit)
    with _mock(8):
        raw = data.load_tfds_images("cifar10", data_dir=tmp_path)
        ds = data.load_dataset("cifar10", data_dir=tmp_path, zca_eps=0.3)
    gcn_train = data.global_contrast_normalize(raw.x_train)
    gcn_test = data.global_contrast_normalize(raw.x_test)
    [(fit_input, eps)] = fitted
    np.testing.assert_allclose(fit_input, gcn_train, rtol=1e-6)
    assert eps == 0.3
    mean = gcn_train.reshape(8, -1).mean(0).reshape(32, 32, 3)
    np.testing.assert_allclose(ds.x_test, 2.0 * (gcn_test - mean), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(ds.y_train, raw.y_train)
    with _mock(4):
        svhn = data.load_dataset("svhn_cropped", data_dir=tmp_path)  # GCN only (thesis ch. 5)
    assert len(fitted) == 1
    flat = svhn.x_train.reshape(4, -1)
    np.testing.assert_allclose(np.linalg.norm(flat, axis=1), 55.0, rtol=1e-4)


def test_tiny_shakespeare_is_a_next_character_corpus(tmp_path):
    with _mock(1):
        ds = data.load_dataset("tiny_shakespeare", data_dir=tmp_path)
    assert ds.vocab is not None and ds.num_classes == len(ds.vocab)
    np.testing.assert_array_equal(ds.x_train[1:], ds.y_train[:-1])
    assert len(ds.x_valid) > 0 and len(ds.x_test) > 0


def test_missing_tfds_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_dataset("cifar100", data_dir=tmp_path)
    message = str(info.value)
    assert "cifar100" in message and str(tmp_path) in message
    assert "download=True" in message and "data_dir" in message


def test_fashion_mnist_falls_back_to_tfds_for_a_directory_without_idx(tmp_path):
    with _mock(3):
        ds = data.load_dataset("fashion_mnist", data_dir=tmp_path, preprocessing="none")
    assert ds.x_train.shape == (3, 28, 28, 1)


def test_mnist1d_matches_the_package_and_is_cached(tmp_path, monkeypatch):
    mnist1d_data = pytest.importorskip("mnist1d.data")
    ds = data.load_mnist1d(tmp_path, num_samples=200, seed=3)
    args = mnist1d_data.get_dataset_args()
    args.num_samples, args.seed = 200, 3
    reference = mnist1d_data.make_dataset(args)
    np.testing.assert_allclose(ds.x_train, reference["x"], rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, reference["y_test"])
    assert ds.x_train.shape == (160, 40) and ds.x_test.shape == (40, 40)
    assert (tmp_path / "mnist1d_seed3_n200.npz").is_file()

    def fail(*args, **kwargs):
        raise AssertionError("regenerated instead of reading the cache")

    monkeypatch.setattr(mnist1d_data, "make_dataset", fail)
    cached = data.load_dataset("mnist1d", cache_dir=tmp_path, num_samples=200, seed=3)
    np.testing.assert_array_equal(cached.x_train, ds.x_train)


def test_mnist1d_unwritable_cache_only_warns(tmp_path):
    pytest.importorskip("mnist1d")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = data.load_mnist1d(blocker / "cache", num_samples=100)
    assert ds.x_train.shape == (80, 40)
    assert any("could not cache" in str(w.message) for w in caught)


def test_char_corpus_from_file_and_directory(tmp_path):
    (tmp_path / "a.txt").write_text("abcd" * 25, encoding="utf-8")
    (tmp_path / "b.txt").write_text("xy" * 50, encoding="utf-8")
    ds = data.load_dataset("text", path=tmp_path / "a.txt")
    assert ds.vocab == ("a", "b", "c", "d") and ds.num_classes == 4
    assert (len(ds.x_train), len(ds.x_valid), len(ds.x_test)) == (79, 9, 9)
    np.testing.assert_array_equal(ds.x_train[:5], [0, 1, 2, 3, 0])
    np.testing.assert_array_equal(ds.y_train[:4], [1, 2, 3, 0])
    both = data.load_dataset("text", data_dir=tmp_path)
    assert both.vocab == ("a", "b", "c", "d", "x", "y")
    with pytest.raises(data.DatasetNotFoundError, match="no text"):
        data.load_text_corpus(tmp_path / "missing.txt")


def test_ptb_from_local_files(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" the cat sat \n the dog <unk> \n", encoding="utf-8")
    (tmp_path / "ptb.valid.txt").write_text(" the dog sat \n", encoding="utf-8")
    (tmp_path / "ptb.test.txt").write_text(" a cat \n", encoding="utf-8")
    with pytest.raises(ValueError, match="token 'a' is not in the vocabulary"):
        data.load_dataset("ptb", data_dir=tmp_path)
    (tmp_path / "ptb.test.txt").write_text(" the cat \n", encoding="utf-8")
    ds = data.load_dataset("ptb", data_dir=tmp_path)
    assert ds.vocab == ("<eos>", "<unk>", "cat", "dog", "sat", "the")
    words = [ds.vocab[i] for i in [*ds.x_train, ds.y_train[-1]]]
    assert words == ["the", "cat", "sat", "<eos>", "the", "dog", "<unk>", "<eos>"]
    assert [ds.vocab[i] for i in ds.y_test] == ["cat", "<eos>"]
    (tmp_path / "ptb.valid.txt").unlink()
    with pytest.raises(data.DatasetNotFoundError, match=r"ptb\.valid\.txt"):
        data.load_dataset("ptb", data_dir=tmp_path)


def test_importing_the_subpackages_stays_light():
    code = (
        "import sys, entropix.data; "
        "heavy = [m for m in ('flax', 'tensorflow_datasets', 'mnist1d', 'tensorflow') "
        "if m in sys.modules]; "
        "import entropix.models; "
        "heavy += [m for m in ('tensorflow_datasets', 'mnist1d') if m in sys.modules]; "
        "print(heavy)"
    )
    # A fresh interpreter that finds this checkout first, installed or not.
    root = str(Path(data.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"
