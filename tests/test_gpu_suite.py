"""The GPU suite's bookkeeping on the CPU (#14.7, #14.8): per-step JSON as each step ends, a failing
step keeps the steps before it on disk, Ctrl-C keeps what was measured, skips are not failures,
and `--dry-run` walks every real step here. The suite's real steps skip on this machine (no GPU);
the injected steps are ordinary step functions that fail or are interrupted on purpose.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from benchmark_scripts import load_benchmark


def _suite():  # noqa: ANN202
    return load_benchmark("gpu_suite")


def _context(dry_run: bool = True):  # noqa: ANN202
    suite = _suite()
    return suite.SuiteContext("cuda:0", time.monotonic() + 300, quick=True, dry_run=dry_run)


def _read(folder: Path) -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def _real_steps_without_pytest():  # noqa: ANN202 - the pytest step spawns a second pytest: covered by the slow test
    return [(title, step) for title, step in _suite().STEPS if step is not _suite().gpu_tests]


@pytest.mark.parametrize("k", [1, 3])
def test_a_failing_step_keeps_every_earlier_step_on_disk(tmp_path: Path, k: int) -> None:
    suite = _suite()
    steps = _real_steps_without_pytest()
    seen_before: list[list[str]] = []

    def broken(context):  # noqa: ANN001, ANN202
        seen_before.append(sorted(path.name for path in tmp_path.glob("0*.json")))  # written before this step ran
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    steps[k - 1] = ("broken step", broken)
    code = suite.run_steps(steps, _context(), tmp_path, {"suite": "test"})
    files = _read(tmp_path)
    assert code == 1
    assert len(seen_before[0]) == k - 1  # steps < k were on disk when step k started
    broken_file = files[f"{k:02d}-broken-step.json"]
    assert broken_file["status"] == "failed" and "OutOfMemoryError" in broken_file["summary"]
    assert len([name for name in files if name[0].isdigit()]) == len(steps)  # later steps still ran
    statuses = [entry["status"] for entry in files["suite.json"]["steps"]]
    assert statuses.count("failed") == 1 and set(statuses) <= {"failed", "skipped"}


def test_ctrl_c_keeps_what_the_running_step_measured(tmp_path: Path) -> None:
    suite = _suite()

    def measuring(context):  # noqa: ANN001, ANN202
        context.data.setdefault("results", []).append({"variant": "net/eager/fp32", "median_ms": 1.25})
        raise KeyboardInterrupt

    def never(context):  # noqa: ANN001, ANN202
        raise AssertionError("the suite must stop at Ctrl-C")

    steps = [_real_steps_without_pytest()[0], ("measuring", measuring), ("after", never)]
    code = suite.run_steps(steps, _context(), tmp_path, {"suite": "test"})
    files = _read(tmp_path)
    assert code == suite.EXIT_INTERRUPTED
    assert files["02-measuring.json"]["status"] == "interrupted"
    assert files["02-measuring.json"]["data"]["results"] == [{"variant": "net/eager/fp32", "median_ms": 1.25}]
    assert [entry["step"] for entry in files["suite.json"]["steps"]] == [steps[0][0], "measuring"]


def test_skips_are_not_failures_and_each_variant_says_why(tmp_path: Path) -> None:
    suite = _suite()
    code = suite.run_steps(_real_steps_without_pytest(), _context(), tmp_path, {"suite": "test"})
    files = _read(tmp_path)
    assert code == 0
    timings = files["02-profilers.json"] if "02-profilers.json" in files else files["01-profilers.json"]
    assert timings["status"] == "skipped"
    assert len(timings["data"]["skipped"]) == 2 * len(suite.TIMING_VARIANTS)  # quick: two models, every variant
    assert all(": " in reason for reason in timings["data"]["skipped"])
    assert not timings["data"]["failures"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a usable GPU")
def test_without_a_gpu_the_suite_names_why_and_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _suite().main(["--out", str(tmp_path)]) == _suite().EXIT_NO_GPU
    assert "CUDA" in capsys.readouterr().err and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_dry_run_walks_every_step_and_writes_the_per_step_json(tmp_path: Path) -> None:
    suite = _suite()
    assert suite.main(["--dry-run", "--quick", "--out", str(tmp_path)]) == 0
    files = _read(tmp_path)
    assert len(files) == len(suite.STEPS) + 1
    document = files["suite.json"]
    assert document["dry_run"] is True and [s["step"] for s in document["steps"]] == [t for t, _ in suite.STEPS]
    assert all(s["status"] in ("ok", "skipped") for s in document["steps"])
    assert "collected" in document["steps"][0]["summary"]  # the GPU tests were collected, not run
