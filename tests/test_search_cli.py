"""`hwnas search` end to end at toy scale: flags -> pipeline -> files and the report lines."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from hwnas.cli import build_parser, main
from hwnas.cli.search import config_from_args
from hwnas.search import SearchConfig

TINY = [
    "--data", "digits", "--data-limit", "300", "--backend", "eager", "--lut", "none", "--latency-target", "0.5",
    "--space-option", "widths=[4,4,4,4,8,8,8,8,16]", "--space-option", "depths=[1,1,1,1,1,1]",
    "--space-option", "small_input=true", "--steps", "2", "--warmup-steps", "1", "--batch-size", "8",
    "--train-steps", "2", "--no-progress",
]


def test_cli_defaults_are_the_config_defaults() -> None:
    args = build_parser().parse_args(["search"])
    from_cli = config_from_args(args)
    defaults = SearchConfig()
    differ = [f.name for f in fields(SearchConfig) if getattr(from_cli, f.name) != getattr(defaults, f.name)]
    assert differ == ["progress"] or differ == []


def test_tiny_run_writes_every_file_and_reports_latency(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["search", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("arch.json", "metrics.jsonl", "latencies.jsonl", "config.json", "summary.json", "model.pt"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["target_ms"] == 0.5 and summary["measured_latency_ms"] > 0
    assert "target         0.500 ms (given)" in printed and "measured" in printed
    arch = json.loads((out / "arch.json").read_text())
    assert set(arch["probabilities"]) == set(arch["choices"])


def test_auto_target_without_a_profile_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [a for a in TINY if a not in ("0.5",)]
    args[args.index("--latency-target")] = "--seed"
    args.insert(args.index("--seed") + 1, "0")
    assert main(["search", *args, "--out", str(tmp_path / "r")]) == 2
    assert "give a target in ms" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_with_a_profile_ends_with_the_supernet_curve_and_the_standing_among_random(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [a for a in TINY if a not in ("--lut", "none")] + ["--profile-root", str(tmp_path / "profiles"),
                                                              "--profile-samples", "12", "--derive-candidates", "3"]
    out = tmp_path / "run"
    assert main(["search", *args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    standing = json.loads((out / "standing.json").read_text())
    assert len(standing["random"]) == 10 and 0 <= standing["derived"]["accuracy"] <= 1
    derivation = json.loads((out / "derivation.json").read_text())
    assert len(derivation["candidates"]) == 3
    assert derivation["candidates"][derivation["chosen"]]["choices"] == json.loads((out / "arch.json").read_text())["choices"]
    assert "chosen among up to 3 by this score" in printed
    assert "vs random      inherited-weight accuracy on search-val: found" in printed
    assert "supernet       search-val accuracy per tenth of the architecture steps:" in printed
    report = (out / "report.md").read_text()
    assert "![derived network among random networks](standing.png)" in report and (out / "standing.png").exists()
