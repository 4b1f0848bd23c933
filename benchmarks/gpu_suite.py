"""Every GPU-dependent check of hwnas in one command, under one deadline of 7.5 minutes of steps (an 8-minute
GPU lease; it has never run on an H100).

    python benchmarks/gpu_suite.py [--out gpu_suite] [--quick] [--dry-run] [--allow-missing]
    python benchmarks/gpu_suite.py --report-only --json benchmarks/results/gpu_suite/<run>.json

Steps run in order under one deadline and end in one summary table. Each
step's numbers (with their measurement context) are written to
`OUT/NN-<step>.json` the moment the step ends, and `OUT/suite.json` (every
step so far) is rewritten then too, so a step that fails or a Ctrl-C keeps
everything measured before it; an interrupted step keeps what it had
measured (status "interrupted", exit 130). Inside a step every variant is
caught on its own: an out-of-memory, a graph capture or an ONNX Runtime
native error fails that variant, not the rows already measured. A step or
variant that cannot run here for want of time is a skip with its reason; a
missing runtime is a failure unless `--allow-missing` (below); the exit code
is 0 when nothing failed.

Every eager timing is done twice, plain and as a CUDA-graph replay: at small
batches GPUs are launch-bound and users need both. Each row gives the median
GPU time (CUDA events, trtexec's "GPU Compute Time"), p90/p95/p99, the host's
enqueue and end-to-end wall time, and whether the run was launch-bound.

Without a CUDA GPU the suite names why (torch's CUDA against the driver's, or
no driver) and exits 3: a GPU check that silently passes without a GPU checks
nothing. `--dry-run` walks every step without measuring, on any machine: it
records what each step would run and what it would skip, and writes the
per-step JSON. The whole suite's record (command, commit, machine, every
step, every table) also goes to `--json`, by default
`benchmarks/results/gpu_suite/<gpu name or dry-run>.json`; `--report-only`
prints its tables again from that file.

A runtime the suite exists to check but cannot find here (ONNX Runtime's CUDA
provider, TensorRT) FAILS its step and the suite (exit 1), so a GPU machine
without them cannot pass by skipping; `--allow-missing` makes such a runtime a
skip with its reason. The UNAS Table 3 step reports the Kendall tau of its
measured order against the paper's, not a bare "ok". Later issues add a step by writing `step(context) ->
StepOutcome` and appending it to `STEPS`.

What #27 item 5 asks of one GPU call, and how each step is sized to fit 8 minutes on one H100 or H200
(`GPU_SCALE`; the seconds are estimates from the H200 runs of 2026-11-27, docs/benchmark-log.md "GPU suite"):

1. timings: torchvision references at batch 32, eager plain and as graph replays, ORT's CUDA provider and
   TensorRT fp32/fp16 rows where they load (~40 s: 2.5 s per variant, engines built once).
2. UNAS Table 3: the paper's set as graph replays at batch 32 and batch 1, each with Kendall tau against
   the paper's order (~30 s: 8 networks x 2 batches x 1.2 s, interleaved).
3. supernet: the single-path supernet's weight step at 224x224 against the standalone sampled network's
   training step, time and memory (`supernet_cost`; ~15 s: 3 + 8 steps of each variant).
4. profile: a graph-replay device profile of 400 networks (batch 32, 224x224, 0.12 s per network, the op
   table at 0.05 s per op), fitted, with the latency-model comparison table (~150 s; graph replays have a
   0.06% retest floor, so short budgets cost no accuracy).
5. search: a 3-minute `hwnas search` (the default run: profile 30 networks, 300 steps after 150 warm-up
   steps with graph-replay latency in the loop, train, export) and its derived network's measured
   latency against the target (~180 s; a search step plus an in-line graph replay is ~0.4 s on a GPU).
6. GPU tests, then export: whatever time is left (each caps itself by `seconds_left`).

`--device cpu` runs the same steps at `CPU_SCALE` (tiny inputs, a few networks, plain timing: the CPU has
no graph replays), so every step's code is exercised without a GPU; its numbers are not evidence.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import add_result_options, json_path, machine, provenance, report_only, table, write_json  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEADLINE_S = 450  # 7.5 minutes of steps: with start-up and imports the whole call stays under 8
EXIT_NO_GPU = 3
EXIT_INTERRUPTED = 130
GPU_MARKERS = "cuda or tensorrt or ort_provider"
BATCH_SHAPE = (32, 3, 224, 224)


@dataclass(frozen=True)
class Scale:
    """How big each step is on the device it runs on (the module docstring gives the GPU budget)."""

    timing_shape: tuple[int, int, int, int]
    unas_batches: tuple[int, ...]
    unas_budget_s: float
    supernet_side: int
    supernet_batch: int
    supernet_steps: int
    profile_networks: int
    profile_side: int
    profile_batch: int
    profile_budget_s: float
    search_steps: int
    search_warmup: int
    search_train_steps: int


GPU_SCALE = Scale(timing_shape=BATCH_SHAPE, unas_batches=(32, 1), unas_budget_s=1.2, supernet_side=224, supernet_batch=32,
                  supernet_steps=8, profile_networks=400, profile_side=224, profile_batch=32, profile_budget_s=0.12,
                  search_steps=300, search_warmup=150, search_train_steps=150)
CPU_SCALE = Scale(timing_shape=(1, 3, 64, 64), unas_batches=(2, 1), unas_budget_s=0.3, supernet_side=224, supernet_batch=2,
                  supernet_steps=2, profile_networks=24, profile_side=32, profile_batch=1, profile_budget_s=0.05,
                  search_steps=4, search_warmup=2, search_train_steps=2)
"""`--device cpu`: the same steps on inputs small enough for a shared 2-core machine (minutes, not hours)."""


@dataclass
class SuiteContext:
    """What steps share: the device, the deadline, the options, and the running step's data so far
    (`data`: a step puts its rows there as it measures them, so an interrupted step keeps them)."""

    device: str
    deadline: float
    quick: bool = False
    dry_run: bool = False
    allow_missing: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def scale(self) -> Scale:
        return GPU_SCALE if self.device.startswith("cuda") else CPU_SCALE

    @property
    def graphs(self) -> bool:
        """Time eager as CUDA-graph replays (the search's default on CUDA); the CPU times plain."""
        return self.device.startswith("cuda")
    """The suite's record: `table` puts every printed table in `record["tables"]`."""

    def missing(self, runtime: str, reason: str) -> str | None:
        """What to do about a runtime the suite checks but cannot find: None to skip it (with
        `--allow-missing`), else the failure message naming the way out."""
        if self.allow_missing:
            return None
        return f"{runtime} is missing: {reason} (install it, or give --allow-missing to skip it)"

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()


@dataclass
class StepOutcome:
    status: str  # "ok", "failed" or "skipped" ("interrupted" is the suite's, on Ctrl-C)
    summary: str
    data: dict[str, Any] = field(default_factory=dict)


Step = Callable[[SuiteContext], StepOutcome]


RUNTIMES = ("ort", "tensorrt")
"""The backends whose absence on a GPU machine fails the suite unless --allow-missing (ORT's CUDA provider,
TensorRT); eager is torch's own, and without CUDA the suite stops before any step."""


def _backend_reasons(device: str) -> dict[str, str | None]:
    from profilers import available_backends  # noqa: PLC0415

    try:
        return available_backends(device)
    except Exception as error:  # noqa: BLE001 - a device string that does not parse here: every backend is out
        return {name: str(error) for name in ("eager", "ort", "tensorrt")}


def _row(name: str, label: str, precision: str, result: Any) -> list[Any]:
    """One table row: the GPU statistics, the host's view beside them, the GPU's state."""
    before, after = result.context.gpu_before, result.context.gpu_after
    host = "-" if result.host_wall_ms is None else f"{result.host_wall_ms:.3f}"
    enqueue = "-" if result.enqueue_ms is None else f"{result.enqueue_ms:.3f}"
    return [name, label, precision, result.median_ms, f"{result.p90_ms:.2f}/{result.p95_ms:.2f}/{result.p99_ms:.2f}",
            enqueue, host, {True: "yes", False: "no", None: "-"}[result.launch_bound], result.throughput,
            f"{getattr(before, 'sm_clock_mhz', None)}->{getattr(after, 'sm_clock_mhz', None)}",
            f"{getattr(before, 'temperature_c', None)}->{getattr(after, 'temperature_c', None)}"]


ROW_COLUMNS = ["model", "backend", "precision", "median GPU ms", "p90/p95/p99 ms", "enqueue ms", "host wall ms",
               "launch-bound", "images/s", "SM MHz", "temp C"]


def gpu_tests(context: SuiteContext) -> StepOutcome:
    """`pytest -m "cuda or tensorrt or ort_provider"`: every test that needs a GPU, TensorRT or an ORT GPU provider."""
    command = [sys.executable, "-m", "pytest", "-m", GPU_MARKERS, "-q", "-rs", "-p", "no:cacheprovider"]
    if context.dry_run:
        command.append("--collect-only")
    timeout = max(30.0, min(240.0, context.seconds_left() - 240))
    try:
        completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return StepOutcome("failed", f"pytest ran past its {timeout:.0f} s share of the suite")
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else completed.stderr.strip()[-200:]
    data = {"returncode": completed.returncode, "output_tail": "\n".join(lines[-40:])}
    if context.dry_run:
        return StepOutcome("skipped", f"dry run, collected only: {summary}", data)
    status = "ok" if completed.returncode == 0 else "failed"
    if completed.returncode == 0 and re.search(r"\bpassed\b", summary) is None:
        status = "skipped"  # every GPU test skipped: nothing was checked
    return StepOutcome(status, summary, data)


# (backend, precision, options): eager twice, plain and as a CUDA-graph replay.
TIMING_VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("eager", "fp32", {}), ("eager", "fp32", {"cuda_graphs": True}),
    ("eager", "fp16", {}), ("eager", "fp16", {"cuda_graphs": True}),
    ("ort", "fp32", {}), ("tensorrt", "fp32", {}), ("tensorrt", "fp16", {}),
]


def gpu_timings(context: SuiteContext) -> StepOutcome:
    """Batch-32 latency of torchvision reference models with every backend that works here (ORT CUDA and
    TensorRT rows where they load)."""
    import torchvision  # noqa: PLC0415

    from profilers import MeasureConfig, measure  # noqa: PLC0415

    # The reference networks of UNAS Table 3 that torchvision has (MobileNetV2, EfficientNet-B0) and ResNet-50.
    models = ["mobilenet_v2", "resnet50"] if context.quick else ["mobilenet_v2", "efficientnet_b0", "resnet50"]
    reasons = _backend_reasons(context.device)
    rows: list[list[Any]] = []
    results = context.data.setdefault("results", [])
    failures = context.data.setdefault("failures", [])
    skips = context.data.setdefault("skipped", [])
    for name in models:
        model = None if context.dry_run else torchvision.models.get_model(name, weights=None)
        for backend, precision, options in TIMING_VARIANTS:
            label = backend + (" +graphs" if options.get("cuda_graphs") else "")
            key = f"{name}/{label}/{precision}"
            if options.get("cuda_graphs") and not context.graphs:
                skips.append(f"{key}: CUDA-graph replays need a CUDA device, not {context.device}")
                continue
            if reasons.get(backend) is not None:
                failure = context.missing(backend, reasons[backend]) if backend in RUNTIMES else None
                (skips if failure is None else failures).append(f"{key}: {failure or reasons[backend]}")
                continue
            if context.dry_run:
                skips.append(f"{key}: dry run (would time it)")
                continue
            if context.seconds_left() < 60:
                skips.append(f"{key}: under 60 s of the suite left")
                continue
            config = MeasureConfig(budget_s=1.5 if context.quick else 2.5, remeasure=0, **options)
            try:
                result = measure(model, backend=backend, device=context.device, input_shape=context.scale.timing_shape,
                                 precision=precision, config=config, name=name)
            except Exception as error:  # noqa: BLE001 - OOM, graph capture, ORT's native errors: this variant only
                failures.append(f"{key}: {type(error).__name__}: {str(error).strip()[:300]}")
                continue
            results.append({"variant": key, **result.to_dict()})
            rows.append(_row(name, label, precision, result))
    if rows:
        batch, _, side, _ = context.scale.timing_shape
        table(context.record, f"batch {batch}, {side}x{side} on {_gpu_name(context.device)}", ROW_COLUMNS, rows)
        _print_graph_speedups(results)
    status = "failed" if failures else ("ok" if rows else "skipped")
    summary = f"{len(rows)} timings, {len(skips)} skipped, {len(failures)} failed"
    summary += f": {failures[0]}" if failures else (f"; first skip: {skips[0]}" if skips and not rows else "")
    return StepOutcome(status, summary, dict(context.data))


def _print_graph_speedups(results: list[dict[str, Any]]) -> None:
    """Plain eager over graph replay, per model and precision (> 1: the launches cost that much)."""
    median = {entry["variant"]: entry["median_ms"] for entry in results}
    for key, plain in median.items():
        graphed = median.get(key.replace("/eager/", "/eager +graphs/"))
        if "/eager/" in key and graphed:
            print(f"  {key}: eager {plain:.3f} ms, graph replay {graphed:.3f} ms, eager / graphs = {plain / graphed:.2f}")


# UNAS Table 3 (V100, batch 32, PyTorch eager), ms; mnasnet1_0 and shufflenet_v2_x2_0 are timed beside them.
UNAS_TABLE3_MS = {"mobilenet_v2": 9.2, "unas_gpu": 9.8, "proxyless_gpu": 10.1, "mobilenet_v2_1.4": 13.0, "efficientnet_b0": 14.5}


def against_paper(measured_ms: dict[str, float]) -> tuple[float, list[str]]:
    """Kendall tau between the measured latencies and UNAS Table 3's over the networks both have (1: the paper's
    order, -1: reversed), and the pairs ordered unlike the paper ("a < b" in the paper)."""
    from scipy.stats import kendalltau  # noqa: PLC0415

    names = [name for name in sorted(UNAS_TABLE3_MS, key=UNAS_TABLE3_MS.__getitem__) if name in measured_ms]
    if len(names) < 2:
        raise ValueError(f"need at least two of {', '.join(UNAS_TABLE3_MS)} to compare orders, got {names}")
    tau = float(kendalltau([UNAS_TABLE3_MS[n] for n in names], [measured_ms[n] for n in names]).statistic)
    flipped = [f"{a} < {b}" for i, a in enumerate(names) for b in names[i + 1:] if measured_ms[a] > measured_ms[b]]
    return tau, flipped


def unas_table3(context: SuiteContext) -> StepOutcome:
    """The UNAS Table 3 networks timed interleaved as graph replays (plain eager on a CPU) at batch 32 and
    batch 1 (`Scale.unas_batches`), each batch's order against the paper's by Kendall tau."""
    import torchvision  # noqa: PLC0415

    import search_spaces  # noqa: PLC0415
    from profilers import MeasureConfig, measure_interleaved  # noqa: PLC0415

    timing = "graph replays" if context.graphs else "plain eager (no CUDA graphs here)"
    batches = context.scale.unas_batches
    if context.dry_run:
        return StepOutcome("skipped", f"dry run (would time 8 networks as {timing} at batch {' and '.join(map(str, batches))})")
    reason = _backend_reasons(context.device)["eager"]
    if reason is not None:
        return StepOutcome("skipped", f"eager on {context.device}: {reason}")

    def named(name: str) -> torch.nn.Module:
        arch = search_spaces.named_architecture(name)
        return search_spaces.space_for(arch).build(arch)

    models = {
        "mobilenet_v2": torchvision.models.mobilenet_v2(),
        "mobilenet_v2 (space)": named("mobilenet_v2"),  # the proxyless space's exact copy: should time alike
        "mobilenet_v2_1.4": torchvision.models.mobilenet_v2(width_mult=1.4),
        "efficientnet_b0": torchvision.models.efficientnet_b0(),
        "mnasnet1_0": torchvision.models.mnasnet1_0(),
        "shufflenet_v2_x2_0": torchvision.models.shufflenet_v2_x2_0(),
        "proxyless_gpu": named("proxyless_gpu"),
        "unas_gpu": named("unas_gpu"),
    }
    measured: dict[int, dict[str, Any]] = {}
    for batch in batches:
        if context.seconds_left() < 45:
            context.data.setdefault("skipped", []).append(f"batch {batch}: under 45 s of the suite left")
            continue
        # 10-run turns: each turn starts from an empty launch queue, and in the H200 run of 2026-11-27 the
        # first timed run of a 2-run turn was 2-6% slower than the second for launch-bound nets.
        config = MeasureConfig(budget_s=context.scale.unas_budget_s, remeasure=0, cuda_graphs=context.graphs,
                               runs_per_round=10)
        results = measure_interleaved(list(models.values()), backend="eager", device=context.device,
                                      input_shapes=(batch, *BATCH_SHAPE[1:]), config=config, names=list(models))
        measured[batch] = {result.model: result for result in results}
        context.data[f"batch {batch}"] = [result.to_dict() for result in results]
    if not measured:
        return StepOutcome("skipped", "out of the suite's time", dict(context.data))
    taus: dict[int, float] = {}
    flips: dict[int, list[str]] = {}
    for batch, results in measured.items():
        here = [name for name in results if name in UNAS_TABLE3_MS]
        taus[batch], flips[batch] = against_paper({name: results[name].median_ms for name in here})
    first = measured[next(iter(measured))]
    order = sorted(first, key=lambda name: first[name].median_ms)
    rows = [[name, *(f"{measured[b][name].median_ms:.3f}" for b in measured),
             *(sorted(measured[b], key=lambda n, b=b: measured[b][n].median_ms).index(name) + 1 for b in measured),
             UNAS_TABLE3_MS.get(name, "-")] for name in order]
    table(context.record, f"UNAS Table 3 set, {timing}, fp32 on {_gpu_name(context.device)} (paper: V100, batch 32)",
          ["network", *(f"b{b} ms" for b in measured), *(f"rank b{b}" for b in measured), "UNAS V100 ms"], rows)
    summary = "; ".join(f"batch {b}: Kendall tau {taus[b]:+.2f} against UNAS Table 3's order"
                        + (f", {len(flips[b])} pair(s) unlike it ({', '.join(flips[b])})" if flips[b] else "")
                        for b in measured)
    status = " ".join(f"tau(b{b}) {taus[b]:+.2f}" for b in measured)
    return StepOutcome(status, summary, {**context.data, "paper_ms": UNAS_TABLE3_MS, "timing": timing,
                                         "kendall_tau": {str(b): t for b, t in taus.items()},
                                         "pairs_unlike_paper": {str(b): f for b, f in flips.items()}})


def supernet_step(context: SuiteContext) -> StepOutcome:
    """The single-path supernet's weight step at 224x224 against the standalone sampled network's training
    step: time and memory (`benchmarks/supernet_cost.py`'s measurement, proxyless space)."""
    from supernet_cost import run_space  # noqa: PLC0415 - the benchmark beside this one

    scale = context.scale
    what = f"proxyless at {scale.supernet_side}x{scale.supernet_side}, batch {scale.supernet_batch}"
    if context.dry_run:
        return StepOutcome("skipped", f"dry run (would time {scale.supernet_steps} training steps of the supernet "
                                      f"and the standalone network, {what})")
    if context.seconds_left() < 30:
        return StepOutcome("skipped", "under 30 s of the suite left")
    costs = run_space("proxyless", scale.supernet_batch, torch.device(context.device), 1, scale.supernet_steps, 0,
                      resolution=scale.supernet_side)
    base = {cost.variant: cost for cost in costs}["standalone"]

    def memory(cost: Any) -> float:
        return cost.cuda_peak_mb if cost.cuda_peak_mb is not None else cost.saved_mb

    rows = [[cost.variant, cost.median_ms, f"{cost.p10_ms:.1f}-{cost.p90_ms:.1f}", cost.saved_mb,
             "-" if cost.cuda_peak_mb is None else f"{cost.cuda_peak_mb:.1f}", cost.median_ms / base.median_ms,
             memory(cost) / memory(base)] for cost in costs]
    table(context.record, f"training step, {what} on {_gpu_name(context.device)}",
          ["step", "median ms", "p10-p90 ms", "saved for backward MB", "CUDA peak MB", "time x", "memory x"], rows)
    single = {cost.variant: cost for cost in costs}["single-path"]
    summary = (f"{what}: supernet weight step {single.median_ms:.1f} ms = {single.median_ms / base.median_ms:.2f}x the "
               f"standalone step, memory {memory(single) / memory(base):.2f}x")
    return StepOutcome("ok", summary, {"costs": [asdict(cost) for cost in costs]})


def export_found_networks(context: SuiteContext) -> StepOutcome:
    """`hwnas export` of proxyless_gpu and unas_gpu at batch 32 (ONNX, and TensorRT where installed), then timed."""
    from hwnas.export import BatchSpec, ExportOptions, export_network  # noqa: PLC0415
    from profilers import MeasureConfig  # noqa: PLC0415

    reasons = _backend_reasons(context.device)
    if reasons["eager"] is not None:
        return StepOutcome("skipped", f"{context.device}: {reasons['eager']}")
    formats = ("onnx", "tensorrt") if reasons["tensorrt"] is None else ("onnx",)
    rows: list[list[Any]] = []
    exports = context.data.setdefault("exports", {})
    missing = None if reasons["tensorrt"] is None else context.missing("tensorrt", reasons["tensorrt"])
    failures = context.data.setdefault("failures", [] if missing is None else [missing])
    skips = context.data.setdefault("skipped", [] if reasons["tensorrt"] is None or missing else [f"tensorrt: {reasons['tensorrt']}"])
    for name in ("proxyless_gpu", "unas_gpu"):
        options = ExportOptions(formats=formats, device=context.device, batch=BatchSpec.static(32),
                                measure_config=MeasureConfig(budget_s=1.0 if context.quick else 2.0, remeasure=0))
        if context.dry_run:
            options.validate()
            skips.append(f"{name}: dry run (would export as {'+'.join(formats)} and time)")
            continue
        if context.seconds_left() < 75:
            skips.append(f"{name}: under 75 s of the suite left")
            continue
        try:
            result = export_network(name, Path(tempfile.mkdtemp(prefix="hwnas-gpu-export-")) / name, options)
        except Exception as error:  # noqa: BLE001 - report the network and go on with the next one
            failures.append(f"{name}: {type(error).__name__}: {str(error).strip()[:300]}")
            continue
        manifest = result.manifest
        exports[name] = {"out": str(result.out), "parity": manifest["parity"], "latency": manifest["latency"],
                         "tensorrt": manifest["tensorrt"], "notes": manifest.get("notes", [])}
        worst = {p["runtime"] + "/" + p["device"]: p["max_rel_error"] for p in manifest["parity"]}
        for backend, entry in manifest["latency"].items():
            engine = (manifest["tensorrt"] or {}).get("engine_precision", "") if backend == "tensorrt" else ""
            rows.append([name, backend, entry["context"]["provider"] or "torch", entry["median_ms"],
                         f"{entry['p90_ms']:.2f}/{entry.get('p99_ms', float('nan')):.2f}", entry.get("timing_mode", "?"), engine])
        rows.append([name, "parity (max rel)", ", ".join(f"{k} {v:.1e}" for k, v in worst.items()), "", "", "", ""])
    if rows:
        table(context.record, f"hwnas export, batch 32 fp32, 224x224 on {_gpu_name(context.device)}",
                    ["network", "backend", "provider", "median ms", "p90/p99 ms", "timing", "engine precision"], rows)
    status = "failed" if failures else ("ok" if exports else "skipped")
    summary = f"exported {', '.join(exports) or 'nothing'} as {'+'.join(formats)}"
    summary += f"; {failures[0]}" if failures else (f"; {len(skips)} skipped: {skips[0]}" if skips else "")
    return StepOutcome(status, summary, dict(context.data))


def search_in_the_loop(context: SuiteContext) -> StepOutcome:
    """The default `hwnas search` run for ~3 minutes with eager latency timed as graph replays in the loop
    (plain on a CPU), and its derived network's measured latency against the target."""
    from hwnas.run import run_pipeline  # noqa: PLC0415

    scale = context.scale
    argv = search_argv(context.device, context.graphs, scale)
    what = (f"{scale.search_steps} steps after {scale.search_warmup} warm-up, latency eager "
            f"{'graph replays' if context.graphs else 'plain'} batch {32 if context.graphs else 1} on {context.device}")
    if context.dry_run:
        return StepOutcome("skipped", f"dry run (would search: {what}; target auto: hwnas {' '.join(argv)})")
    reasons = _backend_reasons(context.device)
    if reasons["eager"] is not None:
        return StepOutcome("skipped", f"{context.device}: {reasons['eager']}")
    if context.seconds_left() < 150:
        return StepOutcome("skipped", "under 150 s of the suite left for a search")
    from hwnas.cli import build_parser  # noqa: PLC0415
    from hwnas.cli.search import config_from_args  # noqa: PLC0415

    config = config_from_args(build_parser().parse_args(argv))
    root = Path(tempfile.mkdtemp(prefix="hwnas-gpu-search-"))
    started = time.perf_counter()
    result = run_pipeline(config, out=root / "run", profile_root=root / "profiles", train_steps=scale.search_train_steps)
    seconds = time.perf_counter() - started
    assert result is not None  # one process: rank 0
    measured = result.measured
    off = None if result.target_ms is None else measured.value_ms / result.target_ms - 1.0
    lines = result.lines()
    print("\n".join(lines))
    context.record.setdefault("notes", []).append("search in the loop:\n" + "\n".join(lines))
    summary = (f"{what}: derived network {measured.value_ms:.3f} ms measured "
               f"({'graph replays' if measured.context.cuda_graphs else 'plain'}), target {result.target_ms:.3f} ms "
               f"({result.target_source}): {off:+.1%}, {'within' if off is not None and abs(off) <= 0.05 else 'NOT within'} 5%"
               f"; {seconds:.0f} s")
    closing = [line.removeprefix("timing").strip() for line in lines if line.startswith("timing ")]
    return StepOutcome("ok" if result.accepted else "failed", "; ".join([summary, *closing]),
                       {"seconds": seconds, "target_ms": result.target_ms, "measured_ms": measured.value_ms,
                        "relative_error": off, "accepted": result.accepted, "arch": result.search.arch.choices,
                        "measurement": measured.to_dict(), "out": str(root), "closing_lines": closing, "argv": argv})


def search_argv(device: str, graphs: bool, scale: Scale) -> list[str]:
    """The `hwnas search` command of `search_in_the_loop`: the default run's data and space, eager latency
    measured on `device` (as graph replays where `graphs`), the target auto."""
    return ["search", "--steps", str(scale.search_steps), "--warmup-steps", str(scale.search_warmup), "--device", device,
            "--latency-device", device, "--backend", "eager", "--no-progress", *(["--cuda-graphs"] if graphs else [])]


def lut_profile(context: SuiteContext) -> StepOutcome:
    """A graph-replay device profile of the proxyless space (`Scale.profile_networks`, >= 400 on a GPU) at
    batch 32, 224x224, fitted, with the latency-model comparison table (`hwnas lut fit`'s) and learning curve."""
    from lut.fit import networks_needed  # noqa: PLC0415
    from lut.profile import profile_device, resolve_settings  # noqa: PLC0415
    from lut.report import fit_table, learning_table  # noqa: PLC0415

    scale = context.scale
    what = (f"{scale.profile_networks} networks, eager {'graph replays' if context.graphs else 'plain'} batch "
            f"{scale.profile_batch}, {scale.profile_side}x{scale.profile_side}")
    if context.dry_run:
        return StepOutcome("skipped", f"dry run (would profile {what} and the per-op LUT, then compare the latency models)")
    reasons = _backend_reasons(context.device)
    if reasons["eager"] is not None:
        return StepOutcome("skipped", f"{context.device}: {reasons['eager']}")
    if context.seconds_left() < 120:
        return StepOutcome("skipped", "under 120 s of the suite left for a device profile")
    settings = resolve_settings(space="proxyless", device=context.device, backend="eager", batch_size=scale.profile_batch,
                                input_size=scale.profile_side, samples=scale.profile_networks,
                                retest=max(4, scale.profile_networks // 25), out=tempfile.mkdtemp(prefix="hwnas-gpu-profile-"),
                                progress=False, cuda_graphs=context.graphs)
    # Short budgets: graph replays repeat to 0.06%; no host-wall runs (not fitted); a short warm-up for the op table.
    settings = replace(settings, net_config=replace(settings.net_config, budget_s=scale.profile_budget_s, host_runs=0),
                       op_config=replace(settings.op_config, budget_s=scale.profile_budget_s / 2, warmup_s=0.05,
                                         warmup_runs=5, host_runs=0))
    outcome = profile_device(settings)
    if outcome.fit is None:
        return StepOutcome("failed", "; ".join(outcome.notes) or "no fit", {"out": str(outcome.out)})
    text = (f"{what}, {outcome.samples} timings ({outcome.seconds:.0f} s):\n{fit_table(outcome.fit)}\n"
            f"{learning_table(outcome.fit.learning, networks_needed(outcome.fit.learning))}")
    print("\n" + text)
    context.record.setdefault("notes", []).append(text)
    chosen = outcome.fit.metrics[outcome.fit.chosen]
    summary = (f"{what}; {outcome.fit.chosen}: MAPE {chosen.mape:.2f}% Spearman {chosen.spearman:.3f}"
               + ("" if outcome.fit.noise is None else f"; retest floor Spearman {outcome.fit.noise.spearman:.3f}"))
    return StepOutcome("ok", summary, {"out": str(outcome.out), "metrics": dict(outcome.fit.model.metrics)})


# Ordered as #27 item 5 lists what one GPU call must show; the GPU tests and the export use what is left.
STEPS: list[tuple[str, Step]] = [
    ("profilers: eager (plain and CUDA graphs) / ORT CUDA / TensorRT timings", gpu_timings),
    ("UNAS Table 3 set: graph replays at batch 32 and 1 vs the paper's order", unas_table3),
    ("supernet: weight step at 224x224 vs the standalone network's step", supernet_step),
    ("lut: graph-replay profile of 400 networks, latency models compared", lut_profile),
    ("search: 3 minutes with graph-replay latency in the loop, derived vs target", search_in_the_loop),
    ("GPU tests (pytest -m 'cuda or tensorrt or ort_provider')", gpu_tests),
    ("export: proxyless_gpu and unas_gpu to ONNX/TensorRT, timed", export_found_networks),
]


def _gpu_name(device: str) -> str:
    try:
        return torch.cuda.get_device_name(device)
    except Exception:  # noqa: BLE001 - only a table title
        return device


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.split(":")[0].lower()).strip("-")[:40] or "step"


def run_steps(steps: Sequence[tuple[str, Step]], context: SuiteContext, out: Path, header: dict[str, Any]) -> int:
    """Run `steps`, writing `out/NN-<step>.json` and `out/suite.json` as each one ends.

    A step that raises is recorded as failed and the next one runs; Ctrl-C
    records the running step as interrupted with the data it had put in
    `context.data`, writes the files, and returns 130. Returns 0 when no step
    failed (skips are skips), else 1.
    """
    out.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {**header, "steps": []}
    rows: list[list[Any]] = []
    code = 0
    for index, (title, step) in enumerate(steps, start=1):
        started = time.monotonic()
        context.data = {}
        interrupted = False
        if context.seconds_left() <= 0:
            outcome = StepOutcome("skipped", "out of the suite's time")
        else:
            try:
                outcome = step(context)
            except KeyboardInterrupt:
                interrupted = True
                outcome = StepOutcome("interrupted", "stopped by Ctrl-C; what it had measured is kept", dict(context.data))
            except Exception as error:  # noqa: BLE001 - one broken step must not hide the others
                outcome = StepOutcome("failed", f"{type(error).__name__}: {str(error).strip()[:300]}", dict(context.data))
        entry = {"index": index, "step": title, "status": outcome.status, "seconds": time.monotonic() - started,
                 "summary": outcome.summary, "data": outcome.data}
        write_json(out / f"{index:02d}-{_slug(title)}.json", entry)
        document["steps"].append(entry)
        write_json(out / "suite.json", document)
        context.record["steps"] = document["steps"]
        rows.append([title, outcome.status, f"{entry['seconds']:.0f} s", outcome.summary[:110]])
        if outcome.status == "failed":
            code = 1
        if interrupted:
            code = EXIT_INTERRUPTED
            break
    table(context.record, "GPU suite" + (" (dry run: nothing measured)" if context.dry_run else ""),
          ["step", "status", "time", "summary"], rows)
    counts = status_counts([entry["status"] for entry in document["steps"]])
    document["counts"] = context.record["counts"] = counts
    write_json(out / "suite.json", document)
    print(", ".join(f"{count} {status}" for status, count in counts.items()))
    return code


def status_counts(statuses: Sequence[str]) -> dict[str, int]:
    """Passed, skipped, failed and interrupted steps, each counted apart: a skip (a missing runtime with
    --allow-missing, no time left, a dry run) is never a pass. A step whose status is a measured verdict
    (UNAS's "tau(b32) +0.90") ran to its end: passed."""
    counts = {"passed": 0, "skipped": 0, "failed": 0, "interrupted": 0}
    for status in statuses:
        counts[status if status in counts else "passed"] += 1
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every GPU-dependent test and benchmark of hwnas.")
    parser.add_argument("--device", default="cuda:0",
                        help="cuda:N, or cpu: every step at CPU_SCALE (tiny sizes, plain timing) to exercise the code")
    parser.add_argument("--out", default="gpu_suite", help="folder for suite.json and one JSON file per step")
    parser.add_argument("--quick", action="store_true", help="fewer models, shorter budgets")
    parser.add_argument("--dry-run", action="store_true",
                        help="walk every step without measuring (any machine): what would run, what would be skipped")
    parser.add_argument("--allow-missing", action="store_true",
                        help="a missing ONNX Runtime CUDA provider or TensorRT is a skip (default: it fails the suite)")
    parser.add_argument("--deadline", type=float, default=DEADLINE_S, help=f"seconds for all steps (default {DEADLINE_S})")
    add_result_options(parser, "gpu_suite", "<GPU name, or dry-run>")
    args = parser.parse_args(argv)
    if args.report_only:
        if args.json is None:
            parser.error("--report-only needs --json FILE (a file under benchmarks/results/gpu_suite)")
        return report_only(args.json)
    if not args.dry_run and args.device.startswith("cuda"):
        from profilers._device import cuda_unavailable_reason  # noqa: PLC0415

        reason = cuda_unavailable_reason()
        if reason is not None:
            print(f"gpu_suite: no usable CUDA GPU: {reason}. Nothing was checked "
                  "(`--dry-run` walks the steps without a GPU).", file=sys.stderr)
            return EXIT_NO_GPU
    context = SuiteContext(args.device, time.monotonic() + args.deadline, args.quick, args.dry_run, args.allow_missing)
    header = {"suite": "gpu_suite", "dry_run": args.dry_run, "allow_missing": args.allow_missing, "device": args.device,
              "machine": machine()}
    context.record.update({"benchmark": "gpu_suite", "provenance": provenance(argv), **header})
    code = run_steps(STEPS, context, Path(args.out), header)
    run = "dry-run" if args.dry_run else _slug(_gpu_name(args.device))
    write_json(json_path(args, "gpu_suite", run), context.record)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
