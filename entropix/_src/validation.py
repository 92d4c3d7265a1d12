"""Argument checks for the whole package: every error names the argument, its value and the fix.

Checks run at construction time on Python numbers and concrete arrays. Traced values (as passed
by ``optax.inject_hyperparams`` inside ``jit``) are only known when the transformation runs and
are left alone; schedules are checked at a few counts spread over a long run
(:func:`check_schedule`), which catches schedules that start at, or cross, a forbidden value.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

NOISE_DISTRIBUTIONS = ("gaussian", "rademacher")
# Counts at which schedules are probed: the first steps and a geometric grid up to 10⁷.
SCHEDULE_PROBE_COUNTS = (0, 1, 2, 5, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)


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


def check_schedule(name: str, value: Any, check: Callable[[str, Any], None]) -> None:
    """Applies ``check`` to ``value``, or to a schedule's values at :data:`SCHEDULE_PROBE_COUNTS`.

    A schedule whose value at some count breaks the rule raises ``ValueError`` naming the count
    (e.g. a coupling schedule that starts at 0 for HEAT, or a learning rate that turns negative).
    A schedule that cannot be evaluated outside its training loop is left alone.
    """
    if not callable(value):
        check(name, value)
        return
    for count in SCHEDULE_PROBE_COUNTS:
        try:
            number = concrete_value(np.asarray(value(jnp.asarray(count, jnp.int32))))
        except Exception:  # a schedule that needs its training context
            return
        if number is None:
            return
        try:
            check(name, number)
        except ValueError as err:
            raise ValueError(
                f"`{name}` is a schedule whose value at count {count} is {number!r}: {err} "
                "Fix the schedule's parameters."
            ) from None


def check_positive_finite(name: str, value: Any) -> float:
    """Returns ``value`` as a float ``> 0`` or raises naming ``name``."""
    number = float(value)
    if not number > 0 or not np.isfinite(number):
        raise ValueError(f"`{name}` must be a positive finite number, got {name}={value!r}.")
    return number


def check_non_negative_finite(name: str, value: Any) -> float:
    """Returns ``value`` as a float ``>= 0`` or raises naming ``name``."""
    number = float(value)
    if not number >= 0 or not np.isfinite(number):
        raise ValueError(f"`{name}` must be a non-negative finite number, got {name}={value!r}.")
    return number


def check_fraction(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Returns ``value`` as a float in (0, 1] (or [0, 1]) or raises naming ``name``."""
    number = float(value)
    check_unit_interval(name, number, allow_zero=allow_zero)
    return number


def check_scalar(name: str, value: Any, condition: Callable[[Any], bool], rule: str) -> None:
    """Raises ``ValueError`` naming ``name`` if a concrete ``value`` is not a scalar obeying
    ``condition`` (``rule`` says what it must be)."""
    if callable(value) or isinstance(value, jax.core.Tracer):
        return
    array = np.asarray(value)
    if array.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar, got an array of shape {array.shape}.")
    if not bool(condition(array)):
        raise ValueError(f"`{name}` must be {rule}, got {name}={value!r}.")


def check_key(name: str, value: Any) -> jax.Array:
    """Returns ``value`` if it is a PRNG key (typed or raw ``uint32[2]``), else raises."""
    if value is None:
        raise ValueError(f"`{name}` is required: pass e.g. {name}=jax.random.key(0).")
    array = jnp.asarray(value) if not isinstance(value, jax.Array) else value
    if jnp.issubdtype(array.dtype, jax.dtypes.prng_key):
        return array
    if array.dtype == jnp.uint32 and array.shape == (2,):
        return array
    raise ValueError(
        f"`{name}` must be a PRNG key from jax.random.key or jax.random.PRNGKey, got "
        f"{name} with dtype {array.dtype} and shape {array.shape}."
    )


def check_noise_distribution(noise_distribution: str) -> None:
    """Raises ``ValueError`` unless ``noise_distribution`` is a known name."""
    if noise_distribution not in NOISE_DISTRIBUTIONS:
        raise ValueError(
            f"`noise_distribution` must be one of {NOISE_DISTRIBUTIONS}, got "
            f"noise_distribution={noise_distribution!r}."
        )


def check_transformation(name: str, value: Any) -> None:
    """Raises ``TypeError`` unless ``value`` is an ``optax.GradientTransformation``."""
    if not isinstance(value, optax.GradientTransformation):
        raise TypeError(
            f"`{name}` must be an optax.GradientTransformation, got {type(value).__name__}."
        )


def check_count(name: str, value: Any, *, minimum: int = 1) -> int | jax.Array:
    """A loop count that the step form may receive as an array.

    Python ints and concrete integer arrays (``optax.inject_hyperparams`` turns every int
    argument into one) are checked against ``minimum``; a traced integer (inject inside
    ``jit``) is returned as is. Python ints come back as ``int`` so static code stays static.
    """
    if isinstance(value, jax.core.Tracer):
        if not jnp.issubdtype(value.dtype, jnp.integer):
            raise TypeError(f"`{name}` must be an integer, got a traced {value.dtype} value.")
        return value
    if isinstance(value, (jax.Array, np.ndarray)) and np.ndim(value) == 0:
        if not jnp.issubdtype(value.dtype, jnp.integer):
            raise TypeError(f"`{name}` must be an integer, got {name}={value!r}.")
        if int(value) < minimum:
            raise ValueError(f"`{name}` must be >= {minimum}, got {name}={int(value)}.")
        return value
    return check_static_int(name, value, minimum=minimum)


def check_static_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Returns ``value`` as an int, or raises naming ``name``.

    Loop lengths of compiled programs (``lax.scan`` lengths) must be Python integers known at
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


def check_greater_than_one(name: str, value: Any) -> float:
    """Returns ``value`` as a finite float ``> 1`` or raises naming ``name``."""
    number = float(value)
    if not number > 1 or not np.isfinite(number):
        raise ValueError(f"`{name}` must be a finite number > 1, got {name}={value!r}.")
    return number


def check_ordered(low_name: str, low: float, high_name: str, high: float) -> None:
    """Raises ``ValueError`` unless ``low <= high``, naming both arguments."""
    if not low <= high:
        raise ValueError(
            f"`{low_name}` must be <= `{high_name}`, got {low_name}={low!r} and "
            f"{high_name}={high!r}: lower {low_name} or raise {high_name}."
        )


def check_scalar_or_schedule(name: str, value: Any, *, also: str = "") -> None:
    """Raises unless ``value`` is a real number, a scalar array or a schedule (a callable).

    ``also`` names the other accepted values for the message (checked by the caller). A string
    raises ``ValueError``, any other type ``TypeError``.
    """
    if callable(value) or isinstance(value, jax.core.Tracer):
        return
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return
    if (
        isinstance(value, (np.ndarray, np.generic, jax.Array))
        and np.ndim(value) == 0
        and (jnp.issubdtype(value.dtype, jnp.floating) or jnp.issubdtype(value.dtype, jnp.integer))
    ):
        return
    accepted = "a number or a schedule" + (f", or {also}" if also else "")
    error = ValueError if isinstance(value, str) else TypeError
    raise error(f"`{name}` must be {accepted}, got {name}={value!r}.")
