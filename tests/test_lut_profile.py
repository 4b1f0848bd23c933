"""lut.profile end to end on a tiny space: files written, resume after a kill, refusal of other settings.

Real measurements (no mocks) with a tiny MeasureConfig; no timing is asserted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lut.errors import LutError
from lut.profile import ProfileSettings, check_manifest, fit_directory, planned_jobs, profile_device, resolve_settings
from lut.samples import Shard, read_directory, read_samples
from lut.table import Expectation, load
from profilers import MeasureConfig
from search_spaces import get_space

TINY_SPACE = {"small_input": True, "depths": [1, 1, 1, 1, 1, 1], "num_classes": 10,
              "widths": [8, 8, 8, 8, 16, 16, 16, 24, 32]}
FAST = MeasureConfig(warmup_runs=1, warmup_s=0.0, min_runs=3, max_runs=6, budget_s=0.02, runs_per_round=3,
                     remeasure=0, verify_outputs=False, threads=1)


def tiny_settings(out: Path, samples: int, **changes: object) -> ProfileSettings:
    settings = resolve_settings(space="proxyless", space_options=TINY_SPACE, device="cpu", input_size=28,
                                samples=samples, retest=4, block_size=5, out=out, progress=False)
    return replace(settings, net_config=FAST, op_config=FAST, **changes)


def test_profile_writes_every_file_and_refuses_other_settings(tmp_path: Path) -> None:
    outcome = profile_device(tiny_settings(tmp_path, 40))
    names = {p.name for p in tmp_path.iterdir()}
    assert {"profile.json", "lut.json", "samples.jsonl", "report.md", "predicted_vs_measured.png",
            "error_histogram.png", "learning_curve.png"} <= names
    assert outcome.fit is not None and outcome.samples == 44 and outcome.measured_now == 44
    table = load(tmp_path, Expectation(space="proxyless", device="cpu", backend="eager", batch_size=1, precision="fp32"))
    space = get_space("proxyless", resolution=28, **TINY_SPACE)
    assert table.model is not None and table.space_signature == space.signature()
    assert len(table.ops) == len(space.feature_names()) and [e.name for e in table.fixed] == ["stem", "head"]
    report = (tmp_path / "report.md").read_text()
    assert "noise floor" in report and "LUT sum, calibrated" in report and "How many networks each model needs" in report and "Latency models compared" in report
    for field, change in (("batch_size", {"batch_size": 2}), ("precision", {"precision": "fp16"}),
                          ("seed", {"seed": 1}), ("space_signature", {"space_config": {**TINY_SPACE, "resolution": 32}})):
        with pytest.raises(LutError, match=f"^{field} differs"):
            profile_device(tiny_settings(tmp_path, 40, **change))
    # nothing left to measure: a re-run measures nothing
    again = profile_device(tiny_settings(tmp_path, 40, fit=False))
    assert again.measured_now == 0 and again.samples == 44


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from pathlib import Path\n"
        "from test_lut_profile import tiny_settings\n"
        "from lut.profile import profile_device\n"
        "profile_device(tiny_settings(Path(%r), 200, fit=False))\n"
    ) % (str(Path(__file__).parent), str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    samples = tmp_path / "samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if samples.exists() and samples.read_text().count("\n") >= 10:
            break
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    first = read_directory(tmp_path)
    assert 10 <= len(first.records) < 204
    # a kill in the middle of a write leaves half a line: simulate it as well
    with samples.open("a") as handle:
        handle.write(json.dumps(first.records[0].to_dict())[:50])
    before = {r.key: r.latency_ms for r in first.records}

    settings = tiny_settings(tmp_path, 30, fit=False)
    outcome = profile_device(settings)
    after = read_directory(tmp_path)
    keys = [r.key for r in after.records]
    assert len(keys) == len(set(keys))
    assert set(planned_jobs(settings)) <= set(keys)
    assert all(after_ms == before[key] for key, after_ms in ((r.key, r.latency_ms) for r in after.records) if key in before)
    assert after.problems == () == outcome.problems  # the resumed run dropped the torn line (issue #13, item 10)
    assert samples.read_bytes().endswith(b"\n")


def test_shards_fill_their_own_files_and_merge(tmp_path: Path) -> None:
    for shard in ("1/2", "0/2"):
        profile_device(tiny_settings(tmp_path, 12, shard=Shard.parse(shard), fit=False))
    assert sorted(p.name for p in tmp_path.glob("samples*.jsonl")) == ["samples-0-of-2.jsonl", "samples-1-of-2.jsonl"]
    read = read_directory(tmp_path)
    assert sorted(r.key for r in read.records) == sorted(planned_jobs(tiny_settings(tmp_path, 12)))
    assert all(r.index % 2 == 1 for r in read_samples([tmp_path / "samples-1-of-2.jsonl"]).records)
    table, report, _ = fit_directory(tmp_path)
    assert table.model is not None and report.n_train + report.n_test == 12


def test_manifest_lets_shards_use_other_gpus_only(tmp_path: Path) -> None:
    manifest = {"format_version": 1, "space": "proxyless", "space_signature": "s", "seed": 0, "device": "cuda:0",
                "backend": "eager", "batch_size": 32, "precision": "fp32"}
    check_manifest(tmp_path, manifest)
    check_manifest(tmp_path, {**manifest, "device": "cuda:1"}, sharded=True)
    with pytest.raises(LutError, match="^device differs"):
        check_manifest(tmp_path, {**manifest, "device": "cuda:1"})
    with pytest.raises(LutError, match="^device differs"):
        check_manifest(tmp_path, {**manifest, "device": "cpu"}, sharded=True)
