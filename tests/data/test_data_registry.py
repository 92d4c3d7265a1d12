"""load_dataset errors, the synthetic committee task and dataset-level helpers."""

import numpy as np
import pytest

from entropix import data


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'.*mnist.*cifar10.*mnist1d"):
        data.load_dataset("imagenet")
    with pytest.raises(ValueError, match=r"unknown preprocessing 'whiten'.*gcn_zca"):
        data.load_dataset("mnist1d", preprocessing="whiten")


def test_local_text_sources_need_a_path():
    with pytest.raises(ValueError, match="ptb: pass data_dir"):
        data.load_dataset("ptb")
    with pytest.raises(ValueError, match="text: pass path"):
        data.load_dataset("text")


def test_committee_task_is_labelled_by_its_teacher():
    ds, teacher = data.committee_teacher_student(seed=1, num_train=300, num_test=50)
    assert ds.x_train.shape == (300, 200) and set(np.unique(ds.x_train)) == {-1.0, 1.0}
    hidden = np.sign(ds.x_test @ teacher.T)
    np.testing.assert_array_equal(ds.y_test, np.sign(hidden.sum(1)))
    assert 0.3 < (ds.y_train > 0).mean() < 0.7  # a balanced random teacher
    same = data.load_dataset("committee", seed=1, num_train=300, num_test=50)
    np.testing.assert_array_equal(same.x_train, ds.x_train)
    with pytest.raises(ValueError, match="num_hidden=4 must be odd"):
        data.committee_teacher_student(num_hidden=4)


def _toy(n=100):
    rng = np.random.default_rng(0)
    return data.Dataset(
        "toy",
        rng.normal(size=(n, 3)).astype(np.float32),
        np.arange(n) % 10,
        rng.normal(size=(20, 3)).astype(np.float32),
        np.arange(20) % 10,
        10,
    )


def test_split_validation_holds_out_a_disjoint_fraction():
    ds = _toy()
    split = data.split_validation(ds, 0.12, seed=0)
    assert (split.num_train, len(split.x_valid)) == (88, 12)
    rows = {tuple(r) for r in split.x_train.tolist()} | {tuple(r) for r in split.x_valid.tolist()}
    assert len(rows) == 100  # a partition of the original training set
    np.testing.assert_array_equal(split.x_test, ds.x_test)
    x_valid, y_valid = split.split("valid")
    assert x_valid is split.x_valid and y_valid is split.y_valid
    with pytest.raises(ValueError, match="no validation split"):
        ds.split("valid")
    with pytest.raises(ValueError, match=r"fraction=1\.0"):
        data.split_validation(ds, 1.0)


def test_select_classes_relabels_in_the_given_order():
    ds = data.select_classes(_toy(), [4, 0, 1, 2, 3])
    assert ds.num_classes == 5
    assert ds.num_train == 50 and ds.num_test == 10
    original = _toy()
    kept = np.isin(original.y_train, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(ds.x_train, original.x_train[kept])
    np.testing.assert_array_equal(ds.y_train, (original.y_train[kept] + 1) % 5)


def test_max_train_examples_keeps_the_first_training_examples_only():
    full = data.load_dataset("committee", seed=1, num_train=300, num_test=50)
    head = data.load_dataset("committee", seed=1, num_train=300, num_test=50, max_train_examples=7)
    np.testing.assert_array_equal(head.x_train, full.x_train[:7])
    np.testing.assert_array_equal(head.y_train, full.y_train[:7])
    np.testing.assert_array_equal(head.x_test, full.x_test)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="max_train_examples="):
            data.load_dataset("committee", max_train_examples=bad)
    with pytest.raises(ValueError, match="token stream"):
        data.load_dataset("text", path=".", max_train_examples=4)
