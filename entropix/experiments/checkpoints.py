"""Orbax checkpoints of the training state: atomic saves, restore of the last complete one."""

from __future__ import annotations

import pathlib
from typing import Any

import jax


def manager(directory: pathlib.Path, max_to_keep: int = 2):
    """A checkpoint manager writing synchronously (a save is complete when it returns)."""
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(directory.resolve(), options=options)


def save(mgr, step: int, state: Any) -> None:
    """Saves ``state`` as checkpoint ``step``; orbax writes to a temporary directory first and
    renames it on success, so a crash never leaves a checkpoint that looks complete."""
    import orbax.checkpoint as ocp

    mgr.save(step, args=ocp.args.StandardSave(state))
    mgr.wait_until_finished()


def restore_latest(mgr, like: Any) -> tuple[int, Any] | None:
    """Restores the newest complete checkpoint into the structure of ``like``, or None."""
    import orbax.checkpoint as ocp

    step = mgr.latest_step()
    if step is None:
        return None
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), like)
    restored = mgr.restore(step, args=ocp.args.StandardRestore(abstract))
    return step, restored
