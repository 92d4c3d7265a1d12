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


def test_shared_argument_docs_expand_at_the_placeholders_indentation():
    def factory():
        """Summary.

        Args:
          first: one.
          {shared: accumulator_dtype, noise_distribution}
          last: two.
        """

    doc = common.shared_argument_docs(factory).__doc__
    lines = doc.splitlines()
    start = lines.index("          first: one.")
    end = lines.index("          last: two.")
    entries = lines[start + 1 : end]
    assert entries[0].startswith("          accumulator_dtype: ")
    heads = [i for i, line in enumerate(entries) if not line.startswith(" " * 12)]
    assert [entries[i].split(":")[0].strip() for i in heads] == [
        "accumulator_dtype",
        "noise_distribution",
    ]
    assert all(line.startswith(" " * 12) for i, line in enumerate(entries) if i not in heads)
    assert all(len(line) <= 100 for line in entries)
    joined = " ".join(line.strip() for line in entries)
    for name in ("accumulator_dtype", "noise_distribution"):
        assert f"{name}: {common.ARGUMENT_DOCS[name]}" in joined  # the whole description
    assert all(line.count("``") % 2 == 0 for line in entries)  # no ``literal`` split


def test_any_in_batch_leaves_an_unbatched_predicate_alone():
    # Under vmap with a shared (unbatched) state the predicate is not batched.
    def due_twice(count, x):
        return common.batch_cond(count % 2 == 0, lambda: 2 * x, lambda: x)

    out = jax.vmap(due_twice, in_axes=(None, 0))(jnp.int32(4), jnp.arange(3.0))
    np.testing.assert_array_equal(out, [0.0, 2.0, 4.0])
    out = jax.vmap(due_twice)(jnp.array([4, 3, 2]), jnp.arange(3.0))
    np.testing.assert_array_equal(out, [0.0, 1.0, 4.0])
    out = jax.vmap(due_twice)(jnp.array([1, 3, 5]), jnp.arange(3.0))
    np.testing.assert_array_equal(out, [0.0, 1.0, 2.0])


def test_shared_argument_docs_wrap_at_100_columns_and_keep_hyphenated_words(monkeypatch):
    # "ab" words fill a continuation line (12 spaces) to 98 columns: one more column would
    # take a 30th word; hyphenated words are never broken at their hyphens.
    monkeypatch.setitem(common.ARGUMENT_DOCS, "probe", " ".join(["ab"] * 80 + ["abc-def-gh"] * 30))

    def factory():
        """Summary.

        Args:
          {shared: probe}
        """

    lines = common.shared_argument_docs(factory).__doc__.splitlines()
    entry = [line for line in lines if line.startswith("          ") and line.strip()]
    assert max(len(line) for line in entry) <= 100
    assert len(entry[1]) == 98
    assert not any(line.endswith("-") for line in entry)
