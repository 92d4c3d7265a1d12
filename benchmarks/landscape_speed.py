"""Speed of the landscape diagnostics on the 47,658-parameter small-LeNet (thesis Fig. 3.1).

Measures, in one run (ratios are what matter on a noisy machine):

* the cost of one Hessian-vector product (forward-over-reverse) relative to one gradient on the
  same 1,000 examples (target: ≤ 3×);
* the wall time of Lanczos top-5 / bottom-5 eigenvalues (full re-orthogonalization);
* the wall time of a stochastic Lanczos quadrature density of order 80;
* the memory of the Lanczos basis (``O(m d)``) next to what a dense Hessian would need (``d²``).

Data are 1,000 random 28×28 images with random labels (timing only; no download needed),
stacked as 4 batches of 250. Prints a markdown table.

Usage::

    python benchmarks/landscape_speed.py              # 1,000 examples, 1 SLQ probe (≈ 4 min)
    python benchmarks/landscape_speed.py --probes 3   # SLQ averaged over 3 probes (≈ 8 min)
    python benchmarks/landscape_speed.py --quick      # 250 examples, 3 timing repeats (≈ 1 min)

Measured on the 2-core development CPU (shared, load ≈ 4), 1,000 examples, 3 SLQ probes:
gradient 888 ms, HVP 1,540 ms (ratio 1.73×), Lanczos top-5 + bottom-5 (45 steps) 60 s, SLQ
order 80 383 s (1.6 s per HVP), Lanczos basis 8.4 MiB vs 8.46 GiB for a dense Hessian.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from entropix import landscape

try:  # the library's model, when the models subpackage is installed
    from entropix.models import small_lenet as _small_lenet

    def make_model():
        return _small_lenet(), {"train": False}

except ImportError:  # pragma: no cover - fallback definition, same architecture
    import flax.linen as nn

    class SmallLeNet(nn.Module):
        """conv5×5 1→10, maxpool 2, conv5×5 10→20, maxpool 2, FC 320→128→10 (47,658 params)."""

        @nn.compact
        def __call__(self, x):
            x = x[..., None] if x.ndim == 3 else x
            x = nn.max_pool(nn.relu(nn.Conv(10, (5, 5), padding="VALID")(x)), (2, 2), (2, 2))
            x = nn.max_pool(nn.relu(nn.Conv(20, (5, 5), padding="VALID")(x)), (2, 2), (2, 2))
            x = x.reshape(x.shape[0], -1)
            return nn.Dense(10)(nn.relu(nn.Dense(128)(x)))

    def make_model():
        return SmallLeNet(), {}


def _time(fn, repeats):
    """Median wall time of ``fn()`` (blocking) after one warm-up call; returns (median, first)."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times), first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="250 examples, fewer timing repeats")
    parser.add_argument("--examples", type=int, default=None, help="default 1000 (quick 250)")
    parser.add_argument("--num-batches", type=int, default=None, help="default 4 (quick 1)")
    parser.add_argument("--probes", type=int, default=1, help="SLQ probes (default 1)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    probes = args.probes

    model, kwargs = make_model()
    rng = np.random.default_rng(0)
    n = args.examples if args.examples is not None else (250 if args.quick else 1000)
    nb = args.num_batches if args.num_batches is not None else (1 if args.quick else 4)
    if n % nb:
        raise ValueError(f"--examples={n} must be divisible by --num-batches={nb}.")
    images = jnp.asarray(rng.normal(size=(nb, n // nb, 28, 28, 1)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 10, size=(nb, n // nb)))
    variables = model.init(jax.random.key(0), images[0, :1], **kwargs)
    params = variables["params"]
    d = sum(p.size for p in jax.tree_util.tree_leaves(params))

    def loss_fn(p, batch):
        x, y = batch
        logits = model.apply({"params": p}, x, **kwargs)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

    batches = (images, labels)
    prepared = landscape.prepare_batches(batches)
    grad_fn = jax.jit(lambda p: landscape.batch_mean(jax.grad(loss_fn), prepared, p))
    tangent = jax.tree_util.tree_map(jnp.ones_like, params)
    hvp_fn = jax.jit(
        lambda p, v: landscape.batch_mean(
            lambda q, w, b: landscape.batch_hvp(loss_fn, q, w, b), prepared, p, v
        )
    )
    t_grad, _ = _time(lambda: grad_fn(params), repeats)
    t_hvp, _ = _time(lambda: hvp_fn(params, tangent), repeats)

    start = time.perf_counter()
    top = landscape.hessian_eigenvalues(loss_fn, params, batches, k=5, key=jax.random.key(1))
    jax.block_until_ready(top)
    t_lanczos = time.perf_counter() - start
    steps = len(top.ritz_values)

    start = time.perf_counter()
    dens = landscape.hessian_density(
        loss_fn, params, batches, order=80, num_probes=probes, key=jax.random.key(2)
    )
    jax.block_until_ready(dens)
    t_slq = time.perf_counter() - start

    try:
        landscape.hessian_spectrum(loss_fn, params, batches)
        refused = "no"
    except ValueError:
        refused = "yes (suggests Lanczos/SLQ)"

    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    basis_mib = (steps + 1) * d * 4 / 2**20
    dense_gib = d * d * 4 / 2**30

    print(f"## Landscape diagnostics speed — small-LeNet, {d:,} parameters, {n:,} examples\n")
    print(
        f"{platform.processor() or platform.machine()}, JAX {jax.__version__}, "
        f"{jax.devices()[0].platform}, {nb} stacked batches of {n // nb}\n"
    )
    print("| measurement | value |")
    print("|---|---|")
    print(f"| gradient, full data (median of {repeats}) | {1e3 * t_grad:.1f} ms |")
    print(f"| Hessian-vector product, full data (median of {repeats}) | {1e3 * t_hvp:.1f} ms |")
    print(f"| **HVP / gradient cost ratio** | **{t_hvp / t_grad:.2f}×** |")
    print(f"| Lanczos top-5 + bottom-5 ({steps} steps, incl. compile) | {t_lanczos:.1f} s |")
    print(f"| SLQ density, order 80, {probes} probe(s) (incl. compile) | {t_slq:.1f} s |")
    print(f"| SLQ per HVP (amortized) | {1e3 * t_slq / (80 * probes):.1f} ms |")
    print(f"| Lanczos basis memory ({steps + 1} × d float32) | {basis_mib:.1f} MiB |")
    print(f"| dense Hessian would need (d² float32) | {dense_gib:.2f} GiB |")
    print(f"| exact path refused at default max_params=10,000 | {refused} |")
    print(f"| peak RSS of this process | {rss_mib:.0f} MiB |")
    print()
    print(f"top-5 eigenvalues: {np.round(np.asarray(top.largest, np.float64), 4).tolist()}")
    print(f"bottom-5 eigenvalues: {np.round(np.asarray(top.smallest, np.float64), 4).tolist()}")
    m = landscape.density_moments(dens.nodes, dens.weights, 2)
    print(f"SLQ moments: tr(H)/d ≈ {float(m[1]):.4g}, tr(H²)/d ≈ {float(m[2]):.4g}")


if __name__ == "__main__":
    main()
