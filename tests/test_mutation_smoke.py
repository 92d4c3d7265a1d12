"""Mutation smoke test: every one-point bug planted in HEAT's inner step and in the two-loop
step form's counters must change a number that a closed form pins.

The mutants come from ``scripts/mutation.py`` (the mutation-testing driver; see
docs/contributing.md, "Mutation testing"). Each mutant is a copy of the module with one change of
its syntax tree, loaded here in-process under a private name, so the test costs one small
compilation per mutant and no subprocess. Select it with ``pytest -m mutation_smoke``.
"""

from __future__ import annotations

import importlib.util
import itertools
import pathlib
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

pytestmark = pytest.mark.mutation_smoke

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEAT = "entropix/_src/heat.py"
LOOP = "entropix/_src/loop.py"
# The functions whose mutants the checks below must kill: HEAT's inner step (the running average
# of the gradients, the Gaussian perturbation) and the step form's inner/outer counters.
HEAT_FUNCTIONS = ["step", "place_walker"]
LOOP_FUNCTIONS = ["step_update", "finish_outer_step"]
NUM_INNER, COUPLING, DIM = 3, 25.0, 4000


def _driver():
    found = importlib.util.spec_from_file_location(
        "entropix_mutation_driver", ROOT / "scripts" / "mutation.py"
    )
    module = importlib.util.module_from_spec(found)
    sys.modules[found.name] = module  # dataclasses look the module up while the class is built
    found.loader.exec_module(module)
    return module


DRIVER = _driver()


def _load(path: str, source: str, name: str, **globals_) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = str(ROOT / path)
    sys.modules[name] = module
    try:
        module.__dict__.update(globals_)
        exec(compile(source, str(ROOT / path), "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    for key, value in globals_.items():  # `from entropix._src import loop` rebinds it: undo
        setattr(module, key, value)
    return module


def _violations(heat_source: str, loop_source: str) -> list[str]:
    """The closed forms that a HEAT built from these sources breaks (empty: all hold).

    One optimizer, one compilation: a constant gradient ``c`` on ``DIM`` coordinates, lr 1, no
    momentum. (1) After the first update the params are the anchor (zero) plus Gaussian noise of
    variance ``1/coupling``: the sample std of ``DIM`` draws is within 5 % of ``coupling**-0.5``
    with overwhelming probability. (2) Each outer step moves the anchor by exactly ``-c`` (the
    average of ``L`` equal gradients), only every ``L``-th update moves it, and after ``k``
    updates the outer-step count is ``k // L`` and the inner count ``k``. (3) Successive
    perturbations are independent.
    """
    loop = _load(LOOP, loop_source, "entropix_mutant_loop")
    heat = _load(HEAT, heat_source, "entropix_mutant_heat", loop=loop)
    opt = heat.heat(1.0, num_inner_steps=NUM_INNER, coupling=COUPLING, momentum=0.0, key=3)
    c = jnp.linspace(-2.0, 3.0, DIM)
    params = jnp.zeros(DIM)
    state = opt.init(params)
    update = jax.jit(opt.update)
    broken, anchors, counts, noises = [], [], [], []
    for k in range(2 * NUM_INNER):
        updates, state = update(c, state, params)
        params = optax.apply_updates(params, updates)
        anchors.append(np.asarray(loop.anchor_params(state)))
        noises.append(np.asarray(params) - anchors[-1])
        counts.append(
            (int(loop.outer_step_count(state)), int(loop.two_loop_state(state).inner_count))
        )
        if k == 0:
            std, mean = float(np.std(noises[0])), float(np.mean(noises[0]))
            if abs(std * np.sqrt(COUPLING) - 1) > 0.05 or abs(mean) > 0.02:
                broken.append(f"perturbation std {std}, mean {mean}")
    # (3) Successive perturbations are independent draws (correlation ~ DIM**-0.5 = 0.016).
    correlations = [np.corrcoef(a, b)[0, 1] for a, b in itertools.pairwise(noises)]
    if max(abs(r) for r in correlations) > 0.1:
        broken.append(f"successive perturbations correlate: {correlations}")
    expected = [-np.asarray(c) * (k // NUM_INNER) for k in range(1, 2 * NUM_INNER + 1)]
    if not np.allclose(anchors, expected, atol=1e-5):
        broken.append("anchor after each update")
    if counts != [(k // NUM_INNER, k) for k in range(1, 2 * NUM_INNER + 1)]:
        broken.append(f"outer-step counts {counts}")
    return broken


def _mutants(path: str, functions: list[str]):
    return DRIVER.mutants(path, functions)


def test_the_unmutated_sources_satisfy_the_checks():
    heat_source, loop_source = (ROOT / HEAT).read_text(), (ROOT / LOOP).read_text()
    assert _violations(heat_source, loop_source) == []


@pytest.mark.parametrize(
    "mutant",
    [*_mutants(HEAT, HEAT_FUNCTIONS), *_mutants(LOOP, LOOP_FUNCTIONS)],
    ids=lambda m: f"{pathlib.Path(m.module).stem}:{m.line}:{m.kind}",
)
def test_every_inner_step_mutant_is_killed(mutant):
    sources = {path: (ROOT / path).read_text() for path in (HEAT, LOOP)}
    sources[mutant.module] = DRIVER.mutated_source(sources[mutant.module], mutant)
    try:
        violations = _violations(sources[HEAT], sources[LOOP])
    except Exception:  # a mutant that raises is killed too
        return
    assert violations, f"mutant survived: {mutant.before!r} -> {mutant.after!r}"
