"""Every GPU-dependent check of hwnas in one command, sized for 8 minutes on one H100.

    python benchmarks/gpu_suite.py [--out gpu_suite] [--quick] [--dry-run]

Steps run in order under one deadline and end in one summary table. Each
step's numbers (with their measurement context) are written to
`OUT/NN-<step>.json` the moment the step ends, and `OUT/suite.json` (every
step so far) is rewritten then too, so a step that fails or a Ctrl-C keeps
everything measured before it; an interrupted step keeps what it had
measured (status "interrupted", exit 130). Inside a step every variant is
caught on its own: an out-of-memory, a graph capture or an ONNX Runtime
native error fails that variant, not the rows already measured. A step or
variant that cannot run here (no TensorRT, no ORT CUDA provider, out of the
suite's time) is a skip with its reason, never a failure; the exit code is
0 when nothing failed.

Every eager timing is done twice, plain and as a CUDA-graph replay: at small
batches GPUs are launch-bound and users need both. Each row gives the median
GPU time (CUDA events, trtexec's "GPU Compute Time"), p90/p95/p99, the host's
enqueue and end-to-end wall time, and whether the run was launch-bound.

Without a CUDA GPU the suite names why (torch's CUDA against the driver's, or
no driver) and exits 3: a GPU check that silently passes without a GPU checks
nothing. `--dry-run` walks every step without measuring, on any machine: it
records what each step would run and what it would skip, and writes the
per-step JSON. Later issues add a step by writing `step(context) ->
StepOutcome` and appending it to `STEPS`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine, print_table, write_json  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEADLINE_S = 450  # 7.5 minutes of steps: with start-up and imports the whole call stays under 8
EXIT_NO_GPU = 3
EXIT_INTERRUPTED = 130
GPU_MARKERS = "cuda or tensorrt or ort_provider"
BATCH_SHAPE = (32, 3, 224, 224)


@dataclass
class SuiteContext:
    """What steps share: the device, the deadline, the options, and the running step's data so far
    (`data`: a step puts its rows there as it measures them, so an interrupted step keeps them)."""

    device: str
    deadline: float
    quick: bool = False
    dry_run: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()


@dataclass
class StepOutcome:
    status: str  # "ok", "failed" or "skipped" ("interrupted" is the suite's, on Ctrl-C)
    summary: str
    data: dict[str, Any] = field(default_factory=dict)


Step = Callable[[SuiteContext], StepOutcome]


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
    """Batch-32 latency of torchvision reference models with every backend that works here."""
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
            if reasons.get(backend) is not None:
                skips.append(f"{key}: {reasons[backend]}")
                continue
            if context.dry_run:
                skips.append(f"{key}: dry run (would time it)")
                continue
            if context.seconds_left() < 60:
                skips.append(f"{key}: under 60 s of the suite left")
                continue
            config = MeasureConfig(budget_s=1.5 if context.quick else 2.5, remeasure=0, **options)
            try:
                result = measure(model, backend=backend, device=context.device, input_shape=BATCH_SHAPE,
                                 precision=precision, config=config, name=name)
            except Exception as error:  # noqa: BLE001 - OOM, graph capture, ORT's native errors: this variant only
                failures.append(f"{key}: {type(error).__name__}: {str(error).strip()[:300]}")
                continue
            results.append({"variant": key, **result.to_dict()})
            rows.append(_row(name, label, precision, result))
    if rows:
        print_table(f"batch 32, 224x224 on {_gpu_name(context.device)}", ROW_COLUMNS, rows)
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


def unas_table3(context: SuiteContext) -> StepOutcome:
    """CUDA eager batch-32 latency of the UNAS Table 3 networks, timed interleaved (plain, then graph
    replay), against the paper's order."""
    import torchvision  # noqa: PLC0415

    import search_spaces  # noqa: PLC0415
    from profilers import MeasureConfig, measure_interleaved  # noqa: PLC0415

    reason = _backend_reasons(context.device)["eager"]
    if reason is not None:
        return StepOutcome("skipped", f"eager on {context.device}: {reason}")
    if context.dry_run:
        return StepOutcome("skipped", "dry run (would time 8 networks, plain and graph replay)")

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
    passes: dict[str, dict[str, Any]] = {}
    for label, graphs in (("eager", False), ("eager +graphs", True)):
        if context.seconds_left() < 45:
            context.data.setdefault("skipped", []).append(f"{label}: under 45 s of the suite left")
            continue
        # 10-run turns: each turn starts from an empty launch queue, and in the H200 run of 2026-11-27 the
        # first timed run of a 2-run turn was 2-6% slower than the second for launch-bound nets.
        config = MeasureConfig(budget_s=1.0 if context.quick else 1.5, remeasure=0, cuda_graphs=graphs, runs_per_round=10)
        results = measure_interleaved(list(models.values()), backend="eager", device=context.device,
                                      input_shapes=BATCH_SHAPE, config=config, names=list(models))
        passes[label] = {result.model: result for result in results}
        context.data[label] = [result.to_dict() for result in results]
    if "eager" not in passes:
        return StepOutcome("skipped", "out of the suite's time", dict(context.data))
    measured = passes["eager"]
    graphed = passes.get("eager +graphs", {})
    order = sorted(measured, key=lambda name: measured[name].median_ms)
    rows = [[name, measured[name].median_ms, graphed[name].median_ms if name in graphed else "-",
             f"{measured[name].p90_ms:.2f}/{measured[name].p99_ms:.2f}",
             "-" if measured[name].enqueue_ms is None else f"{measured[name].enqueue_ms:.3f}",
             "yes" if measured[name].launch_bound else "no",
             UNAS_TABLE3_MS.get(name, "-"), order.index(name) + 1] for name in order]
    print_table(f"UNAS Table 3 set, CUDA eager fp32 batch 32 on {_gpu_name(context.device)} (paper: V100)",
                ["network", "median ms", "graph replay ms", "p90/p99 ms", "enqueue ms", "launch-bound", "UNAS V100 ms",
                 "rank here"], rows)
    paper = sorted(UNAS_TABLE3_MS, key=UNAS_TABLE3_MS.__getitem__)
    here = [name for name in order if name in UNAS_TABLE3_MS]
    flipped = [f"{a} < {b}" for i, a in enumerate(paper) for b in paper[i + 1:] if here.index(a) > here.index(b)]
    summary = ("same order as UNAS Table 3: " if not flipped else f"{len(flipped)} pair(s) ordered unlike UNAS ({'; '.join(flipped)}): ")
    summary += " < ".join(f"{name} {measured[name].median_ms:.1f}" for name in here)
    return StepOutcome("ok", summary, {**context.data, "paper_ms": UNAS_TABLE3_MS, "order_here": order,
                                       "pairs_unlike_paper": flipped})


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
    failures = context.data.setdefault("failures", [])
    skips = context.data.setdefault("skipped", [] if reasons["tensorrt"] is None else [f"tensorrt: {reasons['tensorrt']}"])
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
        print_table(f"hwnas export, batch 32 fp32, 224x224 on {_gpu_name(context.device)}",
                    ["network", "backend", "provider", "median ms", "p90/p99 ms", "timing", "engine precision"], rows)
    status = "failed" if failures else ("ok" if exports else "skipped")
    summary = f"exported {', '.join(exports) or 'nothing'} as {'+'.join(formats)}"
    summary += f"; {failures[0]}" if failures else (f"; {len(skips)} skipped: {skips[0]}" if skips else "")
    return StepOutcome(status, summary, dict(context.data))


def search_step_cost(context: SuiteContext) -> StepOutcome:
    """A few steps of `hwnas.search.run_search` on the GPU (#15): seconds per step, and per phase
    where the run records them (metrics.jsonl "phases")."""
    import json  # noqa: PLC0415

    from hwnas.search import SearchConfig, run_search  # noqa: PLC0415

    reasons = _backend_reasons(context.device)
    if reasons["eager"] is not None:
        return StepOutcome("skipped", f"{context.device}: {reasons['eager']}")
    steps = 6 if context.quick else 12
    config = SearchConfig.from_flat(space="proxyless", dataset="digits", data_limit=600, estimator="rebar", latency_estimator="relax",
                                    latency_target_ms=5.0, steps=steps, warmup_steps=2, batch_size=32, device=context.device,
                                    latency_device=context.device, latency_backend="eager", latency_batch_size=32,
                                    progress=False, checkpoint_every=1000)
    if context.dry_run:
        return StepOutcome("skipped", f"dry run (would run {steps} search steps on {context.device})")
    if context.seconds_left() < 60:
        return StepOutcome("skipped", "under 60 s of the suite left")
    out = Path(tempfile.mkdtemp(prefix="hwnas-gpu-search-")) / "run"
    started = time.perf_counter()
    result = run_search(config, out, measure_final=False)
    seconds = time.perf_counter() - started
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()] \
        if (out / "metrics.jsonl").exists() else []
    phases: dict[str, list[float]] = {}
    for record in records:
        for phase, value in (record.get("phases") or {}).items():
            phases.setdefault(phase, []).append(float(value))
    per_phase = {phase: sum(values) / len(values) for phase, values in phases.items()}
    if per_phase:
        print_table(f"search step on {_gpu_name(context.device)}, mean seconds per phase over {len(records)} steps",
                    ["phase", "s per step"], [[phase, value] for phase, value in sorted(per_phase.items())])
    summary = f"{steps} steps in {seconds:.1f} s ({seconds / steps:.3f} s per step incl. start-up)"
    summary += f"; phases recorded: {', '.join(sorted(per_phase))}" if per_phase else "; no per-phase times in metrics.jsonl"
    return StepOutcome("ok", summary, {"seconds": seconds, "steps": steps, "phases_mean_s": per_phase,
                                       "arch": result.arch.choices, "out": str(out)})


def lut_profile(context: SuiteContext) -> StepOutcome:
    """`hwnas profile --device cuda` on the proxyless space, eager batch 32, 96 samples; print the fit table."""
    from lut.profile import profile_device, resolve_settings  # noqa: PLC0415
    from lut.report import fit_table  # noqa: PLC0415

    reasons = _backend_reasons(context.device)
    if reasons["eager"] is not None:
        return StepOutcome("skipped", f"{context.device}: {reasons['eager']}")
    if context.dry_run:
        return StepOutcome("skipped", "dry run (would profile 96 networks and the per-op LUT, batch 32)")
    if context.seconds_left() < 150:
        return StepOutcome("skipped", "under 150 s of the suite left for a device profile")
    settings = resolve_settings(space="proxyless", device=context.device, backend="eager", batch_size=32,
                                samples=96, retest=16, out=tempfile.mkdtemp(prefix="hwnas-gpu-profile-"),
                                progress=False)
    # Short budgets and a short warm-up for the hundreds of single-op timings; no host-wall runs (not fitted).
    settings = replace(settings, net_config=replace(settings.net_config, budget_s=0.4, host_runs=0),
                       op_config=replace(settings.op_config, budget_s=0.2, warmup_s=0.05, warmup_runs=5, host_runs=0))
    outcome = profile_device(settings)
    if outcome.fit is None:
        return StepOutcome("failed", "; ".join(outcome.notes) or "no fit", {"out": str(outcome.out)})
    print(f"\nproxyless, {context.device} eager fp32 batch 32, {outcome.samples} samples ({outcome.seconds:.0f} s):")
    print(fit_table(outcome.fit))
    linear = outcome.fit.metrics[outcome.fit.chosen]
    summary = (f"{outcome.samples} nets; {outcome.fit.chosen}: MAPE {linear.mape:.1f}% Spearman {linear.spearman:.3f}"
               + ("" if outcome.fit.noise is None else f"; noise floor Spearman {outcome.fit.noise.spearman:.3f}"))
    return StepOutcome("ok", summary, {"out": str(outcome.out), "metrics": dict(outcome.fit.model.metrics)})


# Ordered by what a short lease must not miss; the device profile, the longest, uses what is left.
STEPS: list[tuple[str, Step]] = [
    ("GPU tests (pytest -m 'cuda or tensorrt or ort_provider')", gpu_tests),
    ("profilers: eager (plain and CUDA graphs) / ORT / TensorRT timings", gpu_timings),
    ("UNAS Table 3 set: CUDA eager batch 32 vs the paper's order", unas_table3),
    ("export: proxyless_gpu and unas_gpu to ONNX/TensorRT, timed", export_found_networks),
    ("search: a few run_search steps on the GPU (#15)", search_step_cost),
    ("lut: proxyless CUDA eager batch-32 profile and fit", lut_profile),
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
        rows.append([title, outcome.status, f"{entry['seconds']:.0f} s", outcome.summary[:110]])
        if outcome.status == "failed":
            code = 1
        if interrupted:
            code = EXIT_INTERRUPTED
            break
    print_table("GPU suite" + (" (dry run: nothing measured)" if context.dry_run else ""),
                ["step", "status", "time", "summary"], rows)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every GPU-dependent test and benchmark of hwnas.")
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--out", default="gpu_suite", help="folder for suite.json and one JSON file per step")
    parser.add_argument("--quick", action="store_true", help="fewer models, shorter budgets")
    parser.add_argument("--dry-run", action="store_true",
                        help="walk every step without measuring (any machine): what would run, what would be skipped")
    parser.add_argument("--deadline", type=float, default=DEADLINE_S, help=f"seconds for all steps (default {DEADLINE_S})")
    args = parser.parse_args(argv)
    if not args.dry_run:
        from profilers._device import cuda_unavailable_reason  # noqa: PLC0415

        reason = cuda_unavailable_reason()
        if reason is not None:
            print(f"gpu_suite: no usable CUDA GPU: {reason}. Nothing was checked "
                  "(`--dry-run` walks the steps without a GPU).", file=sys.stderr)
            return EXIT_NO_GPU
    context = SuiteContext(args.device, time.monotonic() + args.deadline, args.quick, args.dry_run)
    header = {"suite": "gpu_suite", "dry_run": args.dry_run, "device": args.device, "machine": machine()}
    return run_steps(STEPS, context, Path(args.out), header)


if __name__ == "__main__":
    raise SystemExit(main())
