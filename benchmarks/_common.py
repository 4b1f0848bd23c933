"""Helpers shared by the benchmark scripts: machine description, tables, JSON output."""

from __future__ import annotations

import datetime
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def machine() -> dict[str, Any]:
    """What a reader needs to judge a number: CPU/GPU, cores, library versions, date (UTC)."""
    from profilers._context import library_versions  # noqa: PLC0415
    from profilers._device import device_name  # noqa: PLC0415

    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": device_name(torch.device("cpu")),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_1min": os.getloadavg()[0],
        "versions": library_versions(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain-text table (pasteable into Markdown)."""
    cells = [[str(c) for c in columns]] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    print(f"\n{title}")
    print("| " + " | ".join(name.ljust(width) for name, width in zip(cells[0], widths, strict=True)) + " |")
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)) + " |")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def write_json(path: str | Path, document: dict[str, Any]) -> None:
    """Atomic JSON write (temp file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    print(f"\nwrote {path}")
