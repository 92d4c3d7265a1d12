"""Argument checks shared by the optimizer factories.

Checks run at construction time on Python numbers and concrete arrays; traced values (as
passed by ``optax.inject_hyperparams`` inside ``jit``) and schedules are left alone, since their
values are only known when the transformation runs.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import numpy as np


def concrete_value(value: Any) -> float | None:
    """Returns ``value`` as a float when it is a concrete scalar, else None."""
    if callable(value) or isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0:
        return float(value)
    return None


def check_non_negative(name: str, value: Any) -> None:
    """Raises ``ValueError`` naming ``name`` when a concrete ``value`` is negative."""
    number = concrete_value(value)
    if number is not None and not number >= 0:
        raise ValueError(f"`{name}` must be non-negative, got {name}={value!r}.")


def check_positive(name: str, value: Any) -> None:
    """Raises ``ValueError`` naming ``name`` when a concrete ``value`` is not positive."""
    number = concrete_value(value)
    if number is not None and not number > 0:
        raise ValueError(f"`{name}` must be positive, got {name}={value!r}.")


def check_unit_interval(name: str, value: Any, *, allow_zero: bool = True) -> None:
    """Raises ``ValueError`` naming ``name`` when a concrete ``value`` is outside [0, 1]."""
    number = concrete_value(value)
    if number is None:
        return
    low_ok = number >= 0 if allow_zero else number > 0
    if not (low_ok and number <= 1):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"`{name}` must lie in {interval}, got {name}={value!r}.")


def check_static_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Returns ``value`` as an int, or raises naming ``name``.

    Loop lengths fix the compiled program, so they must be Python integers known at
    construction. Under ``optax.inject_hyperparams`` list them in ``static_args``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, (jax.Array, np.ndarray)) or isinstance(value, jax.core.Tracer):
            hint = (
                " It was given as an array; under optax.inject_hyperparams pass "
                f"static_args=('{name}',)."
            )
        else:
            hint = ""
        raise TypeError(f"`{name}` must be a Python int, got {name}={value!r}.{hint}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {name}={value!r}.")
    return int(value)
