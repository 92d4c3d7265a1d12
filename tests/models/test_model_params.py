"""Parameter counts of the benchmark networks (shape-only via jax.eval_shape) and the registry."""

import jax.numpy as jnp
import pytest

from entropix import models


def _dense(i, o, bias=True):
    return i * o + (o if bias else 0)


def _conv(k, i, o):
    return k * k * i * o + o


def _lstm(i, h, biases=1):
    return 4 * h * (i + h) + biases * 4 * h


# (registry name, kwargs, expected count, source of the number)
PAPER_COUNTS = [
    ("mnistfc", {}, 1_867_786, "Entropy-SGD reference code (ucla-vision/entropy-sgd), with BN"),
    ("mnistfc", {"batch_norm": False}, 1_863_690, "thesis §4.6.2 layout, weights and biases"),
    ("small-mnistfc", {}, 50_890, "thesis §3.3.1"),
    ("lenet", {}, 132_220, "Entropy-SGD reference code (BN after fc500 too)"),
    ("lenet", {"fc_batch_norm": False}, 131_220, "thesis §4.6.2"),
    ("small-lenet", {}, 47_658, "thesis §3.3.1"),
    ("small-lenet-ch6", {}, 13_338, "thesis §6.3.1"),
    ("small-allcnn", {}, 26_982, "thesis §6.3.1"),
    ("mnist1d-cnn", {}, 5_210, "Greydanus 2020, MNIST-1D CNN"),
    ("char-lstm-hessian", {}, 32_640, "thesis §3.3.1 (one layout giving the count)"),
    ("wrn-28-10", {}, 36_479_194, "Zagoruyko & Komodakis implementation"),
    ("wrn-16-4", {}, 2_748_890, "Zagoruyko & Komodakis implementation"),
]


@pytest.mark.parametrize(("name", "kwargs", "expected", "source"), PAPER_COUNTS)
def test_paper_parameter_counts(name, kwargs, expected, source):
    spec = models.example_input(name)
    count = models.count_params(models.get_model(name, **kwargs), spec.shape, dtype=spec.dtype)
    assert count == expected, source


def test_mnistfc_count_is_the_closed_form():
    weights = _dense(784, 1024) + _dense(1024, 1024) + _dense(1024, 10)
    bn = 2 * (2 * 1024)
    assert weights == 1_863_690
    assert models.count_params(models.mnistfc(), (1, 784)) == weights + bn


def test_allcnn_count_and_variants():
    c1, c2 = 96, 192
    convs = (
        _conv(3, 3, c1)
        + 2 * _conv(3, c1, c1)
        + _conv(3, c1, c2)
        + 4 * _conv(3, c2, c2)
        + _conv(1, c2, 10)
    )
    assert convs == 1_664_650  # weights and biases of the thesis §4.6.3 layout
    bn_3x3 = 2 * (3 * c1 + 5 * c2)
    assert bn_3x3 == 2_496
    shape = (1, 32, 32, 3)
    assert models.count_params(models.allcnn(), shape) == convs + bn_3x3 + 20
    no_cls_bn = models.AllCNN(classifier_batch_norm=False)
    assert models.count_params(no_cls_bn, shape) == convs + bn_3x3
    # CIFAR-100 head: the 1×1 classifier conv and its BN grow with the classes.
    delta = (_conv(1, c2, 100) + 200) - (_conv(1, c2, 10) + 20)
    assert models.count_params(models.allcnn(num_classes=100), shape) == 1_667_166 + delta


def test_ch6_and_ch2_networks():
    assert models.count_params(models.small_fc(), (1, 7, 7, 1)) == _dense(49, 64) + 128 + _dense(
        64, 10
    )
    assert models.count_params(models.tiny_fc(), (1, 7, 7, 1)) == _dense(49, 16) + 32 + _dense(
        16, 5
    )
    deep = _dense(784, 128) + 15 * _dense(128, 128) + _dense(128, 10)
    assert models.count_params(models.deep_mnistfc(), (1, 28, 28, 1)) == deep
    # SAME 5×5 convs, 3×3 pools: 28 → 9 → 3, 64·3·3 = 576 flattened units.
    block = _conv(5, 1, 32) + 64 + _conv(5, 32, 64) + 128 + _dense(576, 512) + _dense(512, 10)
    assert models.count_params(models.lenet_ch2(), (1, 28, 28, 1)) == block


def test_lstm_counts_follow_the_formula():
    vocab, hidden = 65, 128
    expected = _lstm(vocab, hidden) + _lstm(hidden, hidden) + _dense(hidden, vocab)
    model = models.char_lstm(vocab_size=vocab)
    assert models.count_params(model, (1, 50), dtype=jnp.int32) == expected
    # Zaremba large: embedding, two layers with two biases each, softmax; ≈66 M (ICLR table).
    v, h = 10_000, 1500
    ptb = v * h + 2 * _lstm(h, h, biases=2) + _dense(h, v)
    assert ptb == 66_034_000
    assert models.count_params(models.ptb_lstm(), (1, 35), dtype=jnp.int32) == ptb


def test_batch_stats_are_not_parameters_but_can_be_counted():
    model = models.lenet()
    shapes = models.init_shapes(model, (1, 28, 28, 1))
    assert models.param_count(shapes["batch_stats"]) == 2 * (20 + 50 + 500)
    both = models.count_params(model, (1, 28, 28, 1), collections=("params", "batch_stats"))
    assert both == 132_220 + 1_140


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown model 'resnet'.*mnistfc.*ptb-lstm"):
        models.get_model("resnet")


def test_registry_passes_kwargs():
    model = models.get_model("wrn", depth=16, width=4, num_classes=100)
    assert (model.depth, model.width, model.num_classes) == (16, 4, 100)
    assert models.example_input("char-lstm", 4).dtype == jnp.int32
    assert set(models.MODEL_NAMES) >= {"mnistfc", "allcnn", "wrn-28-10", "committee"}
    assert models.get_model_factory("tiny-fc") is models.tiny_fc


def test_wrn_rejects_bad_depth():
    with pytest.raises(ValueError, match="depth=20"):
        models.count_params(models.WideResNet(depth=20, width=1), (1, 32, 32, 3))
