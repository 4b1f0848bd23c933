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


def _piece(module: str, run: int, killed: int, equivalent: int, survivors: int) -> dict:
    """A stored partial result of one module: t.py (on the old revision) kills all but one, new.py the last."""
    listed = lambda n: [{"key": f"{module}{i}", "diff": f"{module}:{i}\n- a\n+ b", "covered": True} for i in range(n)]  # noqa: E731
    return {"modules": ["m1.py", "m2.py"], "tests": ["t.py"], "mutants_total": 10, "mutants_run": run, "sampled": True,
            "killed": killed, "timeout": 0, "survived": survivors, "uncovered": 0, "equivalent": equivalent,
            "cuda_only": 0, "rate": round(killed / (run - equivalent), 4), "seconds": 1.0,
            "killed_by_file": {"t.py": killed - 1, "new.py": 1},
            "survivors": listed(survivors), "equivalents": listed(equivalent), "cuda_only_mutants": [],
            "mutants_by_module": {module: run}, "killed_by_module": {module: {"t.py": killed - 1, "new.py": 1}},
            "modules_run": [module],
            "old_tests": {"rev": "main", "files": ["t.py"], "killed": killed - 1, "rate": None}}


def test_pieces_of_a_target_add_up_to_the_whole_and_rates_per_module_follow() -> None:
    """A target run module by module (--module) gives the counts and rates of one run over both modules."""
    from tools.mutation.__main__ import _pieces, merge_partial  # noqa: PLC0415
    from tools.mutation.summary import module_rows  # noqa: PLC0415

    first, second = _piece("m1.py", 6, 4, 1, 1), _piece("m2.py", 4, 2, 0, 2)
    assert _pieces(first, second) and not _pieces(first, _piece("m1.py", 6, 5, 1, 0))
    whole = merge_partial(first, second)
    assert (whole["mutants_run"], whole["killed"], whole["equivalent"], whole["survived"]) == (10, 6, 1, 3)
    assert whole["rate"] == round(6 / 9, 4) and whole["old_tests"]["rate"] == round(4 / 9, 4)
    assert "modules_run" not in whole and not whole["sampled"]
    rows = {row["module"]: row for row in module_rows(whole)}
    assert (rows["m1.py"]["rate"], rows["m1.py"]["before"]) == (round(4 / 5, 4), round(3 / 5, 4))
    assert (rows["m2.py"]["rate"], rows["m2.py"]["before"]) == (round(2 / 4, 4), round(1 / 4, 4))


def test_a_module_added_to_a_target_is_merged_into_its_stored_whole_result() -> None:
    """lut/models.py joined latency-fit after lut/fit.py had run whole: `--module lut/models.py` merges into the
    stored result (it used to replace it) and the stored module keeps its rate before (main's files' kills)."""
    from tools.mutation.__main__ import OLD_TESTS, _pieces, merge_partial  # noqa: PLC0415
    from tools.mutation.summary import module_rows  # noqa: PLC0415

    stored = _piece("m1.py", 6, 4, 1, 1)
    stored["modules"] = ["m1.py"]  # the target then had one module, and the result predates the per-module fields
    for field in ("modules_run", "mutants_by_module", "killed_by_module"):
        del stored[field]
    added = _piece("m2.py", 4, 2, 0, 2)
    assert _pieces(stored, added) and not _pieces(stored, _piece("m1.py", 6, 5, 1, 0))
    whole = merge_partial(stored, added)
    assert (whole["modules"], whole["mutants_run"], whole["killed"], whole["survived"]) == (["m1.py", "m2.py"], 10, 6, 3)
    assert "modules_run" not in whole and whole["killed_by_module"]["m1.py"] == {OLD_TESTS: 3, "(test files added)": 1}
    stored["old_tests"]["files"] = ["t.py"]  # main then lacked old2.py, which a later main (the new piece's) holds
    added["old_tests"]["files"] = ["t.py", "old2.py"]
    assert merge_partial(stored, added)["old_tests"]["files_by_module"] == {"m1.py": ["t.py"], "m2.py": ["t.py", "old2.py"]}
    rows = {row["module"]: row for row in module_rows(whole)}
    assert (rows["m1.py"]["rate"], rows["m1.py"]["before"]) == (round(4 / 5, 4), round(3 / 5, 4))
    assert (rows["m2.py"]["rate"], rows["m2.py"]["before"]) == (round(2 / 4, 4), round(1 / 4, 4))
