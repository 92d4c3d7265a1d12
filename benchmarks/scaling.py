"""Cost per gradient evaluation relative to SGD + Nesterov: methods, model size × L, replicas.

Three tables, each a ratio to ``optax.sgd(lr, 0.9, nesterov=True)`` on the same model, batch
and minibatches, per gradient evaluation:

* **methods** — the two-loop optimizers and the replica methods at ``L = 20`` on the MLP
  784-1024-1024-10 and on ``entropix.models.mnistfc`` (BatchNorm + dropout);
* **scaling** — Entropy-SGD (default ±1 noise) in both forms for MLPs of ~10⁴ to ~10⁷
  parameters and ``L ∈ {1, 5, 20, 50}``;
* **replicas** — Parle (compiled, vmapped) for ``n ∈ {1, 2, 4, 8}`` replicas of the MLP
  784-128-10 (~10⁵ parameters, so that 8 replicas time quickly).

Every timed call runs at least 20 gradient evaluations inside one jitted function (a
``lax.scan`` of train steps for SGD and the step form — ``update`` once per gradient — and a
scan of compiled outer steps — ``update(..., grad_fn=...)`` with its inner ``lax.scan`` — for
the compiled form). Calls are interleaved (SGD, then each method of the same model, in every
round); a ratio is the median over rounds of the method's time over SGD's time *in the same
round*, which cancels most of a shared machine's drifting load.

``--compare-with DIR`` also times the ``entropix`` package found in ``DIR`` (e.g. an export of an
older revision: ``git archive REV entropix | tar -x -C DIR``) in a second worker process; the
two workers run their rounds alternately, so "before" and "after" are measured under the same
conditions.

    python benchmarks/scaling.py                       # all tables, current code
    python benchmarks/scaling.py --tables methods --compare-with /tmp/before
    python benchmarks/scaling.py --quick               # small models, seconds
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

BATCH = 128
MIN_GRADS = 20
SIZES = {  # approximate parameter count → MLP layer widths
    "1e4": (784, 12, 10),
    "1e5": (784, 128, 10),
    "1e6": (784, 1024, 1024, 10),
    "1e7": (784, 2048, 4096, 10),
}
QUICK_SIZES = {"1e4": (784, 12, 10), "1e5": (784, 128, 10)}
INNER = (1, 5, 20, 50)
REPLICAS = (1, 2, 4, 8)
AXIS = "replicas"


# ---------------------------------------------------------------------------------------------
# Worker: builds the timed functions and times one round per request on stdin.
# ---------------------------------------------------------------------------------------------


def _build(tables, quick):
    """``[(table, row, column, model, fn, args, grads)]``; SGD rows have column ``"sgd"``."""
    import jax
    import jax.numpy as jnp
    import optax

    import entropix

    def mlp(sizes):
        keys = jax.random.split(jax.random.PRNGKey(0), len(sizes) - 1)
        return [
            {"w": jax.random.normal(k, (m, n)) * (2 / m) ** 0.5, "b": jnp.zeros(n)}
            for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)
        ]

    def mlp_loss(params, batch):
        x, y = batch
        for layer in params[:-1]:
            x = jax.nn.relu(x @ layer["w"] + layer["b"])
        logits = x @ params[-1]["w"] + params[-1]["b"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))

    def data(num, features):
        k1, k2 = jax.random.split(jax.random.PRNGKey(1))
        return (
            jax.random.normal(k1, (num, BATCH, features)),
            jax.random.randint(k2, (num, BATCH), 0, 10),
        )

    def mnistfc():
        from entropix.models import losses, mnistfc

        model = mnistfc()
        variables = model.init(jax.random.key(0), jnp.zeros((1, 784)), train=False)
        loss_fn = losses.make_stateful_loss_fn(model)
        stats = {"batch_stats": variables["batch_stats"]}

        def loss(params, batch):
            x, y, index = batch
            rng = jax.random.fold_in(jax.random.key(2), index)
            return loss_fn(params, stats, (x, y), rng)[0]

        return variables["params"], loss

    def runner(opt, loss, form, replicas, params, num_steps, num_inner):
        grad = jax.grad(loss)

        def batch_at(batches, i):
            return jax.tree.map(lambda d: d[i], batches)

        def steps(params, state, batches):
            def body(carry, i):
                params, state = carry
                updates, state = opt.update(grad(params, batch_at(batches, i)), state, params)
                return (optax.apply_updates(params, updates), state), None

            return jax.lax.scan(body, (params, state), jnp.arange(num_steps))[0]

        def outer_steps(params, state, batches):
            def body(carry, t):
                params, state = carry

                def grad_fn(p, i):
                    return grad(p, batch_at(batches, t * num_inner + i))

                updates, state = opt.update(grad_fn(params, 0), state, params, grad_fn=grad_fn)
                return (optax.apply_updates(params, updates), state), None

            outer = num_steps // num_inner
            return jax.lax.scan(body, (params, state), jnp.arange(outer))[0]

        run = outer_steps if form == "compiled" else steps
        init = opt.init
        if replicas:
            params = jax.tree.map(lambda p: jnp.stack([p] * replicas), params)
            run = jax.vmap(run, axis_name=AXIS, in_axes=(0, 0, None))
            init = jax.vmap(opt.init)
        return jax.jit(run), params, init(params)

    def grads_for(num_inner):
        return max(MIN_GRADS, num_inner) // num_inner * num_inner

    sgd = optax.sgd(0.01, 0.9, nesterov=True)
    rows = []

    def add(table, row, column, model, opt, loss, params, batches, form, replicas, num_inner):
        num = grads_for(num_inner)
        fn, p, s = runner(opt, loss, form, replicas, params, num, num_inner)
        args = (p, s, jax.tree.map(lambda d: d[:num], batches))
        jax.block_until_ready(fn(*args))
        rows.append((table, row, column, model, fn, args, num * (replicas or 1)))

    sizes = QUICK_SIZES if quick else SIZES
    methods_model = "1e5" if quick else "1e6"
    if "methods" in tables:
        widths = sizes[methods_model]
        params, batches = mlp(widths), data(50, widths[0])
        models = [(f"MLP {'-'.join(map(str, widths))}", params, mlp_loss, batches)]
        if not quick:
            mparams, mloss = mnistfc()
            x, y = data(50, 784)
            models.append(("mnistfc (BN + dropout)", mparams, mloss, (x, y, jnp.arange(50))))
        esgd = dict(num_inner_steps=20, coupling=0.03)
        for name, params, loss, batches in models:
            specs = [("SGD + Nesterov", sgd, "steps", None)]
            specs += [
                (
                    "Entropy-SGD compiled, noise 0",
                    entropix.entropy_sgd(**esgd, noise=0.0, compiled=True),
                    "compiled",
                    None,
                ),
                (
                    "Entropy-SGD compiled, ±1 noise (default)",
                    entropix.entropy_sgd(**esgd, compiled=True),
                    "compiled",
                    None,
                ),
                (
                    "Entropy-SGD step form, ±1 noise (default)",
                    entropix.entropy_sgd(**esgd),
                    "steps",
                    None,
                ),
            ]
            if name.startswith("MLP"):
                heat = dict(num_inner_steps=20, coupling=100.0)
                rep = dict(num_inner_steps=20, coupling=0.03, elastic_coupling=1.0)
                specs += [
                    (
                        "Entropy-SGD compiled, Gaussian noise",
                        entropix.entropy_sgd(**esgd, noise_distribution="gaussian", compiled=True),
                        "compiled",
                        None,
                    ),
                    (
                        "Entropy-SGD step form, Gaussian noise",
                        entropix.entropy_sgd(**esgd, noise_distribution="gaussian"),
                        "steps",
                        None,
                    ),
                    ("HEAT compiled", entropix.heat(0.1, **heat, compiled=True), "compiled", None),
                    ("HEAT step form", entropix.heat(0.1, **heat), "steps", None),
                    ("Entropy-Adam step form", entropix.entropy_adam(**esgd), "steps", None),
                    ("SGD + Nesterov, n=3 vmapped", sgd, "steps", 3),
                    (
                        "Parle compiled (n=3, vmap)",
                        entropix.parle(**rep, compiled=True),
                        "compiled",
                        3,
                    ),
                    ("Parle step form (n=3, vmap)", entropix.parle(**rep), "steps", 3),
                    (
                        "Elastic-SGD (n=3, vmap)",
                        entropix.elastic_sgd(0.01, elastic_coupling=0.5),
                        "steps",
                        3,
                    ),
                    (
                        "rSGD (n=3, vmap)",
                        entropix.replicated_sgd(0.01, elastic_coupling=0.5, every=2),
                        "steps",
                        3,
                    ),
                ]
            for label, opt, form, replicas in specs:
                column = "sgd" if label == "SGD + Nesterov" else "method"
                num_inner = 20 if form == "compiled" else 1
                add(
                    "methods",
                    label,
                    column,
                    name,
                    opt,
                    loss,
                    params,
                    batches,
                    form,
                    replicas,
                    num_inner,
                )
    if "scaling" in tables:
        for size, widths in sizes.items():
            params, batches = mlp(widths), data(50, widths[0])
            add("scaling", "SGD", "sgd", size, sgd, mlp_loss, params, batches, "steps", None, 1)
            for num_inner in INNER:
                esgd = dict(num_inner_steps=num_inner, coupling=0.03)
                compiled = entropix.entropy_sgd(**esgd, compiled=True)
                step = entropix.entropy_sgd(**esgd)
                row = f"L={num_inner}"
                add(
                    "scaling",
                    row,
                    "compiled",
                    size,
                    compiled,
                    mlp_loss,
                    params,
                    batches,
                    "compiled",
                    None,
                    num_inner,
                )
                add("scaling", row, "step", size, step, mlp_loss, params, batches, "steps", None, 1)
    if "replicas" in tables:
        widths = sizes["1e5"]
        params, batches = mlp(widths), data(50, widths[0])
        add("replicas", "SGD", "sgd", "one", sgd, mlp_loss, params, batches, "steps", None, 1)
        rep = dict(num_inner_steps=20, coupling=0.03, elastic_coupling=1.0, compiled=True)
        for n in REPLICAS:
            add(
                "replicas",
                f"n={n}",
                "vmapped SGD",
                "one",
                sgd,
                mlp_loss,
                params,
                batches,
                "steps",
                n,
                1,
            )
            parle = entropix.parle(**rep)
            add(
                "replicas",
                f"n={n}",
                "Parle",
                "one",
                parle,
                mlp_loss,
                params,
                batches,
                "compiled",
                n,
                20,
            )
    return rows


def worker(tables, quick):
    import jax

    rows = _build(tables, quick)
    keys = [row[:4] for row in rows]
    print(json.dumps({"ready": keys}), flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        times = []
        for _, _, _, _, fn, args, grads in rows:
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times.append((time.perf_counter() - start) / grads)
        print(json.dumps({"times": times}), flush=True)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


class _Worker:
    def __init__(self, name, pythonpath, tables, quick):
        env = {**os.environ, "PYTHONPATH": pythonpath}
        command = [sys.executable, __file__, "--worker", "--tables", *tables]
        if quick:
            command.append("--quick")
        self.name = name
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.times = []

    def wait_ready(self):
        return [tuple(key) for key in json.loads(self.process.stdout.readline())["ready"]]

    def round(self):
        self.process.stdin.write("round\n")
        self.process.stdin.flush()
        self.times.append(json.loads(self.process.stdout.readline())["times"])

    def close(self):
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        self.process.wait(timeout=60)


def _ratios(keys, times):
    """``{(table, row, column, model): (median ratio to SGD, median ms per gradient)}``."""
    sgd_index = {}
    for i, (table, _, column, model) in enumerate(keys):
        if column == "sgd":
            sgd_index[(table, model)] = i
    out = {}
    for i, (table, row, column, model) in enumerate(keys):
        ref = sgd_index[(table, model)]
        ratios = [t[i] / t[ref] for t in times]
        out[(table, row, column, model)] = (
            statistics.median(ratios),
            statistics.median(t[i] for t in times) * 1e3,
        )
    return out


def _cell(results, key):
    values = [r[key][0] for r in results]
    return " / ".join(f"{v:.2f}" for v in values)


def _tables(keys, results, labels, quick):
    lines = []
    versions = " / ".join(labels)
    tables = {k[0] for k in keys}
    if "methods" in tables:
        models = list(dict.fromkeys(k[3] for k in keys if k[0] == "methods"))
        lines += [
            f"**Methods, L = 20, batch {BATCH}** (× SGD + Nesterov per gradient; {versions}; "
            "ms per gradient of the last in parentheses)",
            "",
            "| method | " + " | ".join(models) + " |",
            "|---|" + "---|" * len(models),
        ]
        rows = list(dict.fromkeys(k[1] for k in keys if k[0] == "methods"))
        for row in rows:
            cells = []
            for model in models:
                column = "sgd" if row == "SGD + Nesterov" else "method"
                key = ("methods", row, column, model)
                if key not in results[0]:
                    cells.append("—")
                    continue
                cells.append(f"{_cell(results, key)} ({results[-1][key][1]:.2f} ms)")
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    if "scaling" in tables:
        sizes = list(dict.fromkeys(k[3] for k in keys if k[0] == "scaling"))
        widths = QUICK_SIZES if quick else SIZES
        header = []
        for size in sizes:
            w = widths[size]
            count = sum(a * b + b for a, b in itertools.pairwise(w))
            header += [f"{'-'.join(map(str, w))} ({count:,}) compiled", "step form"]
        lines += [
            f"**Entropy-SGD, ±1 noise, × SGD + Nesterov per gradient** ({versions}; batch {BATCH})",
            "",
            "| L | " + " | ".join(header) + " |",
            "|---|" + "---|" * len(header),
        ]
        for num_inner in INNER:
            row = f"L={num_inner}"
            cells = [
                _cell(results, ("scaling", row, form, s))
                for s in sizes
                for form in ("compiled", "step")
            ]
            lines.append(f"| {num_inner} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "SGD + Nesterov, ms per gradient: "
            + ", ".join(f"{s}: {results[-1][('scaling', 'SGD', 'sgd', s)][1]:.2f}" for s in sizes),
            "",
        ]
    if "replicas" in tables:
        lines += [
            f"**Parle, compiled, L = 20, vmapped on one device, MLP 784-128-10** ({versions}; "
            "per gradient of every replica)",
            "",
            "| n | Parle × SGD (one model) | vmapped SGD × SGD (one model) | Parle × vmapped SGD |",
            "|---|---|---|---|",
        ]
        for n in REPLICAS:
            parle = ("replicas", f"n={n}", "Parle", "one")
            vsgd = ("replicas", f"n={n}", "vmapped SGD", "one")
            ratio = " / ".join(f"{r[parle][0] / r[vsgd][0]:.2f}" for r in results)
            lines.append(f"| {n} | {_cell(results, parle)} | {_cell(results, vsgd)} | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models only")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds")
    parser.add_argument(
        "--tables",
        nargs="+",
        default=["methods", "scaling", "replicas"],
        choices=["methods", "scaling", "replicas"],
    )
    parser.add_argument("--compare-with", default=None, help="directory holding an older entropix")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.tables, args.quick)
        return 0
    here = str(pathlib.Path(__file__).resolve().parents[1])
    workers = []
    if args.compare_with:
        workers.append(_Worker("before", args.compare_with, args.tables, args.quick))
    workers.append(_Worker("current", here, args.tables, args.quick))
    keys = [w.wait_ready() for w in workers]
    assert all(k == keys[0] for k in keys), "the workers timed different rows"
    keys = keys[0]
    for _ in range(args.repeats):
        for w in workers:
            w.round()
    for w in workers:
        w.close()
    results = [_ratios(keys, w.times) for w in workers]
    print(_tables(keys, results, [w.name for w in workers], args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
