"""The mutation tool (tools/mutation, issue #31) makes the edits it claims, and only those:
every mutant of every target parses and differs from the original in one span; docstrings,
annotations, raise messages and `# pragma: no mutate` lines are left alone."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from tools.mutation.operators import mutants

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hwnas"]["mutation"]
MODULES = sorted({module for target in CONFIG["targets"].values() for module in target["modules"]})

TOY = '''"""Docstring 1 + 2."""
def f(x: int = 3) -> float:
    """Also not mutated: 1 < 2."""
    if x < 0 or not x:
        raise ValueError(f"x is {x + 1}")
    total = min(x, 10) * 2.5
    total += 1
    print(total)
    keep = x - 1  # pragma: no mutate
    return -total if x == 4 else total
'''


def test_toy_source_gives_exactly_the_classic_edits() -> None:
    edits = {(m.line, m.original, m.replacement) for m in mutants("toy.py", TOY)}
    assert edits == {
        (2, "3", "4"),
        (4, "x < 0 or not x", "(x < 0 and (not x))"),
        (4, "x < 0", "(x <= 0)"),
        (4, "0", "1"),
        (4, "not x", "x"),
        (6, "min(x, 10) * 2.5", "(min(x, 10) / 2.5)"),
        (6, "min", "max"),
        (6, "10", "11"),
        (6, "2.5", "3.5"),
        (7, "total += 1", "total -= 1"),
        (7, "total += 1", "pass"),
        (7, "1", "2"),
        (8, "print(total)", "pass"),
        (10, "-total", "total"),
        (10, "x == 4", "(x != 4)"),
        (10, "4", "5"),
    }


@pytest.mark.parametrize("module", MODULES)
def test_every_mutant_of_every_target_parses_and_changes_one_span(module: str) -> None:
    source = (ROOT / module).read_text()
    found = mutants(module, source)
    assert found, f"{module} has no mutants"
    assert len({m.key for m in found}) == len(found), "mutant keys must be unique"
    original = ast.dump(ast.parse(source))
    for mutant in found:
        mutated = mutant.apply(source)
        assert ast.dump(ast.parse(mutated)) != original, mutant.diff()
        assert mutated.count("\n") == source.count("\n") or mutant.line != mutant.end_line


def test_every_target_names_existing_modules_and_tests() -> None:
    for name, target in CONFIG["targets"].items():
        for path in [*target["modules"], *target["tests"]]:
            assert (ROOT / path).is_file(), f"target {name}: {path} does not exist"
