"""benchmarks/gpu_recheck.py on the CPU: the dry run writes at most 6 files (the device call's limit),
the turn statistic and the stopwatch are exact. The steps themselves need a GPU for meaning;
`--device cpu` walks them here (run by hand: minutes on two cores)."""

from __future__ import annotations

import json
import types
from pathlib import Path

from test_profilers_precision import _recheck


def test_dry_run_walks_every_step_into_at_most_six_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _recheck().main(["--dry-run", "--out", str(out), "--json", str(tmp_path / "dry-run.json")]) == 0
    assert json.loads((tmp_path / "dry-run.json").read_text())["tables"][-1]["title"].startswith("GPU suite")
    files = sorted(path.name for path in out.iterdir())
    assert len(files) <= 6 and "suite.json" in files
    steps = json.loads((out / "suite.json").read_text())["steps"]
    assert [step["status"] for step in steps] == ["skipped"] * len(_recheck().STEPS)


def test_first_run_ratio_is_first_of_turn_over_the_rest() -> None:
    samples = [2.0, 1.0, 1.0, 3.0, 1.0, 1.0]  # two 3-run turns: first runs 2 and 3, the rest all 1
    assert _recheck().first_run_ratio(samples, 3) == 2.5
    assert _recheck().first_run_ratio(samples, 1) is None and _recheck().first_run_ratio(samples[:5], 3) is None


def test_stopwatch_charges_each_part_and_restores_the_function() -> None:
    owner = types.SimpleNamespace(work=lambda x: x + 1)
    original = owner.work
    seconds: dict[str, float] = {}
    with _recheck()._stopwatch([(owner, "work", "part")], seconds, lambda: None):  # noqa: SLF001
        assert owner.work(1) == 2 and owner.work(2) == 3
    assert owner.work is original and set(seconds) == {"part"} and seconds["part"] >= 0.0
