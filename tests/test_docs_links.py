"""Every link into docs/design.md names a section that exists, and no file points at a design
document the repository does not hold.

Code, tests and benchmarks cite the design by anchor (`docs/design.md#5-measuring-latency`); a
renamed heading would leave them pointing nowhere without anyone noticing, so the anchors are
checked here against the headings, slugged as GitHub slugs them.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "design.md"
SOURCES = ("hwnas", "profilers", "lut", "search_spaces", "benchmarks", "tests", "docs")
TOP_FILES = ("README.md", "BENCHMARKS.md", "Makefile", "pyproject.toml")
SUFFIXES = {".py", ".md", ".json", ".toml"}
DESIGN_LINK = re.compile(r"design\.md#([A-Za-z0-9_-]+)")
LOCAL_LINK = re.compile(r"\]\(#([A-Za-z0-9_-]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def design_anchors() -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", DESIGN.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {slug(h) for h in headings}


def repository_texts() -> dict[Path, str]:
    files = [ROOT / name for name in TOP_FILES if (ROOT / name).exists()]
    for folder in SOURCES:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    return {p: p.read_text(encoding="utf-8", errors="replace") for p in files}


def test_slug_follows_github() -> None:
    assert slug("4.3 REINFORCE, REBAR and RELAX") == "43-reinforce-rebar-and-relax"
    assert slug("6. Search spaces and the `published` numbers") == "6-search-spaces-and-the-published-numbers"


def test_every_design_anchor_cited_anywhere_exists() -> None:
    anchors = design_anchors()
    broken = []
    for path, text in repository_texts().items():
        cited = DESIGN_LINK.findall(text)
        if path == DESIGN:
            cited += LOCAL_LINK.findall(text)
        broken += [f"{path.relative_to(ROOT)}: #{a}" for a in cited if a not in anchors]
    assert not broken, "links to sections docs/design.md does not have:\n" + "\n".join(broken)


def test_design_anchors_are_cited_by_the_code() -> None:
    """The point of the anchors: the code cites them (a guard against this test passing vacuously)."""
    code = "".join(t for p, t in repository_texts().items() if p.suffix == ".py")
    assert len(set(DESIGN_LINK.findall(code))) >= 10


def test_no_reference_to_a_design_file_the_repository_lacks() -> None:
    pattern = re.compile(r"[\w./-]*\bDESIGN\.md\b")
    missing = []
    for path, text in repository_texts().items():
        for name in pattern.findall(text):
            candidates = [ROOT / name, path.parent / name]
            if not any(c.exists() for c in candidates):
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, "references to a design file that is not in the repository:\n" + "\n".join(missing)
