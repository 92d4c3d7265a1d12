"""Metrics records, appended to JSONL and CSV files in the workdir (never truncated).

Each record is appended as one ``write`` of a complete line, then flushed and fsynced, so a
crash loses at most the record being written. A file whose last line was torn by a crash
(no final newline) has that fragment dropped, with a warning, before the next append.
``metrics.jsonl`` is strict JSON: non-finite numbers (a NaN loss, an infinite perplexity) are
written as ``null``. A resumed run first appends an event line
``{"event": "resume", "from_round": R, ...}``: the records of rounds after ``R`` written before
it belong to the abandoned attempt, and :func:`read_metrics` drops them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pathlib
import warnings
from typing import Any

import numpy as np


def _strict(value: Any) -> Any:
    """JSON-ready copy: NumPy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) or hasattr(value, "__float__"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str) or value is None:
        return value
    return str(value)


def _drop_torn_tail(fd: int, path: pathlib.Path) -> None:
    """Truncates a file whose last line has no newline (a write torn by a crash)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    if os.pread(fd, 1, size - 1) == b"\n":
        return
    # Find the last newline, reading backwards in blocks.
    end = size
    keep = 0
    while end > 0:
        start = max(0, end - 65536)
        block = os.pread(fd, end - start, start)
        index = block.rfind(b"\n")
        if index >= 0:
            keep = start + index + 1
            break
        end = start
    warnings.warn(
        f"{path}: dropped a torn last line ({size - keep} bytes, no final newline; the "
        "process writing it was probably killed).",
        stacklevel=3,
    )
    os.ftruncate(fd, keep)


def append_line(path: pathlib.Path, line: str) -> None:
    """Appends ``line`` (newline added) in one write, flushed to disk; drops a torn tail first.

    Raises:
      OSError: the write failed (``filename`` is ``path``).
    """
    data = (line.rstrip("\n") + "\n").encode()
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _drop_torn_tail(fd, path)
            written = os.write(fd, data)
            if written != len(data):  # a short write (disk full): finish it or fail
                os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err


class MetricsLog:
    """Collects evaluation records and appends them to ``metrics.jsonl`` and ``metrics.csv``.

    A resumed run appends to the same files; a reader that wants one record per round keeps
    the last record of each ``round`` (see :func:`read_metrics`).
    """

    def __init__(self, workdir: pathlib.Path | None, records: list[dict[str, Any]] | None = None):
        self.records: list[dict[str, Any]] = list(records or [])
        self.workdir = workdir

    def write(self, record: dict[str, Any]) -> None:
        """Keeps ``record`` and appends it to both files."""
        self.records.append(record)
        if self.workdir is None:
            return
        append_line(self.workdir / "metrics.jsonl", json.dumps(_strict(record), allow_nan=False))
        path = self.workdir / "metrics.csv"
        new_file = not path.exists() or path.stat().st_size == 0
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(record), lineterminator="\n")
        if new_file:
            writer.writeheader()
        writer.writerow(_strict(record))
        append_line(path, buffer.getvalue())

    def event(self, kind: str, **fields: Any) -> None:
        """Appends an event line (``{"event": kind, ...}``) to ``metrics.jsonl`` only."""
        if self.workdir is None:
            return
        append_line(
            self.workdir / "metrics.jsonl",
            json.dumps(_strict({"event": kind, **fields}), allow_nan=False),
        )


def _run_key(record: dict[str, Any]) -> tuple:
    return (record.get("optimizer"), record.get("seed"))


def read_metrics(workdir: str | pathlib.Path) -> list[dict[str, Any]]:
    """Reads ``metrics.jsonl``, keeping the last record written for each round.

    Records of rounds after the round a later resume started from are dropped (they belong to
    an abandoned attempt). A torn last line (a crash mid-write) is dropped with a warning, as
    is any other line that is not a JSON object. Non-finite numbers read back as ``None``.

    Raises:
      FileNotFoundError: no ``metrics.jsonl`` in ``workdir``.
    """
    path = pathlib.Path(workdir) / "metrics.jsonl"
    text = path.read_text()
    lines = text.split("\n")
    by_round: dict[tuple, dict[str, Any]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            torn = number == len(lines)
            what = "a torn last line" if torn else f"a malformed line {number}"
            warnings.warn(f"{path}: skipped {what} ({line[:60]!r}).", stacklevel=2)
            continue
        if record.get("event") == "resume":
            start = record.get("from_round", 0)
            run = _run_key(record)
            for key in [k for k in by_round if k[:2] == run and k[2] > start]:
                del by_round[key]
            continue
        if "round" not in record:
            continue
        by_round[(*_run_key(record), record["round"])] = record
    return sorted(by_round.values(), key=lambda r: (str(r.get("optimizer")), r["round"]))
