"""`hwnas profile --model` through the real CLI: results, JSON, and every bad input.

Each bad input must give exit code 2 and exactly one line on stderr (no
traceback). Runs are kept short with --budget and tiny inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from hwnas.cli import main
from profilers._onnx import export_onnx

QUICK = ["--device", "cpu", "--input-size", "32", "--budget", "0.2", "--threads", "1"]


def tiny_onnx(path: Path, dtype: torch.dtype = torch.float32) -> Path:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    export_onnx(model.to(dtype), torch.randn(1, 3, 32, 32, dtype=dtype), path, "torchscript")
    return path


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own refusals exit from inside parse_args
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_profile_models_with_two_backends_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.json"
    argv = ["profile", "--model", "squeezenet1_1", "--backend", "eager,ort", *QUICK, "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "squeezenet1_1" in printed and "images/s" in printed and "ort (CPU)" in printed
    document = json.loads(out.read_text())
    assert document["format"] == "hwnas.profile"
    results = document["results"]
    assert [r["context"]["backend"] for r in results] == ["eager", "ort"]
    for result in results:
        assert result["median_ms"] > 0 and result["runs"] == len(result["samples_ms"])
        assert result["context"]["batch_size"] == 1 and result["context"]["input_shape"] == [1, 3, 32, 32]
        assert result["context"]["threads"] == 1 and result["context"]["precision"] == "fp32"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_profile_onnx_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tiny_onnx(tmp_path / "tiny.onnx")
    assert main(["profile", "--model", str(path), "--backend", "ort", *QUICK]) == 0
    assert "tiny.onnx" in capsys.readouterr().out


def test_list_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--list-models"]) == 0
    assert "mobilenet_v2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--model", "no_such_net"], "--list-models"),
        (["--model", "squeezenet1_1", "--device", "cuda:99"], "cuda"),
        (["--model", "squeezenet1_1", "--device", "gpu"], "unknown device"),
        (["--model", "squeezenet1_1", "--backend", "tensorrt"], "tensorrt"),
        (["--model", "squeezenet1_1", "--backend", "nope"], "unknown backend"),
        (["--model", "squeezenet1_1", "--backend", "ort", "--precision", "bf16"], "--precision"),
        (["--model", "missing.onnx", "--backend", "ort"], "does not exist"),
        (["--model", "squeezenet1_1", "--batch-size", "0"], "--batch-size"),
        (["--model", "squeezenet1_1", "--batch-size", "-3"], "--batch-size"),
        (["--model", "squeezenet1_1", "--batch-size", "two"], "--batch-size"),
        (["--model", "squeezenet1_1", "--precision", "fp8"], "--precision"),
        (["--model", "squeezenet1_1", "--json", "/no/such/dir/out.json"], "--json"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], extra: list[str], needle: str) -> None:
    line = one_error_line(capsys, ["profile", *extra])
    assert needle in line


def test_unreadable_or_mismatched_onnx_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not a protobuf")
    assert "cannot read" in one_error_line(capsys, ["profile", "--model", str(broken), "--backend", "ort"])
    fp16 = tiny_onnx(tmp_path / "half.onnx", torch.float16)
    assert "--precision fp16" in one_error_line(capsys, ["profile", "--model", str(fp16), "--backend", "ort"])
    assert "--backend ort" in one_error_line(capsys, ["profile", "--model", str(fp16), "--precision", "fp16"])
    engine = tmp_path / "net.engine"
    engine.write_bytes(b"engine bytes")
    assert "--backend tensorrt" in one_error_line(capsys, ["profile", "--model", str(engine), "--backend", "ort"])


def test_installed_script_reports_bad_input_in_one_line() -> None:
    script = Path(sys.executable).with_name("hwnas")
    completed = subprocess.run(
        [str(script), "profile", "--model", "no_such_net", "--batch-size", "0"], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().count("\n") == 0 and "--batch-size" in completed.stderr
