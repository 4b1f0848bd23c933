"""How long and how carefully to time: `MeasureConfig`.

The defaults follow docs/design.md#5-measuring-latency: warm up for at least 10 runs *and*
300 ms (first calls allocate, autotune and fault pages in), then time in
rounds until the median is known to +-1% (95% confidence) or the time budget
is spent. Tests and quick checks shrink the counts; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from profilers.errors import ProfilerError

STATISTICS: dict[str, str] = {
    "median": (
        "median: robust to the outliers a shared machine adds (descheduling, a neighbour's burst) "
        "and stable between passes; mean and p10/p90 are kept beside it"
    ),
    "p10": (
        "p10: closest to the undisturbed latency when the machine is shared; a little more "
        "repeatable than the median under slow drift, but optimistic for a busy deployment"
    ),
}

ONNX_EXPORTERS = ("torchscript", "dynamo")
ORT_PROVIDERS = ("cpu", "cuda", "tensorrt")


@dataclass(frozen=True)
class MeasureConfig:
    """Timing settings shared by every backend (times in seconds, latencies in ms).

    - warmup_runs / warmup_s: untimed runs first, until *both* are reached.
    - min_runs / max_runs: bounds on the timed runs per model and attempt.
    - target_rel_ci: stop once the reported statistic's 95% confidence interval
      half-width is below this fraction of it (0.01 = +-1%) ...
    - budget_s: ... or once this many seconds per model are spent timing.
    - runs_per_round: consecutive timed runs of one model before the next model's
      turn (interleaved measurement). Few runs per turn make rounds short, so
      drift is shared finely; with several models each turn starts with one
      untimed run so the switch between models (cold caches) is not timed.
    - remeasure: extra attempts for results whose interval stayed above the
      bound, timed together in a later window; their samples are pooled.
    - statistic: "median" (default) or "p10"; see `STATISTICS` for why.
    - host_runs: on CUDA, this many extra runs per model, each waited for, give
      the end-to-end host wall time and the enqueue (launch) time beside the GPU
      samples (`LatencyResult.host_wall_ms`, `enqueue_ms`, `launch_bound`); 0 skips them.
    - threads: CPU threads for eager (torch.set_num_threads) and ORT
      (intra-op threads); None keeps torch's current setting. Always recorded.
    - channels_last / cuda_graphs: eager-only execution options.
    - onnx_exporter: "torchscript" (default) or "dynamo"; see `profilers._onnx`.
    - ort_provider: "cpu", "cuda" or "tensorrt" (ORT's TensorRT EP); None picks
      CPU on cpu and CUDA on cuda.
    - verify_outputs: compare ONNX Runtime / TensorRT outputs with eager.
    - layer_profile: also record per-layer times in a separate profiling run.
    - workdir: where ONNX files, engines, inspector JSON and the TensorRT timing
      cache are written; None = a temporary folder per measurement (the timing
      cache then lives in ~/.cache/hwnas).
    - seed: seed of the random (never zero) inputs.
    """

    warmup_runs: int = 10
    warmup_s: float = 0.3
    min_runs: int = 20
    max_runs: int = 2000
    target_rel_ci: float = 0.01
    budget_s: float = 10.0
    runs_per_round: int = 2
    remeasure: int = 1
    statistic: str = "median"
    host_runs: int = 20
    threads: int | None = None
    channels_last: bool = False
    cuda_graphs: bool = False
    onnx_exporter: str = "torchscript"
    ort_provider: str | None = None
    verify_outputs: bool = True
    layer_profile: bool = False
    workdir: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ProfilerError(f"MeasureConfig.{f.name} is {value}; it must be >= 0")
        if self.min_runs < 1 or self.max_runs < self.min_runs:
            raise ProfilerError(
                f"MeasureConfig needs 1 <= min_runs <= max_runs (got {self.min_runs}, {self.max_runs})"
            )
        if self.runs_per_round < 1:
            raise ProfilerError("MeasureConfig.runs_per_round must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ProfilerError(f"MeasureConfig.threads is {self.threads}; use a positive count or None")
        if self.statistic not in STATISTICS:
            raise ProfilerError(f"unknown statistic {self.statistic!r}; choose one of {sorted(STATISTICS)}")
        if self.onnx_exporter not in ONNX_EXPORTERS:
            raise ProfilerError(f"unknown ONNX exporter {self.onnx_exporter!r}; choose one of {ONNX_EXPORTERS}")
        if self.ort_provider is not None and self.ort_provider not in ORT_PROVIDERS:
            raise ProfilerError(f"unknown ORT provider {self.ort_provider!r}; choose one of {ORT_PROVIDERS}")

    @property
    def quantile(self) -> float:
        """The quantile level of the reported statistic (0.5 or 0.1)."""
        return {"median": 0.5, "p10": 0.1}[self.statistic]
