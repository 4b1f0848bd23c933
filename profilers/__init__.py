"""Latency profilers: time a module or an ONNX/TensorRT file on a real device and runtime.

Every measurement returns a `LatencyResult` (median, mean, p10, p90, p95, p99,
std, cv, runs, raw samples in ms, the `timing_mode` that says what a sample is,
and the `MeasurementContext` that keys it). On CUDA every backend is timed the
same way: GPU time between CUDA events on the work's stream with runs queued
back to back (trtexec's "GPU Compute Time"); the host's enqueue and end-to-end
wall time and a launch-bound flag come beside it.

    from profilers import measure, measure_interleaved, MeasureConfig
    result = measure(model, backend="ort", device="cpu", input_shape=(1, 3, 64, 64))
    print(result.median_ms, result.context.provider)
    # several models round-robin, so slow drift of the machine hits all alike:
    results = measure_interleaved([net_a, net_b], backend="eager", device="cuda:0",
                                  input_shapes=(32, 3, 224, 224), config=MeasureConfig(budget_s=5))

Layout: `api` (measure, measure_interleaved), `_timing` (warm-up, interleaved
adaptive rounds, host enqueue/wall runs), `stats` (median/percentiles/order-statistic
intervals), `result` (the record, timing modes), `config`, `backends/` (eager, ort,
tensorrt: one `Backend.prepare -> Runner` surface; `_ort_probe` says whether an ORT
provider really loads), `_onnx` (export and parity check), `_device` (device
strings, why CUDA is unusable), `_context` (versions, NVML), `_mathmode`
(cudnn.benchmark while measuring, TF32 described, `torch_threads`).
"""

from __future__ import annotations

from profilers._mathmode import torch_threads
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
    "torch_threads",
]
