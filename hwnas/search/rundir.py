"""The run directory of a search: what was asked, what happened step by step, what was found.

    config.json       the SearchConfig, the data split record, the space and LUT used
    metrics.jsonl     one JSON object per step (losses, accuracy, tau, latencies in ms)
    latencies.jsonl   every architecture timed during search (choices, ms), in order
    arch.json         the derived architecture with its final probabilities and search summary
    summary.json      the final numbers: measured latency vs target, accuracy, paths, seconds
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from lut.table import write_json_atomic


def default_run_dir(root: str | Path = "runs", prefix: str = "search") -> Path:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{prefix}-{stamp}"


class RunDirectory:
    """Writes the files above; JSON documents atomically, metrics appended line by line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.path / "metrics.jsonl"
        self.latencies_path = self.path / "latencies.jsonl"
        self.arch_path = self.path / "arch.json"
        self.summary_path = self.path / "summary.json"
        self.config_path = self.path / "config.json"
        for stale in (self.metrics_path, self.latencies_path):
            stale.unlink(missing_ok=True)

    def write_json(self, name: str, document: dict[str, Any]) -> Path:
        target = self.path / name
        write_json_atomic(target, document)
        return target

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")
