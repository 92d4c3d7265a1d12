"""Conformance suite: every transformation of ``entropix.OPTIMIZERS`` behaves as an optax citizen.

The parametrization is derived from the catalogue: every entry whose kind is not ``"baseline"``,
in the step form and (where the entry has one) the compiled form driven by a ``grad_fn(params, i)``
extra argument, and again for each of the entry's ``variants`` (e.g. the automatic coupling).
Replica entries run one replica per slice of ``jax.vmap(..., axis_name=...)`` with two replicas;
``"transform"`` entries are chained before ``optax.sgd(0.1)``. Each case runs two outer steps of
a quadratic loss on a tiny parameter tree and checks jit, donation, ``inject_hyperparams``,
dtypes, integer leaves, abstract init, checkpointing, extra arguments, the optax wrappers
(``MultiSteps``, ``apply_if_finite``, ``chain``) and the state accessors.
Jitted steps are cached per case and build (plain, injected) so no function is compiled twice.
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import typing

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import entropix

AXIS = "replicas"
NUM_REPLICAS = 2
NUM_OUTER = 2

_CURVATURE = {"b": jnp.array([1.0, 2.0]), "w": jnp.array([[0.5, 1.5], [1.0, 2.0], [3.0, 0.25]])}
_TARGET = {"b": jnp.array([0.3, -0.2]), "w": jnp.array([[1.0, -1.0], [0.5, 0.0], [-0.5, 2.0]])}


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """One catalogue entry in one form, with its example settings or one of its variants."""

    name: str
    compiled: bool
    variant: str | None = None

    @property
    def entry(self) -> entropix.OptimizerEntry:
        return entropix.OPTIMIZERS[self.name]

    @property
    def id(self) -> str:
        form = f"{self.name}-{'compiled' if self.compiled else 'step'}"
        return form if self.variant is None else f"{form}-{self.variant}"

    @property
    def replicas(self) -> bool:
        return self.entry.replica_axis is not None

    @property
    def two_loop(self) -> bool:
        return self.entry.cycle_argument is not None

    @property
    def cycle(self) -> int:
        """Updates per outer step in this form."""
        return 1 if self.compiled else self.entry.cycle_length(self.entry.example_kwargs)

    @property
    def num_updates(self) -> int:
        return NUM_OUTER * self.cycle

    def has_argument(self, name: str) -> bool:
        return name in inspect.signature(self.entry.factory).parameters

    def kwargs(self, **overrides) -> dict:
        kwargs = dict(self.entry.example_kwargs)
        if self.variant is not None:
            kwargs.update(self.entry.variants[self.variant])
        if self.compiled:
            kwargs["compiled"] = True
        if self.replicas:
            kwargs[self.entry.replica_axis] = AXIS
        kwargs.update(overrides)
        return kwargs

    def wrap(self, transform: optax.GradientTransformation) -> optax.GradientTransformation:
        """A transform entry chained before SGD; an optimizer as is."""
        if self.entry.kind == "transform":
            return optax.chain(transform, optax.sgd(0.1))
        return transform

    def build(self, factory=None, **overrides) -> optax.GradientTransformation:
        return self.wrap((factory or self.entry.factory)(**self.kwargs(**overrides)))


def _cases() -> list[Case]:
    cases = []
    for entry in entropix.OPTIMIZERS.values():
        if entry.kind == "baseline":
            continue
        for variant in (None, *entry.variants):
            cases.append(Case(entry.name, False, variant))
            if entry.compiled:
                cases.append(Case(entry.name, True, variant))
    return cases


CASES = _cases()
TWO_LOOP = [case for case in CASES if case.two_loop]
STEP_TWO_LOOP = [case for case in TWO_LOOP if not case.compiled]
COMPILED = [case for case in CASES if case.compiled]


def cases(selection):
    return pytest.mark.parametrize("case", selection, ids=lambda case: case.id)


# ---------------------------------------------------------------------------------------------
# Loss, parameters, steps
# ---------------------------------------------------------------------------------------------


def loss(params) -> jax.Array:
    return sum(
        0.5 * jnp.sum(_CURVATURE[k] * (params[k].astype(jnp.float32) - _TARGET[k]) ** 2)
        for k in _CURVATURE
    )


def gradients(params):
    """The gradient of :func:`loss` in the parameters' dtypes; zeros for integer leaves."""

    def leaf_gradient(path, leaf):
        name = path[0].key
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            return jnp.zeros_like(leaf)
        return (_CURVATURE[name] * (leaf - _TARGET[name])).astype(leaf.dtype)

    return jax.tree_util.tree_map_with_path(leaf_gradient, params)


def make_params(case: Case, dtype=jnp.float32, extra=None):
    params = {"b": jnp.array([0.5, -1.0]), "w": jnp.arange(6.0).reshape(3, 2) / 4.0}
    params = {k: v.astype(dtype) for k, v in params.items()}
    if extra:
        params.update(extra)
    if case.replicas:
        # Two replicas that differ, so the coupling acts.
        return jax.tree.map(
            lambda leaf: (
                jnp.stack([leaf, leaf + jnp.ones_like(leaf)]) if leaf is not None else None
            ),
            params,
        )
    return params


def make_update(case: Case, opt, **extra_args):
    """``(grads, state, params) -> (updates, state)`` with the form's extra arguments."""

    def update(grads, state, params):
        if case.compiled:
            extra_args["grad_fn"] = lambda p, i: gradients(p)
        return opt.update(grads, state, params, **extra_args)

    return jax.vmap(update, axis_name=AXIS) if case.replicas else update


def make_step(case: Case, opt, **extra_args):
    """``(params, state) -> (params, state)``: one update on the gradient at ``params``."""
    update = make_update(case, opt, **extra_args)

    def step(params, state):
        updates, state = update(gradients(params), state, params)
        return optax.apply_updates(params, updates), state

    return step


def make_init(case: Case, opt):
    return jax.vmap(opt.init) if case.replicas else opt.init


class Runner(typing.NamedTuple):
    opt: optax.GradientTransformation
    init: typing.Callable
    step: typing.Callable  # jitted
    traces: list  # one entry per trace of ``step``


_RUNNERS: dict[tuple[str, str], Runner] = {}


def runner(case: Case, variant: str = "plain", build=None) -> Runner:
    """The jitted step of ``case`` built by ``build(case)`` (cached per case and variant)."""
    cache_key = (case.id, variant)
    if cache_key not in _RUNNERS:
        opt = (build or (lambda c: c.build()))(case)
        traces = []
        step = make_step(case, opt)

        def counted(params, state):
            traces.append(None)  # a side effect: runs once per trace
            return step(params, state)

        _RUNNERS[cache_key] = Runner(opt, make_init(case, opt), jax.jit(counted), traces)
    return _RUNNERS[cache_key]


def run(step, params, state, num_updates):
    for _ in range(num_updates):
        params, state = step(params, state)
    return params, state


def eager_run(case: Case, opt, params, num_updates=None, **extra_args):
    """Runs ``opt`` op by op (no compilation).

    Only the tests of jit and donation compile: the other behaviours are checked eagerly, which
    costs a few milliseconds per run instead of a second of XLA compilation per variant.
    """
    with jax.disable_jit():
        state = make_init(case, opt)(params)
        step = make_step(case, opt, **extra_args)
        return run(step, params, state, case.num_updates if num_updates is None else num_updates)


_RESULTS: dict[tuple[str, str], tuple] = {}


def reference(case: Case):
    """``(params, state)`` after ``case.num_updates`` jitted plain updates (cached)."""
    if (case.id, "jit") not in _RESULTS:
        plain = runner(case)
        params = make_params(case)
        _RESULTS[case.id, "jit"] = run(plain.step, params, plain.init(params), case.num_updates)
    return _RESULTS[case.id, "jit"]


def eager_reference(case: Case):
    """``(params, state)`` after ``case.num_updates`` eager plain updates (cached)."""
    if (case.id, "eager") not in _RESULTS:
        _RESULTS[case.id, "eager"] = eager_run(case, runner(case).opt, make_params(case))
    return _RESULTS[case.id, "eager"]


def assert_trees_equal(actual, expected, *, rtol=0.0, atol=0.0):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a), np.asarray(e)
        assert a.dtype == e.dtype, (a.dtype, e.dtype)
        if rtol or atol:
            np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol, atol)
        else:
            np.testing.assert_array_equal(a, e)


def anchor(state, params):
    return entropix.anchor_params(state, params)


# ---------------------------------------------------------------------------------------------
# 0. The parametrization covers the catalogue, and the catalogue covers the package
# ---------------------------------------------------------------------------------------------

# `two_loop` builds a two-loop optimizer from an inner rule; the catalogue's two-loop entries
# (entropy_sgd, entropy_adam, hj, heat, local_entropy, parle) are built with it, so it has no
# catalogue entry of its own.
_NOT_CATALOGUED = {"two_loop"}


def _return_type(function):
    annotation = inspect.signature(function).return_annotation
    if isinstance(annotation, str):  # postponed annotations: evaluate in the function's module
        try:
            return eval(annotation, function.__globals__)
        except NameError:
            return None
    return annotation


def test_every_public_transformation_factory_is_catalogued():
    catalogued = {entry.factory for entry in entropix.OPTIMIZERS.values()}
    factories = []
    for name in entropix.__all__:
        value = getattr(entropix, name)
        if not inspect.isfunction(value):
            continue
        returned = _return_type(value)
        if isinstance(returned, type) and issubclass(returned, optax.GradientTransformation):
            factories.append(name)
    # The search finds the factories (and the exempted builder, so the exemption is live).
    assert {"entropy_sgd", "add_elastic_coupling", "two_loop"} <= set(factories)
    missing = [
        n for n in factories if n not in _NOT_CATALOGUED and getattr(entropix, n) not in catalogued
    ]
    assert not missing, f"public transformations without a catalogue entry: {missing}"


def test_parametrization_covers_every_entry():
    entries = [entry for entry in entropix.OPTIMIZERS.values() if entry.kind != "baseline"]
    assert {case.name for case in CASES} == {entry.name for entry in entries}
    assert {case.name for case in COMPILED} == {entry.name for entry in entries if entry.compiled}
    expected = {
        (entry.name, compiled, variant)
        for entry in entries
        for variant in (None, *entry.variants)
        for compiled in ((False, True) if entry.compiled else (False,))
    }
    assert {(case.name, case.compiled, case.variant) for case in CASES} == expected
    assert len(CASES) == len(expected)
    assert any(case.variant == "auto_coupling" for case in CASES)


# ---------------------------------------------------------------------------------------------
# 1. jit: one trace, reused
# ---------------------------------------------------------------------------------------------


@cases(CASES)
def test_jit_traces_once(case):
    plain = runner(case)
    params, state = reference(case)
    assert len(plain.traces) == 1
    # New arrays of the same types: no new trace.
    fresh = make_params(case)
    again = run(plain.step, fresh, plain.init(fresh), case.num_updates)
    assert len(plain.traces) == 1
    assert plain.step._cache_size() == 1
    assert_trees_equal(again, (params, state))
    assert not np.allclose(params["w"], make_params(case)["w"])


# ---------------------------------------------------------------------------------------------
# 2. Donation: a state donated to a jitted step leaves the optimizer usable
# ---------------------------------------------------------------------------------------------


@cases(CASES)
def test_donation_keeps_the_optimizer_usable(case):
    plain = runner(case)
    donated = jax.jit(make_step(case, plain.opt), donate_argnums=(0, 1))
    params = make_params(case)
    first_state = plain.init(params)
    first = run(donated, params, first_state, case.num_updates)
    assert params["w"].is_deleted()  # the buffers were donated
    assert any(leaf.is_deleted() for leaf in jax.tree.leaves(first_state))
    # init again from the same optimizer object (its key and buffers must have survived), twice.
    second_state = plain.init(make_params(case))
    third_state = plain.init(make_params(case))
    second = run(donated, make_params(case), second_state, case.num_updates)
    assert_trees_equal(second, first)
    third = run(plain.step, make_params(case), third_state, case.num_updates)
    assert_trees_equal(third, reference(case))


# ---------------------------------------------------------------------------------------------
# 3. optax.inject_hyperparams
# ---------------------------------------------------------------------------------------------


def _injected(case: Case, **overrides):
    static = ("num_inner_steps",) if case.compiled else ()
    factory = optax.inject_hyperparams(case.entry.factory, static_args=static)
    return case.wrap(factory(**case.kwargs(**overrides)))


@cases(CASES)
def test_inject_hyperparams_equals_the_plain_optimizer(case):
    injected = runner(case, "inject", _injected)
    params = make_params(case)
    result_params, state = run(injected.step, params, injected.init(params), case.num_updates)
    expected_params, expected_state = reference(case)
    np.testing.assert_allclose(result_params["w"], expected_params["w"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result_params["b"], expected_params["b"], rtol=1e-6, atol=1e-6)
    if case.two_loop:
        assert_trees_equal(
            entropix.anchor_params(state),
            entropix.anchor_params(expected_state),
            rtol=1e-6,
            atol=1e-6,
        )


@cases(COMPILED)
def test_compiled_form_under_inject_needs_static_num_inner_steps(case):
    factory = optax.inject_hyperparams(case.entry.factory)
    opt = case.wrap(factory(**case.kwargs()))
    with pytest.raises(TypeError, match=r"static_args=\('num_inner_steps',\)"):
        make_init(case, opt)(make_params(case))


def _outer_schedules(case: Case) -> dict:
    """Schedules of the outer-step count for the entry's learning rate and SGLD coupling (the
    SGLD step size when the coupling is automatic).

    HEAT's coupling is left out: it sets the perturbation where the *next* gradient is taken, so
    the last call of an outer step places the walker of the next one with the value injected for
    that call (one outer step early). Its learning rate is checked instead.
    """
    schedules = {}
    if case.has_argument("learning_rate"):
        rate = case.entry.example_kwargs["learning_rate"]
        schedules["learning_rate"] = optax.linear_schedule(rate, 0.2 * rate, NUM_OUTER)
    state = make_init(case, runner(case).opt)(make_params(case))
    if isinstance(entropix.two_loop_state(state), entropix.LocalEntropyState):
        coupling = case.kwargs()["coupling"]
        if isinstance(coupling, float):
            schedules["coupling"] = optax.linear_schedule(coupling, 3.0 * coupling, NUM_OUTER)
        else:  # an automatic coupling: schedule the inner step size instead
            rate = case.kwargs().get("sgld_learning_rate", 0.1)
            schedules["sgld_learning_rate"] = optax.linear_schedule(rate, 3.0 * rate, NUM_OUTER)
    return schedules


@cases(TWO_LOOP)
def test_inject_schedules_count_outer_steps_through_outer_count_schedule(case):
    schedules = _outer_schedules(case)
    plain = case.build(**schedules)
    static = ("num_inner_steps",) if case.compiled else ()
    factory = optax.inject_hyperparams(case.entry.factory, static_args=static)
    by_call = {k: entropix.outer_count_schedule(s, case.cycle) for k, s in schedules.items()}
    converted = case.wrap(factory(**case.kwargs(**by_call)))
    params = make_params(case)
    expected_params, expected_state = eager_run(case, plain, params)
    result_params, state = eager_run(case, converted, params)
    assert_trees_equal(result_params, expected_params, rtol=1e-6, atol=1e-6)
    assert_trees_equal(
        entropix.anchor_params(state), entropix.anchor_params(expected_state), rtol=1e-6, atol=1e-6
    )
    if not case.compiled:
        # The schedule read at the call count instead: a different (faster) scoping.
        raw = case.wrap(factory(**case.kwargs(**schedules)))
        raw_params, _ = eager_run(case, raw, params)
        assert not np.allclose(raw_params["w"], expected_params["w"], rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# 4. dtypes
# ---------------------------------------------------------------------------------------------


def _inexact_leaves(tree):
    return [leaf for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.inexact)]


def _two_loop_accumulators(state):
    found = entropix.two_loop_state(state)
    if isinstance(found, entropix.HeatState):
        return found.anchor, found.gradient_average
    return found.anchor, found.walker_average


@cases(CASES)
def test_bfloat16_updates_keep_the_parameters_dtypes(case):
    opt = runner(case).opt
    params = make_params(case, jnp.bfloat16)
    with jax.disable_jit():
        state = make_init(case, opt)(params)
        update = make_update(case, opt)
        for _ in range(case.num_updates):
            updates, state = update(gradients(params), state, params)
            assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(
                lambda p: p.dtype, params
            )
            params = optax.apply_updates(params, updates)
    assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(params))
    if not case.has_argument("accumulator_dtype"):
        return
    # float32 accumulators: the anchor and the average are float32 and closer to a float32 run.
    accurate = case.build(accumulator_dtype=jnp.float32)
    accurate_params, accurate_state = eager_run(case, accurate, make_params(case, jnp.bfloat16))
    assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(accurate_params))
    for tree in _two_loop_accumulators(accurate_state):
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(tree))
    _, reference_state = eager_reference(case)
    exact = entropix.anchor_params(reference_state)

    def error(state):
        anchor = entropix.anchor_params(state)
        return sum(
            float(jnp.sum((a.astype(jnp.float32) - e) ** 2))
            for a, e in zip(jax.tree.leaves(anchor), jax.tree.leaves(exact), strict=True)
        )

    assert error(accurate_state) < error(state)


@cases(CASES)
def test_float64_under_x64(case):
    with jax.enable_x64(True):
        opt = case.build()
        params = make_params(case, jnp.float64)
        result_params, state = eager_run(case, opt, params)
        leaves = _inexact_leaves((result_params, state))
        assert leaves and all(leaf.dtype == jnp.float64 for leaf in leaves)
        if case.compiled:
            return
        # The noise scale is computed in float64: one step with and without noise differs by
        # exactly sqrt(η') ε (Rademacher noise) or, for HEAT, the perturbations at γ and 3γ
        # differ by exactly √3.
        kwargs = case.entry.example_kwargs
        if case.has_argument("noise") and kwargs.get("noise"):
            noisy, _ = eager_run(case, opt, params, 1)
            quiet, _ = eager_run(case, case.build(noise=0.0), params, 1)
            expected = np.sqrt(np.float64(kwargs["sgld_learning_rate"])) * kwargs["noise"]
            for a, b in zip(jax.tree.leaves(noisy), jax.tree.leaves(quiet), strict=True):
                np.testing.assert_allclose(np.abs(np.asarray(a - b)), expected, rtol=1e-11)
        elif case.two_loop and isinstance(entropix.two_loop_state(state), entropix.HeatState):
            coupling = kwargs["coupling"]
            wide, _ = eager_run(case, opt, params, 1)
            narrow, _ = eager_run(case, case.build(coupling=3.0 * coupling), params, 1)
            center, _ = eager_run(case, case.build(coupling=1e300), params, 1)
            for a, b, c in zip(*map(jax.tree.leaves, (wide, narrow, center)), strict=True):
                np.testing.assert_allclose(
                    np.asarray(a - c), np.sqrt(3.0) * np.asarray(b - c), rtol=1e-11, atol=1e-15
                )


# ---------------------------------------------------------------------------------------------
# 5. Integer and None leaves pass through
# ---------------------------------------------------------------------------------------------


@cases(CASES)
def test_integer_and_none_leaves_pass_through(case):
    counter = jnp.array([3, 7], jnp.int32)
    params = make_params(case, extra={"counter": counter, "nothing": None})
    result, _ = eager_run(case, runner(case).opt, params)
    expected, _ = eager_reference(case)
    assert result["nothing"] is None
    np.testing.assert_array_equal(result["counter"], params["counter"])
    assert result["counter"].dtype == jnp.int32
    assert_trees_equal({k: result[k] for k in ("b", "w")}, expected)


# ---------------------------------------------------------------------------------------------
# 6. Abstract initialization
# ---------------------------------------------------------------------------------------------


def _shapes(tree):
    return jax.tree.map(lambda leaf: (leaf.shape, jnp.dtype(leaf.dtype)), tree)


@cases(CASES)
def test_init_under_eval_shape_and_from_shape_dtype_structs(case):
    opt = runner(case).opt
    params = make_params(case)
    if case.replicas:  # init is per replica and needs no replica axis
        params = jax.tree.map(lambda leaf: leaf[0], params)
    with jax.disable_jit():
        concrete = opt.init(params)
        abstract_params = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
        from_structs = opt.init(abstract_params)
    abstract = jax.eval_shape(opt.init, params)
    assert _shapes(abstract) == _shapes(concrete)
    assert _shapes(from_structs) == _shapes(concrete)
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(from_structs))


# ---------------------------------------------------------------------------------------------
# 7. Checkpointing mid-cycle
# ---------------------------------------------------------------------------------------------


def _mid_cycle(case: Case):
    """``(params, state)`` one update into the second outer step, and the next step's result."""
    plain = runner(case)
    params = make_params(case)
    params, state = run(plain.step, params, plain.init(params), case.cycle + 1)
    return params, state, plain.step(params, state)


@cases(CASES)
def test_pickle_round_trip_mid_cycle(case):
    params, state, expected = _mid_cycle(case)
    restored = pickle.loads(pickle.dumps(state))
    assert_trees_equal(restored, state)
    assert_trees_equal(runner(case).step(params, restored), expected)


@pytest.fixture(scope="module")
def orbax_restored(tmp_path_factory):
    """Every case's mid-cycle state saved in one orbax checkpoint and restored (one round trip:
    each costs seconds of checkpointer threads)."""
    ocp = pytest.importorskip("orbax.checkpoint")
    states = {case.id: _mid_cycle(case)[1] for case in CASES}
    path = tmp_path_factory.mktemp("orbax") / "states"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, states)
        checkpointer.wait_until_finished()
        return checkpointer.restore(path, jax.eval_shape(lambda: states))


@cases(CASES)
def test_orbax_round_trip_mid_cycle(case, orbax_restored):
    params, state, expected = _mid_cycle(case)
    restored = orbax_restored[case.id]
    assert_trees_equal(restored, state)
    # orbax restores arrays committed to a device, which the jit cache keys on: hand the step
    # host copies so the cached executable is reused.
    restored = jax.tree.map(lambda leaf: jnp.asarray(np.asarray(leaf)), restored)
    assert_trees_equal(runner(case).step(params, restored), expected)


# ---------------------------------------------------------------------------------------------
# 8. Extra arguments of update
# ---------------------------------------------------------------------------------------------


@cases(CASES)
def test_unknown_extra_arguments_are_ignored(case):
    params = make_params(case)
    result = eager_run(case, runner(case).opt, params, value=jnp.float32(1.5), unknown="x")
    assert_trees_equal(result, eager_reference(case))


LOCAL_ENTROPY = [case for case in CASES if case.name == "local_entropy"]


def _run_with_values(case: Case, opt, values):
    """Eager run whose call ``k`` passes ``value=values[k]``."""
    params = make_params(case)
    with jax.disable_jit():
        state = opt.init(params)
        for value in values:
            extra = {"value": jnp.float32(value)}
            if case.compiled:
                extra["grad_fn"] = lambda p, i: gradients(p)
            updates, state = opt.update(gradients(params), state, params, **extra)
            params = optax.apply_updates(params, updates)
    return params, state


@cases(LOCAL_ENTROPY)
def test_extra_arguments_reach_the_outer_transformation(case):
    # reduce_on_plateau records the value of the calls that take an outer step.
    outer = optax.chain(optax.sgd(1.0), optax.contrib.reduce_on_plateau())
    values = [10.0 - k for k in range(case.num_updates)]
    _, state = _run_with_values(case, case.build(outer=outer), values)
    outer_values = values[case.cycle - 1 :: case.cycle]
    assert float(optax.tree_utils.tree_get(state, "best_value")) == min(outer_values)
    assert int(optax.tree_utils.tree_get(state, "plateau_count")) == 0
    # Polyak's step size is value / ‖g‖²: a value of 0 keeps the anchor still, 1 moves it.
    polyak = case.build(outer=optax.polyak_sgd(max_learning_rate=1.0))
    start = make_params(case)
    _, still = _run_with_values(case, polyak, [0.0] * case.num_updates)
    assert_trees_equal(entropix.anchor_params(still), start)
    _, moved = _run_with_values(case, polyak, [1.0] * case.num_updates)
    assert not np.allclose(entropix.anchor_params(moved)["w"], start["w"])


# ---------------------------------------------------------------------------------------------
# 9. optax wrappers: MultiSteps, apply_if_finite, chain
# ---------------------------------------------------------------------------------------------


def _outputs(result):
    """The parameters and, for two-loop optimizers, the anchor (states of wrappers differ)."""
    params, state = result
    return params, entropix.anchor_params(state, params)


@cases(CASES)
def test_multi_steps(case):
    # Two calls per step on the same parameters average two equal gradients: the run equals the
    # plain one with half the calls.
    opt = optax.MultiSteps(runner(case).opt, every_k_schedule=2)
    result = eager_run(case, opt, make_params(case), 2 * case.num_updates)
    assert_trees_equal(_outputs(result), _outputs(eager_reference(case)), rtol=1e-6, atol=1e-7)


@cases(CASES)
def test_apply_if_finite_skips_a_nan_gradient(case):
    opt = optax.apply_if_finite(runner(case).opt, 3)
    params = make_params(case)
    with jax.disable_jit():
        state = make_init(case, opt)(params)
        step = make_step(case, opt)
        params, state = run(step, params, state, case.num_updates - 1)
        update = make_update(case, opt)
        nan_grads = jax.tree.map(lambda g: jnp.full_like(g, jnp.nan), gradients(params))
        updates, skipped = update(nan_grads, state, params)
        assert all(not np.any(np.asarray(u)) for u in jax.tree.leaves(updates))
        assert_trees_equal(skipped.inner_state, state.inner_state)
        np.testing.assert_array_equal(skipped.notfinite_count, 1)
        result = run(step, params, skipped, 1)
    # Under vmap the wrapper's `lax.cond` on each replica's finiteness flag traces the update, so
    # the update's own outer-step branch is compiled as one computation even eagerly (its last
    # bits may differ from the op-by-op reference).
    tolerance = dict(rtol=1e-6, atol=1e-7) if case.replicas else {}
    assert_trees_equal(_outputs(result), _outputs(eager_reference(case)), **tolerance)


@cases(CASES)
def test_chain_before_and_after(case):
    opt = runner(case).opt
    expected = _outputs(eager_reference(case))
    clipped = optax.chain(optax.clip_by_global_norm(1e3), opt)
    assert_trees_equal(_outputs(eager_run(case, clipped, make_params(case))), expected)
    scaled = optax.chain(opt, optax.scale(1.0))
    assert_trees_equal(_outputs(eager_run(case, scaled, make_params(case))), expected)


# ---------------------------------------------------------------------------------------------
# 10. Counts: tree_get and the public accessors
# ---------------------------------------------------------------------------------------------


@cases(TWO_LOOP)
def test_counts_through_tree_get_and_accessors(case):
    length = case.entry.cycle_length(case.entry.example_kwargs)
    plain = runner(case)
    params = make_params(case)
    state = plain.init(params)
    for calls in range(1, case.num_updates + 1):
        params, state = plain.step(params, state)
        inner = calls * length // case.cycle
        expected = {"inner_count": inner, "outer_count": inner // length, "num_inner_steps": length}
        for name, value in expected.items():
            np.testing.assert_array_equal(optax.tree_utils.tree_get(state, name), value)
        np.testing.assert_array_equal(entropix.outer_step_count(state), inner // length)
        np.testing.assert_array_equal(entropix.is_outer_step(state), inner % length == 0)
    assert calls // case.cycle == NUM_OUTER


# ---------------------------------------------------------------------------------------------
# 11. Pre-processing the inner gradients, anchors of composed optimizers, rejected settings
# ---------------------------------------------------------------------------------------------

INNER_TRANSFORM = [case for case in COMPILED if case.has_argument("inner_transform")]


@cases(INNER_TRANSFORM)
@pytest.mark.parametrize(
    "transform",
    [optax.clip_by_global_norm(0.3), optax.add_decayed_weights(0.2)],
    ids=["clip_by_global_norm", "add_decayed_weights"],
)
def test_inner_transform_equals_chaining_before_the_step_form(case, transform):
    step_case = dataclasses.replace(case, compiled=False)
    _, compiled_state = eager_run(case, case.build(inner_transform=transform), make_params(case))
    chained = optax.chain(transform, step_case.build())
    _, step_state = eager_run(step_case, chained, make_params(case))
    anchor = entropix.anchor_params(compiled_state)
    assert_trees_equal(anchor, entropix.anchor_params(step_state), rtol=1e-5, atol=1e-6)
    # The transformation acts: without it the anchor is elsewhere.
    _, plain_state = eager_reference(case)
    assert not np.allclose(anchor["w"], entropix.anchor_params(plain_state)["w"], atol=1e-4)


def test_anchor_params_under_multi_transform():
    length = 3
    groups = {
        "sgld": entropix.entropy_sgd(0.5, num_inner_steps=length, coupling=0.5, noise=1e-3),
        "prox": entropix.hj(0.5, num_inner_steps=length, coupling=0.5),
        "plain": optax.sgd(0.1),
    }
    labels = {"a": "sgld", "b": "prox", "c": "plain"}
    opt = optax.multi_transform(groups, labels)
    params = {"a": jnp.ones((3, 2)), "b": jnp.full((2,), -1.0), "c": jnp.full((2,), 2.0)}

    def grads_of(p):
        return jax.tree.map(lambda leaf: 2.0 * leaf - 0.5, p)

    with jax.disable_jit():
        state = opt.init(params)
        for _ in range(NUM_OUTER * length + 1):
            updates, state = opt.update(grads_of(params), state, params)
            params = optax.apply_updates(params, updates)
        alone = {}
        for leaf, group in (("a", "sgld"), ("b", "prox")):
            p = {leaf: jnp.ones((3, 2)) if leaf == "a" else jnp.full((2,), -1.0)}
            s = groups[group].init(p)
            for _ in range(NUM_OUTER * length + 1):
                u, s = groups[group].update(grads_of(p), s, p)
                p = optax.apply_updates(p, u)
            alone[leaf] = entropix.anchor_params(s)[leaf]
    anchor = entropix.anchor_params(state, params)
    assert jax.tree.structure(anchor) == jax.tree.structure(params)
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(anchor))
    np.testing.assert_array_equal(anchor["a"], alone["a"])
    np.testing.assert_array_equal(anchor["b"], alone["b"])
    np.testing.assert_array_equal(anchor["c"], params["c"])
    # The walker is elsewhere mid-cycle, so the anchor is not the live parameters.
    assert not np.allclose(anchor["a"], params["a"])
    with pytest.raises(ValueError, match=r"anchor_params\(state, params\)"):
        entropix.anchor_params(state)


def test_heat_rejects_a_coupling_schedule_starting_at_zero():
    with pytest.raises(ValueError, match=r"coupling.*count 0"):
        entropix.heat(coupling=entropix.bounded_exponential_scoping(100.0, 10.0))


NEGATIVE = optax.linear_schedule(0.1, -0.1, 10)


@pytest.mark.parametrize(
    ("factory", "argument"),
    [
        (entropix.entropy_sgd, "learning_rate"),
        (entropix.entropy_sgd, "coupling"),
        (entropix.entropy_sgd, "sgld_learning_rate"),
        (entropix.entropy_adam, "learning_rate"),
        (entropix.hj, "learning_rate"),
        (entropix.heat, "learning_rate"),
        (entropix.heat, "coupling"),
    ],
)
def test_negative_schedules_raise_at_construction(factory, argument):
    with pytest.raises(ValueError, match=f"`{argument}` is a schedule whose value at count"):
        factory(**{argument: NEGATIVE})


def test_sgld_chain_rejects_burn_in_with_average_weight():
    with pytest.raises(ValueError, match=r"burn_in.*average_weight"):
        entropix.sgld_chain(
            lambda w, i: w, jnp.ones(2), num_steps=10, coupling=1.0, burn_in=5, average_weight=0.5
        )


def test_local_entropy_gradient_rejects_a_heat_state():
    state = entropix.heat(num_inner_steps=2).init(jnp.ones(2))
    with pytest.raises(ValueError, match="HeatState"):
        entropix.local_entropy_gradient(state)


@cases(STEP_TWO_LOOP)
def test_step_form_rejects_grad_fn(case):
    opt = runner(case).opt
    params = make_params(case)
    update = make_update(case, opt, grad_fn=lambda p, i: gradients(p))
    with pytest.raises(TypeError, match="compiled=True"):
        update(gradients(params), make_init(case, opt)(params), params)


# ---------------------------------------------------------------------------------------------
# 12. The automatic coupling: γ lives in the state and is readable through every pipeline
# ---------------------------------------------------------------------------------------------

AUTO_COUPLING = [case for case in CASES if case.variant == "auto_coupling"]


@cases(AUTO_COUPLING)
def test_automatic_coupling_is_in_the_state(case):
    _, state = reference(case)
    gamma = np.asarray(entropix.current_coupling(state))
    assert gamma.shape == ((NUM_REPLICAS,) if case.replicas else ())
    np.testing.assert_array_equal(optax.tree_utils.tree_get(state, "coupling"), gamma)
    auto = case.kwargs()["coupling"]
    assert isinstance(auto, entropix.AutoCoupling)
    # It moved, by at most the factor clip per outer step, and stayed within its bounds.
    initial, factor = np.float32(auto.initial), auto.max_factor**NUM_OUTER
    assert np.all(gamma != initial)
    assert np.all(gamma <= min(initial * factor, auto.max_coupling) * (1 + 1e-6))
    assert np.all(gamma >= max(initial / factor, auto.min_coupling) * (1 - 1e-6))
    chained = optax.chain(optax.clip_by_global_norm(1e3), runner(case).opt)
    _, chained_state = eager_run(case, chained, make_params(case))
    np.testing.assert_allclose(entropix.current_coupling(chained_state), gamma, rtol=1e-6)
