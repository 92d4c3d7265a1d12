"""Metrics records, appended to JSONL and CSV files in the workdir (never truncated)."""

from __future__ import annotations

import csv
import json
import pathlib
from typing import Any


class MetricsLog:
    """Collects evaluation records and appends them to ``metrics.jsonl`` and ``metrics.csv``.

    A resumed run appends to the same files; a reader that wants one record per round keeps
    the last record of each ``round`` (see :func:`read_metrics`).
    """

    def __init__(self, workdir: pathlib.Path | None):
        self.records: list[dict[str, Any]] = []
        self.workdir = workdir

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.workdir is None:
            return
        with open(self.workdir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record, default=_plain) + "\n")
        path = self.workdir / "metrics.csv"
        new_file = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(record))
            if new_file:
                writer.writeheader()
            writer.writerow(record)


def _plain(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def read_metrics(workdir: str | pathlib.Path) -> list[dict[str, Any]]:
    """Reads ``metrics.jsonl``, keeping the last record written for each round."""
    by_round: dict[Any, dict[str, Any]] = {}
    with open(pathlib.Path(workdir) / "metrics.jsonl") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                by_round[(record.get("optimizer"), record.get("seed"), record["round"])] = record
    return sorted(by_round.values(), key=lambda r: (str(r.get("optimizer")), r["round"]))
