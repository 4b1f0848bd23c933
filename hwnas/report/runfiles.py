"""What a search run directory holds, read once for the report (format: `hwnas.run.rundir`).

Fields the plots use, per metrics.jsonl line: ``step``, ``phase``
("warm-up" / "search"), ``probabilities`` ({decision: {choice: p}}, the
distribution after the step), ``expected_latency_ms``, ``sampled_latency_ms``,
``predicted_latency_ms``, ``sampled`` ({decision: choice}), ``val_acc``,
``train_loss``, ``val_loss``. A plot whose fields are absent is skipped and
the report says which field it needed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.errors import UsageError
from hwnas.search.config import flat_settings
from search_spaces.files import read_json


def _json(path: Path) -> dict[str, Any]:
    return read_json(path, UsageError, what="run file") if path.exists() else {}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class RunFiles:
    """metrics, the derived architecture document, config.json, latencies.jsonl and standing.json
    (the derived network among the profile's random networks, `hwnas.run.standing`) of one run."""

    path: Path
    metrics: list[dict[str, Any]]
    arch: dict[str, Any]
    config: dict[str, Any]
    latencies: list[dict[str, Any]] = field(default_factory=list)
    standing: dict[str, Any] = field(default_factory=dict)

    @property
    def search(self) -> dict[str, Any]:
        """The search settings (config.json "search") in their one-level names, whichever form the file
        holds (nested since the config has sections), or {}."""
        return flat_settings(self.config.get("search", {}))

    @property
    def target_ms(self) -> float | None:
        summary = self.arch.get("search", {})
        value = summary.get("target_ms", self.search.get("latency_target_ms"))
        return None if value is None else float(value)

    def series(self, key: str) -> tuple[list[int], list[Any]]:
        """(steps, values) of the lines that have `key`."""
        rows = [(int(r["step"]), r[key]) for r in self.metrics if r.get(key) is not None and "step" in r]
        return [s for s, _ in rows], [v for _, v in rows]


def read_run(path: str | Path) -> RunFiles:
    """Read a run directory; refuses (one line) a folder with neither metrics.jsonl nor arch.json."""
    run = Path(path)
    metrics, arch = _jsonl(run / "metrics.jsonl"), _json(run / "arch.json")
    if not metrics and not arch:
        raise UsageError(f"{run} is not a search run directory: it has neither metrics.jsonl nor arch.json")
    return RunFiles(run, metrics, arch, _json(run / "config.json"), _jsonl(run / "latencies.jsonl"), _json(run / "standing.json"))


SUPERNET_TAIL = 0.2
"""The supernet's search-val accuracy is judged over the last 20% of the architecture steps (issue #12)."""


def search_val_accuracy(metrics: list[dict[str, Any]]) -> list[float]:
    """The supernet's search-val batch accuracy at each architecture step, in order."""
    return [float(r["val_acc"]) for r in metrics if r.get("phase") == "search" and r.get("val_acc") is not None]


def tail_mean(values: list[float], fraction: float = SUPERNET_TAIL) -> float | None:
    """Mean of the last `fraction` of `values` (at least one value); None when there are none."""
    if not values:
        return None
    tail = values[-max(1, math.ceil(fraction * len(values))):]
    return sum(tail) / len(tail)


def binned(values: list[float], parts: int = 10) -> list[float]:
    """`values` averaged over `parts` consecutive, near-equal slices (fewer when there are fewer values)."""
    parts = min(parts, len(values))
    edges = [round(i * len(values) / parts) for i in range(parts + 1)]
    return [sum(values[a:b]) / (b - a) for a, b in zip(edges, edges[1:], strict=False) if b > a]
