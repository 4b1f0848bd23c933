"""`hwnas lut show|fit|eval|predict` on a profile directory, and `hwnas profile --device` end to end.

The lut commands run on a profile whose latencies follow a known linear
rule (so the expected fit is known); `hwnas profile --device` is run for
real on a tiny space.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hwnas.cli import main
from lut.profile import manifest_of, planned_arch, resolve_settings
from lut.samples import SampleRecord, append
from lut.table import Conditions, FixedEntry, LatencyTable, OpEntry, load, save
from search_spaces import get_space

TINY = {"small_input": True, "depths": [2, 1, 1, 1, 1, 1], "num_classes": 10, "widths": [8, 8, 8, 8, 16, 16, 16, 24, 32]}


def _profile_dir(out: Path, samples: int = 80, with_ops: bool = True) -> Path:
    """A profile directory (manifest, per-op LUT, samples) whose latency = 0.5 + 1.1 x LUT sum."""
    settings = resolve_settings(space="proxyless", space_options=TINY, device="cpu", input_size=28, samples=samples, out=out)
    space = get_space("proxyless", **settings.space_config)
    (out).mkdir(parents=True, exist_ok=True)
    (out / "profile.json").write_text(json.dumps(manifest_of(settings, space)))
    rng = np.random.default_rng(0)
    ops = tuple(OpEntry(it.decision, it.choice, it.input_shape, float(rng.uniform(0.05, 0.5)), 0.01) for it in space.op_items(1))
    table = LatencyTable(space.name, space.version, space.config, space.signature(),
                         Conditions("cpu", "eager", 1, "fp32", space.input_shape(1)), {}, ops,
                         (FixedEntry("stem", space.input_shape(1), 0.3, 0.0),))
    save(table if with_ops else replace(table, ops=(), fixed=()), out / "lut.json")
    records = []
    for index in list(range(samples)) + [0, 1, 2, 3]:
        arch = planned_arch(space, 0, index)
        ms = (0.5 + 1.1 * table.lut_sum(arch.choices)) * float(np.exp(rng.normal(0, 0.01)))
        records.append(SampleRecord(index, int(len(records) >= samples), f"0-{index // 8}", arch.to_dict(), ms, 1.0,
                                    macs=1000 + index, params=10 * index + 1, result={}))
    append(out / "samples.jsonl", records)
    return out


def test_lut_fit_show_eval_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _profile_dir(tmp_path / "prof")
    with (out / "samples.jsonl").open("a") as handle:
        handle.write('{"index": 999, "rep')  # a line cut short
    assert main(["lut", "fit", str(out)]) == 0
    captured = capsys.readouterr()
    assert "samples.jsonl line 85: truncated or corrupt JSON" in captured.err
    assert "LUT sum, calibrated" in captured.out and "noise floor" in captured.out
    table = load(out)
    assert table.model is not None and (out / "report.md").exists() and (out / "learning_curve.png").exists()
    assert table.model.metrics["test"][table.model.name]["spearman"] > 0.9

    assert main(["lut", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "backend eager, batch 1, precision fp32" in shown and f"{table.model.name} **(stored)**" in shown
    for name in ("linear (ridge)", "linear (ridge to LUT)", "LUT sum, calibrated", "linear + adjacent pairs",
                 "gradient boosting"):  # the comparison: every model with its validation MAPE, and the curve
        assert f"| {name}" in shown and f"{name}: MAPE %" in shown
    assert "valid. MAPE %" in shown and "networks needed" in shown and "(reference: not linear" in shown

    assert main(["lut", "eval", str(out)]) == 0
    assert "LUT sum" in capsys.readouterr().out

    space = get_space("proxyless", resolution=28, **TINY)
    arch = planned_arch(space, 0, 5)
    arch.save(tmp_path / "arch.json")
    assert main(["lut", "predict", str(out), str(tmp_path / "arch.json"), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["predicted_ms"] == pytest.approx(table.predict(arch.choices))
    assert answer["lut_sum_ms"] == pytest.approx(table.lut_sum(arch.choices))


def test_predict_refuses_another_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _profile_dir(tmp_path / "prof", samples=30)
    assert main(["lut", "fit", str(out)]) == 0
    other = planned_arch(get_space("proxyless", resolution=32, **TINY), 0, 0)
    other.save(tmp_path / "arch.json")
    capsys.readouterr()
    assert main(["lut", "predict", str(out), str(tmp_path / "arch.json")]) == 2
    assert "space config differs: resolution=32 in the architecture, 28 in the LUT" in capsys.readouterr().err
    assert main(["lut", "predict", str(out), str(tmp_path / "arch.json"), "--ignore-config"]) == 0
    assert "ms predicted" in capsys.readouterr().out


def test_fit_without_per_op_lut_uses_ridge_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _profile_dir(tmp_path / "prof", samples=40, with_ops=False)
    assert main(["lut", "fit", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "linear (ridge) **(stored)**" in printed and "LUT sum" not in printed


def test_lut_show_without_a_profile_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lut", "show", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no LUT at" in err


def test_profile_device_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prof"
    argv = ["profile", "--device", "cpu", "--space", "proxyless", "--input-size", "28", "--samples", "16",
            "--retest", "2", "--block-size", "6", "--threads", "1", "--time-per-net", "0.05", "--out", str(out)]
    for key, value in TINY.items():
        argv += ["--space-option", f"{key}={json.dumps(value)}"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "18 samples (18 measured now)" in printed and "| predictor" in printed
    assert {"lut.json", "samples.jsonl", "report.md", "predicted_vs_measured.png", "error_histogram.png"} <= {
        p.name for p in out.iterdir()
    }
    assert main(argv + ["--batch-size", "2"]) == 2
    assert "batch_size differs" in capsys.readouterr().err
