"""Committed evidence (#29): every result file under benchmarks/results is printed again by its script's
`--report-only`, from the file alone, and says how it was made (command, commit, machine, load, date).

A script's recorded tables (`_common.table`) must come back exactly as they were printed; a script whose
report is computed from its stored data (search_vs_random, supernet_training, ...) must print at least one
table from it. A benchmark without a committed file must be named in `NO_COMMITTED_RESULT` with the reason,
and the list may not go stale: a file committed for one of them fails the test until it leaves the list.
"""

from __future__ import annotations

import contextlib
import re
import io
import json
from pathlib import Path

import pytest

from benchmark_scripts import BENCHMARKS, load_benchmark
from test_docs_links import slug

RESULTS = BENCHMARKS / "results"
SCRIPTS = sorted(path.stem for path in BENCHMARKS.glob("*.py") if not path.stem.startswith("_"))

NO_COMMITTED_RESULT: dict[str, str] = {
    "arch_gradient_snr": "a warm-up search first: minutes of CPU",
    "latency_targets": "three searches and a device profile",
    "search_step_cost": "searches with a latency worker and a device profile",
    "skip_signal": "needs search_vs_random's trained networks and finished searches",
    "task_separation": "a device profile and ~30 trained networks per task",
}
"""Benchmarks with no committed result yet (each needs more than a minute of CPU even at its smallest),
and why. BENCHMARKS.md says so on their rows."""


OTHER_TOOLS: dict[str, str] = {
    "mutation": "tools/mutation: `python -m tools.mutation.summary FILE` prints its table (tested below)",
}
"""Result folders written by a tool that is not a benchmark script, and what rebuilds their table."""


def _committed() -> list[Path]:
    return sorted(path for path in RESULTS.glob("*/*.json") if path.parent.name not in OTHER_TOOLS)


def test_the_mutation_summary_rebuilds_the_rates_benchmarks_md_gives() -> None:
    from tools.mutation.summary import module_table, table  # noqa: PLC0415

    document = json.loads((RESULTS / "mutation" / "2026-12-07.json").read_text(encoding="utf-8"))
    printed = table(document) + "\n" + module_table(document)  # per target, and per module where recorded
    row = next(line for line in (REPOSITORY / "BENCHMARKS.md").read_text(encoding="utf-8").splitlines()
               if 'id="mutation"' in line)
    rates = row.split(" | ")[1]
    for value in re.findall(r"\d+", rates):
        assert f"| {value}% |" in printed, value


def test_every_benchmark_has_a_committed_result_or_says_why_not() -> None:
    with_files = {path.parent.name for path in _committed()}
    assert with_files <= set(SCRIPTS), f"result folders without a script: {sorted(with_files - set(SCRIPTS))}"
    assert set(NO_COMMITTED_RESULT) <= set(SCRIPTS)
    stale = sorted(with_files & set(NO_COMMITTED_RESULT))
    assert not stale, f"{stale} have committed results now: take them out of NO_COMMITTED_RESULT"
    missing = sorted(set(SCRIPTS) - with_files - set(NO_COMMITTED_RESULT))
    assert not missing, f"{missing} have no committed result and no reason in NO_COMMITTED_RESULT"


def _rendered(recorded: dict) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        load_benchmark("_common").print_table(recorded["title"], recorded["columns"], recorded["rows"])
    return out.getvalue()


@pytest.mark.parametrize("path", _committed(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_report_only_prints_every_table_again_from_the_committed_file(path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    made = document.get("provenance") or {}
    assert made.get("command", "").startswith(f"python benchmarks/{path.parent.name}.py"), made.get("command")
    assert made.get("git_commit") and len(made["git_commit"]) == 40
    machine = made.get("machine") or {}
    assert {"date", "cpu", "cores", "load_average_1min"} <= set(machine), sorted(machine)

    code = load_benchmark(path.parent.name).main(["--report-only", "--json", str(path)])
    printed = capsys.readouterr().out
    assert code == 0
    assert f"command: {made['command']}" in printed and machine["date"] in printed
    recorded = document.get("tables", [])
    for table in recorded:
        assert _rendered(table) in printed, table["title"]
    if not recorded:  # a report computed from the stored data: at least one table with rows
        lines = [line for line in printed.splitlines() if line.startswith("| ")]
        assert len(lines) >= 2, printed


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_has_report_only_and_a_missing_file_is_one_line_and_exit_2(name: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert load_benchmark(name).main(["--report-only", "--json", str(tmp_path / "none.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: no result file") and "\n" not in error


REPOSITORY = BENCHMARKS.parent
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def _rows(section: str) -> list[list[str]]:
    """The table rows (cells) of one `## ` section of BENCHMARKS.md, header and rule left out."""
    text = (REPOSITORY / "BENCHMARKS.md").read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in body.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[1:]]


def _claims_with_files() -> list[tuple[str, str, Path]]:
    rows = []
    for claim, number, script, result, _ in _rows("Results with a committed file"):
        name = re.search(r"`(\w+)\.py", script).group(1)
        link = re.search(r"\]\((benchmarks/results/[^)]+\.json)\)", result).group(1)
        rows.append((re.search(r'id="([^"]+)"', claim).group(1), number, name, REPOSITORY / link))
    return rows


@pytest.mark.parametrize(("anchor", "number", "name", "path"), _claims_with_files(), ids=lambda v: str(v)[:30])
def test_every_number_in_benchmarks_md_is_printed_by_its_rows_report(anchor: str, number: str, name: str, path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert path.is_file(), f"{anchor}: {path} is not committed"
    assert load_benchmark(name).main(["--report-only", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    numbers = NUMBER.findall(number)
    assert numbers, f"{anchor}: no number in {number!r}"
    for value in numbers:
        assert value.lstrip("+") in printed, f"{anchor}: {value} is not in the report of {path.name}"


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file, and its explicit `<a id=...>` anchors."""
    found: set[str] = set(re.findall(r'<a id="([^"]+)"></a>', path.read_text(encoding="utf-8")))
    seen: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^#+\s+(.*)", line)
        if heading:
            anchor = slug(heading.group(1))
            found.add(anchor if anchor not in seen else f"{anchor}-{seen[anchor]}")
            seen[anchor] = seen.get(anchor, 0) + 1
    return found


@pytest.mark.parametrize("source", ["BENCHMARKS.md", "README.md", "docs/usage.md", "docs/measured.md"])
def test_every_link_to_a_benchmarks_row_or_a_log_section_resolves(source: str) -> None:
    """Links with an anchor to BENCHMARKS.md, the log or the page itself name an anchor that exists."""
    page = REPOSITORY / source
    checked = {REPOSITORY / "BENCHMARKS.md", REPOSITORY / "docs" / "benchmark-log.md", page}
    broken = []
    for file, anchor in re.findall(r"\]\(([^)#\s]*?)#([\w\-]+)\)", page.read_text(encoding="utf-8")):
        target = (page.parent / file).resolve() if file else page
        if target in checked and anchor not in _anchors(target):
            broken.append(f"{file}#{anchor}")
    assert not broken, f"{source} links to anchors that do not exist: {broken}"
