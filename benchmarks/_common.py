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
(`hwnas.run.default_space`, defined there once). `cluttered`: cluttered MNIST on a 36x36
canvas, proxyless with small widths and depths and its stem at stride 2 (a 36 px canvas costs about what
14x14 MNIST costs with the small-input stem at stride 1), the DARTS edge space at C=4, 5 cells.
`mnist14`: the old default run (MNIST at 14x14)."""


def bench_config(task: str, space: str, **changes: Any) -> Any:
    """The `SearchConfig` of one benchmark task in one space (no progress bars)."""
    from hwnas.search import SearchConfig  # noqa: PLC0415
    from hwnas.run import default_space  # noqa: PLC0415

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
    from hwnas.run import prepare  # noqa: PLC0415

    return prepare(searched_config(folder).replace(progress=False), profile_root=profile_root)


def final_supernet(setup: Any, folder: Path) -> torch.nn.Module:
    """The final supernet of one finished search, built with that search's sharing and BatchNorm modes."""
    from hwnas.checkpoint import load_checkpoint  # noqa: PLC0415
    from hwnas.run import CHECKPOINT  # noqa: PLC0415

    supernet = searched_config(folder).supernet
    net = setup.space.supernet(weight_sharing=supernet.weight_sharing, batchnorm=supernet.batchnorm)
    net.load_state_dict(load_checkpoint(folder / CHECKPOINT)["objects"]["supernet"])
    return net.eval()


# --- Committed results: every benchmark's record under benchmarks/results, and `--report-only` -------------

RESULTS = Path(__file__).resolve().parent / "results"
"""Committed result files: `benchmarks/results/<benchmark>/<run>.json`. Small (summaries and per-network rows),
so that every table in BENCHMARKS.md can be printed again from a fresh clone by the script's `--report-only`."""

REPOSITORY = Path(__file__).resolve().parent.parent


def result_file(benchmark: str, run: str) -> Path:
    """Where `benchmark`'s run named `run` is recorded (relative to the working directory when it is inside it,
    so the command line a result file records reads the same on every clone)."""
    path = RESULTS / benchmark / f"{run}.json"
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _git(*arguments: str) -> str | None:
    import subprocess  # noqa: PLC0415

    try:
        done = subprocess.run(["git", *arguments], cwd=REPOSITORY, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def provenance(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """What a result file must say about how it was made: the command line, the git commit (and whether the
    working tree had uncommitted changes to code then), and the machine (its date and 1-minute load average inside)."""
    import shlex  # noqa: PLC0415
    import sys  # noqa: PLC0415

    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(REPOSITORY)
    except ValueError:
        pass
    arguments = list(sys.argv[1:] if argv is None else argv)
    # Result files are data, not code: writing them does not make the commit's code uncommitted.
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results")
    return {"command": shlex.join(["python", str(script), *arguments]), "git_commit": _git("rev-parse", "HEAD"),
            "git_dirty": None if status is None else bool(status), "machine": machine()}


def add_result_options(parser: Any, benchmark: str, default_run: str) -> None:
    """`--json` and `--report-only`, the same in every script. `default_run` names the default file, e.g.
    "quick" or "<task>-<space>" (a script may give it placeholders it fills from its arguments, see `json_path`)."""
    parser.add_argument("--json", type=Path, default=None,
                        help=f"result file (default: {result_file(benchmark, default_run)})")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: print every table again from the --json file")


def json_path(args: Any, benchmark: str, run: str) -> Path:
    """The --json file given, else `benchmarks/results/<benchmark>/<run>.json`."""
    return Path(args.json) if args.json is not None else result_file(benchmark, run)


def table(document: dict[str, Any], title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table and record it in `document["tables"]` exactly as printed (its cells as text), so
    `--report-only` prints the same table from the result file."""
    print_table(title, columns, rows)
    document.setdefault("tables", []).append(
        {"title": title, "columns": [str(c) for c in columns], "rows": [[_cell(value) for value in row] for row in rows]})


def read_result(path: str | Path) -> dict[str, Any]:
    """A result file's document; a missing or unreadable file is the user's mistake, in one line."""
    from hwnas.errors import UsageError  # noqa: PLC0415

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no result file {path}; give --json a file under {result_file('<benchmark>', '<run>').parent.parent}"
                         " or run the benchmark without --report-only first")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{path} is not a readable result file ({error}); restore it with git or run the benchmark again") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path} is not a result file (a JSON object); restore it with git or run the benchmark again")
    return document


def print_provenance(document: dict[str, Any]) -> None:
    """The header of a report: the command, commit, date, machine and load a result file was made with."""
    made = document.get("provenance") or {}
    start = made.get("machine") or document.get("machine") or {}
    end = document.get("machine_at_end") or {}
    load = [f"{m['load_average_1min']:.2f}" for m in (start, end) if isinstance(m.get("load_average_1min"), float | int)]
    print(f"command: {made.get('command', '(not recorded)')}")
    commit = made.get("git_commit") or "(not recorded)"
    print(f"commit: {commit}{' (with uncommitted changes)' if made.get('git_dirty') else ''}")
    print(f"date: {start.get('date', '?')}; machine: {start.get('cpu', '?')}"
          f"{', ' + start['gpu'] if start.get('gpu') else ''}, {start.get('cores', '?')} cores; "
          f"1-min load average {' -> '.join(load) or '?'}"
          + (f"; {document['seconds']:.0f} s" if isinstance(document.get("seconds"), float | int) else ""))


def print_recorded_tables(document: dict[str, Any]) -> None:
    for recorded in document.get("tables", []):
        print_table(recorded["title"], recorded["columns"], recorded["rows"])


def _or_error(opening: Any) -> Any:
    """`opening()`, or None after printing its `UsageError` in one line on stderr (the caller exits 2)."""
    import sys  # noqa: PLC0415

    from hwnas.errors import UsageError  # noqa: PLC0415

    try:
        return opening()
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def document_or_error(path: str | Path) -> dict[str, Any] | None:
    """A result file's document for `--report-only`, or None after a one-line error."""
    return _or_error(lambda: read_result(path))


def results_or_error(path: str | Path, identity: dict[str, Any] | None = None) -> ResultsFile | None:
    """The `ResultsFile` of a run with `identity`, or as it was written (`--report-only`: identity None); None after
    a one-line error (a missing or unreadable file, or one made with other settings)."""
    return _or_error(lambda: stored_results(path) if identity is None else ResultsFile(path, identity))


def record_run(results: ResultsFile, argv: Sequence[str] | None) -> None:
    """Note in a resumable results file that a run starts: the machine under its start time, and the provenance."""
    import time  # noqa: PLC0415

    results.put(machine(), "machines", time.strftime("%Y-%m-%dT%H:%M:%S"))
    results.put(provenance(argv), "provenance")


def task_data(task: str, space: str) -> tuple[Any, Any]:
    """(data, search space) of one benchmark task, as `hwnas search` builds them (seed 0 split)."""
    from hwnas.datasets import load_data  # noqa: PLC0415
    from hwnas.run import space_for_data  # noqa: PLC0415

    config = bench_config(task, space)
    data = load_data(config.data.dataset, seed=0, val_fraction=config.data.val_fraction,
                     test_fraction=config.data.test_fraction, image_size=config.data.image_size)
    return data, space_for_data(config, data)


def report_only(path: str | Path) -> int:
    """`--report-only` of a script whose tables are recorded with `table`: print them again from the file."""
    document = document_or_error(path)
    if document is None:
        return 2
    print_provenance(document)
    print_recorded_tables(document)
    for line in document.get("notes", []):
        print(line)
    return 0


def stored_results(path: str | Path) -> ResultsFile:
    """A `ResultsFile` as it was written, for `--report-only`: whatever settings made it (its own identity)."""
    return ResultsFile(path, read_result(path).get("identity", {}))
