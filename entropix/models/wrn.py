"""Wide residual networks WRN-d-k (Zagoruyko & Komodakis 2016), used by Parle (thesis ch. 5)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from entropix.models.mlp import BN_EPSILON, BN_MOMENTUM

# He initialisation on fan-out, as in the authors' reference implementation.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _batch_norm(train: bool) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON)


def _conv(features: int, kernel: int, stride: int) -> nn.Conv:
    pad = (kernel - 1) // 2
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        use_bias=False,
        kernel_init=_conv_init,
    )


class WideBasicBlock(nn.Module):
    """Pre-activation block: BN → ReLU → conv3×3/s → BN → ReLU → drop → conv3×3, plus shortcut.

    The shortcut is a 1×1 convolution (stride s) on the pre-activated input when the number of
    channels or the resolution changes, the identity otherwise.

    Attributes:
      features: output channels.
      stride: stride of the first convolution.
      dropout: dropout rate between the two convolutions.
    """

    features: int
    stride: int = 1
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Applies the block to ``(batch, H, W, C)``."""
        out = nn.relu(_batch_norm(train)(x))
        needs_projection = x.shape[-1] != self.features or self.stride != 1
        shortcut = _conv(self.features, 1, self.stride)(out) if needs_projection else x
        out = _conv(self.features, 3, self.stride)(out)
        out = nn.relu(_batch_norm(train)(out))
        if self.dropout:
            out = nn.Dropout(self.dropout, deterministic=not train)(out)
        out = _conv(self.features, 3, 1)(out)
        return out + shortcut


class WideResNet(nn.Module):
    """WRN-d-k: conv 16 → 3 groups of (d−4)/6 blocks (16k, 32k, 64k) → BN → ReLU → pool → dense.

    Parameter counts (CIFAR-10, 10 classes): WRN-28-10 36,479,194; WRN-16-4 2,748,890
    (the counts of the authors' implementation: convolutions without bias, BN after the last group).

    Attributes:
      depth: d, with (d − 4) divisible by 6.
      width: widening factor k.
      num_classes: number of classes.
      dropout: dropout between the convolutions of each block (0.3 CIFAR, 0.4 SVHN in thesis ch. 5).

    Examples:
      >>> from entropix.models import count_params
      >>> count_params(WideResNet(depth=16, width=4), (1, 32, 32, 3))
      2748890
    """

    depth: int = 28
    width: int = 10
    num_classes: int = 10
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Returns logits ``(batch, num_classes)`` for images ``(batch, H, W, C)``."""
        if self.depth < 10 or (self.depth - 4) % 6:
            raise ValueError(
                f"WideResNet: depth={self.depth} is invalid; use 6n + 4 (e.g. 16, 22, 28, 40)."
            )
        blocks_per_group = (self.depth - 4) // 6
        x = _conv(16, 3, 1)(x)
        for group, stride in enumerate((1, 2, 2)):
            features = 16 * self.width * 2**group
            for i in range(blocks_per_group):
                x = WideBasicBlock(features, stride if i == 0 else 1, self.dropout)(x, train=train)
        x = nn.relu(_batch_norm(train)(x))
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes)(x)


def wrn_28_10(*, num_classes: int = 10, dropout: float = 0.3) -> WideResNet:
    """WRN-28-10 (thesis ch. 5, CIFAR-10/100, dropout 0.3): 36.5 M parameters.

    Args:
      num_classes: number of classes.
      dropout: dropout inside each block.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> count_params(wrn_28_10(), (1, 32, 32, 3))
      36479194
    """
    return WideResNet(depth=28, width=10, num_classes=num_classes, dropout=dropout)


def wrn_16_4(*, num_classes: int = 10, dropout: float = 0.4) -> WideResNet:
    """WRN-16-4 (thesis ch. 5, SVHN, dropout 0.4): 2.75 M parameters.

    Args:
      num_classes: number of classes.
      dropout: dropout inside each block.

    Returns:
      The Flax module.

    Examples:
      >>> from entropix.models import count_params
      >>> count_params(wrn_16_4(), (1, 32, 32, 3))
      2748890
    """
    return WideResNet(depth=16, width=4, num_classes=num_classes, dropout=dropout)
