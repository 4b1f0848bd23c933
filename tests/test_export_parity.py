"""Export parity can fail (issue #31): a file that computes something else than the network is
refused, and the recorded error is the runtime's output against eager, measured independently
here with ONNX Runtime on the same seeded input."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
import torch
from torch import nn

from hwnas.export.parity import ParityError, bound, check_parity
from profilers import MeasureConfig
from profilers._onnx import export_onnx
from profilers.backends.base import random_input

SHAPE = (2, 3, 8, 8)
CPU = torch.device("cpu")
CONFIG = MeasureConfig(threads=1)


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)).eval()


class Scaled(nn.Module):
    """`net` with its output multiplied by `factor`: a wrong file whose error is known exactly."""

    def __init__(self, net: nn.Module, factor: float) -> None:
        super().__init__()
        self.net, self.factor = net, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.factor


def _export(model: nn.Module, path: Path) -> Path:
    export_onnx(model, torch.zeros(SHAPE), path, "torchscript")
    return path


def _parity(model: nn.Module, artifact: Path, workdir: Path):
    return check_parity(model, artifact, backend="ort", device=CPU, precision="fp32", input_shape=SHAPE,
                        config=CONFIG, workdir=workdir)


def test_the_file_of_another_network_is_refused(tmp_path: Path) -> None:
    artifact = _export(_net(1), tmp_path / "other.onnx")
    with pytest.raises(ParityError, match="does not compute this network"):
        _parity(_net(0), artifact, tmp_path)


def test_recorded_error_is_the_runtime_output_against_eager(tmp_path: Path) -> None:
    """max_abs / max_rel recomputed here: ONNX Runtime's own session on the runner's seeded input."""
    net = _net(0)
    artifact = _export(Scaled(net, 1.0 + 4e-4), tmp_path / "close.onnx")
    result = _parity(net, artifact, tmp_path)
    x = random_input(SHAPE, torch.float32, CPU, CONFIG.seed)
    session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    actual = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    with torch.inference_mode():
        reference = net(x)
    assert result.max_abs_error == pytest.approx(float((actual - reference).abs().max()), rel=1e-3, abs=1e-7)
    assert result.max_rel_error == pytest.approx(result.max_abs_error / float(reference.abs().max()), rel=1e-9)
    # The file is off by 4e-4 of the output: the error is that, not the float noise of a faithful file.
    assert result.max_rel_error == pytest.approx(4e-4, rel=0.05)
    assert result.passed and result.reference_scale == pytest.approx(float(reference.abs().max()), rel=1e-6)


@pytest.mark.parametrize(("factor", "passes"), [(1.0, True), (1.0 + 5e-4, True), (1.0 + 2e-3, False), (0.5, False)])
def test_the_bound_separates_a_faithful_file_from_a_wrong_one(tmp_path: Path, factor: float, passes: bool) -> None:
    """fp32 on the CPU: a relative error of 2e-3 is beyond the 1e-3 bound, 5e-4 within it."""
    net = _net(0)
    artifact = _export(Scaled(net, factor), tmp_path / "scaled.onnx")
    if passes:
        assert _parity(net, artifact, tmp_path).passed
    else:
        with pytest.raises(ParityError, match="exceeds the bound"):
            _parity(net, artifact, tmp_path)


def test_bounds_per_precision_and_device() -> None:
    assert bound("fp32", CPU) == 1e-3
    assert bound("fp32", torch.device("cuda")) == 1e-2
    assert bound("fp16", torch.device("cuda")) == 5e-2


def test_ready_module_copies_only_what_it_must_and_never_changes_the_callers_model() -> None:
    from hwnas.export.parity import ready_module  # noqa: PLC0415

    net = _net(0)
    assert ready_module(net, CPU, "fp32") is net  # eval, on the device, in the precision: no copy
    training = _net(0).train()
    copy = ready_module(training, CPU, "fp32")
    assert copy is not training and training.training and not copy.training
    half = ready_module(net, CPU, "fp16")
    assert half is not net and next(net.parameters()).dtype == torch.float32
    assert next(half.parameters()).dtype == torch.float16


def test_parity_record_reads_and_serialises_what_was_compared(tmp_path: Path) -> None:
    net = _net(0)
    result = _parity(net, _export(net, tmp_path / "same.onnx"), tmp_path)
    assert result.runtime == "onnxruntime" and result.provider == "CPUExecutionProvider"
    assert result.batch_size == SHAPE[0] and result.precision == "fp32" and result.device == "cpu"
    x = random_input(SHAPE, torch.float32, CPU, CONFIG.seed)
    with torch.inference_mode():
        outputs = net(x)  # (batch, classes): the spread is across the batch, per output, then averaged
    assert result.input_spread == pytest.approx(float(outputs.std(dim=0).mean()), rel=1e-5)
    data = result.to_dict()
    assert data["passed"] is True and data["bound_rel"] == 1e-3 and "PyTorch eager, fp32 on cpu" in data["reference"]
    assert result.line().startswith("parity onnxruntime (CPUExecutionProvider) on cpu, fp32, batch 2: max abs ")
    assert f"(bound {1e-3:g})" in result.line()


def test_a_single_image_has_no_input_spread(tmp_path: Path) -> None:
    net = _net(0)
    artifact = tmp_path / "one.onnx"
    export_onnx(net, torch.zeros(1, 3, 8, 8), artifact, "torchscript")
    result = check_parity(net, artifact, backend="ort", device=CPU, precision="fp32", input_shape=(1, 3, 8, 8),
                          config=CONFIG, workdir=tmp_path)
    assert result.batch_size == 1 and result.input_spread is None


def test_a_network_of_zeros_passes_its_own_file_and_refuses_any_other(tmp_path: Path) -> None:
    """Relative error over a zero scale: 0 when the file agrees exactly, infinite when it does not."""
    zero = _net(0)
    with torch.no_grad():
        for parameter in zero.parameters():
            parameter.zero_()
    assert _parity(zero, _export(zero, tmp_path / "zero.onnx"), tmp_path).max_rel_error == 0.0
    with pytest.raises(ParityError, match="max rel inf"):
        _parity(zero, _export(_net(1), tmp_path / "other.onnx"), tmp_path)
