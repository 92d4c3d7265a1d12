"""Synthetic data: the committee-machine teacher–student task (Pittorino et al., ICLR 2021)."""

from __future__ import annotations

import numpy as np

from entropix.data.dataset import Dataset


def committee_teacher_labels(teacher: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Labels σ̂ = sign[(1/√K) Σ_k sign((1/√N) Σ_i w_ki x_i)] of a committee-machine teacher.

    Args:
      teacher: ``(K, N)`` weights, K odd so that the outer sign has no ties.
      x: ``(P, N)`` patterns.

    Returns:
      float32 labels in {−1, +1}, shape ``(P,)``.

    Examples:
      >>> x = np.array([[2.0, 5.0], [-1.0, 5.0]])
      >>> committee_teacher_labels(np.array([[1.0, 0.0]]), x).tolist()
      [1.0, -1.0]
    """
    k, n = teacher.shape
    hidden = np.sign(np.asarray(x, np.float64) @ teacher.T / np.sqrt(n))
    return np.sign(hidden.sum(axis=1) / np.sqrt(k)).astype(np.float32)


def committee_teacher_student(
    seed: int = 0,
    *,
    num_inputs: int = 200,
    num_hidden: int = 5,
    num_train: int = 1000,
    num_test: int = 10_000,
) -> tuple[Dataset, np.ndarray]:
    """Random ±1 patterns labelled by a random Gaussian committee-machine teacher.

    Defaults: N = 200, K = 5, P = 1000 training and 10,000 test patterns, a CPU-sized version of
    the teacher–student task of Pittorino et al., *Entropic gradient descent algorithms and wide
    flat minima* (ICLR 2021, https://arxiv.org/abs/2006.07897). Train a
    ``entropix.models.CommitteeMachine`` (tanh student) with ``committee_logistic_loss``.

    Args:
      seed: NumPy seed of teacher and patterns.
      num_inputs: N.
      num_hidden: K, odd.
      num_train: P.
      num_test: test patterns.

    Returns:
      ``(dataset, teacher)``: labels ±1 (float32) with ``num_classes=2``; teacher ``(K, N)``.

    Examples:
      >>> ds, teacher = committee_teacher_student(num_train=10, num_test=5)
      >>> ds.x_train.shape, teacher.shape, sorted(set(ds.y_train.tolist())) <= [-1.0, 1.0]
      ((10, 200), (5, 200), True)
    """
    if num_hidden < 1 or num_hidden % 2 == 0:
        raise ValueError(f"num_hidden={num_hidden} must be odd (the teacher's vote needs no ties).")
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((num_hidden, num_inputs))
    x = rng.choice(np.array([-1.0, 1.0], np.float32), size=(num_train + num_test, num_inputs))
    y = committee_teacher_labels(teacher, x)
    ds = Dataset(
        "committee",
        x[:num_train],
        y[:num_train],
        x[num_train:],
        y[num_train:],
        num_classes=2,
    )
    return ds, teacher.astype(np.float32)
