"""The run directory of a search: what was asked, what happened step by step, what was found.

    config.json       the SearchConfig, the data split record, the space and LUT used
    metrics.jsonl     one JSON object per step (losses, accuracy, tau, latencies in ms)
    latencies.jsonl   every architecture timed during search (choices, ms), in order
    arch.json         the derived architecture with its final probabilities and search summary
    summary.json      the final numbers: measured latency vs target, accuracy, paths, seconds
    checkpoint.pt     everything `--resume` needs to continue the search exactly (hwnas.search.checkpoint)
    report.md         settings, result vs target and PNG plots (hwnas.report), written at the end of `hwnas search`
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

    def __init__(self, path: str | Path, *, resume: bool = False, enabled: bool = True) -> None:
        """`resume` keeps the files of an interrupted run; `enabled` False (ranks other than 0) writes nothing."""
        self.path = Path(path)
        self.enabled = enabled
        self.metrics_path = self.path / "metrics.jsonl"
        self.latencies_path = self.path / "latencies.jsonl"
        self.arch_path = self.path / "arch.json"
        self.summary_path = self.path / "summary.json"
        self.config_path = self.path / "config.json"
        if not enabled:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in () if resume else (self.metrics_path, self.latencies_path):
            stale.unlink(missing_ok=True)

    def keep_until(self, step: int, measured: int) -> None:
        """On resume: drop metric lines of steps >= `step` and timings beyond the first `measured`
        (written after the checkpoint; the resumed run writes them again)."""
        if not self.enabled:
            return
        for path, keep in ((self.metrics_path, lambda i, r: r["step"] < step), (self.latencies_path, lambda i, r: i < measured)):
            if path.exists():
                lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
                kept = [line for i, line in enumerate(lines) if keep(i, json.loads(line))]
                path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def write_json(self, name: str, document: dict[str, Any]) -> Path:
        target = self.path / name
        if self.enabled:
            write_json_atomic(target, document)
        return target

    def append_metrics(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.metrics_path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")
