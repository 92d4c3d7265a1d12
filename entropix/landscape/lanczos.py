"""Lanczos tridiagonalization with full re-orthogonalization; extreme Hessian eigenvalues.

``m`` steps of Lanczos on a symmetric operator ``A`` (e.g. the Hessian, applied by
Hessian-vector products) started from a unit vector ``q₁`` build an orthonormal basis
``Q = [q₁ … q_m]`` of the Krylov space and a tridiagonal ``T = Qᵀ A Q``:

.. math::

  A q_j = β_{j-1} q_{j-1} + α_j q_j + β_j q_{j+1}.

The eigenvalues of ``T`` (Ritz values) approximate the extreme eigenvalues of ``A`` first. Every
new vector is re-orthogonalized against all previous ones (twice, "twice is enough"), which
removes the ghost eigenvalues of plain Lanczos at the cost of ``O(m d)`` memory and flops per step
(never ``d²``). On breakdown (an invariant subspace, ``β_j ≈ 0``) the iteration restarts with a
random vector orthogonal to ``Q`` and stores ``β_j = 0``, so ``T`` stays exact.

References:
  Lanczos, *An iteration method for the solution of the eigenvalue problem of linear
  differential and integral operators*, J. Res. NBS 1950.
  Golub & Van Loan, *Matrix Computations*, §10.1 (4th ed.).
  Ghorbani, Krishnan & Xiao, *An investigation into neural net optimization via Hessian
  eigenvalue density*, ICML 2019.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from entropix._src import validation
from entropix.landscape import hvp

PyTree = Any


class Tridiagonal(NamedTuple):
    """Output of :func:`lanczos_tridiagonal`.

    Attributes:
      alphas: diagonal of ``T``, shape ``(m,)``.
      betas: off-diagonal of ``T``, shape ``(m - 1,)`` (zeros mark restarts after breakdown).
      last_beta: norm of the residual after the last step (for Ritz residuals).
      basis: the Lanczos vectors as rows, shape ``(m, d)``.
    """

    alphas: jax.Array
    betas: jax.Array
    last_beta: jax.Array
    basis: jax.Array


def _orthogonalize(w, basis):
    for _ in range(2):  # "twice is enough" (Kahan–Parlett)
        w = w - basis.T @ (basis @ w)
    return w


def _lanczos_step(op: hvp.LinearOperator, spare: jax.Array, j: jax.Array, carry: tuple) -> tuple:
    """One Lanczos step: ``A q_j``, α_j, full re-orthogonalization, β_j and ``q_{j+1}``."""
    basis, alphas, betas, scale = carry
    dtype = basis.dtype
    eps = jnp.finfo(dtype).eps
    q = basis[j]
    w = op(q).astype(dtype)
    alpha = jnp.vdot(q, w)
    w = w - alpha * q - jnp.where(j > 0, betas[j - 1], 0.0) * basis[jnp.maximum(j - 1, 0)]
    w = _orthogonalize(w, basis)
    beta = jnp.linalg.norm(w)
    scale = jnp.maximum(scale, jnp.abs(alpha) + beta)
    breakdown = beta <= 1e3 * eps * jnp.maximum(scale, jnp.finfo(dtype).tiny)

    def restart(_):
        # A fresh direction: the spare random vector, modulated differently at every step
        # (no RNG in the compiled step), orthogonalized against the basis.
        phase = (j + 1).astype(dtype) * jnp.arange(1, basis.shape[1] + 1, dtype=dtype)
        r = _orthogonalize(spare * jnp.cos(0.618 * phase), basis)
        return r / jnp.linalg.norm(r), jnp.zeros((), dtype)

    def proceed(_):
        return w / jnp.where(beta > 0, beta, 1.0), beta

    q_next, beta = jax.lax.cond(breakdown, restart, proceed, None)
    basis = basis.at[j + 1].set(q_next)
    return basis, alphas.at[j].set(alpha), betas.at[j].set(beta), scale


# The step is dispatched from a Python loop rather than a ``fori_loop``: XLA:CPU runs
# convolution HVPs inside while-loop bodies 2–3× slower than at top level (measured on the
# small-LeNet), and one dispatch per step costs microseconds next to an HVP. The carry is
# donated, so the ``(m + 1) × d`` basis is updated in place where the backend supports it.
_lanczos_step_jit = jax.jit(_lanczos_step, donate_argnums=3)


def _lanczos_init(v0: jax.Array, num_steps: int) -> tuple:
    dtype = v0.dtype
    basis = jnp.zeros((num_steps + 1, v0.shape[0]), dtype).at[0].set(v0 / jnp.linalg.norm(v0))
    return (
        basis,
        jnp.zeros((num_steps,), dtype),
        jnp.zeros((num_steps,), dtype),  # betas[j] couples q_j and q_{j+1}
        jnp.zeros((), dtype),
    )


_lanczos_init_jit = jax.jit(_lanczos_init, static_argnums=1)


def _lanczos(
    op: hvp.LinearOperator, v0: jax.Array, spare: jax.Array, num_steps: int
) -> Tridiagonal:
    carry = _lanczos_init_jit(v0.astype(op.dtype), num_steps)
    spare = spare.astype(op.dtype)
    for j in range(num_steps):
        carry = _lanczos_step_jit(op, spare, jnp.asarray(j, jnp.int32), carry)
    basis, alphas, betas, _ = carry
    return Tridiagonal(alphas, betas[:-1], betas[-1], basis[:num_steps])


def _default_key(key):
    return jax.random.key(0) if key is None else validation.check_key("key", key)


def lanczos_tridiagonal(
    operator: Any,
    num_steps: int,
    *,
    key: jax.Array | None = None,
    start: jax.Array | None = None,
) -> Tridiagonal:
    """Runs ``num_steps`` Lanczos steps with full re-orthogonalization.

    Args:
      operator: a :class:`~entropix.landscape.LinearOperator` or a dense symmetric matrix.
      num_steps: the Lanczos order ``m`` (``1 ≤ m ≤ d``).
      key: PRNG key for the start vector (Gaussian) and for restarts after breakdown.
      start: optional start vector of shape ``(d,)`` (normalized internally).

    Returns:
      A :class:`Tridiagonal` ``(alphas, betas, last_beta, basis)``; memory ``O(m d)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import landscape
      >>> A = jnp.diag(jnp.arange(1.0, 6.0))
      >>> t = landscape.lanczos_tridiagonal(A, 5, key=jax.random.key(0))
      >>> T = jnp.diag(t.alphas) + jnp.diag(t.betas, 1) + jnp.diag(t.betas, -1)
      >>> [round(float(x), 4) for x in jnp.linalg.eigvalsh(T)]
      [1.0, 2.0, 3.0, 4.0, 5.0]
    """
    op = hvp.as_operator(operator)
    num_steps = validation.check_static_int("num_steps", num_steps)
    if num_steps > op.dim:
        raise ValueError(
            f"`num_steps` must be <= the dimension d={op.dim}, got num_steps={num_steps}."
        )
    key = _default_key(key)
    vectors = jax.random.normal(key, (2, op.dim), op.dtype)
    if start is None:
        start = vectors[0]
    elif jnp.shape(start) != (op.dim,):
        raise ValueError(f"`start` must have shape ({op.dim},), got {jnp.shape(start)}.")
    return _lanczos(op, jnp.asarray(start, op.dtype), vectors[1], num_steps)


def tridiagonal_eigh(t: Tridiagonal) -> tuple[jax.Array, jax.Array]:
    """Eigen-decomposition of the Lanczos tridiagonal ``T`` (ascending Ritz values, vectors).

    ``T`` is ``m × m`` with ``m`` the Lanczos order, so this runs in NumPy (float64) on the host.
    """
    alphas = np.asarray(t.alphas, np.float64)
    betas = np.asarray(t.betas, np.float64)
    T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
    theta, s = np.linalg.eigh(T)
    dtype = t.alphas.dtype
    return jnp.asarray(theta, dtype), jnp.asarray(s, dtype)


class LanczosResult(NamedTuple):
    """Extreme eigenvalues from :func:`lanczos_eigenvalues`.

    Attributes:
      largest: the ``k`` largest Ritz values, descending.
      smallest: the ``k`` smallest Ritz values, ascending.
      largest_residuals: residual norms ``|β_m s_{m,i}|`` of ``largest`` (an eigenvalue of the
        operator lies within this distance of each Ritz value).
      smallest_residuals: residual norms of ``smallest``.
      ritz_values: all ``m`` Ritz values, ascending.
    """

    largest: jax.Array
    smallest: jax.Array
    largest_residuals: jax.Array
    smallest_residuals: jax.Array
    ritz_values: jax.Array


def lanczos_eigenvalues(
    operator: Any,
    k: int = 5,
    *,
    num_steps: int | None = None,
    key: jax.Array | None = None,
) -> LanczosResult:
    """The ``k`` largest and ``k`` smallest eigenvalues of a symmetric operator by Lanczos.

    The Ritz values of an ``m``-step Lanczos run converge to the extreme eigenvalues first; each
    comes with its residual norm ``‖A y − θ y‖ = |β_m s_{m,i}|``, an a-posteriori error bound.
    Memory is ``O(m d)`` (``m`` Lanczos vectors), never ``d²``.

    Args:
      operator: a :class:`~entropix.landscape.LinearOperator` or a dense symmetric matrix.
      k: how many eigenvalues at each end.
      num_steps: Lanczos order ``m``; default ``min(d, max(3k, k + 40))``.
      key: PRNG key for the start vector (default ``jax.random.key(0)``).

    Returns:
      A :class:`LanczosResult`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import landscape
      >>> A = jnp.diag(jnp.linspace(-1.0, 10.0, 200))
      >>> r = landscape.lanczos_eigenvalues(A, k=2, num_steps=60, key=jax.random.key(0))
      >>> [round(float(x), 4) for x in r.largest], round(float(r.smallest[0]), 4)
      ([10.0, 9.9447], -1.0)
    """
    op = hvp.as_operator(operator)
    k = validation.check_static_int("k", k)
    if num_steps is None:
        num_steps = min(op.dim, max(3 * k, k + 40))
    num_steps = validation.check_static_int("num_steps", num_steps)
    if k > num_steps:
        raise ValueError(f"`k` must be <= num_steps={num_steps}, got k={k}.")
    t = lanczos_tridiagonal(op, num_steps, key=key)
    theta, s = tridiagonal_eigh(t)
    residuals = jnp.abs(t.last_beta * s[-1, :])
    return LanczosResult(
        largest=theta[::-1][:k],
        smallest=theta[:k],
        largest_residuals=residuals[::-1][:k],
        smallest_residuals=residuals[:k],
        ritz_values=theta,
    )


def hessian_eigenvalues(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    batches: Any,
    k: int = 5,
    *,
    num_steps: int | None = None,
    key: jax.Array | None = None,
) -> LanczosResult:
    """Top-``k`` and bottom-``k`` eigenvalues of the dataset-loss Hessian by Lanczos.

    Each Lanczos step costs one Hessian-vector product per batch (forward-over-reverse).
    The most negative eigenvalues of a trained network sit next to a huge cluster near zero and
    converge slowly; check ``smallest_residuals``.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the point ``w``, any pytree.
      batches: a list of batches or a stacked pytree (see :mod:`entropix.landscape.dataset`).
      k: how many eigenvalues at each end.
      num_steps: Lanczos order (default ``min(d, max(3k, k + 40))``).
      key: PRNG key for the start vector.

    Returns:
      A :class:`LanczosResult`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * jnp.sum(b * w**2)
      >>> batches = [jnp.linspace(-1.0, 3.0, 50)]
      >>> r = landscape.hessian_eigenvalues(loss_fn, jnp.zeros(50), batches, k=1)
      >>> round(float(r.largest[0]), 4), round(float(r.smallest[0]), 4)
      (3.0, -1.0)
    """
    op = hvp.hessian_operator(loss_fn, params, batches)
    return lanczos_eigenvalues(op, k, num_steps=num_steps, key=key)
