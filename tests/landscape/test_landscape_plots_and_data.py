"""Plots write PNG files; matplotlib stays out of `import entropix.landscape`; batch handling."""

import io
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entropix import landscape
from entropix.landscape import dataset

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


def test_ragged_batch_list_mean_weights_each_batch_one_over_n():
    # Batches of sizes 4, 4, 2: the dataset loss is (1/3) Σ_j loss(batch_j), each batch the same
    # weight (not the per-example mean, which would weight the last batch by 2/10).
    def loss_fn(w, b):
        return jnp.mean((b[0] @ w - b[1]) ** 2)

    rng = np.random.default_rng(2)
    sizes = (4, 4, 2)
    items = [(rng.normal(size=(k, 3)), rng.normal(size=k)) for k in sizes]
    w = rng.normal(size=3)
    per_batch = [float(np.mean((x @ w - y) ** 2)) for x, y in items]
    grads = [2 * x.T @ (x @ w - y) / len(y) for x, y in items]
    prepared = landscape.prepare_batches([(jnp.asarray(x), jnp.asarray(y)) for x, y in items])
    assert isinstance(prepared, landscape.BatchList)
    assert dataset.num_batches(prepared) == 3
    loss, grad = landscape.full_loss_and_grad(loss_fn, jnp.asarray(w), prepared)
    np.testing.assert_allclose(loss, np.mean(per_batch), rtol=1e-5)
    np.testing.assert_allclose(grad, np.mean(grads, axis=0), rtol=1e-5, atol=1e-6)
    size_weighted = np.dot(per_batch, sizes) / sum(sizes)
    assert abs(np.mean(per_batch) - size_weighted) > 1e-3
    # A pytree-valued fn: every leaf is averaged; the first argument is passed through.
    out = landscape.batch_mean(
        lambda s, b: {"n": s * b[1].shape[0], "sum": jnp.sum(b[1])}, prepared, 2.0
    )
    np.testing.assert_allclose(out["n"], 2.0 * np.mean(sizes))
    np.testing.assert_allclose(out["sum"], np.mean([y.sum() for _, y in items]), rtol=1e-5)


def test_stacked_batches_edge_cases():
    def loss_fn(w, b):
        return jnp.sum(b * w**2)

    # One stacked batch is a valid batch group: the mean is that batch's value.
    one = landscape.prepare_batches(jnp.array([[1.0, 2.0]]))
    assert isinstance(one, landscape.StackedBatches) and dataset.num_batches(one) == 1
    loss, grad = landscape.full_loss_and_grad(loss_fn, jnp.array([3.0, 1.0]), one)
    np.testing.assert_allclose(loss, 11.0)
    np.testing.assert_allclose(grad, [6.0, 4.0])
    # A dict of arrays is a stacked pytree, read along its leading axis.
    stacked = landscape.prepare_batches({"b": jnp.array([[1.0, 2.0], [3.0, 0.0]])})
    assert dataset.num_batches(stacked) == 2
    loss, _ = landscape.full_loss_and_grad(
        lambda w, b: loss_fn(w, b["b"]), jnp.array([3.0, 1.0]), stacked
    )
    np.testing.assert_allclose(loss, (11.0 + 27.0) / 2)
    # One number per batch: a stacked leaf of shape (n,).
    scalars = landscape.prepare_batches(jnp.array([1.0, 3.0]))
    assert dataset.num_batches(scalars) == 2
    loss, _ = landscape.full_loss_and_grad(loss_fn, jnp.array([3.0, 1.0]), scalars)
    np.testing.assert_allclose(loss, 2.0 * 10.0)
    with pytest.raises(ValueError, match="empty batch-group axis"):
        landscape.prepare_batches(jnp.ones((0, 3)))
    with pytest.raises(ValueError, match="leading batch-group axis"):
        landscape.prepare_batches((jnp.ones((3, 2)), jnp.asarray(1.0)))
    with pytest.raises(ValueError, match="no array leaves"):
        landscape.prepare_batches({})
    with pytest.raises(ValueError, match="one pytree structure"):
        landscape.prepare_batches([jnp.ones(2), (jnp.ones(2), jnp.ones(2))])
    with pytest.raises(ValueError, match="None"):
        landscape.prepare_batches(None)


def test_eigenvalue_histogram_counts_what_its_titles_say():
    matplotlib = pytest.importorskip("matplotlib")
    lam = np.concatenate([np.full(900, 1e-6), -np.linspace(0.5, 1.0, 20), np.linspace(2, 40, 80)])
    fig = landscape.plot_eigenvalue_histogram(lam, bins=40)
    ax = fig.axes[0]
    assert ax.get_title() == "|λ| < 0.0001: 90.0%"
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "eigenvalue λ"
    assert len(ax.patches) == 40 and sum(p.get_height() for p in ax.patches) == 1000
    left, right = ax.child_axes
    for inset, title, count in [(left, "λ < −τ (20)", 20), (right, "λ > τ (80)", 80)]:
        assert inset.get_title() == title and inset.get_yscale() == "log"
        assert len(inset.patches) == 20 and sum(p.get_height() for p in inset.patches) == count
    # The insets sit inside the main axes, the negative tail's on the left, without overlapping.
    fig.savefig(io.BytesIO())  # lays the insets out
    main, (lbox, rbox) = ax.get_position(), [i.get_position() for i in (left, right)]
    for box in (lbox, rbox):
        assert main.x0 <= box.x0 < box.x1 <= main.x1 and main.y0 <= box.y0 < box.y1 <= main.y1
    assert lbox.x1 < rbox.x0
    one_bin = landscape.plot_eigenvalue_histogram(lam, bins=1)  # the insets get one bin too
    assert [len(i.patches) for i in one_bin.axes[0].child_axes] == [1, 1]
    # Values at ±τ belong to neither the peak nor a tail.
    edges = landscape.plot_eigenvalue_histogram([-0.5, 0.5, 0.0, 0.25, -1.0, 1.0], threshold=0.5)
    assert edges.axes[0].get_title() == "|λ| < 0.5: 33.3%"
    assert [i.get_title() for i in edges.axes[0].child_axes] == ["λ < −τ (1)", "λ > τ (1)"]
    # A threshold above the tails puts everything in the peak; the insets stay, empty.
    fig = landscape.plot_eigenvalue_histogram(lam, threshold=100.0, bins=1, title="mine")
    assert fig.axes[0].get_title() == "mine"
    assert [len(i.patches) for i in fig.axes[0].child_axes] == [0, 0]
    assert [i.get_title() for i in fig.axes[0].child_axes] == ["λ < −τ (0)", "λ > τ (0)"]
    own = matplotlib.figure.Figure().add_subplot(1, 1, 1)
    assert landscape.plot_eigenvalue_histogram(lam, insets=False, ax=own) is own.figure
    assert own.child_axes == []
    with pytest.raises(ValueError, match="eigenvalues"):
        landscape.plot_eigenvalue_histogram([])


def test_local_energy_plot_draws_each_curve_with_its_band():
    from types import SimpleNamespace

    pytest.importorskip("matplotlib")
    sigmas = np.array([0.0, 0.1, 0.2])
    curves = {
        "a": SimpleNamespace(
            sigmas=sigmas,
            error=np.array([0.0, 0.1, 0.3]),
            error_stderr=np.array([0.0, 0.01, 0.02]),
            loss=np.array([0.0, 1.0, 2.0]),
            loss_stderr=np.array([0.0, 0.1, 0.2]),
        ),
        "b": SimpleNamespace(
            sigmas=sigmas,
            error=None,
            error_stderr=None,
            loss=np.array([0.0, 0.5, 1.5]),
            loss_stderr=np.array([0.0, 0.05, 0.1]),
        ),
    }
    fig = landscape.plot_local_energy(curves, metric="loss", title="t")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), [0.0, 0.5, 1.5])
    band = ax.collections[0].get_paths()[0].vertices
    np.testing.assert_allclose(band[:, 1].min(), 0.0)
    np.testing.assert_allclose(sorted(set(np.round(band[:, 1], 9))), [0.0, 0.9, 1.1, 1.8, 2.2])
    assert ax.get_ylabel() == "local energy δloss" and ax.get_title() == "t"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    fig = landscape.plot_local_energy({"a": curves["a"]})  # the training error by default
    assert fig.axes[0].get_ylabel() == "local energy δE_train"
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_ydata(), [0.0, 0.1, 0.3])
    with pytest.raises(ValueError, match="'b' has no 'error'"):
        landscape.plot_local_energy(curves)
    with pytest.raises(ValueError, match="curves"):
        landscape.plot_local_energy({})


def test_density_plot_floors_zeros_on_a_log_axis():
    from types import SimpleNamespace

    pytest.importorskip("matplotlib")
    density = SimpleNamespace(grid=np.array([0.0, 1.0, 2.0]), density=np.array([2.0, 0.0, 1e-20]))
    ax = landscape.plot_density(density, label="A", title="t").axes[0]
    assert ax.get_yscale() == "log" and ax.get_title() == "t"
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [2.0, 2e-12, 2e-12])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A"]
    ax = landscape.plot_density(density, log=False).axes[0]
    assert ax.get_yscale() == "linear" and ax.get_legend() is None and ax.get_title() == ""
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [2.0, 0.0, 1e-20])
    zeros = SimpleNamespace(grid=np.arange(2.0), density=np.zeros(2))
    ydata = landscape.plot_density(zeros).axes[0].get_lines()[0].get_ydata()
    np.testing.assert_array_equal(ydata, [np.finfo(np.float64).tiny] * 2)
