"""`hwnas export` through the real CLI: bad inputs, atomicity, weights, manifest and re-measurement.

Every refusal is exit code 2 with exactly one line on stderr and no output
folder left behind. A small proxyless architecture keeps each export to a
few seconds on two shared cores.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import search_spaces
from hwnas.cli import main
from hwnas.export import latency_results, read_manifest, verify_files
from hwnas.export import api as export_api
from hwnas.export.parity import ParityError

SMALL = {"resolution": 32, "widths": [8, 8, 8, 8, 8, 8, 8, 8, 16], "depths": [2, 2, 2, 2, 2, 1], "num_classes": 10}
QUICK = ["--threads", "1", "--measure", "none"]


@pytest.fixture(scope="module")
def space() -> search_spaces.SearchSpace:
    return search_spaces.get_space("proxyless", **SMALL)


@pytest.fixture()
def arch_file(space: search_spaces.SearchSpace, tmp_path: Path) -> Path:
    return space.sample(np.random.default_rng(3)).save(tmp_path / "arch.json")


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    assert code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


def leftovers(parent: Path, name: str) -> list[Path]:
    return [path for path in parent.iterdir() if name in path.name]


def onnx_output(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with every tensor moved off its fresh initialisation (as training would), so
    the output depends on the input and a comparison of outputs means something."""
    torch.manual_seed(11)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.rand_like(tensor) * 0.1)
    return model.eval()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--format", "onnx,tflite"], "--format"),
        (["--format", "tensorrt"], "tensorrt"),
        (["--precision", "fp16"], "--device cuda"),
        (["--dynamic-batch", "4,2,8"], "MIN <= OPT <= MAX"),
        (["--opset", "9"], "--opset 9"),
        (["--measure", "tflite"], "--measure"),
        (["--weights", "a.pt", "--inherit-from", "b.pt"], "not allowed with"),
        (["--batch-size", "0"], "--batch-size: 0 must be >= 1"),
    ],
)
def test_bad_flags_are_one_line_exit_2(
    extra: list[str], expected: str, arch_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_error_line(capsys, ["export", str(arch_file), "--out", str(tmp_path / "out"), *QUICK, *extra])
    assert expected in line
    assert not (tmp_path / "out").exists()


def test_cli_default_opset_is_the_profilers_opset() -> None:
    from hwnas.cli.export import DEFAULT_OPSET  # noqa: PLC0415
    from profilers._onnx import OPSET  # noqa: PLC0415

    assert DEFAULT_OPSET == OPSET


def test_unknown_architecture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = one_error_line(capsys, ["export", "no_such_net", "--out", str(tmp_path / "out")])
    assert "no_such_net" in line and not (tmp_path / "out").exists()


def test_non_empty_destination_needs_force(arch_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert "--force" in one_error_line(capsys, ["export", str(arch_file), "--out", str(out), *QUICK])
    assert main(["export", str(arch_file), "--out", str(out), "--force", *QUICK]) == 0
    assert not (out / "keep.txt").exists() and (out / "model.onnx").is_file()


def test_weights_of_another_architecture_are_refused(
    space: search_spaces.SearchSpace, arch_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = search_spaces.get_space("proxyless", **{**SMALL, "num_classes": 7})
    arch = search_spaces.load_architecture(str(arch_file))
    checkpoint = tmp_path / "other.pt"
    torch.save(other.build(other.architecture(arch.choices)).state_dict(), checkpoint)
    line = one_error_line(capsys, ["export", str(arch_file), "--weights", str(checkpoint), "--out", str(tmp_path / "o"), *QUICK])
    assert "does not match" in line and "head.classifier.weight" in line
    different = space.sample(np.random.default_rng(99))
    torch.save(space.build(different).state_dict(), checkpoint)
    line = one_error_line(capsys, ["export", str(arch_file), "--weights", str(checkpoint), "--out", str(tmp_path / "o"), *QUICK])
    assert "missing" in line or "unexpected" in line
    assert not (tmp_path / "o").exists()


def test_checkpoint_with_code_is_refused(arch_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = tmp_path / "pickled.pt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "args": argparse.Namespace(lr=0.1)}, checkpoint)  # old-style
    line = one_error_line(capsys, ["export", str(arch_file), "--weights", str(checkpoint), "--out", str(tmp_path / "o")])
    assert "weights_only=True" in line


@pytest.mark.parametrize("layout", ["plain", "state_dict", "model", "ddp"])
def test_checkpoint_weights_are_exported(
    layout: str, space: search_spaces.SearchSpace, arch_file: Path, tmp_path: Path
) -> None:
    arch = search_spaces.load_architecture(str(arch_file))
    model = trained_like(space.build(arch))
    state = model.state_dict()
    saved = {
        "plain": state,
        "state_dict": {"state_dict": state, "epoch": 3},
        "model": {"model": state, "optimizer": {}},
        "ddp": {f"module.{key}": value for key, value in state.items()},
    }[layout]
    torch.save(saved, tmp_path / "ckpt.pt")
    out = tmp_path / "out"
    assert main(["export", str(arch_file), "--weights", str(tmp_path / "ckpt.pt"), "--out", str(out), *QUICK]) == 0
    x = torch.randn(1, 3, 32, 32)
    np.testing.assert_allclose(onnx_output(out / "model.onnx", x), model(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    manifest = read_manifest(out)
    assert manifest["weights"]["source"] == "checkpoint" and len(manifest["weights"]["sha256"]) == 64


def test_weights_inherited_from_supernet(space: search_spaces.SearchSpace, arch_file: Path, tmp_path: Path) -> None:
    supernet = trained_like(space.supernet())
    torch.save(supernet.state_dict(), tmp_path / "supernet.pt")
    out = tmp_path / "out"
    assert main(["export", str(arch_file), "--inherit-from", str(tmp_path / "supernet.pt"), "--out", str(out), *QUICK]) == 0
    arch = search_spaces.load_architecture(str(arch_file))
    expected = space.extract_subnet(supernet, arch).eval()
    x = torch.randn(1, 3, 32, 32)
    np.testing.assert_allclose(onnx_output(out / "model.onnx", x), expected(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert read_manifest(out)["weights"]["source"] == "inherited from supernet"


@pytest.mark.parametrize("failure", [ParityError("parity broke"), KeyboardInterrupt()])
def test_failing_export_leaves_no_output_folder(
    failure: BaseException, arch_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        assert any(path.name == "model.onnx" for path in tmp_path.rglob("*")), "fail after files were written"
        raise failure

    monkeypatch.setattr(export_api, "check_parity", fail)
    with pytest.raises(type(failure)):
        export_api.export_network(str(arch_file), tmp_path / "out")
    assert leftovers(tmp_path, "out") == []
    # With --force over an existing export, a failure keeps the old folder intact.
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.onnx").write_text("previous export")
    from hwnas.export import ExportOptions  # noqa: PLC0415

    with pytest.raises(type(failure)):
        export_api.export_network(str(arch_file), old, ExportOptions(force=True))
    assert (old / "model.onnx").read_text() == "previous export"
    assert [path.name for path in leftovers(tmp_path, "old")] == ["old"]


def test_manifest_latency_is_reproduced_by_hwnas_profile(
    arch_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["export", str(arch_file), "--out", str(out), "--batch-size", "2", "--threads", "1", "--budget", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "parity onnxruntime" in printed and "max rel" in printed
    manifest = read_manifest(out)
    assert verify_files(out, manifest) == []
    assert set(manifest["files"]) == {"arch.json", "model.onnx"}
    assert manifest["inputs"] == [{"name": "input", "shape": [2, 3, 32, 32], "dtype": "float32"}]
    assert manifest["outputs"] == [{"name": "output", "shape": [2, 10], "dtype": "float32"}]
    exported = latency_results(manifest)
    assert set(exported) == {"eager", "ort"}
    assert exported["ort"].context.details["onnx_file"] == str(out / "model.onnx")

    report = tmp_path / "profile.json"
    argv = ["profile", "--model", str(out / "model.onnx"), "--backend", "ort", "--batch-size", "2",
            "--threads", "1", "--budget", "1", "--json", str(report)]
    assert main(argv) == 0
    again = json.loads(report.read_text())["results"][0]
    first = exported["ort"].context
    # `hwnas profile` re-measures the same thing: every field that keys a latency number agrees. (Whether the
    # two numbers agree is the profiler's test-retest, measured in benchmarks/profiler_repeatability.py:
    # a unit test on a shared 2-core machine holds no timing assertion.)
    key_fields = ("device", "device_name", "backend", "provider", "precision", "batch_size", "threads",
                  "channels_last", "cuda_graphs", "versions")
    assert {name: again["context"][name] for name in key_fields} == {name: getattr(first, name) for name in key_fields}
    assert again["context"]["input_shape"] == list(first.input_shape) == [2, 3, 32, 32]
    assert first.provider == "CPUExecutionProvider"
    assert again["median_ms"] > 0 and exported["ort"].median_ms > 0


def test_hwnas_train_checkpoint_is_loaded(space: search_spaces.SearchSpace, arch_file: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from hwnas.checkpoint import save_checkpoint  # noqa: PLC0415

    arch = search_spaces.load_architecture(str(arch_file))
    model = trained_like(space.build(arch))
    save_checkpoint(tmp_path / "checkpoint.pt", {"kind": "train", "arch": arch.to_dict(), "state_dict": model.state_dict(),
                                                 "optimizer": {"state": {}}, "step": 10})
    out = tmp_path / "out"
    assert main(["export", str(arch_file), "--weights", str(tmp_path / "checkpoint.pt"), "--out", str(out), *QUICK]) == 0
    x = torch.randn(1, 3, 32, 32)
    np.testing.assert_allclose(onnx_output(out / "model.onnx", x), model(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    # The same weights with another architecture file: the message points to the run's arch.json.
    other = space.sample(np.random.default_rng(42)).save(tmp_path / "other.json")
    line = one_error_line(capsys, ["export", str(other), "--weights", str(tmp_path / "checkpoint.pt"),
                                   "--out", str(tmp_path / "o2"), *QUICK])
    assert "does not match" in line and "arch.json" in line


def test_export_folder_has_ordinary_permissions(arch_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["export", str(arch_file), "--out", str(out), *QUICK]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert {path.name: path.stat().st_mode & 0o777 for path in out.iterdir()} == {
        name: 0o666 & ~umask for name in ("arch.json", "model.onnx", "manifest.json")
    }
