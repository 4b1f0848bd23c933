"""The one latency record every backend returns: statistics (ms), raw samples, context.

A latency number without its device, backend, precision, batch size and
threads is not comparable to anything, so the record never travels without
its `MeasurementContext` (docs/design.md#32-latency-result). Everything here is plain JSON
through `to_dict()` / `from_dict()`; no pickles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from profilers.stats import quantile

RESULT_FORMAT = "hwnas.latency"
RESULT_VERSION = 2  # 2 added p95/p99, the timing mode, enqueue and host wall time, launch_bound; 1 still loads
READABLE_VERSIONS = (1, 2)

# What a sample is (every result says which, in `timing_mode`). The GPU number is
# what trtexec calls "GPU Compute Time"; the host number is what a caller waits.
TIMING_MODES: dict[str, str] = {
    "gpu_events": (
        "GPU time between CUDA events recorded on the work's stream around each run, runs queued "
        "back to back (the host never waits between them); when launching is slower than the GPU "
        "(launch_bound) a sample includes the GPU's wait for the next launch"
    ),
    "host_wall": "host wall-clock time (time.perf_counter) around one call that returns when the work is done",
    "unrecorded": "a version-1 record measured on CUDA: how its samples were timed was not recorded",
}


@dataclass(frozen=True)
class GpuState:
    """NVML reading of one GPU at one moment; a field is None when NVML cannot tell."""

    sm_clock_mhz: int | None = None
    memory_clock_mhz: int | None = None
    temperature_c: int | None = None
    power_w: float | None = None
    throttle_reasons: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class LayerTime:
    """Time of one layer or ONNX node (ms, median over the profiling runs).

    `kind` says what was measured: "gpu execution" (TensorRT IProfiler) or
    "cpu execution" / "host launch" (ORT's profiler: under CUDA it sees only the
    kernel launch on the host, not the GPU work).
    """

    name: str
    op_type: str
    median_ms: float
    kind: str


@dataclass(frozen=True)
class MeasurementContext:
    """Everything that keys a latency number (docs/design.md#32-latency-result)."""

    device: str
    device_name: str
    backend: str
    provider: str
    precision: str
    batch_size: int
    input_shape: tuple[int, ...]
    threads: int
    versions: dict[str, str]
    channels_last: bool = False
    cuda_graphs: bool = False
    gpu_before: GpuState | None = None
    gpu_after: GpuState | None = None
    cpu_load: float | None = None  # 1-minute load average per core when timing began
    details: dict[str, str] = field(default_factory=dict)
    timestamp: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasurementContext:
        values = dict(data)
        values["input_shape"] = tuple(values["input_shape"])
        for key in ("gpu_before", "gpu_after"):
            if values.get(key) is not None:
                values[key] = GpuState(**values[key])
        return cls(**values)


@dataclass(frozen=True)
class LatencyResult:
    """Latency of one model on one device/backend/precision/batch, in ms.

    `value_ms` is the statistic named by `statistic` (the median unless the
    config asked for p10); `statistic_reason` says why it is the one to
    compare. `rel_ci` is the half-width of that statistic's 95% confidence
    interval relative to it; `noisy` is True when it stayed above the
    requested bound even after `attempts` measurements.

    `timing_mode` says what the samples are (`TIMING_MODES`). On CUDA,
    `enqueue_ms` is the median host time to enqueue one run and `host_wall_ms`
    the median end-to-end host time of one synchronised run (a second, named
    statistic: what a caller waits); `launch_bound` is True when enqueueing
    took at least as long as the GPU work (trtexec warns of the same: the GPU
    idles between launches, and CUDA graphs help). On the CPU the samples are
    host wall time, `host_wall_ms` is their median and the other two are None.
    """

    model: str
    median_ms: float
    mean_ms: float
    p10_ms: float
    p90_ms: float
    std_ms: float
    cv: float
    runs: int
    samples_ms: tuple[float, ...]
    statistic: str
    statistic_reason: str
    rel_ci: float
    noisy: bool
    attempts: int
    outliers: int
    warmup_runs: int
    context: MeasurementContext
    layers: tuple[LayerTime, ...] | None = None
    p95_ms: float = math.nan
    p99_ms: float = math.nan
    timing_mode: str = "host_wall"
    enqueue_ms: float | None = None
    host_wall_ms: float | None = None
    launch_bound: bool | None = None

    @property
    def value_ms(self) -> float:
        """The reported statistic (ms)."""
        return {"median": self.median_ms, "p10": self.p10_ms}[self.statistic]

    @property
    def throughput(self) -> float:
        """Inputs per second at the reported statistic (batch size / latency)."""
        return self.context.batch_size * 1000.0 / self.value_ms

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = RESULT_FORMAT
        data["version"] = RESULT_VERSION
        data["samples_ms"] = list(self.samples_ms)
        data["context"] = self.context.to_dict()
        data["value_ms"] = self.value_ms
        data["layers"] = None if self.layers is None else [asdict(layer) for layer in self.layers]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyResult:
        if data.get("format") != RESULT_FORMAT or data.get("version") not in READABLE_VERSIONS:
            raise ValueError(
                f"not a {RESULT_FORMAT} v{'/v'.join(map(str, READABLE_VERSIONS))} record: format={data.get('format')!r} "
                f"version={data.get('version')!r}"
            )
        values = {key: value for key, value in data.items() if key not in ("format", "version", "value_ms")}
        values["samples_ms"] = tuple(values["samples_ms"])
        values["context"] = MeasurementContext.from_dict(values["context"])
        if data["version"] == 1:  # fields version 2 added, recomputed or stated as unknown
            values["p95_ms"] = quantile(values["samples_ms"], 0.95)
            values["p99_ms"] = quantile(values["samples_ms"], 0.99)
            values["timing_mode"] = "host_wall" if values["context"].device == "cpu" else "unrecorded"
        if values.get("layers") is not None:
            values["layers"] = tuple(LayerTime(**layer) for layer in values["layers"])
        return cls(**values)


def mostly_launch_bound(flags: Sequence[bool | None]) -> tuple[int, int] | None:
    """(launch-bound, known) when more than half of the known `launch_bound` flags are True, else None.

    A None flag (the CPU, a graph replay, no host runs) is not evidence either way. When most
    timings were launch-bound their GPU time is the host's launch speed, which drifts (the
    H200 run of 2026-11-27: 9.2% retest noise for plain eager against 0.06% for graph
    replays); the profile's and the search's closing notes both say so from this count."""
    known = [flag for flag in flags if isinstance(flag, bool)]
    bound = sum(known)
    if not known or bound * 2 <= len(known):
        return None
    return bound, len(known)

