"""The run directory of a search: what was asked, what happened step by step, what was found.

    config.json       the SearchConfig (nested by section; `SearchConfig.from_dict` also reads the flat
                      form of older runs), the data split record, the space and LUT used
    metrics.jsonl     one JSON object per step (losses, accuracy, tau, latencies in ms)
    latencies.jsonl   every architecture timed during search (choices, ms), in order
    arch.json         the derived architecture with its final probabilities and search summary
    summary.json      the final numbers: measured latency vs target, accuracy, paths, seconds
    checkpoint.pt     everything `--resume` needs to continue the search exactly (hwnas.search.checkpoint)
    derivation.json   with --derive-candidates above 1: the candidates and their scores (hwnas.search.derive)
    report.md         settings, result vs target and PNG plots (hwnas.report), written at the end of `hwnas search`
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from hwnas.errors import UsageError
from lut.table import write_json_atomic
from search_spaces.files import append_jsonl, keep_lines, read_jsonl


CHECKPOINT = "checkpoint.pt"
DERIVATION_FILE = "derivation.json"

RUN_FILES = (CHECKPOINT, "metrics.jsonl", "latencies.jsonl", "config.json", "arch.json", "summary.json")
"""Files whose presence means a folder already holds a search run."""


def check_run_dir(path: str | Path, *, resume: bool) -> bool:
    """Before any work: refuse a rerun over an earlier search without --resume (it would delete
    its metrics, timings and checkpoint), and --resume where there is nothing to resume.
    Returns True when `resume` asks for a run that already finished (summary.json written)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} is a file; give a run folder")
    found = [name for name in RUN_FILES if (path / name).exists()]
    if resume:
        if (path / "summary.json").exists():
            return True
        if "checkpoint.pt" not in found:
            raise UsageError(f"{path} holds no search checkpoint to resume (no checkpoint.pt); drop --resume to start a new search")
        return False
    if "checkpoint.pt" in found and not (path / "summary.json").exists():
        raise UsageError(f"{path} holds a stopped search (checkpoint.pt); pass --resume to continue it, "
                         "or choose another --out")
    if found:
        raise UsageError(f"{path} already holds a search run ({', '.join(found)}); choose another --out, or delete "
                         "that folder to start over")
    return False


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
        (written after the checkpoint; the resumed run writes them again), and a line torn by a kill."""
        if not self.enabled:
            return
        keep_lines(self.metrics_path, lambda i, r: isinstance(r.get("step"), int) and r["step"] < step, UsageError)
        keep_lines(self.latencies_path, lambda i, r: i < measured, UsageError)

    def write_json(self, name: str, document: dict[str, Any]) -> Path:
        target = self.path / name
        if self.enabled:
            write_json_atomic(target, document)
        return target

    def append_metrics(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        append_jsonl(self.metrics_path, [record], sync=False, allow_nan=True)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The metrics.jsonl of a run, one dict per step (a line torn by a kill is left out)."""
    return [record for _, record in read_jsonl(Path(run_dir) / "metrics.jsonl", UsageError, what="metrics file").records]
