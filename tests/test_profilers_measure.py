"""Real measurements of tiny models on the CPU: eager and ONNX Runtime, no mocks.

Only sanity of the statistics is asserted (ordering, counts, context), never
a timing: the machine is shared and timings are not reproducible.
"""

from __future__ import annotations

import json
import math

import onnxruntime as ort
import pytest
import torch
from torch import nn

import profilers
from profilers import LatencyResult, MeasureConfig, ProfilerError, measure, measure_interleaved
from profilers._onnx import export_onnx

FAST = MeasureConfig(warmup_runs=2, warmup_s=0.0, min_runs=5, max_runs=40, budget_s=0.2, runs_per_round=3, threads=1)
SHAPE = (1, 3, 32, 32)


def tiny_net(width: int = 8) -> nn.Module:
    torch.manual_seed(width)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, stride=2, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1, groups=width),
        nn.Conv2d(width, 2 * width, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, 10),
    ).eval()


def assert_sane(result: LatencyResult) -> None:
    assert result.runs == len(result.samples_ms) >= FAST.min_runs
    assert all(sample > 0 for sample in result.samples_ms)
    assert min(result.samples_ms) <= result.p10_ms <= result.median_ms <= result.p90_ms <= max(result.samples_ms)
    assert result.std_ms >= 0 and math.isfinite(result.cv)
    assert result.value_ms == result.median_ms and result.statistic == "median"
    assert "median" in result.statistic_reason
    assert result.warmup_runs >= FAST.warmup_runs
    assert result.attempts >= 1 and result.rel_ci >= 0


@pytest.mark.parametrize("backend", ["eager", "ort"])
def test_statistics_are_sane(backend: str) -> None:
    result = measure(tiny_net(), backend=backend, input_shape=SHAPE, config=FAST)
    assert_sane(result)
    assert result.context.backend == backend


def test_context_records_everything_that_keys_the_number() -> None:
    result = measure(tiny_net(), backend="ort", input_shape=(2, 3, 32, 32), config=FAST, name="tiny")
    context = result.context
    assert result.model == "tiny"
    assert context.device == "cpu" and context.device_name
    assert context.provider == "CPUExecutionProvider"
    assert context.precision == "fp32"
    assert context.batch_size == 2 and context.input_shape == (2, 3, 32, 32)
    assert context.threads == 1
    assert {"python", "torch", "onnx", "onnxruntime"} <= set(context.versions)
    assert context.gpu_before is None and context.gpu_after is None  # NVML only on CUDA
    assert context.cpu_load is None or context.cpu_load >= 0
    assert context.details["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert context.details["onnx_exporter"] in ("torchscript", "dynamo")
    assert context.timestamp


def test_result_round_trips_through_json() -> None:
    result = measure(tiny_net(), backend="eager", input_shape=SHAPE, config=FAST)
    again = LatencyResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    with pytest.raises(ValueError, match="hwnas.latency"):
        LatencyResult.from_dict({**result.to_dict(), "version": 99})


def test_ort_outputs_equal_eager(tmp_path) -> None:
    model = tiny_net()
    config = MeasureConfig(**{**FAST.__dict__, "workdir": str(tmp_path)})
    result = measure(model, backend="ort", input_shape=SHAPE, config=config, name="tiny")
    assert float(result.context.details["max_abs_diff_vs_eager"]) < 1e-4
    # Independently of the profiler's own check: run the exported file.
    session = ort.InferenceSession(result.context.details["onnx_file"], providers=["CPUExecutionProvider"])
    x = torch.randn(SHAPE)
    with torch.no_grad():
        expected = model(x).numpy()
    actual = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert actual == pytest.approx(expected, abs=1e-4)


class _TwoOutputs(nn.Module):
    """A DARTS CIFAR stem's shape of result: the same features twice, as (s0, s1)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = tiny_net()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.body(x)
        return y, 2 * y


def test_ort_times_and_checks_every_output_of_a_multi_output_model(tmp_path) -> None:
    config = MeasureConfig(**{**FAST.__dict__, "workdir": str(tmp_path)})
    result = measure(_TwoOutputs().eval(), backend="ort", input_shape=SHAPE, config=config, name="two")
    assert_sane(result)
    assert float(result.context.details["max_abs_diff_vs_eager"]) < 1e-4


class _SameOutputTwice(nn.Module):
    """Exactly a DARTS CIFAR stem's result: one tensor returned twice, which the exporter names once."""

    def __init__(self) -> None:
        super().__init__()
        self.body = tiny_net()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.body(x)
        return y, y


def test_ort_times_a_model_that_returns_one_tensor_twice(tmp_path) -> None:
    config = MeasureConfig(**{**FAST.__dict__, "workdir": str(tmp_path)})
    result = measure(_SameOutputTwice().eval(), backend="ort", input_shape=SHAPE, config=config, name="twice")
    assert float(result.context.details["max_abs_diff_vs_eager"]) < 1e-4


def test_a_wrong_second_output_is_refused() -> None:
    x = torch.ones(2, 3)
    with pytest.raises(ProfilerError, match="differs from eager"):
        profilers._onnx.compare_outputs((x, x), (x, x + 1), "fp32", False, "ONNX Runtime")


def test_onnx_file_is_timed_at_its_own_shape_and_precision(tmp_path) -> None:
    path = tmp_path / "tiny.onnx"
    export_onnx(tiny_net(), torch.randn(1, 3, 40, 40), path, "torchscript")
    result = measure(path, backend="ort", input_shape=SHAPE, config=FAST)
    assert result.context.input_shape == (1, 3, 40, 40) and result.model == "tiny.onnx"
    with pytest.raises(ProfilerError, match="--precision fp32"):
        measure(path, backend="ort", precision="fp16", config=FAST)
    with pytest.raises(ProfilerError, match="--backend ort"):
        measure(path, backend="eager", config=FAST)


def test_interleaved_keeps_order_names_and_shapes() -> None:
    models = [tiny_net(4), tiny_net(8), tiny_net(16)]
    shapes = [(1, 3, 32, 32), (1, 3, 48, 48), (2, 3, 32, 32)]
    results = measure_interleaved(models, backend="eager", input_shapes=shapes, config=FAST, names=["a", "b", "c"])
    assert [r.model for r in results] == ["a", "b", "c"]
    assert [r.context.input_shape for r in results] == shapes
    for result in results:
        assert_sane(result)
    assert measure_interleaved(models[:2], backend="ort", input_shapes=SHAPE, config=FAST)[1].context.input_shape == SHAPE


def test_eager_reduced_precision_and_channels_last_leave_the_model_alone() -> None:
    model = tiny_net()
    config = MeasureConfig(**{**FAST.__dict__, "channels_last": True})
    result = measure(model, backend="eager", input_shape=SHAPE, precision="bf16", config=config)
    assert result.context.precision == "bf16" and result.context.channels_last
    assert next(model.parameters()).dtype == torch.float32  # the caller's module was not cast


def test_p10_statistic_and_layer_profile() -> None:
    config = MeasureConfig(**{**FAST.__dict__, "statistic": "p10", "layer_profile": True})
    result = measure(tiny_net(), backend="ort", input_shape=SHAPE, config=config)
    assert result.value_ms == result.p10_ms and "p10" in result.statistic_reason
    assert result.layers and all(layer.kind == "cpu execution" and layer.median_ms >= 0 for layer in result.layers)
    assert {layer.op_type for layer in result.layers} & {"Conv", "FusedConv"}


def test_available_backends_on_cpu() -> None:
    backends = profilers.available_backends("cpu")
    assert backends["eager"] is None and backends["ort"] is None
    assert "GPU" in backends["tensorrt"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "nope"}, "unknown backend"),
        ({"device": "tpu"}, "unknown device"),
        ({"device": "cuda:99"}, "cuda"),
        ({"backend": "ort", "precision": "bf16"}, "--precision"),
        ({"precision": "fp8"}, "unknown precision"),
        ({"backend": "tensorrt"}, "tensorrt"),
        ({"input_shape": (0, 3, 32, 32)}, "positive"),
    ],
)
def test_bad_requests_raise_profiler_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ProfilerError, match=message):
        measure(tiny_net(), **{"input_shape": SHAPE, "config": FAST, **kwargs})


def test_config_validation() -> None:
    with pytest.raises(ProfilerError, match="min_runs"):
        MeasureConfig(min_runs=10, max_runs=5)
    with pytest.raises(ProfilerError, match="statistic"):
        MeasureConfig(statistic="mean")
    with pytest.raises(ProfilerError, match="threads"):
        MeasureConfig(threads=0)


def test_dynamo_exporter_is_available_on_request() -> None:
    config = MeasureConfig(**{**FAST.__dict__, "onnx_exporter": "dynamo"})
    result = measure(tiny_net(), backend="ort", input_shape=SHAPE, config=config)
    assert result.context.details["onnx_exporter"] == "dynamo"
    assert float(result.context.details["max_abs_diff_vs_eager"]) < 1e-4
