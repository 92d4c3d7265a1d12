"""Local learning coefficient: ``entropix.landscape.estimate_llc`` beside devinterp, same draws.

Both sides estimate ``λ̂ = nβ (mean sampled loss − L_n(w*))`` for the same MLP (40 → 64 → 10,
ReLU, 3,274 parameters) at the same trained weights ``w*`` on the same MNIST-1D training set
(4,000 examples, cross-entropy), with the same SGLD settings, the same minibatches in the same
order (62 batches of 64, cycled, no shuffling), the same number of chains and steps, no burn-in
(devinterp averages every step), and ``L_n(w*)`` over the same 62 batches. The settings are
given in devinterp's terms (``lr``, ``localization``, ``nbeta``) and converted with
:func:`entropix.landscape.llc_settings_from_devinterp`.

The data and weights are written to ``.npy`` files that both sides load. The devinterp side runs
in a separate Python (a virtual environment with torch and devinterp, given by
``--devinterp-python`` or the ``DEVINTERP_PYTHON`` environment variable) as a worker process
that this script drives line by line, so the timings interleave: one entropix estimate, one
devinterp estimate, one bare devinterp-optimizer loop, repeated; medians are reported. Two
devinterp timings are given:

* ``devinterp llc()``: ``devinterp.slt.llc.llc`` (its public entry point: sampling, zarr
  output, LLC), with a ``loss_fn`` that looks the examples up by index (devinterp 2 expects
  token datasets; each row is ``[i, i]`` and the per-"token" loss is example ``i``'s loss);
* ``devinterp SGLD loop``: a minimal torch loop around ``devinterp.optim.SGMCMC.sgld`` alone
  (no I/O), the fastest way to use devinterp's sampler.

Each side's estimate uses a new seed per repeat; the agreement check pools the chains of all
repeats (independent chains) and compares the means with their standard errors.

Setup of the devinterp environment (CPU torch; devinterp without letting it upgrade torch)::

    python3.11 -m venv /tmp/devinterp-venv
    /tmp/devinterp-venv/bin/pip install torch==2.13.0
    /tmp/devinterp-venv/bin/pip install --no-deps devinterp==2.0.1
    /tmp/devinterp-venv/bin/pip install datasets pandas pydantic tqdm transformers xarray zarr

Usage::

    DEVINTERP_PYTHON=/tmp/devinterp-venv/bin/python python benchmarks/llc_speed.py
    python benchmarks/llc_speed.py --devinterp-python /tmp/devinterp-venv/bin/python --quick
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HIDDEN = 64
BATCH = 64


# ----------------------------------------------------------------------------- devinterp worker


def _worker(workdir: str, threads: int) -> None:  # pragma: no cover - devinterp environment
    """Serves ``{"kind": "llc" | "loop", "seed": s, ...}`` requests, one JSON line each."""
    import warnings

    import torch
    from datasets import Dataset
    from devinterp.optim import SGMCMC
    from devinterp.slt.llc import llc

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    path = pathlib.Path(workdir)
    x = torch.from_numpy(np.load(path / "x.npy"))
    y = torch.from_numpy(np.load(path / "y.npy")).long()
    weights = {k: np.load(path / f"{k}.npy") for k in ("w1", "b1", "w2", "b2")}

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for k, v in weights.items():
                setattr(self, k, torch.nn.Parameter(torch.from_numpy(v.copy())))

        def forward(self, inputs):
            return torch.relu(inputs @ self.w1 + self.b1) @ self.w2 + self.b2

    def per_token_loss(model, input_ids):  # one "token" per example: its cross-entropy
        idx = input_ids[:, 0]
        logits = model(x[idx])
        return torch.nn.functional.cross_entropy(logits, y[idx], reduction="none")[:, None]

    n_batches = len(x) // BATCH
    rows = Dataset.from_dict({"input_ids": [[i, i] for i in range(n_batches * BATCH)]})
    rows = rows.with_format("torch")
    print(json.dumps({"ready": torch.__version__}), flush=True)

    for line in sys.stdin:
        req = json.loads(line)
        chains, steps, seed = req["chains"], req["steps"], req["seed"]
        if req["kind"] == "llc":
            out = pathlib.Path(tempfile.mkdtemp(dir=workdir)) / "samples.zarr"
            start = time.perf_counter()
            result = llc(
                MLP(),
                rows,
                {},
                lr=req["lr"],
                n_beta=req["nbeta"],
                localization=req["localization"],
                loss_fn=per_token_loss,
                num_chains=chains,
                num_draws=steps,
                batch_size=BATCH,
                num_burnin_steps=0,
                num_init_loss_batches=n_batches,
                init_seed=seed,
                shuffle=False,
                device="cpu",
                output_path=out,
            )
            per_chain = [float(v) for v in result.llc_per_chain.values]
            seconds = time.perf_counter() - start
        else:
            start = time.perf_counter()
            torch.manual_seed(seed)
            model = MLP()
            with torch.no_grad():
                ids = torch.arange(n_batches * BATCH)[:, None]
                init = float(per_token_loss(model, ids).mean())
            per_chain = []
            for _ in range(chains):
                model = MLP()
                opt = SGMCMC.sgld(
                    model.parameters(),
                    lr=req["lr"],
                    nbeta=req["nbeta"],
                    localization=req["localization"],
                )
                losses = torch.empty(steps)
                for t in range(steps):
                    j = t % n_batches
                    xb, yb = x[j * BATCH : (j + 1) * BATCH], y[j * BATCH : (j + 1) * BATCH]
                    loss = torch.nn.functional.cross_entropy(model(xb), yb)
                    loss.backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    losses[t] = loss.detach()
                per_chain.append(req["nbeta"] * (float(losses.mean()) - init))
            seconds = time.perf_counter() - start
        print(json.dumps({"seconds": seconds, "llc_per_chain": per_chain}), flush=True)


# ----------------------------------------------------------------------------- entropix side


def _prepare(workdir: pathlib.Path, train_steps: int):
    import jax
    import jax.numpy as jnp
    import optax

    from entropix.data import load_mnist1d

    ds = load_mnist1d()
    n_batches = len(ds.x_train) // BATCH
    x = ds.x_train[: n_batches * BATCH].astype(np.float32)
    y = ds.y_train[: n_batches * BATCH].astype(np.int32)

    def apply(p, inputs):
        return jax.nn.relu(inputs @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    def loss_fn(p, batch):
        inputs, labels = batch
        return optax.softmax_cross_entropy_with_integer_labels(apply(p, inputs), labels).mean()

    k1, k2 = jax.random.split(jax.random.key(0))
    params = {
        "w1": jax.random.normal(k1, (40, HIDDEN)) / np.sqrt(40),
        "b1": jnp.zeros(HIDDEN),
        "w2": jax.random.normal(k2, (HIDDEN, 10)) / np.sqrt(HIDDEN),
        "b2": jnp.zeros(10),
    }
    opt = optax.adam(3e-3)

    @jax.jit
    def train(p):
        def body(carry, _):
            p, s = carry
            g = jax.grad(loss_fn)(p, (x, y))
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(body, (p, opt.init(p)), None, length=train_steps)[0][0]

    params = train(params)
    np.save(workdir / "x.npy", x)
    np.save(workdir / "y.npy", y.astype(np.int64))
    for k, v in params.items():
        np.save(workdir / f"{k}.npy", np.asarray(v, np.float32))
    batches = (x.reshape(n_batches, BATCH, 40), y.reshape(n_batches, BATCH))
    accuracy = float(jnp.mean(jnp.argmax(apply(params, x), -1) == y))
    return loss_fn, params, batches, accuracy


def _pooled(per_chain):
    values = np.asarray(per_chain, np.float64)
    return values.mean(), values.std(ddof=1) / np.sqrt(values.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devinterp-python", default=os.environ.get("DEVINTERP_PYTHON"))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--steps", type=int, default=500, help="SGLD steps (draws) per chain")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3, help="devinterp's SGLD lr")
    parser.add_argument("--localization", type=float, default=100.0, help="devinterp's γ")
    parser.add_argument("--quick", action="store_true", help="3 repeats of 200 steps")
    parser.add_argument("--train-steps", type=int, default=2000)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (1, the default, is torch's fastest setting for this small "
        "model on the shared 2-core machine: 2 threads were ~10x slower under load)",
    )
    parser.add_argument("--devinterp-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.devinterp_worker:
        _worker(args.devinterp_worker, args.torch_threads)
        return
    if not args.devinterp_python:
        parser.error("pass --devinterp-python or set DEVINTERP_PYTHON (see the module docstring)")
    if args.quick:
        args.repeats, args.steps = 3, 200

    import jax

    from entropix import landscape

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="llc_speed_"))
    loss_fn, params, batches, accuracy = _prepare(workdir, args.train_steps)
    num_params = sum(int(np.size(v)) for v in params.values())
    nbeta = landscape.default_nbeta(BATCH)
    settings = landscape.llc_settings_from_devinterp(
        lr=args.lr, localization=args.localization, nbeta=nbeta
    )
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONWARNINGS="ignore")
    worker = subprocess.Popen(
        [
            args.devinterp_python,
            __file__,
            "--devinterp-worker",
            str(workdir),
            "--torch-threads",
            str(args.torch_threads),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    torch_version = json.loads(worker.stdout.readline())["ready"]

    def devinterp(kind, seed):
        request = dict(
            kind=kind,
            seed=seed,
            chains=args.chains,
            steps=args.steps,
            lr=args.lr,
            nbeta=nbeta,
            localization=args.localization,
        )
        worker.stdin.write(json.dumps(request) + "\n")
        worker.stdin.flush()
        return json.loads(worker.stdout.readline())

    def entropix_estimate(seed):
        start = time.perf_counter()
        est = landscape.estimate_llc(
            loss_fn,
            params,
            batches,
            num_steps=args.steps,
            num_chains=args.chains,
            key=jax.random.key(seed),
            warn=False,
            **settings._asdict(),
        )
        jax.block_until_ready(est.llc_per_chain)
        return time.perf_counter() - start, est

    compile_start = time.perf_counter()
    entropix_estimate(10_000)
    first_call = time.perf_counter() - compile_start
    devinterp("llc", 10_000)  # warm-up of devinterp's imports and allocations
    devinterp("loop", 10_000)

    times = {"entropix": [], "llc": [], "loop": []}
    chains = {"entropix": [], "llc": [], "loop": []}
    last = None
    for r in range(args.repeats):
        seconds, last = entropix_estimate(r)
        times["entropix"].append(seconds)
        chains["entropix"].extend(np.asarray(last.llc_per_chain).tolist())
        for kind in ("llc", "loop"):
            out = devinterp(kind, r)
            times[kind].append(out["seconds"])
            chains[kind].extend(out["llc_per_chain"])
    worker.stdin.close()
    worker.wait()

    med = {k: statistics.median(v) for k, v in times.items()}
    draws = args.chains * args.steps
    print(
        f"`python benchmarks/llc_speed.py{' --quick' if args.quick else ''}` — "
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"JAX {jax.__version__} ({jax.default_backend()}), torch {torch_version} "
        f"({args.torch_threads} thread), devinterp 2.0.1."
    )
    print()
    print(
        f"MLP 40-{HIDDEN}-10 ({num_params:,} parameters) at Adam-trained weights (train accuracy "
        f"{accuracy:.1%}), MNIST-1D 4,000 examples in {batches[1].shape[0]} batches of {BATCH}; "
        f"devinterp lr = {args.lr:g}, localization γ = {args.localization:g}, nβ = 64/log 64 = "
        f"{nbeta:.2f} (entropix: sgld_learning_rate = {settings.sgld_learning_rate:.4g}, coupling "
        f"= {settings.coupling:.4g}); {args.chains} chains × {args.steps} steps, no burn-in; "
        f"{args.repeats} interleaved repeats (new seed each), medians."
    )
    print()
    print("| estimator | time per estimate | draws/s | speed-up | λ̂ (pooled chains ± s.e.) |")
    print("|---|---|---|---|---|")
    rows = [
        ("entropix `estimate_llc` (vmapped chains, jit)", "entropix"),
        ("devinterp `slt.llc.llc` (sample + zarr + LLC)", "llc"),
        ("devinterp `SGMCMC.sgld` in a bare torch loop", "loop"),
    ]
    for label, kind in rows:
        mean, se = _pooled(chains[kind])
        print(
            f"| {label} | {med[kind] * 1e3:,.0f} ms | {draws / med[kind]:,.0f} | "
            f"{med[kind] / med['entropix']:.1f}× | {mean:.2f} ± {se:.2f} |"
        )
    print()
    ent_mean, ent_se = _pooled(chains["entropix"])
    for kind in ("llc", "loop"):
        mean, se = _pooled(chains[kind])
        z = (ent_mean - mean) / np.hypot(ent_se, se)
        print(f"entropix − devinterp {kind}: {ent_mean - mean:+.2f} ({z:+.1f} combined s.e.)")
    print(
        f"entropix first call (compile + run): {first_call:.1f} s; last estimate: split R-hat "
        f"{last.rhat:.3f}, ESS {last.ess:.0f} of {draws} draws, L_n(w*) = "
        f"{float(last.init_loss):.4f}, warnings: {list(last.warnings) or 'none'}."
    )


if __name__ == "__main__":
    main()
