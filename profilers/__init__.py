"""Latency profilers: time a module or an ONNX/TensorRT file on a real device and runtime.

Every measurement returns a `LatencyResult` (median, mean, p10, p90, std, cv,
runs, raw samples in ms, and the `MeasurementContext` that keys it).

    from profilers import measure, measure_interleaved, MeasureConfig
    result = measure(model, backend="ort", device="cpu", input_shape=(1, 3, 64, 64))
    print(result.median_ms, result.context.provider)
    # several models round-robin, so slow drift of the machine hits all alike:
    results = measure_interleaved([net_a, net_b], backend="eager", device="cuda:0",
                                  input_shapes=(32, 3, 224, 224), config=MeasureConfig(budget_s=5))

Layout: `api` (measure, measure_interleaved), `_timing` (warm-up, interleaved
adaptive rounds), `stats` (median/percentiles/order-statistic intervals),
`result` (the record), `config`, `backends/` (eager, ort, tensorrt: one
`Backend.prepare -> Runner` surface), `_onnx` (export and parity check).
"""

from __future__ import annotations

from profilers.api import available_backends, check, measure, measure_interleaved
from profilers.backends import Backend, Runner, get_backend, list_backends, register_backend
from profilers.config import MeasureConfig
from profilers.errors import ProfilerError
from profilers.result import GpuState, LatencyResult, LayerTime, MeasurementContext

__all__ = [
    "Backend",
    "GpuState",
    "LatencyResult",
    "LayerTime",
    "MeasureConfig",
    "MeasurementContext",
    "ProfilerError",
    "Runner",
    "available_backends",
    "check",
    "get_backend",
    "list_backends",
    "measure",
    "measure_interleaved",
    "register_backend",
]
