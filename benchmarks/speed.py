"""Optimizer speed suite: cost per gradient evaluation relative to SGD+Nesterov, in one run.

Every method runs ``L`` gradient evaluations per timed call inside one jitted function (a
``lax.scan`` of train steps for the step-form methods, one compiled outer step for the
compiled forms), on the same model and minibatches. Calls are interleaved across methods and
the median is kept, so the ratios are robust to the machine's background load.

    python benchmarks/speed.py                 # full suite, prints markdown
    python benchmarks/speed.py --quick         # small model, seconds
    python benchmarks/speed.py --write         # also rewrites the table in benchmarks/README.md
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

import entropix

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import publish

AXIS = "replicas"


def mlp(sizes, key):
    keys = jax.random.split(jax.random.PRNGKey(key), len(sizes) - 1)
    return [
        {"w": jax.random.normal(k, (m, n)) * (2 / m) ** 0.5, "b": jnp.zeros(n)}
        for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def loss(params, batch):
    x, y = batch
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    logits = x @ params[-1]["w"] + params[-1]["b"]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))


grad = jax.grad(loss)


def batches(num, batch, features, key=0):
    k1, k2 = jax.random.split(jax.random.PRNGKey(key))
    return (
        jax.random.normal(k1, (num, batch, features)),
        jax.random.randint(k2, (num, batch), 0, 10),
    )


def scanned_steps(opt):
    """L plain train steps (one gradient each) in one scan: the step form / baselines."""

    def run(params, state, data):
        def body(carry, batch):
            params, state = carry
            updates, state = opt.update(grad(params, batch), state, params)
            return (optax.apply_updates(params, updates), state), None

        return jax.lax.scan(body, (params, state), data)[0]

    return run


def compiled_outer_step(opt):
    """One compiled outer step: L gradients, one update call."""

    def run(params, state, data):
        def grad_fn(p, i):
            return grad(p, (data[0][i], data[1][i]))

        updates, state = opt.update(grad_fn(params, 0), state, params, grad_fn=grad_fn)
        return optax.apply_updates(params, updates), state

    return run


def catalogue_rows(num_inner, num_replicas):
    """(label, optimizer, form, replicas) for every optimizer of the catalogue.

    Each is built from its catalogue ``example_kwargs`` with ``L = num_inner``, in its compiled
    form where it has one (one call = one outer step), and vmapped over ``num_replicas``
    replicas when it is a replica method.
    """
    rows = []
    for entry in entropix.OPTIMIZERS.values():
        if entry.kind == "transform":  # chained before an optimizer, timed inside trivialized_sgd
            continue
        kwargs = dict(entry.example_kwargs)
        if entry.cycle_argument is not None:
            kwargs[entry.cycle_argument] = num_inner
        form = "compiled" if entry.compiled else "steps"
        if entry.compiled:
            kwargs["compiled"] = True
        replicas = num_replicas if entry.replica_axis is not None else None
        label = entry.label + (f" (n={replicas}, vmap)" if replicas else "")
        if entry.compiled:
            label += " compiled"
        rows.append((label, entry.factory(**kwargs), form, replicas))
    return rows


def build_methods(num_inner, num_replicas):
    """(name, optimizer, runner, replicas): SGD first (the reference), then the catalogue, then
    Entropy-SGD's noise and form variants (noise 0, default ±1 noise, Gaussian noise; step form)."""
    esgd = dict(num_inner_steps=num_inner, coupling=0.03)
    variants = [
        ("Entropy-SGD compiled, noise 0", dict(noise=0.0, compiled=True), "compiled"),
        ("Entropy-SGD compiled, default noise (ε = 1e-4, ±1)", dict(compiled=True), "compiled"),
        (
            "Entropy-SGD compiled, Gaussian noise",
            dict(compiled=True, noise_distribution="gaussian"),
            "compiled",
        ),
        ("Entropy-SGD step form, noise 0", dict(noise=0.0), "steps"),
        ("Entropy-SGD step form, default noise", {}, "steps"),
    ]
    reference = entropix.optimizer_entry("sgd")
    methods = [("SGD + Nesterov (baseline)", reference.build(learning_rate=0.01), "steps", None)]
    methods += [row for row in catalogue_rows(num_inner, num_replicas) if row[0] != reference.label]
    methods += [
        (label, entropix.entropy_sgd(**esgd, **overrides), form, None)
        for label, overrides, form in variants
    ]
    return methods


def prepare(opt, form, num_replicas, params, data):
    """Jitted runner and its arguments; ``num_replicas=None`` runs one model without vmap."""
    run = compiled_outer_step(opt) if form == "compiled" else scanned_steps(opt)
    if num_replicas is not None:
        params = jax.tree.map(lambda p: jnp.stack([p] * num_replicas), params)
        data = jax.tree.map(lambda d: jnp.stack([d] * num_replicas), data)
        init = jax.vmap(opt.init)
        run = jax.vmap(run, axis_name=AXIS)
    else:
        init = opt.init
    fn = jax.jit(run)
    state = init(params)
    jax.block_until_ready(fn(params, state, data))
    return fn, (params, state, data)


def time_call(fn, args):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def state_buffers(opt, params):
    """Parameter-sized buffers in the optimizer state (beyond the params themselves)."""
    param_size = sum(p.size for p in jax.tree.leaves(params))
    state = jax.eval_shape(opt.init, params)
    state_size = sum(leaf.size for leaf in jax.tree.leaves(state) if leaf.size >= param_size // 100)
    return state_size / param_size


def compile_seconds(num_inner, params, data_fn):
    opt = entropix.entropy_sgd(num_inner_steps=num_inner, compiled=True)
    fn = jax.jit(compiled_outer_step(opt))
    args = (params, opt.init(params), data_fn(num_inner))
    start = time.perf_counter()
    fn.lower(*args).compile()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small model, few repetitions")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = parser.parse_args(argv)
    sizes = [784, 128, 128, 10] if args.quick else [784, 1024, 1024, 10]
    repeats = args.repeats or (3 if args.quick else 7)
    num_inner, batch, num_replicas = 20, 128, 3
    params = mlp(sizes, 0)
    data = batches(num_inner, batch, sizes[0])
    param_count = sum(p.size for p in jax.tree.leaves(params))

    prepared = []
    for name, opt, form, n in build_methods(num_inner, num_replicas):
        fn, call_args = prepare(opt, form, n, params, data)
        grads_per_call = num_inner * (n or 1)
        prepared.append((name, fn, call_args, grads_per_call, opt))
    samples = {name: [] for name, *_ in prepared}
    for _ in range(repeats):
        for name, fn, call_args, grads_per_call, _ in prepared:
            samples[name].append(time_call(fn, call_args) / grads_per_call)
    baseline = statistics.median(samples[prepared[0][0]])

    lines = [
        f"Model: MLP {'-'.join(map(str, sizes))} ({param_count:,} parameters), batch {batch}, "
        f"L = {num_inner}, median of {repeats} interleaved calls.",
        "",
        "| method | ms / gradient evaluation | × SGD+Nesterov | state buffers (× params) |",
        "|---|---|---|---|",
    ]
    for name, _, _, _, opt in prepared:
        per_grad = statistics.median(samples[name])
        buffers = state_buffers(opt, params)
        lines.append(
            f"| {name} | {per_grad * 1e3:.2f} | {per_grad / baseline:.2f} | {buffers:.0f} |"
        )

    small_data = lambda n: batches(n, batch, sizes[0])  # noqa: E731
    compile_5 = compile_seconds(5, params, small_data)
    compile_50 = compile_seconds(50, params, small_data)
    lines += [
        "",
        "| compile time of the compiled form | L = 5 | L = 50 | ratio |",
        "|---|---|---|---|",
        f"| Entropy-SGD | {compile_5:.2f} s | {compile_50:.2f} s | {compile_50 / compile_5:.2f} |",
    ]
    lines += replica_scaling(params, data, num_inner, repeats)
    lines += communication_table(param_count, num_inner)
    lines += mesh_table()
    table = "\n".join(lines)
    text = publish.header(f"python benchmarks/speed.py{' --quick' if args.quick else ''}")
    text += "\n\n" + table
    print(text)
    if args.write:
        publish.write_section("speed", text)


def replica_scaling(params, data, num_inner, repeats):
    """Time per outer step of n vmapped Parle replicas.

    Two references: n vmapped Entropy-SGD models (the same program without coupling and
    replica mean, so the ratio is the overhead of coupling and collectives, target ≤ 1.05),
    and n × one Entropy-SGD model without vmap (adds the cost of batching the model itself).
    """
    single_opt = entropix.entropy_sgd(num_inner_steps=num_inner, noise=0.0, compiled=True)
    single_fn, single_args = prepare(single_opt, "compiled", None, params, data)
    rows = [
        "",
        "| Parle replicas (vmap, one device) | s / outer step "
        "| × n vmapped Entropy-SGD (coupling + collectives) | × (n × one Entropy-SGD) |",
        "|---|---|---|---|",
    ]
    for n in (1, 2, 4, 8):
        opt = entropix.parle(
            num_inner_steps=num_inner, coupling=0.03, elastic_coupling=1.0, compiled=True
        )
        fn, call_args = prepare(opt, "compiled", n, params, data)
        uncoupled_fn, uncoupled_args = prepare(single_opt, "compiled", n, params, data)
        parle_times, uncoupled_times, single_times = [], [], []
        for _ in range(repeats):
            parle_times.append(time_call(fn, call_args))
            uncoupled_times.append(time_call(uncoupled_fn, uncoupled_args))
            single_times.append(time_call(single_fn, single_args))
        parle = statistics.median(parle_times)
        overhead = parle / statistics.median(uncoupled_times)
        ratio = parle / (n * statistics.median(single_times))
        rows.append(f"| n = {n} | {parle:.3f} | {overhead:.2f} | {ratio:.2f} |")
    return rows


def mesh_table():
    """vmap vs shard_map on 8 host devices, measured in a process of its own."""
    import subprocess

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    script = pathlib.Path(__file__).with_name("mesh_speed.py")
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        return ["", f"(mesh timing failed: {out.stderr.strip()[-300:]})"]
    return [
        "",
        "| replica placement (MLP 6-16-3, L = 4, batch 16) | ms / outer step | × vmap |",
        "|---|---|---|",
        *out.stdout.strip().splitlines(),
    ]


def communication_table(param_count, num_inner):
    per_grad = {
        "Parle": param_count / num_inner,
        "Elastic-SGD": param_count,
        "rSGD (K = 1)": param_count,
        "data-parallel SGD": param_count,
    }
    rows = [
        "",
        f"| all-reduced floats per gradient evaluation (d = {param_count:,}, L = {num_inner}) "
        "| floats | MB (float32) |",
        "|---|---|---|",
    ]
    rows += [f"| {k} | {v:,.0f} | {4 * v / 1e6:.2f} |" for k, v in per_grad.items()]
    return rows


if __name__ == "__main__":
    sys.exit(main())
