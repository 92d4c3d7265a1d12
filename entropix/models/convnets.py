"""Convolutional networks of the papers: LeNet family and All-CNN-C with batch normalization."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from entropix.models.mlp import BN_EPSILON, BN_MOMENTUM


def _batch_norm(train: bool) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON)


def _as_nhwc(x: jax.Array) -> jax.Array:
    # Gray-scale images may arrive as (batch, H, W); Flax convolutions want a channel axis.
    return x[..., None] if x.ndim == 3 else x


class LeNet(nn.Module):
    """LeNet-style network: (conv → [BN] → ReLU → pool → [drop])×k → dense → [BN] → ReLU → dense.

    Covers the LeNet variants of the thesis with one definition (see the constructor functions
    ``lenet``, ``small_lenet``, ``small_lenet_ch6``, ``lenet_ch2``). Pooling windows are
    non-overlapping (stride = window), as in the reference code.

    Attributes:
      channels: output channels of the convolutions.
      pool_sizes: max-pool window (and stride) after each convolution.
      hidden: width of the hidden dense layer.
      num_classes: number of outputs.
      kernel_size: convolution kernel size.
      padding: ``"VALID"`` (reference LeNet) or ``"SAME"``.
      conv_batch_norm: batch normalization after every convolution.
      fc_batch_norm: batch normalization after the hidden dense layer.
      conv_dropout: dropout rate after every convolutional block.
      fc_dropout: dropout rate after the hidden dense layer.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> model = LeNet(channels=(10, 20), pool_sizes=(2, 2), hidden=128)
      >>> x = jax.ShapeDtypeStruct((3, 28, 28, 1), jnp.float32)
      >>> def forward(x):
      ...     variables = model.init(jax.random.key(0), x, train=False)
      ...     return model.apply(variables, x, train=False)
      >>> jax.eval_shape(forward, x).shape
      (3, 10)
    """

    channels: Sequence[int] = (20, 50)
    pool_sizes: Sequence[int] = (3, 2)
    hidden: int = 500
    num_classes: int = 10
    kernel_size: int = 5
    padding: str = "VALID"
    conv_batch_norm: bool = True
    fc_batch_norm: bool = True
    conv_dropout: float = 0.0
    fc_dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Returns logits ``(batch, num_classes)`` for images ``(batch, H, W, C)``."""
        if len(self.channels) != len(self.pool_sizes):
            raise ValueError(
                f"LeNet: channels {tuple(self.channels)} and pool_sizes {tuple(self.pool_sizes)} "
                "must have the same length (one pooling per convolution)."
            )
        x = _as_nhwc(x)
        for features, pool in zip(self.channels, self.pool_sizes, strict=True):
            x = nn.Conv(features, (self.kernel_size, self.kernel_size), padding=self.padding)(x)
            if self.conv_batch_norm:
                x = _batch_norm(train)(x)
            x = nn.relu(x)
            x = nn.max_pool(x, (pool, pool), strides=(pool, pool))
            if self.conv_dropout:
                x = nn.Dropout(self.conv_dropout, deterministic=not train)(x)
        x = jnp.reshape(x, (x.shape[0], -1))
        x = nn.Dense(self.hidden)(x)
        if self.fc_batch_norm:
            x = _batch_norm(train)(x)
        x = nn.relu(x)
        if self.fc_dropout:
            x = nn.Dropout(self.fc_dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes)(x)


def lenet(*, dropout: float = 0.25, fc_batch_norm: bool = True, num_classes: int = 10) -> LeNet:
    """LeNet-BN (thesis ch. 3–5): conv5×5 20, BN, pool 3 → conv5×5 50, BN, pool 2 → 500, BN → 10.

    Parameter count: 132,220 with the batch normalization after the 500-unit layer (the
    reference code, thesis ch. 3), 131,220 with ``fc_batch_norm=False`` (the ch. 4 count,
    BN on the two convolutions only). Dropout 0.25 after every block (ch. 4/5; ch. 3's
    baseline uses 0.5).

    Args:
      dropout: dropout rate after each convolutional block and after the hidden dense layer.
      fc_batch_norm: batch normalization after the hidden dense layer.
      num_classes: number of classes.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> count_params(lenet(), (1, 28, 28, 1))
      132220
    """
    return LeNet(
        channels=(20, 50),
        pool_sizes=(3, 2),
        hidden=500,
        num_classes=num_classes,
        fc_batch_norm=fc_batch_norm,
        conv_dropout=dropout,
        fc_dropout=dropout,
    )


def small_lenet(*, num_classes: int = 10) -> LeNet:
    """small-LeNet (thesis ch. 3 Hessian): conv5×5 10, pool 2 → conv5×5 20, pool 2 → 128 → 10.

    Exactly 47,658 parameters (no batch normalization, no dropout; 320 = 20·4·4 flattened units).

    Args:
      num_classes: number of classes.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> count_params(small_lenet(), (1, 28, 28, 1))
      47658
    """
    return LeNet(
        channels=(10, 20),
        pool_sizes=(2, 2),
        hidden=128,
        num_classes=num_classes,
        conv_batch_norm=False,
        fc_batch_norm=False,
    )


def small_lenet_ch6(*, dropout: float = 0.1, num_classes: int = 10) -> LeNet:
    """small-lenet of thesis ch. 6: LeNet-BN with 8 and 16 channels, 128 hidden units, dropout 0.1.

    Exactly 13,338 parameters (the LeNet-BN layout with BN after the hidden dense layer too;
    without that BN it would be 13,082).

    Args:
      dropout: dropout rate after each block.
      num_classes: number of classes.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> count_params(small_lenet_ch6(), (1, 28, 28, 1))
      13338
    """
    return LeNet(
        channels=(8, 16),
        pool_sizes=(3, 2),
        hidden=128,
        num_classes=num_classes,
        conv_dropout=dropout,
        fc_dropout=dropout,
    )


def lenet_ch2(*, dropout: float = 0.1, num_classes: int = 10) -> LeNet:
    """LeNet-style net of thesis ch. 2: block32 → block64 → linear512 → drop 0.1 → softmax.

    blockC = conv5×5 with C features, 3×3 max-pool, batch normalization. The thesis leaves the
    padding and the order open; we use ``"SAME"`` convolutions (28 → 9 → 3 after pooling, 576
    flattened units) and the LeNet block order conv → BN → ReLU → pool (BN before the pooling
    normalizes the same channels; the parameter count does not change), which gives 352,842
    parameters. No count is stated in the thesis.

    Args:
      dropout: dropout rate after the 512-unit layer.
      num_classes: number of classes.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> count_params(lenet_ch2(), (1, 28, 28, 1))
      352842
    """
    return LeNet(
        channels=(32, 64),
        pool_sizes=(3, 3),
        hidden=512,
        num_classes=num_classes,
        padding="SAME",
        fc_batch_norm=False,
        fc_dropout=dropout,
    )


class AllCNN(nn.Module):
    """All-CNN-C with batch normalization (thesis ch. 2–6, reference code ``allcnn``).

    ``drop 0.2 → conv3×3 c1 ×2 → conv3×3/2 c1 → drop → conv3×3 c2 ×2 → conv3×3/2 c2 → drop →
    conv3×3 c2 ×2 → conv1×1 num_classes → global mean-pool``; every convolution is followed by
    batch normalization (and ReLU, except the classifier convolution, so logits keep their sign).
    Padding 1 on every 3×3 convolution (as the reference code), so 32 → 16 → 8 spatially.

    Attributes:
      channels: ``(c1, c2)``: 96, 192 for allcnn; 12, 24 for small-allcnn.
      num_classes: number of classes.
      batch_norm: batch normalization after every 3×3 convolution.
      classifier_batch_norm: batch normalization after the final 1×1 convolution (reference code).
      input_dropout: dropout on the input image.
      dropout: dropout after each of the two stride-2 convolutions.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> model = AllCNN(channels=(12, 24))
      >>> x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
      >>> variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
      >>> sorted(variables), variables["params"]["Conv_0"]["kernel"].shape
      (['batch_stats', 'params'], (3, 3, 3, 12))
    """

    channels: Sequence[int] = (96, 192)
    num_classes: int = 10
    batch_norm: bool = True
    classifier_batch_norm: bool = True
    input_dropout: float = 0.2
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Returns logits ``(batch, num_classes)`` for images ``(batch, 32, 32, 3)``."""
        c1, c2 = self.channels
        x = _as_nhwc(x)
        if self.input_dropout:
            x = nn.Dropout(self.input_dropout, deterministic=not train)(x)
        plan = [(c1, 1), (c1, 1), (c1, 2), None, (c2, 1), (c2, 1), (c2, 2), None, (c2, 1), (c2, 1)]
        for layer in plan:
            if layer is None:
                if self.dropout:
                    x = nn.Dropout(self.dropout, deterministic=not train)(x)
                continue
            features, stride = layer
            x = nn.Conv(features, (3, 3), strides=(stride, stride), padding=((1, 1), (1, 1)))(x)
            if self.batch_norm:
                x = _batch_norm(train)(x)
            x = nn.relu(x)
        x = nn.Conv(self.num_classes, (1, 1))(x)
        if self.classifier_batch_norm:
            x = _batch_norm(train)(x)
        return jnp.mean(x, axis=(1, 2))


def allcnn(*, num_classes: int = 10, dropout: float = 0.5) -> AllCNN:
    """All-CNN-C with BN (allcnn / All-CNN-BN of the thesis), channels 96 and 192.

    1,667,166 parameters (1,664,650 weights and biases + 2,516 BN scales and offsets, BN after
    all nine convolutions as in the reference code); 1,667,146 with
    ``classifier_batch_norm=False`` (the thesis ch. 4 derivation). The count 1,666,782 of the
    reference code's layout (github.com/ucla-vision/entropy-sgd, ``python/models.py``) matches
    neither (it is 384 = 2·192 less than ours, one 192-channel BN short).

    Args:
      num_classes: number of classes (10 or 100).
      dropout: dropout after the stride-2 convolutions.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> count_params(allcnn(), (1, 32, 32, 3))
      1667166
    """
    return AllCNN(channels=(96, 192), num_classes=num_classes, dropout=dropout)


def small_allcnn(*, num_classes: int = 10, dropout: float = 0.5) -> AllCNN:
    """small-allcnn of thesis ch. 6: All-CNN-C with BN and 12, 24 channels.

    Exactly 26,982 parameters for 10 classes (the count requires BN after the classifier
    convolution too, as in the reference code).

    Args:
      num_classes: number of classes (10 or 100).
      dropout: dropout after the stride-2 convolutions.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> count_params(small_allcnn(), (1, 32, 32, 3))
      26982
    """
    return AllCNN(channels=(12, 24), num_classes=num_classes, dropout=dropout)


class Conv1DNet(nn.Module):
    """Strided 1-D convolutional classifier: (conv1d → ReLU)×k → flatten → dense.

    For sequences of scalar features such as MNIST-1D ``(batch, 40)``; no pooling, the strides
    shrink the sequence. A channel axis is added to 2-D inputs.

    Attributes:
      channels: output channels of the convolutions.
      kernel_sizes: kernel size of each convolution.
      strides: stride of each convolution.
      padding: symmetric zero padding of each convolution.
      num_classes: number of outputs.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> model = Conv1DNet()
      >>> x = jnp.zeros((2, 40))
      >>> model.apply(model.init(jax.random.key(0), x, train=False), x, train=False).shape
      (2, 10)
    """

    channels: Sequence[int] = (25, 25, 25)
    kernel_sizes: Sequence[int] = (5, 3, 3)
    strides: Sequence[int] = (2, 2, 2)
    padding: int = 1
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Returns logits ``(batch, num_classes)`` for sequences ``(batch, T[, C])``."""
        del train  # no dropout or batch normalization
        if not len(self.channels) == len(self.kernel_sizes) == len(self.strides):
            raise ValueError(
                f"Conv1DNet: channels {tuple(self.channels)}, kernel_sizes "
                f"{tuple(self.kernel_sizes)} and strides {tuple(self.strides)} must have the "
                "same length (one entry per convolution)."
            )
        x = x[..., None] if x.ndim == 2 else x
        layers = zip(self.channels, self.kernel_sizes, self.strides, strict=True)
        for features, kernel, stride in layers:
            pad = ((self.padding, self.padding),)
            x = nn.relu(nn.Conv(features, (kernel,), strides=(stride,), padding=pad)(x))
        x = jnp.reshape(x, (x.shape[0], -1))
        return nn.Dense(self.num_classes)(x)


def mnist1d_cnn(*, num_classes: int = 10) -> Conv1DNet:
    """The MNIST-1D benchmark CNN (Greydanus 2020): three strided 1-D convolutions of 25 channels.

    Kernel 5, 3, 3, stride 2, padding 1: the 40 features shrink to 19, 10, 5, then a dense layer
    reads the 125 flattened units. Exactly 5,210 parameters. Greydanus reports ≈ 94% test
    accuracy for this architecture (vs ≈ 68% for an MLP).

    Args:
      num_classes: number of outputs.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> count_params(mnist1d_cnn(), (1, 40))
      5210
    """
    return Conv1DNet(num_classes=num_classes)
