"""The private toolbox shared by the optimizers (``entropix._src.common``): static zeros and
float-leaf masking, checked directly because a wrong answer there costs speed or silently
reshapes a state rather than changing a number the optimizer tests see."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from entropix._src import common


@pytest.mark.parametrize(
    ("value", "static"),
    [
        (0, True),
        (0.0, True),
        (np.float32(0.0), True),
        (np.array(0.0), True),
        (0.1, False),
        (jnp.zeros([]), False),  # inject_hyperparams passes arrays: not static
        (optax.constant_schedule(0.0), False),  # a schedule is never static
        (None, False),
    ],
)
def test_is_static_zero(value, static):
    assert common.is_static_zero(value) is static


def test_merge_float_leaves_keeps_the_other_leaves():
    full = {"w": jnp.ones(2), "count": jnp.array(3, jnp.int32), "b": jnp.zeros(1)}
    floats = {"w": jnp.full(2, 5.0), "count": None, "b": jnp.full(1, 7.0)}
    merged = common.merge_float_leaves(floats, full)
    np.testing.assert_array_equal(merged["w"], [5.0, 5.0])
    np.testing.assert_array_equal(merged["b"], [7.0])
    assert merged["count"] is full["count"]
    updates = common.zero_updates_for_non_floats(floats, full)
    assert updates["count"].dtype == jnp.int32 and int(updates["count"]) == 0
    np.testing.assert_array_equal(updates["w"], [5.0, 5.0])
