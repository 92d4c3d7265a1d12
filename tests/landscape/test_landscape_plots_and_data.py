"""Plots write PNG files; matplotlib stays out of `import entropix.landscape`; batch handling."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entropix import landscape

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_import_does_not_load_matplotlib():
    code = "import sys, entropix.landscape; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _png(fig, path):
    fig.savefig(path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


def test_plots_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    lam = np.concatenate([rng.normal(0, 1e-6, 900), -rng.random(20), 40 * rng.random(80)])
    fig = landscape.plot_eigenvalue_histogram(lam)
    assert len(fig.axes[0].child_axes) == 2  # two tail insets
    _png(fig, tmp_path / "hist.png")

    def loss_fn(w, b):
        return 0.5 * jnp.sum(b * w**2)

    def error_fn(w, b):
        return jnp.mean(jnp.abs(w) > 1.0)

    sig = jnp.linspace(0.0, 0.5, 5)
    curves = {
        name: landscape.local_energy(
            loss_fn, w, [jnp.ones(2)], sig, error_fn=error_fn, num_samples=4
        )
        for name, w in [("sgd", jnp.ones(2)), ("entropy-sgd", 0.5 * jnp.ones(2))]
    }
    fig = landscape.plot_local_energy(curves, metric="error")
    assert len(fig.axes[0].get_lines()) == 2
    _png(fig, tmp_path / "local_energy.png")
    dens = landscape.slq_density(jnp.diag(jnp.linspace(-1.0, 5.0, 64)), order=16, num_probes=2)
    _png(landscape.plot_density(dens, label="A"), tmp_path / "density.png")
    with pytest.raises(ValueError, match="metric"):
        landscape.plot_local_energy(curves, metric="accuracy")


def test_batches_forms_give_the_same_mean():
    def loss_fn(w, b):
        return jnp.mean((b[0] @ w - b[1]) ** 2)

    rng = np.random.default_rng(1)
    items = [
        (jnp.asarray(rng.normal(size=(4, 3))), jnp.asarray(rng.normal(size=4))) for _ in range(3)
    ]
    w = jnp.asarray(rng.normal(size=3))
    expected = np.mean([loss_fn(w, b) for b in items])
    as_list = landscape.full_loss_and_grad(loss_fn, w, items)
    as_iter = landscape.full_loss_and_grad(loss_fn, w, iter(items))
    stacked = landscape.stack_batches(items)
    as_stacked = landscape.full_loss_and_grad(loss_fn, w, stacked.tree)
    for loss, grad in (as_list, as_iter, as_stacked):
        np.testing.assert_allclose(loss, expected, rtol=1e-5)
        np.testing.assert_allclose(
            grad,
            jax.grad(lambda v: jnp.mean(jnp.stack([loss_fn(v, b) for b in items])))(w),
            rtol=1e-5,
        )
    assert isinstance(landscape.prepare_batches(items), landscape.StackedBatches)
    ragged = [*items[:2], (items[2][0][:2], items[2][1][:2])]
    assert isinstance(landscape.prepare_batches(ragged), landscape.BatchList)
    with pytest.raises(ValueError, match="leading batch-group axis"):
        landscape.prepare_batches((jnp.ones((3, 2)), jnp.ones(4)))
    with pytest.raises(ValueError, match="empty"):
        landscape.prepare_batches([])
