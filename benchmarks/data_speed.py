"""Input pipeline vs training speed for mnistfc (batch 128, plain optax SGD) on this machine.

The data path is ``entropix.data.shuffle_epoch``: one on-device permutation and gather per
epoch, giving stacked ``(steps, 128, 28, 28, 1)`` minibatches. The training step is a jitted
mnistfc step (BatchNorm + dropout, ``optax.sgd``) fed by indexing that stack. The target
(the input pipeline must not be the bottleneck): data batches/s ≥ 10 × training steps/s. Both
are measured in the same run (the machine is shared and noisy; compare the ratio, not absolute
numbers across runs).

Run: ``python benchmarks/data_speed.py [--epochs 3] [--steps 60]`` (well under a minute on
2 CPU cores). Prints one markdown table row; ``--header`` adds the header.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import optax

from entropix import data, models

BATCH = 128


def _load_images() -> tuple[np.ndarray, np.ndarray, str]:
    try:
        ds = data.load_dataset("fashion_mnist")
        return ds.x_train, ds.y_train, "Fashion-MNIST (IDX)"
    except data.DatasetNotFoundError:
        # Same shape as MNIST; speed does not depend on the pixel values.
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (60_000, 28, 28, 1)).astype(np.float32)
        return x, rng.integers(0, 10, 60_000).astype(np.int32), "synthetic 60k×28×28"


def time_data_path(x: jax.Array, y: jax.Array, epochs: int) -> float:
    """Minibatches per second produced by ``shuffle_epoch`` (on-device shuffle and gather)."""
    key = jax.random.key(0)
    jax.block_until_ready(data.shuffle_epoch(key, (x, y), BATCH))  # compile
    start = time.perf_counter()
    steps = 0
    for epoch in range(epochs):
        xb, yb = data.shuffle_epoch(jax.random.fold_in(key, epoch), (x, y), BATCH)
        jax.block_until_ready((xb, yb))
        steps += xb.shape[0]
    return steps / (time.perf_counter() - start)


def time_training(x: jax.Array, y: jax.Array, num_steps: int) -> float:
    """mnistfc SGD steps per second (BN + dropout), batches indexed from a shuffled epoch."""
    model = models.mnistfc()
    variables = model.init(jax.random.key(0), x[:1], train=False)
    params, state = variables["params"], {"batch_stats": variables["batch_stats"]}
    optimizer = optax.sgd(0.1, momentum=0.9, nesterov=True)
    opt_state = optimizer.init(params)
    grad_fn = jax.value_and_grad(models.make_stateful_loss_fn(model), has_aux=True)

    @jax.jit
    def step(params, state, opt_state, batch, key):
        (loss, state), grads = grad_fn(params, state, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss

    xb, yb = data.shuffle_epoch(jax.random.key(1), (x, y), BATCH)
    key = jax.random.key(2)
    carry = step(params, state, opt_state, (xb[0], yb[0]), key)  # compile
    jax.block_until_ready(carry)
    params, state, opt_state, _ = carry
    start = time.perf_counter()
    for i in range(num_steps):
        j = i % xb.shape[0]
        params, state, opt_state, loss = step(
            params, state, opt_state, (xb[j], yb[j]), jax.random.fold_in(key, i)
        )
    jax.block_until_ready(loss)
    return num_steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the data path to time")
    parser.add_argument("--steps", type=int, default=60, help="training steps to time")
    parser.add_argument("--header", action="store_true", help="print the table header too")
    args = parser.parse_args()

    start = time.perf_counter()
    x_host, y_host, source = _load_images()
    load_s = time.perf_counter() - start
    x, y = jax.device_put(x_host), jax.device_put(y_host)
    batches_per_s = time_data_path(x, y, args.epochs)
    steps_per_s = time_training(x, y, args.steps)
    device = jax.devices()[0]
    if args.header:
        print(
            "| device | data | load (s, once) | data batches/s | mnistfc SGD steps/s (batch 128) "
            "| ratio |"
        )
        print("|---|---|---|---|---|---|")
    print(
        f"| {device.platform} ({device.device_kind}) | {source} | {load_s:.2f} | "
        f"{batches_per_s:,.0f} | {steps_per_s:,.1f} | {batches_per_s / steps_per_s:,.0f}× |"
    )


if __name__ == "__main__":
    main()
