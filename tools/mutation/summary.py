"""The BENCHMARKS.md table of a mutation result: `python -m tools.mutation.summary RESULT.json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def table(result: dict) -> str:
    lines = [
        "| target | modules | mutants (run) | killed | equivalent | CUDA-only | survived (never executed here) "
        "| rate before | rate after |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, target in result["targets"].items():
        modules = ", ".join(f"`{m}`" for m in target["modules"])
        run = f"{target['mutants_total']}" + (f" ({target['mutants_run']} sampled)" if target["sampled"] else "")
        before = target.get("old_tests", {}).get("rate")
        lines.append(f"| {name} | {modules} | {run} | {target['killed']} | {target['equivalent']} | {target.get('cuda_only', 0)} | "
                     f"{target['survived']} ({target['uncovered']}) | {_rate(before)} | {_rate(target['rate'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1]).read_text())))
