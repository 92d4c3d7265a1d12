"""Hessian-vector products (forward-over-reverse) and flat linear operators.

The Hessian of the dataset loss ``f(w) = (1/n) Σ_j loss_fn(w, batch_j)`` is never formed for
large models: every spectral tool of :mod:`entropix.landscape` only needs the product

.. math::

  H v = \\frac{d}{dt} \\nabla f(w + t v) \\Big|_{t=0},

computed as ``jax.jvp`` of ``jax.grad`` (Pearlmutter 1994), which costs a small constant times
a gradient and memory of one gradient.

References:
  Pearlmutter, *Fast exact multiplication by the Hessian*, Neural Computation 1994.
  Chaudhari et al., *Entropy-SGD: biasing gradient descent into wide valleys*, ICLR 2017, §5.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from entropix.landscape import _flat, dataset

PyTree = Any
LossFn = Callable[[PyTree, PyTree], jax.Array]


def batch_hvp(loss_fn: LossFn, params: PyTree, tangent: PyTree, batch: PyTree) -> PyTree:
    """Hessian-vector product of ``loss_fn(·, batch)`` at ``params`` (forward-over-reverse).

    .. math::

      ∇^2 \\ell(w; B)\\, v = \\frac{d}{dt} ∇\\ell(w + t v; B) \\Big|_{t=0}
      \\quad (\\texttt{jax.jvp} \\text{ of } \\texttt{jax.grad}).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the point ``w``, any pytree.
      tangent: the vector ``v``, a pytree like ``params``.
      batch: one batch.

    Returns:
      ``∇²_w loss_fn(w, batch) v``, a pytree like ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: jnp.sum(b * w**3)           # Hessian diag(6 b w)
      >>> landscape.batch_hvp(loss_fn, jnp.ones(2), jnp.ones(2), jnp.array([1.0, 2.0])).tolist()
      [6.0, 12.0]
    """
    grad_fn = lambda p: jax.grad(loss_fn)(p, batch)  # noqa: E731
    return jax.jvp(grad_fn, (params,), (tangent,))[1]


def _dataset_hvp(loss_fn, params, tangent, batches):
    return dataset.batch_mean(
        lambda p, t, batch: batch_hvp(loss_fn, p, t, batch), batches, params, tangent
    )


_dataset_hvp_jit = jax.jit(_dataset_hvp, static_argnums=0)


def hessian_vector_product(
    loss_fn: LossFn, params: PyTree, tangent: PyTree, batches: Any
) -> PyTree:
    """Hessian-vector product of the dataset loss, averaged over batches.

    .. math::

      H v = \\frac{1}{n} \\sum_{j=1}^n \\nabla^2_w \\ell(w; B_j)\\, v .

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the point ``w``, any pytree.
      tangent: the vector ``v``, a pytree like ``params``.
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).

    Returns:
      ``H v``, a pytree like ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * jnp.sum(b * w**2)
      >>> batches = jnp.array([[1.0, 2.0], [3.0, 4.0]])  # 2 stacked batches
      >>> landscape.hessian_vector_product(loss_fn, jnp.ones(2), jnp.ones(2), batches).tolist()
      [2.0, 3.0]
    """
    return _dataset_hvp_jit(loss_fn, params, tangent, dataset.prepare_batches(batches))


@jax.tree_util.register_pytree_node_class
class LinearOperator:
    """A symmetric linear map on flat vectors of length ``dim``, usable inside ``jit``.

    ``op(v)`` returns ``matvec_fn(v, *operands)``. The operands (parameters, batches) are pytree
    children, so passing an operator to a jitted function traces them as arguments instead of
    baking them into the program as constants.

    Attributes:
      matvec_fn: ``matvec_fn(v, *operands) -> A v`` for ``v`` of shape ``(dim,)``.
      operands: a tuple of pytrees passed to ``matvec_fn``.
      dim: the dimension ``d``.
      dtype: the dtype of vectors.
      unravel: maps a flat vector back to the parameter pytree (identity for matrices).
    """

    def __init__(
        self,
        matvec_fn: Callable[..., jax.Array],
        operands: tuple = (),
        *,
        dim: int,
        dtype: Any,
        unravel: Callable[[jax.Array], PyTree] | None = None,
    ):
        self.matvec_fn = matvec_fn
        self.operands = tuple(operands)
        self.dim = int(dim)
        self.dtype = jnp.dtype(dtype)
        self.unravel = unravel if unravel is not None else _identity

    def __call__(self, v: jax.Array) -> jax.Array:
        return self.matvec_fn(v, *self.operands)

    def tree_flatten(self):
        return (self.operands,), (self.matvec_fn, self.dim, self.dtype, self.unravel)

    @classmethod
    def tree_unflatten(cls, aux, children):
        matvec_fn, dim, dtype, unravel = aux
        return cls(matvec_fn, children[0], dim=dim, dtype=dtype, unravel=unravel)

    @classmethod
    def from_matrix(cls, matrix: jax.Array) -> LinearOperator:
        """Wraps a dense symmetric ``(d, d)`` matrix (for tests and small problems)."""
        matrix = jnp.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"`matrix` must be square, got shape {matrix.shape}.")
        return cls(_matmul, (matrix,), dim=matrix.shape[0], dtype=matrix.dtype)

    def __repr__(self) -> str:
        return f"LinearOperator(dim={self.dim}, dtype={self.dtype})"


def _identity(v):
    return v


def _matmul(v, matrix):
    return matrix @ v


def _flat_hvp(loss_fn, unravel, v, params, batches):
    hv = _dataset_hvp(loss_fn, params, unravel(v.astype(_dtype_of(params))), batches)
    return ravel_pytree(hv)[0].astype(v.dtype)


def _dtype_of(params):
    leaves = jax.tree_util.tree_leaves(params)
    return jnp.result_type(*leaves) if leaves else jnp.float32


class _FlatHVP:
    """``(v, params, batches) -> H v`` for a ``loss_fn`` and parameter layout.

    Equal for equal ``(loss_fn, layout)``, so jitted users compile once per model.
    """

    def __init__(self, loss_fn, unravel):
        self.loss_fn = loss_fn
        self.unravel = unravel

    def __eq__(self, other):
        return (
            isinstance(other, _FlatHVP)
            and self.loss_fn == other.loss_fn
            and self.unravel == other.unravel
        )

    def __hash__(self):
        return hash((self.loss_fn, self.unravel))

    def __call__(self, v, params, batches):
        return _flat_hvp(self.loss_fn, self.unravel, v, params, batches)


def hessian_operator(loss_fn: LossFn, params: PyTree, batches: Any) -> LinearOperator:
    """The Hessian of the dataset loss at ``params`` as a :class:`LinearOperator`.

    Vectors are flat (``jax.flatten_util.ravel_pytree`` order); ``op.unravel`` maps them back to
    the parameter pytree. One application costs one forward-over-reverse pass per batch. The
    HVP runs in the parameters' dtype; vectors (and so Lanczos) use at least float32.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the point ``w``, any pytree of floating arrays.
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).

    Returns:
      A :class:`LinearOperator` of dimension ``d`` = number of parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * jnp.sum(b * w["a"] ** 2)
      >>> op = landscape.hessian_operator(loss_fn, {"a": jnp.ones(3)}, [jnp.arange(3.0)])
      >>> op(jnp.ones(3)).tolist()
      [0.0, 1.0, 2.0]
    """
    flat, unravel = _flat.ravel(params)
    if flat.size == 0:
        raise ValueError("`params` has no parameters.")
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        raise ValueError(f"`params` must be floating point, got dtype {flat.dtype}.")
    prepared = dataset.prepare_batches(batches)
    return LinearOperator(
        _FlatHVP(loss_fn, unravel),
        (params, prepared),
        dim=flat.size,
        # Lanczos / eigh work in at least float32 (bf16/f16 parameters keep their dtype in HVPs).
        dtype=jnp.promote_types(flat.dtype, jnp.float32),
        unravel=unravel,
    )


def as_operator(operator: Any) -> LinearOperator:
    """Accepts a :class:`LinearOperator` or a dense square matrix."""
    if isinstance(operator, LinearOperator):
        return operator
    if hasattr(operator, "shape") and len(operator.shape) == 2:
        return LinearOperator.from_matrix(operator)
    raise ValueError(
        "`operator` must be a LinearOperator (e.g. from hessian_operator) or a square matrix, got "
        f"{type(operator).__name__}."
    )
