"""CUDA and TensorRT paths; conftest skips them with the reason where absent.

Run them on a GPU machine with `python benchmarks/gpu_suite.py` (or
`pytest -m "cuda or tensorrt"`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from profilers import MeasureConfig, measure, measure_interleaved

FAST = MeasureConfig(warmup_runs=3, warmup_s=0.05, min_runs=10, max_runs=200, budget_s=0.5, runs_per_round=10)
SHAPE = (8, 3, 64, 64)


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU6(),
        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.BatchNorm2d(32), nn.ReLU6(),
        nn.Conv2d(32, 64, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    ).eval()


def config(**changes: object) -> MeasureConfig:
    return MeasureConfig(**{**FAST.__dict__, **changes})


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_eager_records_nvml_state(precision: str) -> None:
    result = measure(small_net(), backend="eager", device="cuda:0", input_shape=SHAPE, precision=precision, config=FAST)
    assert result.median_ms > 0 and result.context.device == "cuda:0"
    assert result.context.details["cudnn.benchmark"] == "True"
    for state in (result.context.gpu_before, result.context.gpu_after):
        assert state is not None
        assert state.error is not None or (state.sm_clock_mhz and state.temperature_c is not None)


@pytest.mark.cuda
def test_cuda_graphs_and_channels_last() -> None:
    result = measure(small_net(), backend="eager", device="cuda", input_shape=SHAPE, config=config(cuda_graphs=True, channels_last=True))
    assert result.context.cuda_graphs and result.context.channels_last
    assert "cuda_graph" in result.context.details


@pytest.mark.cuda
def test_cuda_interleaved() -> None:
    results = measure_interleaved([small_net(), small_net()], backend="eager", device="cuda", input_shapes=SHAPE, config=FAST)
    assert len(results) == 2 and all(r.runs >= FAST.min_runs for r in results)


@pytest.mark.cuda
def test_cuda_results_are_gpu_event_time_with_host_statistics_beside() -> None:
    torch.backends.cudnn.benchmark = False
    result = measure(small_net(), backend="eager", device="cuda", input_shape=SHAPE, config=FAST)
    assert torch.backends.cudnn.benchmark is False  # set while measuring only (#14.4)
    assert result.timing_mode == "gpu_events" and "cuDNN fp32 conv" in result.context.details["math_mode"]
    assert result.enqueue_ms is not None and result.enqueue_ms > 0
    assert result.host_wall_ms is not None and result.host_wall_ms > 0
    assert result.launch_bound == (result.enqueue_ms >= result.median_ms)
    assert result.median_ms <= result.p95_ms <= result.p99_ms


@pytest.mark.cuda
@pytest.mark.ort_provider("cuda")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_ort_cuda_io_binding_matches_eager(precision: str) -> None:
    result = measure(small_net(), backend="ort", device="cuda", input_shape=SHAPE, precision=precision, config=config(layer_profile=True))
    assert result.context.provider == "CUDAExecutionProvider"
    assert result.context.details["io_binding"] == "device buffers"
    assert "max_abs_diff_vs_eager" in result.context.details
    assert result.layers and all("host launch" in layer.kind for layer in result.layers)
    assert result.timing_mode == "gpu_events" and "disable_synchronize_execution_providers=1" in result.context.details["run_options"]


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_engine_precision_cache_and_layers(tmp_path: Path, precision: str) -> None:
    result = measure(
        small_net(), backend="tensorrt", device="cuda", input_shape=SHAPE, precision=precision,
        config=config(workdir=str(tmp_path), layer_profile=True), name="small",
    )
    details = result.context.details
    assert result.context.provider.startswith("TensorRT")
    assert precision in details["engine_precision"]
    engine = Path(details["engine_file"])
    assert engine.exists() and Path(details["timing_cache"]).exists()
    json.loads(engine.with_suffix(".layers.json").read_text())
    assert result.layers and all(layer.kind == "gpu execution" for layer in result.layers)
    again = measure(engine, backend="tensorrt", device="cuda", precision=precision, config=FAST)
    assert again.context.input_shape == SHAPE


@pytest.mark.tensorrt
def test_tensorrt_dynamic_batch_file_runs_inside_its_profile(tmp_path: Path) -> None:
    from profilers._onnx import export_onnx  # noqa: PLC0415

    onnx_path = tmp_path / "dynamic.onnx"
    export_onnx(small_net(), torch.randn(SHAPE), onnx_path, "torchscript", dynamic_batch=True)
    result = measure(onnx_path, backend="tensorrt", device="cuda", input_shape=(4, *SHAPE[1:]), config=config(workdir=str(tmp_path)))
    assert result.context.input_shape == (4, *SHAPE[1:])
    assert "optimization_profile" in result.context.details and result.timing_mode == "gpu_events"


@pytest.mark.tensorrt
@pytest.mark.ort_provider("tensorrt")
def test_ort_tensorrt_execution_provider(tmp_path: Path) -> None:
    result = measure(small_net(), backend="ort", device="cuda", input_shape=SHAPE, config=config(ort_provider="tensorrt", workdir=str(tmp_path)))
    assert result.context.provider == "TensorrtExecutionProvider"
