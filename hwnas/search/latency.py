"""True latency in the loop: measure sampled architectures, predict with the linear model.

UNAS Sec. 5 measures each sampled network on the device the search runs on;
`LatencyOracle` does that through `profilers.measure` on the target device,
backend, batch size and precision, memoised per architecture (a network is
timed once per search, however often it is drawn again) and appended to a
JSON Lines file in the run directory (with whether it was launch-bound and, for
TensorRT, how long its engine took to build). For ONNX backends and a space whose
networks are chains (proxyless), a sampled network's ONNX graph is joined from
per-layer parts exported once (`profilers.onnx_parts`: ~3 ms instead of a
~0.1 s trace per sample, the same graph and outputs); the found network and
trained networks are exported whole, with the parity check. TensorRT builds one
engine per sampled network, cached by architecture with one shared timing cache
(`hwnas.search.engines`).

Eager on CUDA is timed as CUDA-graph replays by default (`default_cuda_graphs`
says why); `SearchTiming.closing_lines` says, at the end of a search, when most
sampled networks were launch-bound and what to do about it.

The linear model g(z) = bias + sum coef * z (the device profile's lut.json,
`lut`) is RELAX's control variate and the predicted / expected latency shown
during search. Without a profile, `OnlineSurrogate` refits g by ridge
regression on the latencies measured so far (before each new sample is
drawn, so the control variate never depends on the value it corrects:
RELAX stays unbiased).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from hwnas.errors import UsageError
from hwnas.estimators import LinearSurrogate
from hwnas.search.engines import EngineCache, engine_key
from lut.models import fit_ridge
from lut.table import Expectation, LatencyTable, cuda_graphs_refusal, load
from profilers import MeasureConfig, measure
from profilers.onnx_parts import OnnxParts
from profilers.result import LatencyResult, mostly_launch_bound
from search_spaces import Architecture, SearchSpace
from search_spaces.files import append_jsonl

SEARCH_MEASURE = MeasureConfig(
    warmup_runs=3, warmup_s=0.02, min_runs=10, max_runs=60, budget_s=0.15, remeasure=0, verify_outputs=False,
    host_runs=0,
)
"""Per sampled network during search: a median good to a few percent in well under a second. No extra
synchronised host-wall runs on CUDA (``host_runs``): the search uses the GPU-time median only, and 20
waited-for runs per sample would cost more than the timing itself (the final network keeps them)."""

ONNX_BACKENDS = ("ort", "tensorrt")
"""Backends that time an ONNX graph: a sampled network's graph can be joined from exported parts."""

FINAL_MEASURE = MeasureConfig(warmup_runs=10, warmup_s=0.3, min_runs=30, max_runs=2000, budget_s=3.0, remeasure=1)
"""The found network: the full protocol (docs/design.md#5-measuring-latency), parity check included."""


@dataclass(frozen=True)
class LatencyConditions:
    """Where and how latency is measured; every number of a search is keyed by this.

    cuda_graphs: eager on CUDA timed as CUDA-graph replays, the GPU's work without the host's
    launches. Another number than plain eager for a launch-bound network (on the H200, 2026-11-27:
    mobilenet_v2 at batch 32 replays in 2.54 ms while plain eager read 2.75 to 4.36 ms as the host's
    launch speed drifted), so it keys the device profile like precision: a search timing plain eager
    refuses a graph-replay profile, and the reverse. The search's default on CUDA is graph replays
    (`default_cuda_graphs`); the dataclass default stays False, what every CPU condition is.
    """

    device: str = "cpu"
    backend: str = "eager"
    batch_size: int = 1
    precision: str = "fp32"
    threads: int | None = None
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        refusal = cuda_graphs_refusal(self.device, self.backend) if self.cuda_graphs else None
        if refusal is not None:
            raise ValueError(f"cuda_graphs: {refusal}")

    def measure_config(self, base: MeasureConfig) -> MeasureConfig:
        """`base` with these conditions' threads and timing mode (every measurement under them)."""
        return replace(base, threads=self.threads, cuda_graphs=self.cuda_graphs)

    def expectation(self, space: SearchSpace) -> Expectation:
        """What a LUT must have been measured for to serve this search."""
        return Expectation(
            space=space.name,
            space_signature=space.signature(),
            device=self.device,
            backend=self.backend,
            batch_size=self.batch_size,
            precision=self.precision,
            cuda_graphs=self.cuda_graphs,
        )


def default_cuda_graphs(device: str, backend: str) -> bool:
    """Whether a search times eager as CUDA-graph replays when the user does not say: yes wherever it
    can (eager on a CUDA device), never elsewhere (the CPU keeps plain timing, as before).

    Chosen by measurement (docs/benchmark-log.md, "GPU suite", H200, 2026-11-27): plain eager at batch
    32 was launch-bound for every small network, so its CUDA-event time followed the host's launch
    speed, which drifted 35-61% within one call; a network's retest differed by 9.2% (MAPE, 12
    networks) against 0.06% as graph replays, which also ranked every retest as its first pass did,
    and took 17 s against 30 s for the same profile. A deployment that cares about latency at small
    batches replays graphs (or builds a TensorRT engine), so graph replays are also the number users
    deploy; `--no-cuda-graphs` times plain eager for those who launch op by op."""
    return cuda_graphs_refusal(device, backend) is None


def resolve_cuda_graphs(requested: bool | None, device: str, backend: str) -> bool:
    """The search's timing mode from `--cuda-graphs` (True), `--no-cuda-graphs` (False) or neither (None:
    `default_cuda_graphs`). Asking for graph replays where nothing replays is refused in one line."""
    if requested is None:
        return default_cuda_graphs(device, backend)
    if requested and cuda_graphs_refusal(device, backend) is not None:
        raise UsageError(f"--cuda-graphs: CUDA-graph replays time eager PyTorch on a CUDA device, not {backend} on {device}; "
                         "drop the flag, or use --latency-device cuda:N --backend eager")
    return requested


@dataclass(frozen=True)
class SampleTiming:
    """One sampled network's timing as the search keeps it (ms, seconds).

    launch_bound: the profiler's flag (host enqueue >= GPU time; None where it is not known: the
    CPU, graph replays, no host runs). build_s: seconds this search spent building the network's
    TensorRT engine (0.0 when the engine cache had it, or for other backends)."""

    latency_ms: float
    cv: float
    runs: int
    launch_bound: bool | None = None
    build_s: float = 0.0

    @classmethod
    def of(cls, result: LatencyResult, build_s: float = 0.0) -> SampleTiming:
        return cls(result.value_ms, result.cv, result.runs, result.launch_bound, build_s)

    def fields(self) -> dict[str, float | int | bool | None]:
        return asdict(self)


@dataclass(frozen=True)
class SearchTiming:
    """What the search's timings add up to, for its closing lines and its summary."""

    conditions: LatencyConditions
    timings: tuple[SampleTiming, ...]
    engine_builds: int = 0
    engine_hits: int = 0

    @property
    def build_seconds(self) -> float:
        return sum(t.build_s for t in self.timings)

    def launch_bound_note(self) -> str | None:
        """The advice when most sampled networks were launch-bound (None otherwise)."""
        share = mostly_launch_bound([t.launch_bound for t in self.timings])
        if share is None:
            return None
        bound, known = share
        c = self.conditions
        fixes = ("time graph replays (drop --no-cuda-graphs)" if c.backend == "eager" and not c.cuda_graphs
                 else "time a TensorRT engine (--backend tensorrt)")
        return (f"{bound} of {known} sampled networks were launch-bound (host enqueue >= GPU time): the search "
                "optimised the host's launch speed, which drifts, not the GPU's work; "
                f"{fixes}, or search at a larger --latency-batch-size")

    def closing_lines(self) -> list[str]:
        lines = []
        if self.engine_builds or self.engine_hits:
            lines.append(f"TensorRT engines: {self.engine_builds} built in {self.build_seconds:.1f} s, "
                         f"{self.engine_hits} from the engine cache")
        note = self.launch_bound_note()
        if note is not None:
            lines.append(f"note: {note}")
        return lines


def arch_key(space: SearchSpace, choices: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(choices[d.name] for d in space.decisions)


class SampleTimer(Protocol):
    """Times sampled networks away from the oracle: the latency worker process
    (`hwnas.search.latency_worker.LatencyWorker`, which builds its own oracle from this module, so
    this module names only what it calls)."""

    def submit(self, key: tuple[str, ...], choices: dict[str, str]) -> None: ...

    def result(self, key: tuple[str, ...]) -> SampleTiming: ...


class LatencyOracle:
    """Measured latency (ms) of architectures of one space under one set of conditions, memoised."""

    def __init__(
        self,
        space: SearchSpace,
        conditions: LatencyConditions,
        *,
        config: MeasureConfig = SEARCH_MEASURE,
        log_path: Path | None = None,
        engine_dir: Path | None = None,
    ) -> None:
        """engine_dir: where TensorRT engines of sampled networks and their timing cache are kept
        (`hwnas.search.engines`; None: ~/.cache/hwnas/engines, shared by every search)."""
        self.space = space
        self.conditions = conditions
        self.config = conditions.measure_config(config)
        self.log_path = log_path
        self._memo: dict[tuple[str, ...], float] = {}
        self.timings: list[SampleTiming] = []
        self._reported = 0
        """Every sampled network timed by this oracle, in order (the closing lines' evidence)."""
        self.hits = 0
        self.seconds = 0.0
        self.worker: SampleTimer | None = None
        """Set by the search loop to time in a separate process (`hwnas.search.latency_worker`)."""
        self.parts = (OnnxParts(conditions.device, conditions.precision, self.config.onnx_exporter, seed=self.config.seed)
                      if conditions.backend in ONNX_BACKENDS else None)
        """Exported per-layer ONNX parts of sampled networks (None: eager, which times the module itself)."""
        self.engines = (EngineCache(engine_dir if engine_dir is not None else _default_engine_dir())
                        if conditions.backend == "tensorrt" else None)

    def __len__(self) -> int:
        return len(self._memo)

    def measured(self) -> list[tuple[dict[str, str], float]]:
        """Every (choices, ms) measured so far, in order."""
        names = [d.name for d in self.space.decisions]
        return [(dict(zip(names, key, strict=True)), ms) for key, ms in self._memo.items()]

    def request(self, arch: Architecture) -> None:
        """Start timing `arch` in the latency worker, if there is one and it is not known yet."""
        key = arch_key(self.space, arch.choices)
        if self.worker is not None and key not in self._memo:
            self.worker.submit(key, dict(arch.choices))

    def latency_ms(self, arch: Architecture) -> float:
        """The measured latency of `arch` (ms): timed on first request, remembered after.

        With a worker, `request` started the timing and this waits for it
        (`seconds` counts the wait, the only time the search loses).
        """
        key = arch_key(self.space, arch.choices)
        if key in self._memo:
            self.hits += 1
            return self._memo[key]
        started = time.perf_counter()
        if self.worker is not None:
            self.worker.submit(key, dict(arch.choices))
            timing = self.worker.result(key)
        else:
            timing = self.time_sample(arch)
        self.seconds += time.perf_counter() - started
        self._memo[key] = timing.latency_ms
        self.timings.append(timing)
        if self.log_path is not None:
            append_jsonl(self.log_path, [{"choices": dict(arch.choices), **timing.fields()}], sync=False)
        return timing.latency_ms

    def take_build_seconds(self) -> float | None:
        """TensorRT engine build seconds of the networks timed since the last call (None: not TensorRT):
        each step's share, for metrics.jsonl."""
        if self.engines is None:
            return None
        new, self._reported = self.timings[self._reported:], len(self.timings)
        return sum(t.build_s for t in new)

    def summary(self) -> SearchTiming:
        """What this oracle's timings add up to (closing lines, summary)."""
        builds = sum(1 for t in self.timings if t.build_s > 0)
        return SearchTiming(self.conditions, tuple(self.timings), builds,
                            len(self.timings) - builds if self.engines is not None else 0)

    def time_sample(self, arch: Architecture) -> SampleTiming:
        """One sampled network timed as the search times it (in line or in the worker): TensorRT
        through its cached engine (`sample_engine`), every other backend by `measure_sample`."""
        if self.engines is None:
            return SampleTiming.of(self.measure_sample(arch))
        engine, build_s = self.sample_engine(arch)
        with tempfile.TemporaryDirectory(prefix="hwnas-sample-") as scratch:
            return SampleTiming.of(self._measure(engine, replace(self.config, workdir=scratch), "sample"), build_s)

    def measure_sample(self, arch: Architecture) -> LatencyResult:
        """One fresh measurement of a sampled network under the search's budget (in line or in the
        worker): its ONNX graph joined from parts where it can be, else `measure`."""
        with tempfile.TemporaryDirectory(prefix="hwnas-sample-") as scratch:
            path = self._joined_onnx(arch, Path(scratch))
            if path is None:
                return self.measure(arch, self.config)
            return self._measure(path, replace(self.config, workdir=scratch), "sample")

    def _joined_onnx(self, arch: Architecture, folder: Path) -> Path | None:
        """`arch`'s ONNX graph joined from the exported parts, written to `folder` (None: not a chain)."""
        chain = self.space.chain(arch, self.conditions.batch_size) if self.parts is not None else None
        if chain is None:
            return None
        path = folder / "sample.onnx"
        path.write_bytes(self.parts.model([(part.name, part.input_shape, part.build) for part in chain]).SerializeToString())
        return path

    def sample_engine(self, arch: Architecture) -> tuple[Path, float]:
        """(engine file, build seconds) of `arch` under these conditions: from the engine cache, or built
        now from its ONNX graph by the TensorRT backend's `build_engine` with the shared timing cache."""
        from profilers._onnx import export_onnx  # noqa: PLC0415 - TensorRT searches only
        from profilers.backends.base import PRECISIONS, module_copy, random_input  # noqa: PLC0415
        from profilers.backends.tensorrt import ShapeRange, build_engine, import_tensorrt, timing_cache_path  # noqa: PLC0415

        assert self.engines is not None
        trt = import_tensorrt()
        device = torch.device(self.conditions.device)
        timing_cache = timing_cache_path(self.engines.directory, trt.__version__, device)
        shape = tuple(self.space.input_shape(self.conditions.batch_size))

        def build(path: Path) -> None:
            with tempfile.TemporaryDirectory(prefix="hwnas-engine-") as scratch:
                onnx = self._joined_onnx(arch, Path(scratch))
                if onnx is None:  # not a chain of parts: export the whole network, as the backend would
                    onnx, precision = Path(scratch) / "sample.onnx", self.conditions.precision
                    network = module_copy(self.space.build(arch), device, precision)
                    example = random_input(shape, PRECISIONS[precision], device, self.config.seed)
                    export_onnx(network, example, onnx, self.config.onnx_exporter)
                build_engine(trt, onnx, path, timing_cache, trt.Logger(trt.Logger.WARNING), device, ShapeRange.fixed(shape))

        return self.engines.get(engine_key(arch, self.conditions, timing_cache.name), build)

    def prepare_parts(self) -> int:
        """Export every part a sampled network can use (the worker does it while the supernet warms
        up, so no architecture step waits for a trace); returns how many parts there are."""
        if self.parts is None:
            return 0
        widest = max(len(d.choices) for d in self.space.decisions)
        for index in range(widest):  # together these architectures use every choice of every decision
            arch = self.space.architecture({d.name: d.choices[index % len(d.choices)] for d in self.space.decisions})
            chain = self.space.chain(arch, self.conditions.batch_size)
            if chain is None:
                return 0
            for part in chain:
                self.parts.part(part.name, part.input_shape, part.build)
        return len(self.parts)

    def measure(self, arch: Architecture, config: MeasureConfig, *, workdir: Path | None = None,
                name: str | None = None, model: torch.nn.Module | None = None) -> LatencyResult:
        """One fresh measurement of `arch` (or of `model`, its trained network) under these conditions,
        the whole network exported (with the parity check where `config` asks for it)."""
        network = model if model is not None else self.space.build(arch)
        network.eval()
        if workdir is not None:
            config = replace(config, workdir=str(workdir))
        return self._measure(network, config, name)

    def _measure(self, model: torch.nn.Module | Path, config: MeasureConfig, name: str | None) -> LatencyResult:
        return measure(
            model,
            backend=self.conditions.backend,
            device=self.conditions.device,
            input_shape=tuple(self.space.input_shape(self.conditions.batch_size)),
            precision=self.conditions.precision,
            config=self.conditions.measure_config(config),
            name=name,
        )


def _default_engine_dir() -> Path:
    from profilers.backends.tensorrt import DEFAULT_CACHE_DIR  # noqa: PLC0415 - TensorRT searches only

    return DEFAULT_CACHE_DIR / "engines"


def surrogate_from_table(table: LatencyTable, space: SearchSpace) -> LinearSurrogate:
    """The fitted linear model of a device profile as per-decision coefficient tensors (ms)."""
    if table.model is None:
        raise ValueError("the LUT has no fitted model")
    coefficients = {
        d.name: torch.tensor([table.model.coefficient(d.name, c) for c in d.choices], dtype=torch.float64)
        for d in space.decisions
    }
    return LinearSurrogate(bias=float(table.model.bias_ms), coefficients=coefficients)


def surrogate_range(model: LinearSurrogate) -> tuple[float, float]:
    """(fastest, slowest) prediction in ms over every architecture: per decision the smallest
    / largest coefficient (decisions are independent in a linear model)."""
    coefficients = model.coefficients.values() if isinstance(model.coefficients, Mapping) else model.coefficients
    low = model.bias + sum(float(c.min()) for c in coefficients)
    high = model.bias + sum(float(c.max()) for c in coefficients)
    return low, high


def load_surrogate(path: str | Path, space: SearchSpace, conditions: LatencyConditions) -> tuple[LatencyTable, LinearSurrogate]:
    """Load a profile's lut.json, refusing one measured for another space or conditions."""
    table = load(path, conditions.expectation(space))
    return table, surrogate_from_table(table, space)


class OnlineSurrogate:
    """g refitted by ridge on the oracle's measurements so far; a constant until there are enough."""

    MIN_SAMPLES = 5

    def __init__(self, space: SearchSpace, oracle: LatencyOracle, refit_every: int = 5) -> None:
        self.space = space
        self.oracle = oracle
        self.refit_every = refit_every
        self._fitted_at = -1
        self.current = LinearSurrogate(0.0, {d.name: torch.zeros(len(d.choices), dtype=torch.float64) for d in space.decisions})

    def update(self) -> LinearSurrogate:
        """Refit if enough new measurements arrived; returns the model to use for the next sample."""
        measured = self.oracle.measured()
        count = len(measured)
        if count == 0 or count == self._fitted_at or (self._fitted_at >= 0 and count - self._fitted_at < self.refit_every):
            return self.current
        y = np.array([ms for _, ms in measured])
        if count < self.MIN_SAMPLES:
            self.current = LinearSurrogate(float(y.mean()), self.current.coefficients)
        else:
            z = np.stack([self.space.encode(self.space.architecture(choices)) for choices, _ in measured])
            fit = fit_ridge(z, y)
            chunks = np.split(fit.coef_ms, np.cumsum([len(d.choices) for d in self.space.decisions])[:-1])
            self.current = LinearSurrogate(
                fit.bias_ms, {d.name: torch.tensor(c, dtype=torch.float64) for d, c in zip(self.space.decisions, chunks, strict=True)}
            )
        self._fitted_at = count
        return self.current
