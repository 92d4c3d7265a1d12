"""Counts the passes over parameter-sized buffers that XLA emits for one inner step.

For every two-loop optimizer of the catalogue (and Parle under ``vmap``), in both forms, the
script compiles a training step on a one-layer model ``w ∈ R^{1024×1024}``, reads the optimized
HLO (``jax.jit(f).lower(...).compile().as_text()``) and counts, per inner step:

* **kernels** — top-level instructions (loop fusions, copies, unfused elementwise ops) whose
  result holds a parameter-sized array: each is one pass over memory;
* **reads / writes** — parameter-sized operands read and results written by those kernels
  (one read or write = one pass over ``4 × 1024²`` bytes; a ``uint32`` noise array counts like
  a float32 one);
* **loop iterations** — iterations of nested while loops (JAX's PRNG runs its hash rounds in a
  rolled loop on CPU): each iteration launches a few kernels, whatever the array size.

The gradient itself (a matrix product, not counted) is the same for every method; the SGD +
Nesterov baseline shows what the update costs in the same setting. Step form: the entry
computation of one ``update`` + ``apply_updates`` with the state and params donated, taking
the branch of the conditional that runs on ``L − 1`` of ``L`` steps. Compiled form: the body of
the inner ``lax.scan`` (``L − 1`` of the ``L`` inner steps run there).

    python benchmarks/fusion_count.py
"""

from __future__ import annotations

import argparse
import re
import sys

import jax
import jax.numpy as jnp
import optax

import entropix

SIZE = 1024
BATCH = 32
_SKIP = {
    "parameter",
    "get-tuple-element",
    "tuple",
    "bitcast",
    "constant",
    "dot",
    "custom-call",
    "while",
    "conditional",
    "call",
    "opt-barrier",
}


def _loss(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def _data(num, replicas=None):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    lead = (num,) if replicas is None else (replicas, num)
    return (
        jax.random.normal(k1, (*lead, BATCH, SIZE)),
        jax.random.normal(k2, (*lead, BATCH, SIZE)),
    )


def _params(replicas=None):
    lead = () if replicas is None else (replicas,)
    return {"w": jnp.zeros((*lead, SIZE, SIZE)), "b": jnp.zeros((*lead, SIZE))}


def _computations(text):
    """``{name: [instruction lines]}`` of every computation in an HLO module's text."""
    comps, name = {}, None
    for line in text.splitlines():
        header = re.match(r"^(?:ENTRY )?%(\S+) .*\{$", line)
        if header:
            name = header.group(1)
            comps[name] = []
            if line.startswith("ENTRY"):
                comps["__entry__"] = name
        elif line.startswith("}"):
            name = None
        elif name is not None and "=" in line:
            comps[name].append(line.strip())
    return comps


_INSTRUCTION = re.compile(r"^(?:ROOT )?%(\S+) = (.+?) ([a-z][a-z0-9-]*)\((.*)$")
_ARRAY = re.compile(r"\b(pred|[subf]\d+|bf16)\[([\d,]*)\]")
_BYTES = {"pred": 1, "bf16": 2}


def _passes(shape_text, elements):
    """Parameter-sized passes in a result type: arrays of ≥ elements/4 elements, weighted by
    their bytes relative to one float32 parameter array (u32 noise words count like floats)."""
    total = 0.0
    for dtype, dims in _ARRAY.findall(shape_text):
        size = 1
        for d in filter(None, dims.split(",")):
            size *= int(d)
        if size * 4 >= elements:
            width = _BYTES.get(dtype, int(re.sub(r"\D", "", dtype) or 32) // 8)
            total += size * width / (4 * elements)
    return total


def _count(comps, name, elements, seen=()):
    """(kernels, reads, writes, loop iterations) run by computation ``name``.

    Nested while loops count once per iteration (XLA's ``known_trip_count``); of a
    conditional's branches the cheapest counts (the common, non-outer step).
    """
    shapes, kernels, reads, writes, loops = {}, 0.0, 0.0, 0.0, 0
    for line in comps[name]:
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        instr, result, op, rest = match.groups()
        shapes[instr] = result
        if op == "while":
            body = re.search(r"body=%([\w.\-]+)", rest).group(1)
            trips = re.search(r'known_trip_count":\{"n":"(\d+)"', rest)
            sub = _count(comps, body, elements)
            n = int(trips.group(1)) if trips else 1
            kernels, reads, writes = kernels + n * sub[0], reads + n * sub[1], writes + n * sub[2]
            loops += n * (1 + sub[3])
            continue
        if op == "call":
            callee = re.search(r"to_apply=%([\w.\-]+)", rest).group(1)
            sub = _count(comps, callee, elements)
            kernels, reads, writes = kernels + sub[0], reads + sub[1], writes + sub[2]
            loops += sub[3]
            continue
        if op == "conditional":
            branches = re.search(r"branch_computations=\{([^}]*)\}", rest)
            names = [b.strip().lstrip("%") for b in branches.group(1).split(",")]
            sub = min((_count(comps, b, elements) for b in names), key=lambda c: c[0])
            kernels, reads, writes = kernels + sub[0], reads + sub[1], writes + sub[2]
            loops += sub[3]
            continue
        if op in _SKIP:
            continue
        written = _passes(result, elements)
        if not written:
            continue
        operands = re.findall(r"%([\w.\-]+)", rest.split("), ")[0])
        kernels += 1
        writes += written
        reads += sum(_passes(shapes[o], elements) for o in operands if o in shapes)
    return kernels, reads, writes, loops


def step_form_counts(opt, replicas=None):
    """Kernels/reads/writes of one step-form update + apply_updates (non-outer branch)."""
    params, data = _params(replicas), _data(1, replicas)
    batch = jax.tree.map(lambda d: d[:, 0] if replicas else d[0], data)

    def train_step(params, state, batch):
        grads = jax.grad(_loss)(params, batch)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step, init = train_step, opt.init
    if replicas:
        step = jax.vmap(train_step, axis_name="replicas")
        init = jax.vmap(opt.init)
    text = (
        jax.jit(step, donate_argnums=(0, 1)).lower(params, init(params), batch).compile().as_text()
    )
    comps = _computations(text)
    return _count(comps, comps["__entry__"], SIZE * SIZE * (replicas or 1))


def compiled_form_counts(opt, num_inner, replicas=None):
    """Kernels/reads/writes of one inner step in the scan body of the compiled form."""
    params, data = _params(replicas), _data(num_inner, replicas)

    def outer_step(params, state, data):
        def grad_fn(p, i):
            return jax.grad(_loss)(p, (data[0][i], data[1][i]))

        updates, state = opt.update(grad_fn(params, 0), state, params, grad_fn=grad_fn)
        return optax.apply_updates(params, updates), state

    step, init = outer_step, opt.init
    if replicas:
        step = jax.vmap(outer_step, axis_name="replicas")
        init = jax.vmap(opt.init)
    text = (
        jax.jit(step, donate_argnums=(0, 1)).lower(params, init(params), data).compile().as_text()
    )
    comps = _computations(text)
    elements = SIZE * SIZE * (replicas or 1)
    # The inner scan is the entry's while loop that runs L − 1 times.
    for line in comps[comps["__entry__"]]:
        if f'known_trip_count":{{"n":"{num_inner - 1}"' in line and " while(" in line:
            body = re.search(r"body=%([\w.\-]+)", line).group(1)
            return _count(comps, body, elements)
    raise RuntimeError("inner scan not found in the compiled HLO")


def rows(num_inner=7, replicas=3):
    """(label, form, (kernels, reads, writes)) for SGD and every two-loop optimizer."""
    sgd = optax.sgd(0.01, 0.9, nesterov=True)
    out = [("SGD + Nesterov (baseline)", "step", step_form_counts(sgd))]
    variants = [
        ("Entropy-SGD, noise 0", entropix.entropy_sgd, dict(noise=0.0)),
        ("Entropy-SGD, ±1 noise (default)", entropix.entropy_sgd, {}),
        (
            "Entropy-SGD, Gaussian noise",
            entropix.entropy_sgd,
            dict(noise_distribution="gaussian"),
        ),
    ]
    for name in ("entropy_adam", "hj", "heat", "local_entropy"):
        entry = entropix.optimizer_entry(name)
        kwargs = {k: v for k, v in entry.example_kwargs.items() if k != "num_inner_steps"}
        variants.append((entry.label, entry.factory, kwargs))
    for label, factory, kwargs in variants:
        kwargs = dict(kwargs, num_inner_steps=num_inner)
        out.append((label, "step", step_form_counts(factory(**kwargs))))
        compiled = factory(**kwargs, compiled=True)
        out.append((label, "compiled", compiled_form_counts(compiled, num_inner)))
    parle = dict(num_inner_steps=num_inner, coupling=0.03, elastic_coupling=1.0)
    label = f"Parle (n={replicas}, vmap; per replica)"
    out.append((label, "step", step_form_counts(entropix.parle(**parle), replicas)))
    compiled = entropix.parle(**parle, compiled=True)
    out.append((label, "compiled", compiled_form_counts(compiled, num_inner, replicas)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    print(
        f"Parameter-sized passes per inner step (w: {SIZE}×{SIZE} float32; JAX {jax.__version__}, "
        f"{jax.devices()[0].platform})\n"
    )
    print("| optimizer | form | kernels | reads | writes | reads + writes | loop iterations |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, form, (kernels, reads, writes, loops) in rows():
        print(
            f"| {label} | {form} | {kernels:g} | {reads:.3g} | {writes:.3g} "
            f"| {reads + writes:.3g} | {loops} |"
        )


if __name__ == "__main__":
    sys.exit(main())
