"""The BENCHMARKS.md tables of a mutation result: `python -m tools.mutation.summary RESULT.json`.

The first table has one row per target; the second one row per module of each target whose run
recorded its mutants per module (a target of several modules has one rate per module too).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TIMEOUT = "(timeout)"
OLD_TESTS = "(main's test files)"  # tools.mutation.__main__._per_module: main's files' kills, not split per file


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ratio(killed: int, judged: int) -> float | None:
    return round(killed / judged, 4) if judged else None


def table(result: dict) -> str:
    lines = [
        "| target | modules | mutants (run) | killed | equivalent | CUDA-only | survived (never executed here) "
        "| rate before | rate after |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, target in result["targets"].items():
        modules = ", ".join(f"`{m}`" for m in target["modules"])
        run = f"{target['mutants_total']}"
        if "modules_run" in target:
            run += f" ({target['mutants_run']} run: {len(target['modules_run'])} of {len(target['modules'])} modules)"
        elif target["sampled"]:
            run += f" ({target['mutants_run']} sampled)"
        before = target.get("old_tests", {}).get("rate")
        lines.append(f"| {name} | {modules} | {run} | {target['killed']} | {target['equivalent']} | {target.get('cuda_only', 0)} | "
                     f"{target['survived']} ({target['uncovered']}) | {_rate(before)} | {_rate(target['rate'])} |")
    return "\n".join(lines)


def _path(entry: dict) -> str:
    """The module of a listed mutant: its diff starts with `path:line`."""
    return entry["diff"].split(":", 1)[0]


def module_rows(target: dict) -> list[dict]:
    """Per module of a target run with per-module counts: mutants, killed, equivalent, CUDA-only,
    survived, rate after and (with --old-tests-from) rate before, the rates as in the target row."""
    rows = []
    old_tests = target.get("old_tests", {})
    for module, run in target.get("mutants_by_module", {}).items():
        old = set(old_tests.get("files_by_module", {}).get(module, old_tests.get("files", ())))
        equivalent = sum(_path(e) == module for e in target["equivalents"])
        cuda_only = sum(_path(e) == module for e in target.get("cuda_only_mutants", []))
        survived = sum(_path(e) == module for e in target["survivors"])
        judged = run - equivalent - cuda_only
        killers = target.get("killed_by_module", {}).get(module, {})
        row = {"module": module, "mutants": run, "killed": judged - survived, "equivalent": equivalent,
               "cuda_only": cuda_only, "survived": survived, "rate": _ratio(judged - survived, judged), "before": None}
        if "old_tests" in target:
            row["before"] = _ratio(sum(n for file, n in killers.items() if file in old or file in (TIMEOUT, OLD_TESTS)), judged)
        rows.append(row)
    return rows


def module_table(result: dict) -> str:
    lines = ["| target | module | mutants run | killed | equivalent | CUDA-only | survived | rate before | rate after |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, target in result["targets"].items():
        for row in module_rows(target):
            lines.append(f"| {name} | `{row['module']}` | {row['mutants']} | {row['killed']} | {row['equivalent']} | "
                         f"{row['cuda_only']} | {row['survived']} | {_rate(row['before'])} | {_rate(row['rate'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    loaded = json.loads(Path(sys.argv[1]).read_text())
    print(table(loaded))
    if any("mutants_by_module" in target for target in loaded["targets"].values()):
        print()
        print(module_table(loaded))
