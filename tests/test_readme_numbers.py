"""The README's measured numbers are BENCHMARKS.md's (#29): in every README table row, bullet or paragraph
that links to a BENCHMARKS.md row, each decimal number (and each number with thousands commas) appears in the
rows it links to, so a number edited on one side only, or quoted without its row, fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\(BENCHMARKS\.md#([\w-]+)\)")
MEASURED = re.compile(r"\d+\.\d+|\d{1,3}(?:,\d{3})+")


def benchmark_rows() -> dict[str, str]:
    """BENCHMARKS.md's rows by their anchor: the row's whole text."""
    rows = {}
    for line in (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8").splitlines():
        anchor = re.search(r'<a id="([\w-]+)"></a>', line)
        if anchor and line.startswith("|"):
            rows[anchor.group(1)] = line
    return rows


def readme_units() -> list[str]:
    """The README's prose outside code blocks, as table rows, bullets and paragraphs."""
    text = re.sub(r"```.*?```", "", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    units = []
    for block in re.split(r"\n\s*\n", text):
        if block.lstrip().startswith("|"):
            units += block.strip().splitlines()
        else:
            units += [item for item in re.split(r"\n(?=- )", block) if item.strip()]
    return units


def linked_units() -> list[str]:
    return [unit for unit in readme_units() if LINK.search(unit)]


def test_the_readme_links_its_numbers_to_benchmarks_rows() -> None:
    assert len(linked_units()) >= 5


@pytest.mark.parametrize("unit", linked_units(), ids=lambda unit: unit[:40])
def test_each_linked_number_is_in_the_rows_it_links_to(unit: str) -> None:
    rows = benchmark_rows()
    anchors = LINK.findall(unit)
    missing_rows = [a for a in anchors if a not in rows]
    assert not missing_rows, f"links to BENCHMARKS.md rows that do not exist: {missing_rows}"
    evidence = " ".join(rows[a] for a in anchors)
    absent = [n for n in MEASURED.findall(LINK.sub("", unit)) if n not in evidence]
    assert not absent, f"{absent} are not in the linked rows {anchors}"
