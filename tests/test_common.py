"""The private toolbox shared by the optimizers (``entropix._src.common``): static zeros and
float-leaf masking, checked directly because a wrong answer there costs speed or silently
reshapes a state rather than changing a number the optimizer tests see."""

import jax
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


def test_float_leaves_mask_the_integer_leaves():
    tree = {"w": jnp.ones(2), "count": jnp.array(3, jnp.int32), "flag": jnp.array(True)}
    floats = common.float_leaves(tree)
    assert floats["count"] is None and floats["flag"] is None
    np.testing.assert_array_equal(floats["w"], [1.0, 1.0])
    # `like` decides: a float0 gradient of an integer leaf becomes None too.
    grads = {"w": jnp.full(2, 2.0), "count": np.zeros((), jax.dtypes.float0), "flag": None}
    masked = common.float_leaves_like(grads, tree)
    assert masked["count"] is None and masked["flag"] is None
    np.testing.assert_array_equal(masked["w"], [2.0, 2.0])


def test_fresh_copy_owns_its_buffer():
    leaf = jnp.arange(3.0)
    copy = common.fresh_copy(leaf)
    leaf.delete()  # as a donated buffer would be
    np.testing.assert_array_equal(copy, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(
        common.fresh_copy(jax.ShapeDtypeStruct((2,), jnp.int32)), np.zeros(2, np.int32)
    )
