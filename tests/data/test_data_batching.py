"""Batching for the optimizers: shuffled epochs, (L, batch) groups, replica shards, accounting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entropix import data

KEY = jax.random.key(0)


def test_steps_and_effective_epochs():
    assert data.steps_per_epoch(60_000, 128) == 468
    assert data.steps_per_epoch(60_000, 128, drop_remainder=False) == 469
    # Entropy-SGD, L = 20, 5 outer epochs → 100 effective epochs (ICLR Table 1 convention).
    assert data.effective_epochs(5 * 468 * 20, 468) == 100.0
    assert data.effective_epochs(234, 468) == 0.5
    with pytest.raises(ValueError, match="batch_size=0"):
        data.steps_per_epoch(10, 0)


def test_shuffle_epoch_is_a_permutation_without_the_remainder():
    n, batch = 103, 10
    x = jnp.arange(n)
    y = jnp.arange(n) * 2
    xb, yb = data.shuffle_epoch(KEY, (x, y), batch)
    assert xb.shape == (10, 10)
    np.testing.assert_array_equal(yb, 2 * xb)  # pairs stay aligned
    seen = np.asarray(xb).ravel()
    assert len(np.unique(seen)) == 100  # each example at most once, 3 dropped
    again, _ = data.shuffle_epoch(KEY, (x, y), batch)
    np.testing.assert_array_equal(again, xb)
    other, _ = data.shuffle_epoch(jax.random.key(1), (x, y), batch)
    assert not np.array_equal(other, xb)
    assert not np.array_equal(seen, np.sort(seen))  # actually shuffled


def test_shuffle_epoch_keeps_trailing_shape_and_rejects_bad_input():
    images = jnp.zeros((9, 4, 4, 1))
    assert data.shuffle_epoch(KEY, images, 3).shape == (3, 3, 4, 4, 1)
    with pytest.raises(ValueError, match="disagree"):
        data.shuffle_epoch(KEY, (jnp.zeros(4), jnp.zeros(5)), 2)
    with pytest.raises(ValueError, match="exceeds"):
        data.shuffle_epoch(KEY, jnp.zeros(4), 5)


def test_group_batches_layout():
    batches = jnp.arange(7 * 2).reshape(7, 2)  # 7 minibatches of 2
    groups = data.group_batches(batches, 3)
    assert groups.shape == (2, 3, 2)  # last incomplete group dropped
    # group g, inner step l is minibatch g·L + l.
    np.testing.assert_array_equal(groups[1, 2], batches[5])
    grouped = data.epoch_minibatch_groups(KEY, (jnp.arange(50), jnp.arange(50)), 4, 5)
    assert grouped[0].shape == (2, 5, 4)
    flat = np.asarray(data.shuffle_epoch(KEY, jnp.arange(50), 4))
    np.testing.assert_array_equal(np.asarray(grouped[0]).reshape(-1, 4), flat[:10])


def test_sample_minibatches_are_without_replacement_each():
    out = data.sample_minibatches(KEY, jnp.arange(20), 8, 6)
    assert out.shape == (6, 8)
    for row in np.asarray(out):
        assert len(set(row.tolist())) == 8
    assert len({tuple(r) for r in np.asarray(out).tolist()}) > 1


@pytest.mark.parametrize(
    ("n", "replicas", "fraction"), [(24, 3, 0.5), (24, 6, 0.25), (24, 2, 0.6), (24, 1, 1.0)]
)
def test_replica_shards_cover_every_example(n, replicas, fraction):
    shards = np.asarray(data.replica_shards(KEY, n, replicas, fraction))
    size = int(np.ceil(fraction * n))
    assert shards.shape == (replicas, size)
    for shard in shards:
        assert len(set(shard.tolist())) == size  # distinct within a replica
    counts = np.bincount(shards.ravel(), minlength=n)
    assert counts.min() >= 1  # every example belongs to some replica
    assert counts.sum() == replicas * size  # e.g. 150% coverage for 3 × 50%
    assert counts.max() <= int(np.ceil(replicas * fraction))


def test_replica_shards_errors_and_sharding():
    with pytest.raises(ValueError, match=r"fraction=0\.25 < 1"):
        data.replica_shards(KEY, 10, 3, 0.25)
    with pytest.raises(ValueError, match=r"fraction=1\.5"):
        data.replica_shards(KEY, 10, 3, 1.5)
    x = jnp.arange(24) * 10
    shards = data.replica_shards(KEY, 24, 3, 0.5)
    sharded = data.shard_data((x, jnp.arange(24)), shards)
    np.testing.assert_array_equal(sharded[0], np.asarray(shards) * 10)
    epochs = data.replica_epochs(jax.random.key(1), sharded, 4)
    assert epochs[0].shape == (3, 3, 4)
    for r in range(3):
        # Each replica's epoch is a permutation of its own shard.
        assert sorted(np.asarray(epochs[1][r]).ravel().tolist()) == sorted(
            np.asarray(shards[r]).tolist()
        )
    assert not np.array_equal(epochs[1][0], epochs[1][1])


def test_language_model_batches_continue_rows_across_windows():
    tokens = jnp.arange(101)
    x, y = data.language_model_batches(tokens[:-1], tokens[1:], batch_size=4, seq_len=6)
    assert x.shape == y.shape == (4, 4, 6)  # 100 // 4 = 25 per row → 4 windows of 6
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(x[0, 1], np.arange(25, 31))  # row 1 starts at 25
    np.testing.assert_array_equal(x[1, 1], np.arange(31, 37))  # and continues in window 1
    with pytest.raises(ValueError, match="too few"):
        data.language_model_batches(tokens[:10], tokens[1:11], 4, 6)


def test_group_grad_fn_differentiates_minibatch_i():
    group = (jnp.arange(12.0).reshape(3, 4), jnp.ones((3, 4)))

    def loss(w, batch, rng=None):
        x, y = batch
        noise = 0.0 if rng is None else jax.random.uniform(rng)
        return jnp.mean((w * x - y) ** 2) + noise * w

    grad_fn = data.make_group_grad_fn(loss, group)
    for i in range(3):
        x = group[0][i]
        np.testing.assert_allclose(grad_fn(2.0, i), jnp.mean(2 * (2.0 * x - 1) * x), rtol=1e-6)
    key = jax.random.key(5)
    noisy = data.make_group_grad_fn(loss, group, key)
    # The rng of minibatch i is fold_in(key, i): the extra gradient term is that uniform draw.
    extra = float(noisy(2.0, 1) - grad_fn(2.0, 1))
    np.testing.assert_allclose(extra, jax.random.uniform(jax.random.fold_in(key, 1)), atol=1e-4)
    scanned = jax.lax.scan(lambda c, i: (c, grad_fn(2.0, i)), None, jnp.arange(3))[1]
    np.testing.assert_allclose(scanned, [grad_fn(2.0, i) for i in range(3)], rtol=1e-6)
