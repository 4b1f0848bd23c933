"""A rich progress bar for the search with ETA and the numbers that tell whether it works:
expected latency E_p[g(b)], the last sampled architecture's measured latency, losses, accuracy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class SearchProgress:
    """One task per phase; `update(**fields)` refreshes the status text after each step."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None

    def phase(self, description: str, total: int) -> None:
        """Start a new bar (warm-up, then search), each with its own ETA."""
        self._task = self._progress.add_task(description, total=total, status="")

    def advance(self, status: str) -> None:
        self._progress.update(self._task, advance=1, status=status)


def status_line(record: dict[str, Any], target_ms: float | None) -> str:
    """e.g. 'E[lat] 1.92 ms  b 2.10 ms  target 2.00  loss 0.41/0.52  acc 0.88'."""
    parts = []
    if record.get("expected_latency_ms") is not None:
        parts.append(f"E[lat] {record['expected_latency_ms']:.3g} ms")
    if record.get("sampled_latency_ms") is not None:
        parts.append(f"b {record['sampled_latency_ms']:.3g} ms")
    if target_ms is not None:
        parts.append(f"target {target_ms:.3g}")
    if record.get("val_loss") is not None:
        parts.append(f"loss {record['train_loss']:.3f}/{record['val_loss']:.3f}")
    else:
        parts.append(f"loss {record['train_loss']:.3f}")
    acc = record.get("val_acc", record.get("train_acc"))
    if acc is not None:
        parts.append(f"acc {acc:.2f}")
    return "  ".join(parts)


@contextmanager
def search_progress(enabled: bool) -> Iterator[SearchProgress]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=True),
        disable=not enabled,
    )
    with progress:
        yield SearchProgress(progress)
