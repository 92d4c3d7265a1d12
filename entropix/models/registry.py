"""Model registry (``get_model``), example inputs and parameter counting."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from entropix.models import committee, convnets, lstm, mlp, wrn


class _Entry(NamedTuple):
    build: Callable[..., nn.Module]
    input_shape: tuple[int, ...]  # one example, batch axis included
    input_dtype: Any
    doc: str


_MNIST = (1, 28, 28, 1)
_CIFAR = (1, 32, 32, 3)

_REGISTRY: dict[str, _Entry] = {
    "mnistfc": _Entry(mlp.mnistfc, _MNIST, jnp.float32, "2×1024 MLP, BN, dropout (ch. 3/4)"),
    "small-mnistfc": _Entry(mlp.small_mnistfc, _MNIST, jnp.float32, "784-64-10 MLP (ch. 3)"),
    "deep-mnistfc": _Entry(mlp.deep_mnistfc, _MNIST, jnp.float32, "16×128 MLP (ch. 2)"),
    "small-fc": _Entry(mlp.small_fc, (1, 7, 7, 1), jnp.float32, "49-64-10 MLP with BN (ch. 6)"),
    "tiny-fc": _Entry(mlp.tiny_fc, (1, 7, 7, 1), jnp.float32, "49-16-5 MLP with BN (ch. 6)"),
    "lenet": _Entry(convnets.lenet, _MNIST, jnp.float32, "LeNet-BN 20/50/500 (ch. 3–5)"),
    "small-lenet": _Entry(convnets.small_lenet, _MNIST, jnp.float32, "LeNet 10/20/128 (ch. 3)"),
    "small-lenet-ch6": _Entry(
        convnets.small_lenet_ch6, _MNIST, jnp.float32, "LeNet-BN 8/16/128 (ch. 6)"
    ),
    "lenet-ch2": _Entry(convnets.lenet_ch2, _MNIST, jnp.float32, "block32→block64→512 (ch. 2)"),
    "mnist1d-cnn": _Entry(
        convnets.mnist1d_cnn, (1, 40), jnp.float32, "3× strided conv1d 25 → 10 (MNIST-1D)"
    ),
    "allcnn": _Entry(convnets.allcnn, _CIFAR, jnp.float32, "All-CNN-C with BN (ch. 2–5)"),
    "small-allcnn": _Entry(convnets.small_allcnn, _CIFAR, jnp.float32, "All-CNN 12/24 (ch. 6)"),
    "wrn": _Entry(wrn.WideResNet, _CIFAR, jnp.float32, "WRN-d-k (depth=, width=)"),
    "wrn-28-10": _Entry(wrn.wrn_28_10, _CIFAR, jnp.float32, "WRN-28-10 (ch. 5, CIFAR)"),
    "wrn-16-4": _Entry(wrn.wrn_16_4, _CIFAR, jnp.float32, "WRN-16-4 (ch. 5, SVHN)"),
    "char-lstm": _Entry(lstm.char_lstm, (1, 50), jnp.int32, "2×128 char LSTM (ch. 3)"),
    "char-lstm-hessian": _Entry(
        lstm.char_lstm_hessian, (1, 32), jnp.int32, "1×48 char LSTM (ch. 3 Hessian)"
    ),
    "ptb-lstm": _Entry(lstm.ptb_lstm, (1, 35), jnp.int32, "2×1500 LSTM, Zaremba large (ch. 3)"),
    "committee": _Entry(
        committee.CommitteeMachine, (1, 200), jnp.float32, "committee machine (slides)"
    ),
}

MODEL_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(MODEL_NAMES)
        raise ValueError(f"unknown model {name!r}; valid names: {valid}.") from None


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Returns the benchmark network ``name`` built with ``kwargs``.

    Args:
      name: one of ``MODEL_NAMES`` (e.g. ``"mnistfc"``, ``"allcnn"``, ``"wrn-28-10"``).
      **kwargs: constructor overrides (``dropout=``, ``num_classes=``, ``vocab_size=`` …).

    Returns:
      The Flax module; call it as ``model.apply(variables, x, train=...)``.

    Raises:
      ValueError: for an unknown name (the message lists the valid ones).

    Examples:
      >>> model = get_model("small-lenet")
      >>> count_params(model, example_input("small-lenet").shape)
      47658
    """
    return _entry(name).build(**kwargs)


def get_model_factory(name: str) -> Callable[..., nn.Module]:
    """The constructor behind ``get_model(name, ...)``, e.g. to inspect which kwargs it takes.

    Args:
      name: a model name.

    Returns:
      The callable (a constructor function or a module class).

    Examples:
      >>> import inspect
      >>> "num_classes" in inspect.signature(get_model_factory("lenet")).parameters
      True
    """
    return _entry(name).build


def example_input(name: str, batch_size: int = 1) -> jax.ShapeDtypeStruct:
    """Shape and dtype of a batch for model ``name`` (for ``init`` and ``jax.eval_shape``).

    Args:
      name: a model name.
      batch_size: leading dimension.

    Returns:
      A ``jax.ShapeDtypeStruct``.

    Examples:
      >>> example_input("allcnn", 8).shape
      (8, 32, 32, 3)
    """
    entry = _entry(name)
    return jax.ShapeDtypeStruct((batch_size, *entry.input_shape[1:]), entry.input_dtype)


def param_count(tree: Any) -> int:
    """Number of scalars in a pytree of arrays or ``jax.ShapeDtypeStruct``.

    Args:
      tree: e.g. ``variables["params"]``.

    Returns:
      The total size.

    Examples:
      >>> import jax.numpy as jnp
      >>> param_count({"w": jnp.zeros((3, 4)), "b": jnp.zeros(4)})
      16
    """
    return int(sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree)))


def init_shapes(model: nn.Module, input_shape: Sequence[int], dtype: Any = jnp.float32) -> Any:
    """Shapes of ``model.init`` variables without allocating or computing anything.

    Args:
      model: a Flax module taking ``(x, *, train)``.
      input_shape: shape of an input batch.
      dtype: input dtype (integer for token models).

    Returns:
      The variables as a pytree of ``jax.ShapeDtypeStruct``.

    Examples:
      >>> from entropix.models import lenet
      >>> sorted(init_shapes(lenet(), (1, 28, 28, 1)))
      ['batch_stats', 'params']
    """
    x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


def count_params(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    dtype: Any = jnp.float32,
    collections: Sequence[str] = ("params",),
) -> int:
    """Counts a model's parameters via ``jax.eval_shape`` (free even for the 66 M PTB-LSTM).

    Only the ``params`` collection by default, matching the papers' counts (BN scale and offset
    are parameters, BN running averages are not; add ``"batch_stats"`` to count them too).

    Args:
      model: a Flax module taking ``(x, *, train)``.
      input_shape: shape of an input batch.
      dtype: input dtype (``jnp.int32`` for token models).
      collections: variable collections to count.

    Returns:
      The number of scalars.

    Examples:
      >>> from entropix.models import small_mnistfc
      >>> count_params(small_mnistfc(), (1, 784))
      50890
    """
    shapes = init_shapes(model, input_shape, dtype)
    return param_count({c: shapes[c] for c in collections if c in shapes})
