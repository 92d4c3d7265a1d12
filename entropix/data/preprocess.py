"""The papers' preprocessing (scaling, GCN, ZCA) and optional on-device augmentation."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

_CHUNK = 4096  # rows per float64 block in the ZCA fit/apply


def scale_unit(x: np.ndarray) -> np.ndarray:
    """Maps ``uint8`` pixels to ``float32`` in [0, 1].

    Args:
      x: pixels in 0…255.

    Returns:
      ``x / 255`` as float32.

    Examples:
      >>> scale_unit(np.array([0, 255], np.uint8)).tolist()
      [0.0, 1.0]
    """
    return np.asarray(x, np.float32) / np.float32(255.0)


def scale_symmetric(x: np.ndarray) -> np.ndarray:
    """Maps ``uint8`` pixels to ``float32`` in [−1, 1] (the thesis' MNIST preprocessing).

    Args:
      x: pixels in 0…255.

    Returns:
      ``2 x / 255 − 1`` as float32.

    Examples:
      >>> scale_symmetric(np.array([0, 255], np.uint8)).tolist()
      [-1.0, 1.0]
    """
    return scale_unit(x) * np.float32(2.0) - np.float32(1.0)


def standardize(
    x_train: np.ndarray, *others: np.ndarray, per_feature: bool = False, eps: float = 1e-8
) -> tuple[np.ndarray, ...]:
    """Standardizes with the training mean and standard deviation, applied to every array.

    Args:
      x_train: training inputs (statistics are fitted on these only).
      *others: further arrays (validation, test) to transform with the same statistics.
      per_feature: one mean/std per feature (pixel) instead of one global scalar.
      eps: floor of the standard deviation (constant pixels such as MNIST borders).

    Returns:
      The standardized arrays, float32, in the order given.

    Examples:
      >>> a, b = standardize(np.array([0.0, 2.0]), np.array([4.0]))
      >>> a.tolist(), b.tolist()
      ([-1.0, 1.0], [3.0])
    """
    train = np.asarray(x_train, np.float64)
    axis = 0 if per_feature else None
    mean = train.mean(axis=axis)
    std = np.maximum(train.std(axis=axis), eps)
    return tuple(
        ((np.asarray(x, np.float64) - mean) / std).astype(np.float32) for x in (train, *others)
    )


def global_contrast_normalize(
    x: np.ndarray, scale: float = 55.0, sqrt_bias: float = 0.0, min_divisor: float = 1e-8
) -> np.ndarray:
    r"""Per-example global contrast normalization (Goodfellow et al. 2013, pylearn2).

    .. math::
      x \leftarrow s\,\frac{x - \bar x}{\sqrt{\lambda + \|x - \bar x\|^2}}

    with the mean and norm over all pixels and channels of one example; divisors below
    ``min_divisor`` (constant images) are replaced by 1. ``scale=55`` (pylearn2's CIFAR-10 value)
    gives per-pixel values of order 1 on 32×32×3 images.

    Args:
      x: ``(n, ...)`` images, any dtype.
      scale: s.
      sqrt_bias: λ.
      min_divisor: threshold below which the divisor is 1.

    Returns:
      float32 array of the shape of ``x``.

    Examples:
      >>> y = global_contrast_normalize(np.array([[1.0, 3.0]]), scale=1.0)
      >>> y.tolist()  # zero mean, unit norm
      [[-0.7071067690849304, 0.7071067690849304]]
    """
    flat = np.asarray(x, np.float64).reshape(len(x), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norms = np.sqrt(sqrt_bias + np.sum(flat**2, axis=1, keepdims=True)) / scale
    norms[norms < min_divisor] = 1.0
    return (flat / norms).reshape(np.shape(x)).astype(np.float32)


class ZCA(NamedTuple):
    """A fitted ZCA whitening: ``x ↦ (x − mean) W`` with ``W = U diag((λ + ε)^{-1/2}) Uᵀ``.

    Attributes:
      mean: training mean of the flattened inputs, ``(d,)``.
      matrix: symmetric whitening matrix ``(d, d)``.
      rank: number of retained eigen-directions.
    """

    mean: np.ndarray
    matrix: np.ndarray
    rank: int


def fit_zca(x: np.ndarray, eps: float = 0.1, rank_tol: float = 1e-6) -> ZCA:
    """Fits ZCA whitening on training inputs (apply the result to train and test alike).

    Directions whose covariance eigenvalue is below ``rank_tol · λ_max`` are dropped (GCN removes
    each image's mean, so the covariance is singular along the all-ones direction); on the
    retained subspace the whitened training covariance is ``λ / (λ + ε)``, the identity for
    ``ε = 0``. ``ε`` regularizes small eigenvalues (pylearn2's ``filter_bias``, 0.1 by default for
    GCN-scaled CIFAR). The fit is in float64 and costs O(n d² + d³) (≈10 s for CIFAR on 2 cores).

    Args:
      x: ``(n, ...)`` training inputs.
      eps: ε added to every eigenvalue.
      rank_tol: relative eigenvalue threshold of the retained subspace.

    Returns:
      The fitted ``ZCA``.

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> x = rng.normal(size=(500, 3)) @ np.diag([1.0, 2.0, 3.0])
      >>> w = apply_zca(fit_zca(x, eps=0.0), x).reshape(500, 3)
      >>> np.allclose(np.cov(w, rowvar=False, bias=True), np.eye(3), atol=1e-5)
      True
    """
    flat = np.asarray(x).reshape(len(x), -1)
    mean = flat.mean(axis=0, dtype=np.float64)
    cov = np.zeros((flat.shape[1], flat.shape[1]))
    # Chunks keep the float64 copy small (CIFAR's 50000 × 3072 would need 1.2 GB at once).
    for start in range(0, len(flat), _CHUNK):
        centered = flat[start : start + _CHUNK].astype(np.float64) - mean
        cov += centered.T @ centered
    cov /= len(flat)
    eigvals, eigvecs = np.linalg.eigh(cov)
    keep = eigvals > rank_tol * max(eigvals.max(), 0.0)
    u = eigvecs[:, keep]
    matrix = (u / np.sqrt(eigvals[keep] + eps)) @ u.T
    return ZCA(mean=mean, matrix=matrix, rank=int(keep.sum()))


def apply_zca(zca: ZCA, x: np.ndarray) -> np.ndarray:
    """Whitens ``x`` with a fitted ``ZCA``; the shape of ``x`` is kept.

    Args:
      zca: result of ``fit_zca`` on the training set.
      x: ``(n, ...)`` inputs with the training inputs' feature shape.

    Returns:
      float32 whitened inputs.

    Examples:
      >>> zca = fit_zca(np.array([[0.0, 0.0], [2.0, 2.0]]), eps=0.0)
      >>> np.allclose(apply_zca(zca, np.array([[2.0, 2.0]])), [[0.5**0.5, 0.5**0.5]])
      True
    """
    flat = np.asarray(x).reshape(len(x), -1)
    out = np.empty(flat.shape, np.float32)
    for start in range(0, len(flat), _CHUNK):
        chunk = flat[start : start + _CHUNK].astype(np.float64) - zca.mean
        out[start : start + _CHUNK] = chunk @ zca.matrix
    return out.reshape(np.shape(x))


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Average-pools ``(n, H, W[, C])`` images by ``factor`` (e.g. 28×28 MNIST → 7×7 with 4).

    Args:
      x: images with H and W divisible by ``factor``.
      factor: pooling window and stride.

    Returns:
      float32 images of size ``(H/factor, W/factor)``.

    Examples:
      >>> downsample(np.arange(16.0).reshape(1, 4, 4), 2).tolist()
      [[[2.5, 4.5], [10.5, 12.5]]]
    """
    x = np.asarray(x, np.float32)
    n, h, w = x.shape[:3]
    if h % factor or w % factor:
        raise ValueError(f"downsample: image size {h}×{w} is not divisible by factor={factor}.")
    pooled = x.reshape(n, h // factor, factor, w // factor, factor, *x.shape[3:])
    return pooled.mean(axis=(2, 4))


def random_flip(key: jax.Array, images: jax.Array, p: float = 0.5) -> jax.Array:
    """Flips each NHWC image left–right with probability ``p`` (on device, jit-able).

    Args:
      key: PRNG key.
      images: ``(n, H, W, C)``.
      p: flip probability.

    Returns:
      Images of the same shape.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.arange(4.0).reshape(1, 1, 4, 1)
      >>> random_flip(jax.random.key(0), x, p=1.0)[0, 0, :, 0].tolist()
      [3.0, 2.0, 1.0, 0.0]
    """
    flip = jax.random.bernoulli(key, p, (images.shape[0],))
    return jnp.where(flip[:, None, None, None], images[:, :, ::-1, :], images)


def random_crop(key: jax.Array, images: jax.Array, padding: int = 4) -> jax.Array:
    """Random crops of the original size after zero-padding by ``padding`` pixels (on device).

    The ch. 5 CIFAR augmentation: 32×32 crops of the image padded to 40×40.

    Args:
      key: PRNG key.
      images: ``(n, H, W, C)``.
      padding: pixels of zero padding on each side.

    Returns:
      Images of the same shape.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.ones((2, 8, 8, 1))
      >>> bool((random_crop(jax.random.key(0), x, padding=0) == x).all())
      True
    """
    n, h, w, c = images.shape
    padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    offsets = jax.random.randint(key, (n, 2), 0, 2 * padding + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))

    return jax.vmap(crop)(padded, offsets)
