"""The optimizer catalogue: its peer baselines against closed forms, its metadata against the
factories it describes."""

import inspect

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import entropix

GRADIENT = np.array([1.0, -2.0])
LEARNING_RATE = 0.1


def _trajectory(opt: optax.GradientTransformation, calls: int) -> np.ndarray:
    """The parameters after each of ``calls`` updates with a constant gradient, from zero."""
    params = jnp.zeros(2)
    state = opt.init(params)
    history = []
    for _ in range(calls):
        updates, state = opt.update(jnp.asarray(GRADIENT), state, params)
        params = optax.apply_updates(params, updates)
        history.append(np.asarray(params))
    return np.array(history)


def test_sgd_baseline_is_nesterov_momentum():
    # Nesterov with β = 0.9 and a constant g: m_t = g + β m_{t−1}, update −η (g + β m_t), so the
    # steps are −1.9 η g and then −2.71 η g; momentum=0 is plain SGD.
    g, lr = GRADIENT, LEARNING_RATE
    history = _trajectory(entropix.optimizer_entry("sgd").build(learning_rate=lr), 2)
    np.testing.assert_allclose(history, [-1.9 * lr * g, -(1.9 + 2.71) * lr * g], rtol=1e-6)
    plain = _trajectory(entropix.optimizer_entry("sgd").build(learning_rate=lr, momentum=0.0), 2)
    np.testing.assert_allclose(plain, [-lr * g, -2 * lr * g], rtol=1e-6)


def test_sam_baseline_alternates_ascent_and_descent():
    # Every second call is the descent: with a constant gradient the ascent is undone and the
    # parameters take the steps of Nesterov-momentum SGD above.
    entry = entropix.optimizer_entry("sam")
    assert entry.cycle == 2
    g, lr = GRADIENT, LEARNING_RATE
    history = _trajectory(entry.build(learning_rate=lr), 4)
    assert not np.allclose(history[0], 0.0)  # the ascent call moved to the perturbed point
    np.testing.assert_allclose(history[1], -1.9 * lr * g, rtol=1e-6)
    np.testing.assert_allclose(history[3], -(1.9 + 2.71) * lr * g, rtol=1e-6)


@pytest.mark.parametrize("name", list(entropix.OPTIMIZERS))
def test_cycle_and_compiled_match_the_factory(name):
    # `cycle` is the updates per outer step with the factory's default loop length; `compiled`
    # says whether the factory has the compiled form.
    entry = entropix.OPTIMIZERS[name]
    parameters = inspect.signature(entry.factory).parameters
    if entry.cycle_argument is not None:
        assert entry.cycle == parameters[entry.cycle_argument].default
    else:  # one update per gradient, except SAM's ascent-then-descent pair
        assert entry.cycle == (2 if name == "sam" else 1)
    assert entry.compiled == ("compiled" in parameters)
