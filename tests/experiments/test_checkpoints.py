"""Unit tests of entropix.experiments.checkpoints: manifests, verification, failed writes, restore.

Step directories are built by hand (a few files and :func:`checkpoints.write_manifest`) where
orbax is not needed; saves and restores use a real orbax manager on a two-leaf pytree, and the
failure paths of :func:`checkpoints.save` a stand-in manager that prints and raises like orbax.
"""

import errno
import hashlib
import os
import pathlib
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

from entropix.experiments import checkpoints

MANIFEST = checkpoints.MANIFEST


def _step(root: pathlib.Path, step: int, *, manifest: bool = True) -> pathlib.Path:
    """A step directory with a nested file and a file over one read block (1 MiB)."""
    directory = root / str(step)
    (directory / "default").mkdir(parents=True)
    (directory / "default" / "array").write_bytes(bytes(range(256)) * 4097 + bytes([step]))
    (directory / "_CHECKPOINT_METADATA").write_text(f'{{"step": {step}}}')
    if manifest:
        checkpoints.write_manifest(directory)
    return directory


def _state(step: int) -> dict:
    return {"w": jnp.arange(3.0) * step, "count": jnp.int32(step)}


def _flip_bit(directory: pathlib.Path) -> None:
    target = max(
        (p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST),
        key=lambda p: p.stat().st_size,
    )
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))


# Manifests and verification -----------------------------------------------------------------


def test_manifest_lists_every_file_with_its_sha256_in_sha256sum_format(tmp_path):
    directory = _step(tmp_path, 4, manifest=False)
    (directory / (MANIFEST + ".tmp")).write_text("left by an interrupted manifest write\n")
    written = checkpoints.write_manifest(directory)
    assert written == directory / MANIFEST
    expected = "".join(
        f"{hashlib.sha256((directory / name).read_bytes()).hexdigest()}  {name}\n"
        for name in ("_CHECKPOINT_METADATA", "default/array")
    )
    assert written.read_text() == expected
    assert not (directory / (MANIFEST + ".tmp")).exists()  # replaced by the manifest
    assert checkpoints.verify(directory) is None
    # Writing it again (the manifest itself present) lists the same files.
    checkpoints.write_manifest(directory)
    assert written.read_text() == expected


def test_a_manifest_write_that_fails_leaves_no_manifest(tmp_path, monkeypatch):
    directory = _step(tmp_path, 1, manifest=False)

    def fail(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(checkpoints.os, "fsync", fail)
    with pytest.raises(OSError, match="Input/output error"):
        checkpoints.write_manifest(directory)
    assert not (directory / MANIFEST).exists()
    assert checkpoints.verify(directory) == f"has no {MANIFEST} (it was not completely saved)"


def _edit_manifest(directory, edit):
    manifest = directory / MANIFEST
    manifest.write_text(edit(manifest.read_text()))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("missing", "is missing"),
        ("no manifest", f"has no {MANIFEST} (it was not completely saved)"),
        ("empty manifest", f"has an empty {MANIFEST}"),
        ("short digest", f"has a damaged {MANIFEST}"),
        ("no name", f"has a damaged {MANIFEST}"),
        ("manifest bit flipped", f"has a damaged {MANIFEST}"),
        ("file removed", "lacks default/array"),
        ("bit flipped", "has a corrupt file default/array (SHA-256 mismatch)"),
    ],
)
def test_verify_names_what_is_wrong(tmp_path, damage, problem):
    directory = _step(tmp_path, 3)
    assert checkpoints.verify(directory) is None
    if damage == "missing":
        directory = tmp_path / "4"
    elif damage == "no manifest":
        (directory / MANIFEST).unlink()
    elif damage == "empty manifest":
        (directory / MANIFEST).write_text("")
    elif damage == "short digest":  # a digest one hex digit short, the name intact
        _edit_manifest(directory, lambda text: text[1:])
    elif damage == "no name":
        _edit_manifest(directory, lambda text: text.replace("  _CHECKPOINT_METADATA", "  "))
    elif damage == "manifest bit flipped":  # the high bit: the text is no longer UTF-8
        manifest = bytearray((directory / MANIFEST).read_bytes())
        manifest[0] ^= 0x80
        (directory / MANIFEST).write_bytes(bytes(manifest))
    elif damage == "file removed":
        (directory / "default" / "array").unlink()
    else:
        _flip_bit(directory)
    assert checkpoints.verify(directory) == problem


def test_verify_reports_an_unreadable_file_by_its_reason(tmp_path, monkeypatch):
    directory = _step(tmp_path, 3)

    def denied(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(checkpoints, "_digest", denied)
    assert checkpoints.verify(directory) == "cannot be read (Permission denied)"

    def vanished(path):
        raise OSError("device vanished")

    monkeypatch.setattr(checkpoints, "_digest", vanished)
    assert checkpoints.verify(directory) == "cannot be read (device vanished)"


def test_verified_steps_are_the_intact_ones_newest_first(tmp_path):
    assert checkpoints.verified_steps(tmp_path / "missing") == []
    assert checkpoints.latest_verified(tmp_path / "missing") is None
    (tmp_path / "11").mkdir()  # not saved completely: no manifest
    assert checkpoints.latest_verified(tmp_path) is None
    for step in (2, 10, 1, 7):
        _step(tmp_path, step)
    _flip_bit(tmp_path / "7")
    (tmp_path / "tmp-step-12").mkdir()  # not a step
    assert checkpoints.verified_steps(tmp_path) == [10, 2, 1]
    assert checkpoints.latest_verified(tmp_path) == tmp_path / "10"


# Saving ---------------------------------------------------------------------------------------


def test_save_writes_a_verified_checkpoint_and_restore_reads_it_back(tmp_path):
    mgr = checkpoints.manager(tmp_path / "checkpoints", max_to_keep=3)
    for step in (1, 2):
        directory = checkpoints.save(mgr, step, _state(step))
        assert directory == checkpoints.step_dir(mgr, step) == tmp_path / "checkpoints" / str(step)
        assert checkpoints.verify(directory) is None  # complete when save returns
    assert checkpoints.verified_steps(tmp_path / "checkpoints") == [2, 1]
    step, restored = checkpoints.restore_latest(mgr, _state(0))
    assert step == 2
    np.testing.assert_array_equal(restored["w"], [0.0, 2.0, 4.0])
    assert int(restored["count"]) == 2


class _FailingManager:
    """Stands in for an orbax manager: ``save`` prints on file descriptor 2, then fails or not."""

    def __init__(self, directory, *, raises=None, saved=True):
        self.directory = directory
        self.raises, self.saved = raises, saved

    def save(self, step, args):
        os.write(2, b"Traceback (most recent call last):\n  tensorstore says more\n")
        if self.raises is not None:
            raise self.raises
        if self.saved:
            (self.directory / str(step)).mkdir(parents=True)
            (self.directory / str(step) / "array").write_bytes(b"data")
        return self.saved

    def wait_until_finished(self):
        pass

    def reload(self):
        pass


def test_a_successful_save_passes_on_what_it_printed(tmp_path, capfd):
    capfd.readouterr()
    mgr = _FailingManager(tmp_path)
    checkpoints.save(mgr, 3, _state(3))
    os.write(2, b"after the save\n")  # standard error is itself again
    assert capfd.readouterr().err == (
        "Traceback (most recent call last):\n  tensorstore says more\nafter the save\n"
    )
    assert checkpoints.verify(tmp_path / "3") is None


# (raised by the write, errno and strerror of the CheckpointWriteError)
_FAILURES = {
    "errno and reason": (OSError(errno.EDQUOT, "Quota exceeded"), errno.EDQUOT, "Quota exceeded"),
    "errno only": (OSError(errno.ENOSPC, None), errno.ENOSPC, os.strerror(errno.ENOSPC)),
    "tensorstore": (
        ValueError("WRITE failed [os_error_code=28] at /ckpt/d/0"),
        errno.ENOSPC,
        os.strerror(errno.ENOSPC),
    ),
    "tensorstore quoted": (
        RuntimeError("failed: os_error_code='13'"),
        errno.EACCES,
        os.strerror(errno.EACCES),
    ),
    "last line": (RuntimeError("writing step 5:\nin /ckpt/5/d\n" + "x" * 300 + "\n"), 0, "x" * 200),
    "no message": (RuntimeError(""), 0, "RuntimeError"),
}


@pytest.mark.parametrize("failure", list(_FAILURES))
def test_a_failed_save_is_one_error_naming_the_step_and_the_reason(tmp_path, capfd, failure):
    raised, code, reason = _FAILURES[failure]
    capfd.readouterr()
    with pytest.raises(checkpoints.CheckpointWriteError) as info:
        checkpoints.save(_FailingManager(tmp_path, raises=raised), 5, _state(5))
    os.write(2, b"after the save\n")
    assert capfd.readouterr().err == "after the save\n"  # what the write printed is dropped
    assert (info.value.errno, info.value.strerror) == (code, reason)
    assert info.value.filename == str(tmp_path / "5")
    assert info.value.__cause__ is raised


def test_a_refused_save_is_an_error(tmp_path, capfd):
    capfd.readouterr()
    with pytest.raises(checkpoints.CheckpointWriteError) as info:
        checkpoints.save(_FailingManager(tmp_path, saved=False), 5, _state(5))
    assert capfd.readouterr().err == ""
    assert info.value.strerror == "orbax refused to save step 5 (a newer step exists)"
    assert (info.value.errno, info.value.filename) == (0, str(tmp_path / "5"))


# Restoring ------------------------------------------------------------------------------------


@pytest.fixture
def three_steps(tmp_path):
    """A manager with verified checkpoints 1, 2 and 3 (``w = step · [0, 1, 2]``)."""
    mgr = checkpoints.manager(tmp_path / "checkpoints", max_to_keep=3)
    for step in (1, 2, 3):
        checkpoints.save(mgr, step, _state(step))
    return mgr


def test_restore_quarantines_the_damaged_newer_steps_and_falls_back(tmp_path, three_steps):
    mgr, root = three_steps, tmp_path / "checkpoints"
    quarantine = tmp_path / checkpoints.QUARANTINE
    (quarantine / "3").mkdir(parents=True)
    (quarantine / "3" / "older").write_text("from an earlier quarantine")
    _flip_bit(root / "3")
    (root / "2" / MANIFEST).unlink()
    said = []
    step, restored = checkpoints.restore_latest(mgr, _state(0), report=said.append)
    assert step == 1
    np.testing.assert_array_equal(restored["w"], [0.0, 1.0, 2.0])
    corrupt = checkpoints.verify(quarantine / "3")
    assert corrupt is not None and corrupt.startswith("has a corrupt file ")
    assert said == [
        f"checkpoint {root / '3'} {corrupt}; moved to {quarantine / '3'}; "
        "falling back to checkpoint 1.",
        f"checkpoint {root / '2'} has no {MANIFEST} (it was not completely saved); "
        f"moved to {quarantine / '2'}; falling back to checkpoint 1.",
    ]
    assert sorted(p.name for p in root.iterdir()) == ["1"]
    assert not (quarantine / "3" / "older").exists()  # replaced by the newly damaged step
    # The manager forgot the moved steps: training writes step 2 again.
    checkpoints.save(mgr, 2, _state(20))
    assert checkpoints.verified_steps(root) == [2, 1]


def test_restore_without_quarantine_reports_on_stderr_and_moves_nothing(
    tmp_path, three_steps, capsys
):
    root = tmp_path / "checkpoints"
    _flip_bit(root / "3")
    capsys.readouterr()
    step, restored = checkpoints.restore_latest(three_steps, _state(0), quarantine=False)
    assert step == 2
    np.testing.assert_array_equal(restored["w"], [0.0, 2.0, 4.0])
    problem = checkpoints.verify(root / "3")
    assert capsys.readouterr().err == (
        f"entropix: checkpoint {root / '3'} {problem}; falling back to checkpoint 2.\n"
    )
    assert sorted(p.name for p in root.iterdir()) == ["1", "2", "3"]
    assert not (tmp_path / checkpoints.QUARANTINE).exists()


def test_restore_without_an_intact_checkpoint_starts_from_scratch(tmp_path, three_steps):
    root = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        (root / str(step) / MANIFEST).unlink()
    said = []
    assert checkpoints.restore_latest(three_steps, _state(0), report=said.append) is None
    assert len(said) == 3
    assert said[-1] == (
        f"checkpoint {root / '1'} has no {MANIFEST} (it was not completely saved); moved to "
        f"{tmp_path / checkpoints.QUARANTINE / '1'}; no intact checkpoint is left; "
        "starting from scratch."
    )
    # A checkpoint directory that is gone has nothing to restore.
    gone = checkpoints.manager(tmp_path / "gone")
    shutil.rmtree(tmp_path / "gone", ignore_errors=True)
    assert checkpoints.restore_latest(gone, _state(0), report=said.append) is None
    assert len(said) == 3


def test_restore_into_another_structure_is_a_value_error(three_steps):
    like = {**_state(0), "momentum": jnp.zeros(3)}
    with pytest.raises(ValueError, match=r"checkpoints/3 does not match the model and optimizer"):
        checkpoints.restore_latest(three_steps, like)
