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

from search_spaces import files


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
    """Write `document` atomically (`search_spaces.files.write_json`) and say where."""
    print(f"\nwrote {files.write_json(path, document)}")


def finish(document: dict[str, Any], path: str | Path, started: float) -> int:
    """End a benchmark run: its total time and the machine (load average) at the end, printed and written."""
    import time  # noqa: PLC0415

    document["seconds"] = time.perf_counter() - started
    document["machine_at_end"] = machine()
    print(f"\ntotal {document['seconds']:.0f} s; load average at the end {document['machine_at_end']['load_average_1min']:.2f}")
    write_json(path, document)
    return 0


class ResultsFile:
    """A benchmark's partial results, saved atomically after every unit of work, so a crash or a
    Ctrl-C loses at most the unit in progress; re-running the same command continues.

    `identity` holds the settings the results depend on: a file made with other settings is refused
    (one line, exit 2 through `UsageError`) instead of being mixed with new results."""

    def __init__(self, path: str | Path, identity: dict[str, Any]) -> None:
        from hwnas.errors import UsageError  # noqa: PLC0415

        self.path = Path(path)
        identity = json.loads(json.dumps(identity))
        if self.path.is_file():
            self.doc: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            if self.doc.get("identity") != identity:
                old = self.doc.get("identity", {})
                changed = sorted(k for k in set(identity) | set(old) if old.get(k) != identity.get(k))
                raise UsageError(f"{self.path} holds results made with other settings ({', '.join(changed)} differ); "
                                 "give another --json path or delete that file")
        else:
            self.doc = {"identity": identity}

    def get(self, *keys: str) -> Any:
        node: Any = self.doc
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def put(self, value: Any, *keys: str) -> None:
        """Set doc[k1][k2]... = value and save. The file is re-read under a lock first, so two
        processes filling different keys of one file (standalone runs, a supernet) lose nothing."""
        from hwnas.errors import UsageError  # noqa: PLC0415

        with files.run_lock(self.path.parent, UsageError, name=f".{self.path.name}.lock", wait=True):
            if self.path.is_file():
                self.doc = json.loads(self.path.read_text(encoding="utf-8"))
            node = self.doc
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = json.loads(json.dumps(value))
            self.save()

    def save(self) -> None:
        files.write_json(self.path, self.doc)


def latency_strata(predicted: Sequence[float], count: int) -> list[int]:
    """Indices of `count` items spread evenly over the range of `predicted` (ms): the item nearest to
    each of `count` evenly spaced quantiles, no index twice. For choosing architectures across the
    latency range by the profile's linear model."""
    order = sorted(range(len(predicted)), key=lambda i: predicted[i])
    if count > len(order):
        raise ValueError(f"cannot pick {count} of {len(order)} items")
    positions = [round(k * (len(order) - 1) / max(count - 1, 1)) for k in range(count)]
    return [order[p] for p in positions]


def within_of(predicted: Sequence[float], reference: float, tolerance: float) -> list[int]:
    """Indices whose value lies within +-`tolerance` (relative) of `reference`."""
    return [i for i, value in enumerate(predicted) if abs(value / reference - 1.0) <= tolerance]


TASKS: dict[str, str] = {"cluttered": "cluttered_mnist", "mnist14": "mnist"}
"""The benchmarks' tasks: each is a bundled data set with the default run's spaces and image size for it
(`hwnas.search.pipeline.default_space`, defined there once). `cluttered`: cluttered MNIST on a 36x36
canvas, proxyless with small widths and depths and its stem at stride 2 (a 36 px canvas costs about what
14x14 MNIST costs with the small-input stem at stride 1), the DARTS edge space at C=4, 5 cells.
`mnist14`: the old default run (MNIST at 14x14)."""


def bench_config(task: str, space: str, **changes: Any) -> Any:
    """The `SearchConfig` of one benchmark task in one space (no progress bars)."""
    from hwnas.search import SearchConfig  # noqa: PLC0415
    from hwnas.search.pipeline import default_space  # noqa: PLC0415

    space_config, image_size = default_space(TASKS[task], space)
    return SearchConfig.from_flat(space=space, dataset=TASKS[task], image_size=image_size, space_config=space_config,
                                  progress=False, **changes)


def searched_config(folder: Path) -> Any:
    """The `SearchConfig` a finished search ran with (its config.json: the nested form, or the flat one of
    searches run before the nesting)."""
    from hwnas.search import SearchConfig  # noqa: PLC0415

    return SearchConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8"))["search"])


def search_setup(folder: Path, profile_root: str) -> Any:
    """`prepare` of the `SearchConfig` a finished search ran with (its `config.json`), without progress bars."""
    from hwnas.search.pipeline import prepare  # noqa: PLC0415

    return prepare(searched_config(folder).replace(progress=False), profile_root=profile_root)


def final_supernet(setup: Any, folder: Path) -> torch.nn.Module:
    """The final supernet of one finished search, built with that search's sharing and BatchNorm modes."""
    from hwnas.checkpoint import load_checkpoint  # noqa: PLC0415
    from hwnas.search.checkpoint import CHECKPOINT  # noqa: PLC0415

    supernet = searched_config(folder).supernet
    net = setup.space.supernet(weight_sharing=supernet.weight_sharing, batchnorm=supernet.batchnorm)
    net.load_state_dict(load_checkpoint(folder / CHECKPOINT)["objects"]["supernet"])
    return net.eval()
