r"""Teacher–student committee machine and perceptron on random ±1 patterns.

The setting of Pittorino et al., *Entropic gradient descent algorithms and wide flat minima*
(ICLR 2021, https://arxiv.org/abs/2006.07897) and of thesis §3.1.1: a *teacher*
committee machine with ``K`` (odd) hidden sign units labels random binary patterns,

.. math::
  y(ξ) = \mathrm{sign}\Big(\sum_{k=1}^K \mathrm{sign}(w^*_k \cdot ξ)\Big), \qquad
  ξ \in \{-1, +1\}^N,

and a *student* with the same architecture is trained through a smooth surrogate
(``tanh`` hidden units)

.. math::
  \hat y(ξ) = \frac{1}{\sqrt K} \sum_{k=1}^K \tanh\Big(\frac{w_k \cdot ξ}{\sqrt N}\Big),
  \qquad ℓ = \log\big(1 + e^{-4 y \hat y}\big).

``K = 1`` is the teacher–student perceptron. Errors are reported for the surrogate
(``sign ŷ``) and for the sign committee. The default sizes are a CPU-sized demonstration
(``N = 200``, ``K = 5``, ``P = 1000`` training and 10,000 test patterns), where, after 100 epochs
(batch 20, learning rate 0.5, 5 replicas), SGD reaches about 25% test error and the center of
replicated SGD about 24% (indicative numbers from three trials of a quick simulation).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "CommitteeTask",
    "committee_error",
    "committee_loss",
    "committee_output",
    "committee_predict",
    "init_committee",
    "make_committee_task",
    "perceptron_generalization_error",
]


class CommitteeTask(NamedTuple):
    """A teacher–student data set.

    Attributes:
      x_train: training patterns, shape ``(P, N)``, entries ``±1``.
      y_train: training labels ``±1``, shape ``(P,)``.
      x_test: test patterns, shape ``(P_test, N)``.
      y_test: test labels, shape ``(P_test,)``.
      teacher: teacher weights ``{"w": (K, N)}`` (the same pytree layout as the student).
    """

    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array
    teacher: dict


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive int, got {value!r}.")


def init_committee(
    key: jax.Array, num_hidden: int = 5, num_inputs: int = 200, dtype=jnp.float32
) -> dict:
    """Gaussian ``N(0, 1)`` weights ``{"w": (K, N)}`` of a committee machine.

    Args:
      key: PRNG key.
      num_hidden: ``K`` (odd, so that the sign committee has no ties).
      num_inputs: ``N``.
      dtype: floating dtype.

    Returns:
      The parameter pytree.

    Examples:
      >>> import jax
      >>> init_committee(jax.random.key(0), 3, 10)["w"].shape
      (3, 10)
    """
    _check_sizes(num_hidden=num_hidden, num_inputs=num_inputs)
    if num_hidden % 2 == 0:
        raise ValueError(f"`num_hidden` must be odd (no ties in the vote), got {num_hidden}.")
    return {"w": jax.random.normal(key, (num_hidden, num_inputs), dtype)}


def committee_predict(params: dict, x: jax.Array) -> jax.Array:
    r"""Labels of the sign committee machine, ``sign(Σ_k sign(w_k·ξ))`` (±1).

    Args:
      params: ``{"w": (K, N)}`` with odd ``K``.
      x: patterns ``(..., N)``.

    Returns:
      Labels ``±1`` (float), shape ``(...)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(committee_predict({"w": jnp.ones((1, 2))}, jnp.array([1.0, -3.0])))
      -1.0
    """
    pre = x @ params["w"].T
    votes = jnp.sum(jnp.where(pre >= 0, 1.0, -1.0), axis=-1)
    return jnp.where(votes >= 0, 1.0, -1.0).astype(x.dtype)


def committee_output(params: dict, x: jax.Array) -> jax.Array:
    r"""Surrogate output ``ŷ = K^{−1/2} Σ_k tanh(w_k·ξ/√N)``.

    Args:
      params: ``{"w": (K, N)}``.
      x: patterns ``(..., N)``.

    Returns:
      ``ŷ``, shape ``(...)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(committee_output({"w": jnp.zeros((3, 4))}, jnp.ones(4)))
      0.0
    """
    k, n = params["w"].shape
    pre = x @ params["w"].T / jnp.sqrt(jnp.asarray(n, x.dtype))
    return jnp.sum(jnp.tanh(pre), axis=-1) / jnp.sqrt(jnp.asarray(k, x.dtype))


def committee_loss(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    r"""Mean logistic loss ``log(1 + exp(−4 y ŷ))`` of the surrogate.

    Args:
      params: student ``{"w": (K, N)}``.
      x: patterns ``(B, N)``.
      y: labels ``±1``, shape ``(B,)``.

    Returns:
      Scalar loss.

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(committee_loss({"w": jnp.zeros((3, 4))}, jnp.ones((2, 4)),
      ...                            jnp.array([1.0, -1.0]))), 6)
      0.693147
    """
    return jnp.mean(jax.nn.softplus(-4.0 * y * committee_output(params, x)))


def committee_error(params: dict, x: jax.Array, y: jax.Array, *, hard: bool = False) -> jax.Array:
    """Classification error of the student (fraction of wrong labels).

    Args:
      params: student ``{"w": (K, N)}``.
      x: patterns ``(B, N)``.
      y: labels ``±1``.
      hard: if ``True`` use the sign committee (:func:`committee_predict`), otherwise the sign
        of the trained surrogate output (:func:`committee_output`).

    Returns:
      Scalar error in ``[0, 1]``.

    Examples:
      >>> import jax
      >>> task = make_committee_task(jax.random.key(0), num_inputs=20, num_hidden=3,
      ...                            num_train=50, num_test=50)
      >>> float(committee_error(task.teacher, task.x_test, task.y_test, hard=True))
      0.0
    """
    pred = committee_predict(params, x) if hard else jnp.sign(committee_output(params, x))
    return jnp.mean(pred != y)


def make_committee_task(
    key: jax.Array,
    *,
    num_inputs: int = 200,
    num_hidden: int = 5,
    num_train: int = 1000,
    num_test: int = 10_000,
    dtype=jnp.float32,
) -> CommitteeTask:
    """Random ±1 patterns labelled by a random Gaussian teacher committee.

    Args:
      key: PRNG key.
      num_inputs: ``N``.
      num_hidden: ``K`` (odd; ``1`` = perceptron).
      num_train: ``P``.
      num_test: number of test patterns.
      dtype: floating dtype of patterns and labels.

    Returns:
      A :class:`CommitteeTask`.

    Examples:
      >>> import jax
      >>> task = make_committee_task(jax.random.key(0), num_train=10, num_test=10)
      >>> task.x_train.shape, task.teacher["w"].shape
      ((10, 200), (5, 200))
    """
    _check_sizes(num_train=num_train, num_test=num_test)
    kt, ktr, kte = jax.random.split(key, 3)
    teacher = init_committee(kt, num_hidden, num_inputs, dtype)

    def patterns(k, p):
        return jnp.where(jax.random.bernoulli(k, 0.5, (p, num_inputs)), 1.0, -1.0).astype(dtype)

    x_train = patterns(ktr, num_train)
    x_test = patterns(kte, num_test)
    return CommitteeTask(
        x_train=x_train,
        y_train=committee_predict(teacher, x_train),
        x_test=x_test,
        y_test=committee_predict(teacher, x_test),
        teacher=teacher,
    )


def perceptron_generalization_error(w: jax.Array, teacher: jax.Array) -> jax.Array:
    r"""Generalization error of a perceptron, ``ε = arccos(q)/π``, ``q = w·w*/(‖w‖‖w*‖)``.

    Exact for patterns with a spherically symmetric law (Gaussian); for large ``N`` also for
    random ±1 patterns (thesis eq. 3.3 with the normalized overlap).

    Args:
      w: student weights ``(N,)``.
      teacher: teacher weights ``(N,)``.

    Returns:
      Scalar error in ``[0, 1]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(perceptron_generalization_error(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])))
      0.5
    """
    q = jnp.vdot(w, teacher) / (jnp.linalg.norm(w) * jnp.linalg.norm(teacher))
    return jnp.arccos(jnp.clip(q, -1.0, 1.0)) / jnp.pi
