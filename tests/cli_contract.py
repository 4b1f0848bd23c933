"""The bad-input contract every command keeps, as one helper the tests share (issue #13).

A refused command exits 2, prints at most 3 lines (one error line, possibly a
warning before it), never a traceback, and leaves every file that existed
before it byte for byte as it was (and writes no new ones where it was told
not to).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from hwnas.cli import main

MAX_LINES = 3


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under `roots` (hidden ones included), by path."""
    files: dict[str, str] = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for path in paths:
            files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def run_cli(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `hwnas ARGV` run in this process, argparse exits included."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(argv: Sequence[str], capsys: pytest.CaptureFixture[str], *, keep: Sequence[Path] = (),
            absent: Sequence[Path] = ()) -> str:
    """Run `hwnas ARGV`, assert the contract, return the error line.

    `keep`: files or folders whose contents must be unchanged; `absent`: paths that must not exist after."""
    before = snapshot(*keep)
    code, out, err = run_cli(argv, capsys)
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert code == 2, (code, lines)
    assert 1 <= len(lines) <= MAX_LINES, lines
    assert not any("Traceback" in line for line in lines), lines
    assert snapshot(*keep) == before, "a refused command changed files that existed before it"
    for path in absent:
        assert not path.exists(), f"a refused command wrote {path}"
    return [line for line in lines if "error:" in line][-1]


def non_finite_numbers(*roots: Path) -> list[str]:
    """Every NaN / Infinity (a JSON token or a number that overflows to inf) in every .json and
    .jsonl file under `roots`, as 'file: path/to/field'; hwnas must never write one (issue #30)."""
    found: list[str] = []

    def walk(value: object, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}/{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}/{index}")
        elif isinstance(value, float) and not math.isfinite(value):
            found.append(where)

    for root in roots:
        for path in sorted(root.rglob("*.json")) + sorted(root.rglob("*.jsonl")):
            texts = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
            for number, text in enumerate(texts, 1):
                if text.strip():
                    walk(json.loads(text), f"{path.name}:{number}")
    return found
