"""Orbax checkpoints of the training state, each verified by a SHA-256 manifest.

Orbax writes a step into a temporary directory and renames it when complete. After that,
:func:`save` hashes every file of the step directory and writes ``MANIFEST.sha256`` into it
(the ``sha256sum`` format: ``sha256sum -c MANIFEST.sha256`` inside the step directory checks
it by hand). A checkpoint is *verified* when its manifest exists and every listed file is
present with the listed hash; :func:`restore_latest` restores the newest verified checkpoint,
moves any newer unverifiable one aside into ``corrupt_checkpoints/`` next to the checkpoint
directory and says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import jax

MANIFEST = "MANIFEST.sha256"
QUARANTINE = "corrupt_checkpoints"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, permissions …); ``filename`` is the step."""


def manager(directory: pathlib.Path, max_to_keep: int = 2):
    """A checkpoint manager writing synchronously (a save is complete when it returns)."""
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(pathlib.Path(directory).resolve(), options=options)


def step_dir(mgr, step: int) -> pathlib.Path:
    """The directory of checkpoint ``step``."""
    return pathlib.Path(str(mgr.directory)) / str(step)


def _digest(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(directory: pathlib.Path) -> list[pathlib.Path]:
    skip = (MANIFEST, MANIFEST + ".tmp")
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name not in skip)


def write_manifest(directory: pathlib.Path) -> pathlib.Path:
    """Writes ``MANIFEST.sha256`` (hash of every file of ``directory``) atomically."""
    lines = [f"{_digest(p)}  {p.relative_to(directory).as_posix()}\n" for p in _files(directory)]
    target = directory / MANIFEST
    tmp = directory / (MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        f.write("".join(lines))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target


def verify(directory: pathlib.Path) -> str | None:
    """None if checkpoint ``directory`` matches its manifest, else what is wrong (a phrase)."""
    manifest = directory / MANIFEST
    if not directory.is_dir():
        return "is missing"
    if not manifest.is_file():
        return f"has no {MANIFEST} (it was not completely saved)"
    try:
        listed = {}
        for line in manifest.read_text().splitlines():
            digest, _, name = line.partition("  ")
            if len(digest) != 64 or not name:
                return f"has a damaged {MANIFEST}"
            listed[name] = digest
        for name, digest in listed.items():
            path = directory / name
            if not path.is_file():
                return f"lacks {name}"
            if _digest(path) != digest:
                return f"has a corrupt file {name} (SHA-256 mismatch)"
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    except UnicodeDecodeError:  # a flipped high bit in the manifest's text
        return f"has a damaged {MANIFEST}"
    if not listed:
        return f"has an empty {MANIFEST}"
    return None


@contextlib.contextmanager
def _stderr_captured():
    """Collects what orbax and tensorstore threads print on file descriptor 2 during a save.

    A failed write makes them print tracebacks and log lines by the dozen; the caller reports
    the failure in one line instead. What a successful save printed is passed on unchanged.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters): capture nothing
        yield lambda: None
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        keep = [True]
        try:
            yield lambda: keep.__setitem__(0, False)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if keep[0]:
                sink.seek(0)
                text = sink.read()
                if text:
                    os.write(2, text)


def _reason(err: BaseException) -> tuple[int, str]:
    """``(errno, strerror)`` of a failed write, also from tensorstore's messages."""
    code = getattr(err, "errno", None)
    if code:
        return code, getattr(err, "strerror", None) or os.strerror(code)
    match = re.search(r"os_error_code='?(\d+)", str(err))
    if match:
        code = int(match.group(1))
        return code, os.strerror(code)
    text = str(err).strip().splitlines()
    return 0, (text[-1][:200] if text else type(err).__name__)


def save(mgr, step: int, state: Any) -> pathlib.Path:
    """Saves ``state`` as checkpoint ``step`` and writes its manifest; returns the directory.

    Orbax writes to a temporary directory first and renames it on success, so a crash never
    leaves a checkpoint that looks complete; the manifest, written last, marks it verified.

    Raises:
      CheckpointWriteError: the checkpoint could not be written (``filename`` is the step's
        directory, ``strerror`` the reason, e.g. "No space left on device").
    """
    import orbax.checkpoint as ocp

    directory = step_dir(mgr, step)
    with _stderr_captured() as discard:
        try:
            saved = mgr.save(step, args=ocp.args.StandardSave(state))
            mgr.wait_until_finished()
            if not saved:
                raise CheckpointWriteError(
                    0, f"orbax refused to save step {step} (a newer step exists)", str(directory)
                )
            write_manifest(directory)
        except CheckpointWriteError:
            discard()
            raise
        except Exception as err:
            discard()
            code, reason = _reason(err)
            raise CheckpointWriteError(code, reason, str(directory)) from err
    return directory


def verified_steps(directory: pathlib.Path) -> list[int]:
    """Steps under ``directory`` whose manifest verifies, newest first."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    steps = sorted((int(p.name) for p in directory.iterdir() if p.name.isdigit()), reverse=True)
    return [s for s in steps if verify(directory / str(s)) is None]


def _say(message: str) -> None:
    print(f"entropix: {message}", file=sys.stderr)


def restore_latest(
    mgr, like: Any, *, quarantine: bool = True, report: Callable[[str], None] | None = None
) -> tuple[int, Any] | None:
    """Restores the newest verified checkpoint into the structure of ``like``, or None.

    Newer checkpoints that fail verification are reported by name (through ``report``,
    default: one line on stderr) and, with ``quarantine``, moved into
    ``corrupt_checkpoints/`` next to the checkpoint directory, so that training can write
    those steps again.

    Raises:
      ValueError: a verified checkpoint does not have the structure of ``like`` (the run's
        config changed what the state holds).
    """
    import orbax.checkpoint as ocp

    report = report or _say
    root = pathlib.Path(str(mgr.directory))
    steps = sorted(
        (int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.is_dir() else [],
        reverse=True,
    )
    bad: list[tuple[int, str]] = []
    chosen = None
    for step in steps:
        problem = verify(root / str(step))
        if problem is None:
            chosen = step
            break
        bad.append((step, problem))
    for step, problem in bad:
        where = root / str(step)
        note = ""
        if quarantine:
            target = root.parent / QUARANTINE / str(step)
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(where), str(target))
            note = f"; moved to {target}"
        fallback = f"falling back to checkpoint {chosen}" if chosen is not None else "no intact"
        if chosen is None:
            fallback += " checkpoint is left; starting from scratch"
        report(f"checkpoint {where} {problem}{note}; {fallback}.")
    if bad and quarantine:
        mgr.reload()
    if chosen is None:
        return None
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), like)
    try:
        restored = mgr.restore(chosen, args=ocp.args.StandardRestore(abstract))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"checkpoint {root / str(chosen)} does not match the model and optimizer of the "
            f"config ({type(err).__name__}); resume with the run's own config.json."
        ) from err
    return chosen, restored


def latest_verified(directory: pathlib.Path) -> pathlib.Path | None:
    """The newest verified step directory under ``directory`` (None: none)."""
    steps = verified_steps(directory)
    return pathlib.Path(directory) / str(steps[0]) if steps else None
