"""`hwnas search` end to end at toy scale: flags -> pipeline -> files and the report lines."""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

import pytest

from cli_contract import non_finite_numbers
from hwnas.cli import build_parser, main
from hwnas.cli.search import config_from_args, flag_of
from hwnas.errors import UsageError
from hwnas.search import SearchConfig
from hwnas.search.config import PATHS

TINY = [
    "--data", "digits", "--data-limit", "300", "--backend", "eager", "--lut", "none", "--latency-target", "0.5",
    "--space-option", "widths=[4,4,4,4,8,8,8,8,16]", "--space-option", "depths=[1,1,1,1,1,1]",
    "--space-option", "small_input=true", "--steps", "2", "--warmup-steps", "1", "--batch-size", "8",
    "--train-steps", "2", "--no-progress",
]


def _config(*flags: str) -> SearchConfig:
    return config_from_args(build_parser().parse_args(["search", *flags]))


def test_the_parser_builds_the_config_with_its_defaults() -> None:
    """No defaults of its own: `hwnas search` alone is `SearchConfig()` (with progress bars, as the CLI shows them)."""
    assert _config() == SearchConfig()
    assert _config("--no-progress") == SearchConfig.from_flat(progress=False)


NOT_FLAGS = {"data.val_fraction", "data.test_fraction", "estimator.rebar_eta", "estimator.conditional",
             "estimator.baseline_decay", "estimator.gen_lambda", "latency.measure_budget_s",
             "loop.w_momentum", "loop.w_weight_decay", "loop.arch_weight_decay",
             "loop.torch_threads"}
"""Config fields the CLI does not expose (the papers' constants and the library's knobs)."""


def test_every_flag_reaches_its_field_and_every_field_has_a_flag_or_is_library_only() -> None:
    build_parser()  # registers the flag of every field
    flagged = {path for path in PATHS if flag_of(path) != path}
    assert flagged | NOT_FLAGS == set(PATHS) and not flagged & NOT_FLAGS
    numbers = {"--data-limit": 7, "--image-size": 20, "--test-renders": 3, "--amended-eta": 0.3, "--egs-samples": 5,
               "--tune-variance-lr": 0.5, "--latency-weight": 0.25, "--latency-beta": 2.5, "--latency-batch-size": 4,
               "--threads": 2, "--steps": 9, "--warmup-steps": 4, "--batch-size": 16, "--arch-batch-size": 64,
               "--derive-candidates": 3, "--w-lr": 0.01, "--arch-lr": 0.02, "--seed": 5, "--checkpoint-every": 7,
               "--checkpoint-seconds": 30.0, "--latency-target": 2.5}
    words = {"--space": "darts", "--data": "mnist", "--estimator": "gdas", "--darts-order": "first",
             "--latency-estimator": "reinforce", "--objective": "val", "--tune-variance": "none",
             "--latency-penalty": "power", "--latency-device": "cpu", "--backend": "eager", "--precision": "fp16",
             "--latency-timing": "inline", "--lut": "profiles/x", "--device": "cpu", "--weight-sharing": "independent",
             "--supernet-batchnorm": "shared", "--supernet-rule": "fair", "--warmup-from": "runs/a/warmup.pt"}
    for flag, value in {**numbers, **words}.items():
        path = next(p for p in PATHS if flag_of(p) == flag)
        assert _config(flag, str(value)).get(path) == value, flag
    assert _config("--tau", "2", "0.5").temperatures == (2.0, 0.5)
    assert _config("--space-option", "C=8").data.space_config == {"C": 8}
    assert _config("--warmup-epochs", "1.5").loop.warmup_epochs == 1.5
    assert _config("--latency-device", "cuda:0").latency.conditions.batch_size == 32
    assert _config("--latency-estimator", "none", "--latency-target", "3").latency.target_ms is None


def test_a_refused_field_is_named_by_its_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """The config names the field; the CLI says the flag, in one line."""
    with pytest.raises(UsageError, match=r"^estimator.egs_samples \(M\) must be >= 1"):
        SearchConfig.from_flat(egs_samples=0)
    assert main(["search", "--estimator", "snas", "--darts-order", "second"]) == 2
    assert capsys.readouterr().err == ("hwnas search: error: --darts-order second applies to --estimator darts only, "
                                       "not snas\n")
    assert main(["search", "--tune-variance", "eta", "--tune-variance-lr", "-1"]) == 2
    assert capsys.readouterr().err == "hwnas search: error: --tune-variance-lr must be a positive number, got -1.0\n"


def _every_flag() -> set[str]:
    """The option strings of `hwnas` and of each of its commands."""
    flags: set[str] = set()
    parsers = [build_parser()]
    while parsers:
        for action in parsers.pop()._actions:
            flags.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
    return flags


def _flags_named_in_strings(package: Path) -> dict[str, str]:
    """Each `--flag` written in a string of the package's code (messages, hints, docstrings) -> one file naming it."""
    named: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*", node.value):
                    named.setdefault(flag, str(path.relative_to(ROOT)))
    return named


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("package", ["hwnas", "lut", "profilers", "search_spaces"])
def test_every_flag_a_message_names_is_a_flag_of_an_hwnas_command(package: str) -> None:
    """A hint must name a flag the user can type: `check_combination` once said `--conditional`, a flag no
    command has (that field is library-only: its refusal names `estimator.conditional`)."""
    flags = _every_flag()
    unknown = {flag: where for flag, where in _flags_named_in_strings(ROOT / package).items() if flag not in flags}
    assert not unknown, f"flags named in messages that no hwnas command has: {unknown}"
    with pytest.raises(UsageError, match=r"^estimator.conditional 'x' is unknown; choose one of reuse, fresh$"):
        SearchConfig.from_flat(conditional="x")


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
    assert non_finite_numbers(out) == []  # every number of every JSON the run wrote (issue #30)


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
    assert non_finite_numbers(out, tmp_path / "profiles") == []  # the run's and its profile's JSON (issue #30)
