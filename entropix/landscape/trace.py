"""Hutchinson trace estimator with its standard error.

.. math::

  \\operatorname{tr}(A) = E_v[v^\\top A v], \\qquad v_i \\in \\{-1, +1\\} \\text{ i.i.d.},

estimated by the mean of ``P`` probes, with standard error ``std(vᵀAv) / √P``. For Rademacher
probes ``Var(vᵀAv) = 2 Σ_{i≠j} A_ij²`` (a diagonal ``A`` is estimated exactly).

References:
  Hutchinson, *A stochastic estimator of the trace of the influence matrix for Laplacian
  smoothing splines*, Comm. Stat. Simul. Comput. 1990.
  Avron & Toledo, *Randomized algorithms for estimating the trace of an implicit symmetric
  positive semi-definite matrix*, J. ACM 2011.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from entropix._src import validation
from entropix.landscape import hvp, lanczos

PyTree = Any


class TraceEstimate(NamedTuple):
    """Output of :func:`hutchinson_trace`.

    Attributes:
      trace: the estimate ``(1/P) Σ_p v_pᵀ A v_p``.
      stderr: its standard error ``std(samples, ddof=1)/√P`` (0 when ``P = 1``).
      samples: the ``P`` quadratic forms ``v_pᵀ A v_p``.
    """

    trace: jax.Array
    stderr: jax.Array
    samples: jax.Array


def _samples(op, key, num_probes, batch_size):
    keys = jax.random.split(key, num_probes)

    def one(k):
        v = jax.random.rademacher(k, (op.dim,), op.dtype)
        return jnp.vdot(v, op(v))

    return jax.lax.map(one, keys, batch_size=batch_size)


_samples_jit = jax.jit(_samples, static_argnums=(2, 3))


def hutchinson_trace(
    operator: Any,
    *,
    num_probes: int = 100,
    key: jax.Array | None = None,
    batch_size: int = 1,
) -> TraceEstimate:
    """Trace of a symmetric operator from Rademacher probes, with its standard error.

    Args:
      operator: a :class:`~entropix.landscape.LinearOperator` or a dense matrix.
      num_probes: number of probes ``P``.
      key: PRNG key (default ``jax.random.key(0)``).
      batch_size: probes evaluated together (vmapped); larger is faster, uses more memory.

    Returns:
      A :class:`TraceEstimate` ``(trace, stderr, samples)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from entropix import landscape
      >>> est = landscape.hutchinson_trace(jnp.diag(jnp.arange(5.0)), num_probes=8)
      >>> float(est.trace), float(est.stderr)  # diagonal: exact
      (10.0, 0.0)
    """
    op = hvp.as_operator(operator)
    num_probes = validation.check_static_int("num_probes", num_probes)
    batch_size = validation.check_static_int("batch_size", batch_size)
    key = lanczos._default_key(key)
    samples = _samples_jit(op, key, num_probes, min(batch_size, num_probes))
    trace = jnp.mean(samples)
    if num_probes > 1:
        stderr = jnp.std(samples, ddof=1) / jnp.sqrt(num_probes)
    else:
        stderr = jnp.zeros_like(trace)
    return TraceEstimate(trace, stderr, samples)


def hessian_trace(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    batches: Any,
    *,
    num_probes: int = 100,
    key: jax.Array | None = None,
    batch_size: int = 1,
) -> TraceEstimate:
    """Hutchinson estimate of the trace of the dataset-loss Hessian.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a batch mean).
      params: the point ``w``, any pytree.
      batches: a list of batches or a stacked pytree.
      num_probes: number of Rademacher probes.
      key: PRNG key.
      batch_size: probes evaluated together (vmapped HVPs).

    Returns:
      A :class:`TraceEstimate`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from entropix import landscape
      >>> loss_fn = lambda w, b: 0.5 * jnp.sum(b * w**2)
      >>> est = landscape.hessian_trace(loss_fn, jnp.zeros(3), [jnp.array([1.0, 2.0, 3.0])])
      >>> float(est.trace)
      6.0
    """
    op = hvp.hessian_operator(loss_fn, params, batches)
    return hutchinson_trace(op, num_probes=num_probes, key=key, batch_size=batch_size)
