"""Scoping schedules (Parle's, thesis eq. 5.10, and the ICLR law), conventions, training metrics."""

import jax.numpy as jnp
import numpy as np
import pytest

import entropix


def test_parle_scoping_matches_thesis_values():
    # Thesis eq. 5.10, γ_k = γ0 (1 − 1/(2B))^⌊k/L⌋ with γ0 = 100, ρ0 = 1 (thesis convention,
    # B = 391): γ after B outer steps 60.634, after 5B 8.195,
    # after 10B clipped to 1 (unclipped 0.672); ρ after 2B = 0.3676.
    steps = 391
    gamma = entropix.parle_scoping(entropix.coupling_from_variance(100.0), steps, max_coupling=1.0)
    np.testing.assert_allclose(1 / float(gamma(steps)), 60.634, rtol=2e-5)
    np.testing.assert_allclose(1 / float(gamma(5 * steps)), 8.195, rtol=2e-4)
    assert float(gamma(10 * steps)) == pytest.approx(1.0)
    unclipped = entropix.parle_scoping(0.01, steps)
    np.testing.assert_allclose(1 / float(unclipped(10 * steps)), 0.672, rtol=1e-3)
    rho = entropix.parle_scoping(1.0, steps, max_coupling=10.0)
    np.testing.assert_allclose(1 / float(rho(2 * steps)), 0.3676, rtol=2e-4)


def test_exponential_scoping_law_and_clip():
    schedule = entropix.exponential_scoping(1e-4, 1e-3)
    for t in (0, 1, 500, 3000):
        # float32 power: relative error grows like t · 2⁻²⁴.
        np.testing.assert_allclose(float(schedule(t)), 1e-4 * 1.001**t, rtol=3e-4)
    clipped = entropix.exponential_scoping(0.03, 0.1, max_coupling=0.05)
    assert float(clipped(100)) == pytest.approx(0.05)
    assert float(clipped(1)) == pytest.approx(0.033)


def test_bounded_exponential_and_linear_scoping():
    bounded = entropix.bounded_exponential_scoping(0.2, time_constant=50.0)
    for t in (0, 10, 50, 400):
        np.testing.assert_allclose(float(bounded(t)), 0.2 * (1 - np.exp(-t / 50)), atol=1e-7)
    linear = entropix.linear_scoping(0.1, 0.5, transition_steps=4)
    np.testing.assert_allclose([float(linear(t)) for t in (0, 2, 4, 9)], [0.1, 0.3, 0.5, 0.5])


def test_convention_converters():
    assert entropix.coupling_from_variance(30.0) == pytest.approx(1 / 30)
    assert entropix.average_weight_from_thesis_alpha(0.25) == 0.75
    with pytest.raises(ValueError, match="variance=0"):
        entropix.coupling_from_variance(0)
    with pytest.raises(ValueError, match="thesis_alpha=2"):
        entropix.average_weight_from_thesis_alpha(2)


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (entropix.exponential_scoping, dict(initial_coupling=0.0, growth_rate=0.1), "initial"),
        (entropix.exponential_scoping, dict(initial_coupling=1.0, growth_rate=-0.1), "growth"),
        (entropix.parle_scoping, dict(initial_coupling=1.0, steps_per_epoch=0), "steps_per"),
        (entropix.bounded_exponential_scoping, dict(final_coupling=1.0, time_constant=0), "time"),
        (
            entropix.exponential_scoping,
            dict(initial_coupling=1.0, growth_rate=0.1, max_coupling=-1.0),
            "max_coupling",
        ),
        (
            entropix.parle_scoping,
            dict(initial_coupling=1.0, steps_per_epoch=10, max_coupling=0.0),
            "max_coupling",
        ),
    ],
)
def test_schedule_validation(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)


def test_gradient_alignment_numbers():
    le_grad = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([0.0])}
    sgd_grad = {"a": jnp.array([1.0, 1.0]), "b": jnp.array([0.0])}
    out = entropix.gradient_alignment(le_grad, sgd_grad)
    np.testing.assert_allclose(float(out.cosine), 1 / np.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(float(out.angle_degrees), 45.0, rtol=1e-5)
    np.testing.assert_allclose(float(out.norm_ratio), 3 / np.sqrt(2), rtol=1e-6)
    opposite = entropix.gradient_alignment(jnp.array([1.0]), jnp.array([-2.0]))
    np.testing.assert_allclose(float(opposite.angle_degrees), 180.0, rtol=1e-6)
    # Parallel vectors whose float32 cosine rounds to 1 + 2⁻²³: clipped to 1, angle 0 (not NaN).
    v = jnp.asarray(np.random.default_rng(0).normal(size=7), jnp.float32)
    for sign in (1.0, -1.0):
        out = entropix.gradient_alignment(v, sign * 3.7 * v)
        assert float(out.cosine) == sign
        assert float(out.angle_degrees) == (0.0 if sign > 0 else 180.0)


def test_local_entropy_gradient_reads_running_average():
    opt = entropix.entropy_sgd(
        num_inner_steps=4, coupling=0.5, noise=0.0, inner_momentum=0.0, average_weight=0.5
    )
    params = jnp.array([1.0, -2.0])
    state = opt.init(params)
    grads = 2.0 * params
    updates, state = opt.update(grads, state, params)
    walker = params - 0.1 * grads  # coupling term is zero on the first step
    expected = 0.5 * (params - (0.5 * params + 0.5 * walker))
    np.testing.assert_allclose(
        entropix.local_entropy_gradient(state, coupling=0.5), expected, rtol=1e-6
    )
    np.testing.assert_allclose(params + updates, walker, rtol=1e-6)
