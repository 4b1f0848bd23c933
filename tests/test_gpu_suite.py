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


def _context(dry_run: bool = True, allow_missing: bool = True):  # noqa: ANN202
    suite = _suite()
    return suite.SuiteContext("cuda:0", time.monotonic() + 300, quick=True, dry_run=dry_run, allow_missing=allow_missing)


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


def test_a_missing_runtime_fails_the_suite_unless_allowed(tmp_path: Path) -> None:
    """Here neither ONNX Runtime's CUDA provider nor TensorRT can run on cuda:0: without --allow-missing every
    such variant is a failure naming the way out, and the suite's exit code says so; with it, a skip."""
    suite = _suite()
    reasons = suite._backend_reasons("cuda:0")
    if all(reasons[runtime] is None for runtime in suite.RUNTIMES):
        pytest.skip("this machine has every runtime the suite checks")
    steps = [(title, step) for title, step in suite.STEPS if step is suite.gpu_timings]
    assert suite.run_steps(steps, _context(allow_missing=False), tmp_path / "strict", {"suite": "test"}) == 1
    strict = _read(tmp_path / "strict")["01-profilers.json"]
    assert strict["status"] == "failed"
    missing = [runtime for runtime in suite.RUNTIMES if reasons[runtime] is not None]
    expected = sum(1 for backend, _, _ in suite.TIMING_VARIANTS if backend in missing) * 2  # quick: two models
    assert len(strict["data"]["failures"]) == expected
    assert all("--allow-missing" in failure for failure in strict["data"]["failures"])
    assert suite.run_steps(steps, _context(allow_missing=True), tmp_path / "allowed", {"suite": "test"}) == 0
    assert _read(tmp_path / "allowed")["01-profilers.json"]["status"] == "skipped"


def test_the_unas_step_reports_kendall_tau_against_the_papers_order() -> None:
    """Kendall tau over the 5 networks of UNAS Table 3 (10 pairs): tau = (concordant - discordant) / 10."""
    suite = _suite()
    paper = sorted(suite.UNAS_TABLE3_MS, key=suite.UNAS_TABLE3_MS.__getitem__)
    same = {name: float(rank) for rank, name in enumerate(paper)}
    assert suite.against_paper(same) == (pytest.approx(1.0), [])
    reversed_order = {name: float(-rank) for rank, name in enumerate(paper)}
    tau, flipped = suite.against_paper(reversed_order)
    assert tau == pytest.approx(-1.0) and len(flipped) == 10
    one_swap = {**same, paper[1]: same[paper[2]], paper[2]: same[paper[1]]}  # one discordant pair of 10
    assert suite.against_paper(one_swap) == (pytest.approx(0.8), [f"{paper[1]} < {paper[2]}"])
    with pytest.raises(ValueError, match="at least two"):
        suite.against_paper({"mnasnet1_0": 1.0})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a usable GPU")
def test_without_a_gpu_the_suite_names_why_and_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _suite().main(["--out", str(tmp_path)]) == _suite().EXIT_NO_GPU
    assert "CUDA" in capsys.readouterr().err and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_dry_run_walks_every_step_and_writes_the_per_step_json(tmp_path: Path) -> None:
    suite = _suite()
    record = tmp_path / "record" / "dry-run.json"
    assert suite.main(["--dry-run", "--quick", "--allow-missing", "--out", str(tmp_path), "--json", str(record)]) == 0
    assert json.loads(record.read_text())["tables"][-1]["title"].startswith("GPU suite")
    files = _read(tmp_path)
    assert len(files) == len(suite.STEPS) + 1
    document = files["suite.json"]
    assert document["dry_run"] is True and [s["step"] for s in document["steps"]] == [t for t, _ in suite.STEPS]
    assert all(s["status"] in ("ok", "skipped") for s in document["steps"])
    steps = {s["step"]: s["summary"] for s in document["steps"]}
    assert "collected" in steps[next(t for t, step in suite.STEPS if step is suite.gpu_tests)]  # collected, not run
    assert document["counts"] == {"passed": 0, "skipped": len(suite.STEPS), "failed": 0, "interrupted": 0}


def test_the_dry_run_lists_what_item_5_asks_of_one_gpu_call(tmp_path: Path) -> None:
    """#27 item 5 at GPU scale: a 400-network graph-replay profile, a search with graph replays in the loop,
    UNAS Table 3 as graph replays at batch 32 and 1, the supernet step at 224x224, ORT CUDA and TensorRT rows."""
    suite = _suite()
    steps = [(title, step) for title, step in suite.STEPS if step is not suite.gpu_tests]
    suite.run_steps(steps, _context(), tmp_path, {"suite": "test"})
    said = " | ".join(entry["summary"] for entry in _read(tmp_path)["suite.json"]["steps"])
    for expected in ("would profile 400 networks, eager graph replays batch 32, 224x224",
                     "would search: 300 steps after 150 warm-up, latency eager graph replays batch 32 on cuda:0",
                     "would time 8 networks as graph replays at batch 32 and 1",
                     "proxyless at 224x224, batch 32"):
        assert expected in said
    timings = _read(tmp_path)["01-profilers.json"]["data"]["skipped"]
    assert any("/ort/fp32" in s for s in timings) and any("/tensorrt/fp16" in s for s in timings)


def test_on_a_cpu_the_steps_are_cpu_sized_and_time_plain() -> None:
    suite = _suite()
    cpu = suite.SuiteContext("cpu", time.monotonic() + 300)
    assert cpu.scale is suite.CPU_SCALE and not cpu.graphs
    assert _context().scale is suite.GPU_SCALE and _context().graphs
    assert suite.GPU_SCALE.profile_networks >= 400 and suite.GPU_SCALE.unas_batches == (32, 1)
    assert suite.GPU_SCALE.supernet_side == suite.CPU_SCALE.supernet_side == 224


def test_skips_and_failures_are_counted_apart_from_passes() -> None:
    counts = _suite().status_counts(["ok", "tau(b32) +0.90 tau(b1) +0.60", "skipped", "skipped", "failed"])
    assert counts == {"passed": 2, "skipped": 2, "failed": 1, "interrupted": 0}


@pytest.mark.slow
def test_the_supernet_step_runs_on_a_cpu_at_224() -> None:
    suite = _suite()
    outcome = suite.supernet_step(suite.SuiteContext("cpu", time.monotonic() + 300))
    assert outcome.status == "ok" and "proxyless at 224x224, batch 2" in outcome.summary
    costs = {cost["variant"]: cost for cost in outcome.data["costs"]}
    assert set(costs) == {"standalone", "single-path", "soft (all paths)"}
    assert all(cost["median_ms"] > 0 and cost["saved_mb"] > 0 for cost in costs.values())


def test_the_suite_searches_with_the_command_a_user_types() -> None:
    """The search step's config is `hwnas search ARGV` parsed: graph replays at batch 32 on a GPU, plain on a CPU."""
    from hwnas.cli import build_parser  # noqa: PLC0415
    from hwnas.cli.search import config_from_args  # noqa: PLC0415

    suite = _suite()
    gpu = config_from_args(build_parser().parse_args(suite.search_argv("cuda:0", True, suite.GPU_SCALE)))
    assert (gpu.latency.conditions.cuda_graphs, gpu.latency.conditions.batch_size, gpu.latency.conditions.backend) == (True, 32, "eager")
    assert (gpu.loop.steps, gpu.loop.warmup_steps, gpu.loop.device) == (300, 150, "cuda:0")
    cpu = config_from_args(build_parser().parse_args(suite.search_argv("cpu", False, suite.CPU_SCALE)))
    assert (cpu.latency.conditions.cuda_graphs, cpu.latency.conditions.batch_size, cpu.latency.conditions.device) == (False, 1, "cpu")


@pytest.mark.slow
def test_the_profile_step_runs_on_a_cpu_and_prints_the_comparison_and_the_learning_curve(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The profile step, run here at CPU_SCALE: it used to hand the fit report itself to the learning-curve
    table, a TypeError once the whole profile was measured (on a GPU, minutes of a lent machine lost)."""
    suite = _suite()
    outcome = suite.lut_profile(suite.SuiteContext("cpu", time.monotonic() + 300))
    printed = capsys.readouterr().out
    assert outcome.status == "ok", outcome.summary
    assert "| predictor (held-out nets) |" in printed and "| training nets |" in printed
