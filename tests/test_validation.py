"""Direct unit tests of the package's argument checks (``entropix._src.validation``).

Every optimizer factory calls these checks at construction; here each check is exercised at its
boundaries (the value just inside and just outside), with schedules, with traced values inside
``jit`` (left alone) and with the message it raises (argument name, value and fix).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from entropix._src import validation

TINY = 1e-12


def traced(check, value):
    """Runs ``check(value)`` on ``value`` traced inside ``jit``; returns what ``jit`` returns."""
    return jax.jit(lambda v: (check(v), v)[1])(value)


# ---------------------------------------------------------------------------------------------
# concrete_value
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (0.25, 0.25),
        (np.float32(0.5), 0.5),
        (np.asarray(2.0), 2.0),
        (jnp.asarray(-1.5, jnp.float32), -1.5),
        (True, None),  # a bool is not a number here
        ("1.5", None),  # nor is a string that looks like one
        (np.ones(3), None),  # nor an array that is not a scalar
        (jnp.ones(1), None),
        (None, None),
        (lambda count: 0.1, None),  # a schedule
    ],
    ids=lambda v: type(v).__name__,
)
def test_concrete_value(value, expected):
    result = validation.concrete_value(value)
    assert result == expected
    assert result is None or type(result) is float


def test_concrete_value_of_a_tracer_is_none():
    seen = []
    traced(lambda v: seen.append(validation.concrete_value(v)), jnp.float32(2.0))
    assert seen == [None]


# ---------------------------------------------------------------------------------------------
# check_positive, check_non_negative, check_unit_interval (concrete values only)
# ---------------------------------------------------------------------------------------------


def test_check_positive_boundary_and_message():
    for value in (TINY, 1.0, 7, np.float32(1e-30), jnp.asarray(3.0)):
        validation.check_positive("lr", value)
    for value in (0, 0.0, -TINY, float("nan"), jnp.asarray(0.0), -1):
        with pytest.raises(ValueError, match=r"^`lr` must be positive, got lr="):
            validation.check_positive("lr", value)
    with pytest.raises(
        ValueError, match=r"^`learning_rate` must be positive, got learning_rate=-0\.1\.$"
    ):
        validation.check_positive("learning_rate", -0.1)


def test_check_non_negative_boundary_and_message():
    for value in (0, 0.0, TINY, 0.5, jnp.asarray(0.0)):
        validation.check_non_negative("noise", value)
    for value in (-TINY, -1, float("nan")):
        with pytest.raises(ValueError, match=r"^`noise` must be non-negative, got noise="):
            validation.check_non_negative("noise", value)
    with pytest.raises(ValueError, match=r"got weight_decay=-0\.5\.$"):
        validation.check_non_negative("weight_decay", -0.5)


@pytest.mark.parametrize(
    "check", [validation.check_positive, validation.check_non_negative], ids=["pos", "nonneg"]
)
def test_sign_checks_leave_schedules_tracers_and_non_scalars_alone(check):
    check("x", lambda count: -1.0)  # schedules go through check_schedule
    check("x", "a string")  # the type is someone else's check
    check("x", np.full(3, -1.0))
    assert float(traced(lambda v: check("x", v), jnp.float32(-1.0))) == -1.0


@pytest.mark.parametrize("allow_zero", [True, False])
def test_check_unit_interval_boundaries(allow_zero):
    accepted = [TINY, 0.5, 1.0, 1, jnp.asarray(1.0)] + ([0.0, 0] if allow_zero else [])
    rejected = [-TINY, 1 + 1e-9, 1.5, 2, float("nan")] + ([] if allow_zero else [0.0, 0])
    for value in accepted:
        validation.check_unit_interval("alpha", value, allow_zero=allow_zero)
    interval = r"\[0, 1\]" if allow_zero else r"\(0, 1\]"
    for value in rejected:
        with pytest.raises(ValueError, match=rf"^`alpha` must lie in {interval}, got alpha="):
            validation.check_unit_interval("alpha", value, allow_zero=allow_zero)


def test_check_unit_interval_default_allows_zero_and_leaves_tracers_alone():
    validation.check_unit_interval("alpha", 0.0)
    with pytest.raises(ValueError, match=r"got alpha=1\.5\.$"):
        validation.check_unit_interval("alpha", 1.5)
    validation.check_unit_interval("alpha", lambda count: 2.0)
    out = traced(lambda v: validation.check_unit_interval("alpha", v, allow_zero=False), 5.0)
    assert float(out) == 5.0


# ---------------------------------------------------------------------------------------------
# check_schedule
# ---------------------------------------------------------------------------------------------


# The first steps, then a geometric grid up to 10⁷, in this order.
PROBED = [0, 1, 2, 5, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000]


def test_check_schedule_probes_the_first_steps_and_a_geometric_grid():
    seen = []

    def schedule(count):
        seen.append(int(count))
        return 1.0

    validation.check_schedule("lr", schedule, validation.check_positive)
    assert seen == PROBED


@pytest.mark.parametrize("count", PROBED)
def test_check_schedule_names_the_count_where_a_schedule_breaks_the_rule(count):
    # Negative at exactly one probed count: the error names that count and the value there.
    def schedule(step):
        return jnp.where(step == count, -0.25, 0.1)

    message = rf"^`lr` is a schedule whose value at count {count} is -0\.25: `lr` must be positive"
    with pytest.raises(ValueError, match=message) as info:
        validation.check_schedule("lr", schedule, validation.check_positive)
    assert str(info.value).endswith("Fix the schedule's parameters.")
    assert "\n" not in str(info.value)


def test_check_schedule_reports_the_first_probed_count_at_which_a_schedule_crosses():
    # 1 − 2t/2000 reaches 0 at t = 1000, a probed count: it is not positive there.
    schedule = optax.linear_schedule(1.0, -1.0, transition_steps=2000)
    with pytest.raises(ValueError, match=r"at count 1000 is 0\.0: `lr` must be positive"):
        validation.check_schedule("lr", schedule, validation.check_positive)
    # 1 − t/3000 reaches 0 at t = 3000 and stays there: first seen at the next probe, 10⁴.
    decay = optax.linear_schedule(1.0, 0.0, transition_steps=3000)
    with pytest.raises(ValueError, match=r"at count 10000 is 0\.0:"):
        validation.check_schedule("lr", decay, validation.check_positive)
    # Non-negative at every count, the decay passes that rule; the first schedule is negative
    # from t = 1000 on, first probed at 10⁴.
    validation.check_schedule("lr", decay, validation.check_non_negative)
    with pytest.raises(ValueError, match=r"at count 10000 is -1\.0: `lr` must be non-negative"):
        validation.check_schedule("lr", schedule, validation.check_non_negative)


def test_check_schedule_applies_the_check_to_a_plain_value():
    validation.check_schedule("lr", 0.1, validation.check_positive)
    with pytest.raises(ValueError, match=r"^`lr` must be positive, got lr=-1\.0\.$"):
        validation.check_schedule("lr", -1.0, validation.check_positive)
    with pytest.raises(ValueError, match=r"^`alpha` must lie in"):
        validation.check_schedule("alpha", 2.0, validation.check_unit_interval)


def test_check_schedule_leaves_alone_what_it_cannot_evaluate():
    def needs_context(count):
        raise RuntimeError("only inside the training loop")

    calls = []

    def vector(count):
        calls.append(int(count))
        return -jnp.ones(2)  # not a scalar: not probed further

    validation.check_schedule("lr", needs_context, validation.check_positive)
    validation.check_schedule("lr", vector, validation.check_positive)
    assert calls == [0]
    out = traced(lambda v: validation.check_schedule("lr", v, validation.check_positive), -1.0)
    assert float(out) == -1.0


# ---------------------------------------------------------------------------------------------
# The finite checks that return a float
# ---------------------------------------------------------------------------------------------


def test_check_positive_finite():
    for value, expected in ((TINY, TINY), (3, 3.0), (jnp.float32(0.5), 0.5)):
        result = validation.check_positive_finite("max_coupling", value)
        assert type(result) is float and result == expected
    for value in (0.0, -TINY, -1.0, float("inf"), -float("inf"), float("nan")):
        with pytest.raises(
            ValueError, match=r"^`max_coupling` must be a positive finite number, got max_coupling="
        ):
            validation.check_positive_finite("max_coupling", value)


def test_check_non_negative_finite():
    for value, expected in ((0.0, 0.0), (0, 0.0), (TINY, TINY), (0.5, 0.5)):
        result = validation.check_non_negative_finite("growth", value)
        assert type(result) is float and result == expected
    for value in (-TINY, -1.0, float("inf"), float("nan")):
        with pytest.raises(
            ValueError, match=r"^`growth` must be a non-negative finite number, got growth="
        ):
            validation.check_non_negative_finite("growth", value)


def test_check_fraction():
    assert validation.check_fraction("smoothing", 1) == 1.0
    assert type(validation.check_fraction("smoothing", 1)) is float
    assert validation.check_fraction("smoothing", 0.0, allow_zero=True) == 0.0
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\], got smoothing=0\.0"):
        validation.check_fraction("smoothing", 0.0)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\], got smoothing=1\.5"):
        validation.check_fraction("smoothing", 1.5, allow_zero=True)


def test_check_greater_than_one():
    for value in (1 + 1e-9, 2, 1e6):
        result = validation.check_greater_than_one("max_factor", value)
        assert type(result) is float and result == float(value)
    for value in (1.0, 1, 0.5, 0.0, -2.0, float("inf"), float("nan")):
        with pytest.raises(
            ValueError, match=r"^`max_factor` must be a finite number > 1, got max_factor="
        ):
            validation.check_greater_than_one("max_factor", value)


def test_check_ordered():
    validation.check_ordered("min_coupling", 0.5, "max_coupling", 0.5)  # equal is ordered
    validation.check_ordered("min_coupling", 0.1, "max_coupling", 0.5)
    message = (
        r"^`min_coupling` must be <= `max_coupling`, got min_coupling=0\.6 and max_coupling=0\.5: "
        r"lower min_coupling or raise max_coupling\.$"
    )
    with pytest.raises(ValueError, match=message):
        validation.check_ordered("min_coupling", 0.6, "max_coupling", 0.5)


# ---------------------------------------------------------------------------------------------
# check_scalar
# ---------------------------------------------------------------------------------------------


def positive(array):
    return array > 0


def test_check_scalar():
    for value in (1.0, 2, np.float32(0.5), jnp.asarray(3.0), np.asarray(1)):
        validation.check_scalar("lr", value, positive, "positive")
    with pytest.raises(ValueError, match=r"^`lr` must be positive, got lr=-1\.0\.$"):
        validation.check_scalar("lr", -1.0, positive, "positive")
    for shape in ((3,), (1,), (2, 2)):
        message = re.escape(f"`lr` must be a scalar, got an array of shape {shape}.")
        with pytest.raises(ValueError, match=f"^{message}$"):
            validation.check_scalar("lr", np.ones(shape), positive, "positive")


def test_check_scalar_leaves_schedules_and_tracers_alone():
    validation.check_scalar("lr", lambda count: -1.0, positive, "positive")
    out = traced(lambda v: validation.check_scalar("lr", v, positive, "positive"), -jnp.ones(3))
    np.testing.assert_array_equal(out, -np.ones(3))


# ---------------------------------------------------------------------------------------------
# check_key
# ---------------------------------------------------------------------------------------------


def test_check_key_accepts_typed_and_raw_keys():
    typed = jax.random.key(0)
    assert validation.check_key("key", typed) is typed
    raw = jax.random.PRNGKey(1)
    assert validation.check_key("key", raw) is raw
    split = jax.random.split(jax.random.key(2), 3)  # an array of typed keys
    assert validation.check_key("key", split) is split
    from_numpy = validation.check_key("key", np.asarray([0, 7], np.uint32))
    assert isinstance(from_numpy, jax.Array) and from_numpy.dtype == jnp.uint32
    np.testing.assert_array_equal(from_numpy, [0, 7])


@pytest.mark.parametrize(
    ("value", "dtype", "shape"),
    [
        (5, "int32", r"\(\)"),
        ([0, 1], "int32", r"\(2,\)"),
        (np.zeros(2, np.int32), "int32", r"\(2,\)"),
        (np.zeros(3, np.uint32), "uint32", r"\(3,\)"),
        (jnp.zeros((2, 2), jnp.uint32), "uint32", r"\(2, 2\)"),
        (jnp.zeros(2), "float32", r"\(2,\)"),
    ],
    ids=["int", "list", "int32[2]", "uint32[3]", "uint32[2,2]", "float32[2]"],
)
def test_check_key_refuses_other_arrays(value, dtype, shape):
    message = (
        r"^`key` must be a PRNG key from jax.random.key or jax.random.PRNGKey, got key with "
        rf"dtype {dtype} and shape {shape}\.$"
    )
    with pytest.raises(ValueError, match=message):
        validation.check_key("key", value)


def test_check_key_requires_a_key():
    with pytest.raises(ValueError, match=r"^`key` is required: pass e\.g\. key=jax\.random\.key"):
        validation.check_key("key", None)


# ---------------------------------------------------------------------------------------------
# Names and transformations
# ---------------------------------------------------------------------------------------------


def test_check_noise_distribution():
    for name in ("gaussian", "rademacher"):
        validation.check_noise_distribution(name)
    for name in ("normal", "Gaussian", ""):
        with pytest.raises(
            ValueError, match=r"^`noise_distribution` must be one of \('gaussian', 'rademacher'\)"
        ):
            validation.check_noise_distribution(name)


def test_check_transformation():
    validation.check_transformation("inner", optax.sgd(0.1))
    validation.check_transformation("inner", optax.identity())
    with pytest.raises(
        TypeError, match=r"^`inner` must be an optax.GradientTransformation, got function\.$"
    ):
        validation.check_transformation("inner", optax.sgd)
    with pytest.raises(TypeError, match=r"got tuple\.$"):
        validation.check_transformation("inner", (optax.sgd(0.1).init, optax.sgd(0.1).update))


# ---------------------------------------------------------------------------------------------
# check_count and check_static_int
# ---------------------------------------------------------------------------------------------


def test_check_count_python_ints_stay_python_ints():
    result = validation.check_count("num_inner_steps", 3)
    assert type(result) is int and result == 3
    assert validation.check_count("num_inner_steps", 1) == 1  # the minimum itself
    assert validation.check_count("n", 0, minimum=0) == 0
    with pytest.raises(
        ValueError, match=r"^`num_inner_steps` must be >= 1, got num_inner_steps=0\.$"
    ):
        validation.check_count("num_inner_steps", 0)
    with pytest.raises(ValueError, match=r"must be >= 2, got n=1\.$"):
        validation.check_count("n", 1, minimum=2)


def test_check_count_concrete_arrays():
    for value in (jnp.asarray(3, jnp.int32), np.asarray(3, np.int64), jnp.asarray(1, jnp.int32)):
        assert validation.check_count("num_inner_steps", value) is value
    assert int(validation.check_count("n", jnp.asarray(0), minimum=0)) == 0
    with pytest.raises(
        ValueError, match=r"^`num_inner_steps` must be >= 1, got num_inner_steps=0\.$"
    ):
        validation.check_count("num_inner_steps", jnp.asarray(0, jnp.int32))
    with pytest.raises(ValueError, match=r"must be >= 4, got n=3\.$"):
        validation.check_count("n", np.asarray(3), minimum=4)
    with pytest.raises(
        TypeError, match=r"^`num_inner_steps` must be an integer, got num_inner_steps="
    ):
        validation.check_count("num_inner_steps", jnp.asarray(3.0))


def test_check_count_bools_floats_and_vectors_are_refused():
    with pytest.raises(TypeError, match=r"^`n` must be a Python int, got n=True\.$"):
        validation.check_count("n", True)
    with pytest.raises(TypeError, match=r"^`n` must be a Python int, got n=2\.0\.$"):
        validation.check_count("n", 2.0)
    # A vector is not a count; it is refused with the inject_hyperparams hint.
    with pytest.raises(TypeError, match=r"It was given as an array"):
        validation.check_count("n", jnp.ones(2, jnp.int32))


def test_check_count_returns_a_traced_integer_and_refuses_a_traced_float():
    out = traced(lambda v: validation.check_count("num_inner_steps", v), jnp.int32(0))
    assert int(out) == 0  # not checked against the minimum: its value is unknown when tracing
    with pytest.raises(
        TypeError, match=r"^`num_inner_steps` must be an integer, got a traced float32"
    ):
        traced(lambda v: validation.check_count("num_inner_steps", v), jnp.float32(3.0))


def test_check_static_int():
    result = validation.check_static_int("num_inner_steps", 5)
    assert type(result) is int and result == 5
    assert validation.check_static_int("n", np.int32(2)) == 2  # a NumPy integer scalar is integral
    assert type(validation.check_static_int("n", np.int32(2))) is int
    assert validation.check_static_int("n", 1) == 1
    assert validation.check_static_int("n", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=r"^`n` must be >= 1, got n=0\.$"):
        validation.check_static_int("n", 0)
    with pytest.raises(ValueError, match=r"^`n` must be >= 3, got n=2\.$"):
        validation.check_static_int("n", 2, minimum=3)


@pytest.mark.parametrize("value", [True, False, 2.0, "3", None])
def test_check_static_int_refuses_non_integers_without_a_hint(value):
    with pytest.raises(TypeError, match=rf"^`n` must be a Python int, got n={value!r}\.$"):
        validation.check_static_int("n", value)


@pytest.mark.parametrize(
    "value", [np.asarray(3), jnp.asarray(3), jnp.ones(2, jnp.int32)], ids=["numpy", "jax", "vector"]
)
def test_check_static_int_hints_at_static_args_for_arrays(value):
    message = (
        r"^`num_inner_steps` must be a Python int, got num_inner_steps=.*\. It was given as an "
        r"array; under optax.inject_hyperparams pass static_args=\('num_inner_steps',\)\.$"
    )
    with pytest.raises(TypeError, match=message):
        validation.check_static_int("num_inner_steps", value)


def test_check_static_int_hints_at_static_args_for_a_tracer():
    with pytest.raises(
        TypeError,
        match=r"given as an array; under optax.inject_hyperparams pass static_args=\('n',\)\.",
    ):
        traced(lambda v: validation.check_static_int("n", v), jnp.int32(3))


# ---------------------------------------------------------------------------------------------
# check_scalar_or_schedule
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        0.1,
        -3,
        np.float32(0.5),
        np.int64(2),
        jnp.asarray(0.1),
        jnp.asarray(2, jnp.int32),
        np.asarray(0.5),
        optax.constant_schedule(0.1),
    ],
    ids=lambda v: type(v).__name__,
)
def test_check_scalar_or_schedule_accepts_numbers_scalar_arrays_and_schedules(value):
    validation.check_scalar_or_schedule("coupling", value)


def test_check_scalar_or_schedule_leaves_tracers_alone():
    out = traced(lambda v: validation.check_scalar_or_schedule("coupling", v), jnp.ones(2))
    np.testing.assert_array_equal(out, np.ones(2))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "None"),
        (True, "True"),
        ([0.1], r"\[0\.1\]"),
        (np.ones(2), r"array\(\[1\., 1\.\]\)"),
        (jnp.asarray(True), ".*bool"),
        (np.asarray(1 + 2j), ".*1\\.\\+2\\.j"),
        (np.asarray(["a"]), ".*"),
    ],
    ids=["None", "bool", "list", "vector", "bool-array", "complex", "string-array"],
)
def test_check_scalar_or_schedule_refuses_other_types_with_type_error(value, shown):
    message = rf"^`coupling` must be a number or a schedule, got coupling={shown}"
    with pytest.raises(TypeError, match=message):
        validation.check_scalar_or_schedule("coupling", value)


def test_check_scalar_or_schedule_refuses_strings_with_value_error_naming_the_alternatives():
    with pytest.raises(
        ValueError, match=r"^`coupling` must be a number or a schedule, got coupling='0\.1'\.$"
    ):
        validation.check_scalar_or_schedule("coupling", "0.1")
    with pytest.raises(
        ValueError,
        match=r'^`coupling` must be a number or a schedule, or "auto", got coupling=\'autp\'\.$',
    ):
        validation.check_scalar_or_schedule("coupling", "autp", also='"auto"')
    with pytest.raises(TypeError, match=r'or a schedule, or "auto", got coupling=None\.$'):
        validation.check_scalar_or_schedule("coupling", None, also='"auto"')
