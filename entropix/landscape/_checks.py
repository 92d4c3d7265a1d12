"""Argument checks for the landscape diagnostics (``ValueError`` naming the argument)."""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def as_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Returns ``value`` as a Python int ``>= minimum`` or raises naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be a Python int, got {name}={value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {name}={value!r}.")
    return int(value)


def positive(name: str, value: Any) -> float:
    """Returns ``value`` as a float ``> 0`` or raises naming ``name``."""
    number = float(value)
    if not number > 0 or not np.isfinite(number):
        raise ValueError(f"`{name}` must be a positive finite number, got {name}={value!r}.")
    return number


def non_negative(name: str, value: Any) -> float:
    """Returns ``value`` as a float ``>= 0`` or raises naming ``name``."""
    number = float(value)
    if not number >= 0 or not np.isfinite(number):
        raise ValueError(f"`{name}` must be a non-negative finite number, got {name}={value!r}.")
    return number


def unit_interval(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Returns ``value`` as a float in (0, 1] (or [0, 1]) or raises naming ``name``."""
    number = float(value)
    low_ok = number >= 0 if allow_zero else number > 0
    if not (low_ok and number <= 1):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"`{name}` must lie in {interval}, got {name}={value!r}.")
    return number


def key(name: str, value: Any) -> jax.Array:
    """Checks that ``value`` is a PRNG key (typed or raw uint32[2])."""
    if value is None:
        raise ValueError(f"`{name}` is required: pass e.g. {name}=jax.random.key(0).")
    arr = jnp.asarray(value) if not isinstance(value, jax.Array) else value
    if jnp.issubdtype(arr.dtype, jax.dtypes.prng_key):
        return arr
    if arr.dtype == jnp.uint32 and arr.shape == (2,):
        return arr
    raise ValueError(
        f"`{name}` must be a PRNG key from jax.random.key or jax.random.PRNGKey, got "
        f"{name} with dtype {arr.dtype} and shape {arr.shape}."
    )
