"""Every GPU-dependent check of hwnas in one command, in under 8 minutes.

    python benchmarks/gpu_suite.py [--json gpu_suite.json] [--quick]

Steps run in order under one deadline and end in one summary table; each
step's numbers (with their measurement context) go to the JSON file. Later
issues add a step by writing a function `step(context: SuiteContext) ->
StepOutcome` and appending it to `STEPS`. Without a CUDA GPU the suite says so
and exits 3: a GPU check that silently passes without a GPU checks nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine, print_table, write_json  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEADLINE_S = 8 * 60
EXIT_NO_GPU = 3


@dataclass
class SuiteContext:
    """What steps share: the device, the deadline and the command-line options."""

    device: str
    deadline: float
    quick: bool

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()


@dataclass
class StepOutcome:
    status: str  # "ok", "failed" or "skipped"
    summary: str
    data: dict[str, Any] = field(default_factory=dict)


def gpu_tests(context: SuiteContext) -> StepOutcome:
    """`pytest -m "cuda or tensorrt"`: every test that needs a GPU or TensorRT."""
    command = [sys.executable, "-m", "pytest", "-m", "cuda or tensorrt", "-q", "-rs", "-p", "no:cacheprovider"]
    try:
        completed = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=max(30.0, context.seconds_left() - 180), check=False
        )
    except subprocess.TimeoutExpired:
        return StepOutcome("failed", "pytest ran out of the suite's time")
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else completed.stderr.strip()[-200:]
    status = "ok" if completed.returncode == 0 else "failed"
    return StepOutcome(status, summary, {"returncode": completed.returncode, "output_tail": "\n".join(lines[-40:])})


def gpu_timings(context: SuiteContext) -> StepOutcome:
    """Batch-32 latency of torchvision reference models with every backend that works here."""
    import torchvision  # noqa: PLC0415

    from profilers import MeasureConfig, ProfilerError, available_backends, measure  # noqa: PLC0415

    # The reference networks of UNAS Table 3 that torchvision has (MobileNetV2, EfficientNet-B0) and ResNet-50.
    models = ["mobilenet_v2", "resnet50"] if context.quick else ["mobilenet_v2", "efficientnet_b0", "resnet50"]
    works = {name for name, reason in available_backends(context.device).items() if reason is None}
    variants = [("eager", "fp32", {}), ("eager", "fp16", {}), ("eager", "fp16", {"cuda_graphs": True}),
                ("ort", "fp32", {}), ("tensorrt", "fp32", {}), ("tensorrt", "fp16", {})]
    rows, results, failures, skipped = [], [], [], 0
    for name in models:
        model = torchvision.models.get_model(name, weights=None)
        for backend, precision, options in variants:
            if backend not in works:
                continue
            if context.seconds_left() < 60:
                skipped += 1
                continue
            config = MeasureConfig(budget_s=2.0 if context.quick else 4.0, remeasure=0, **options)
            try:
                result = measure(model, backend=backend, device=context.device, input_shape=(32, 3, 224, 224),
                                 precision=precision, config=config, name=name)
            except ProfilerError as error:
                failures.append(f"{name}/{backend}/{precision}: {error}")
                continue
            results.append(result.to_dict())
            label = backend + (" +graphs" if options else "")
            before, after = result.context.gpu_before, result.context.gpu_after
            clocks = f"{getattr(before, 'sm_clock_mhz', None)}->{getattr(after, 'sm_clock_mhz', None)}"
            temps = f"{getattr(before, 'temperature_c', None)}->{getattr(after, 'temperature_c', None)}"
            rows.append([name, label, precision, result.median_ms, f"{result.p10_ms:.2f}-{result.p90_ms:.2f}",
                         result.throughput, clocks, temps])
    print_table(f"batch 32, 224x224 on {torch.cuda.get_device_name(context.device)}",
                ["model", "backend", "precision", "median ms", "p10-p90 ms", "images/s", "SM MHz", "temp C"], rows)
    status = "ok" if rows and not failures else "failed"
    summary = f"{len(rows)} timings, backends here: {', '.join(sorted(works))}"
    summary += f", {skipped} skipped for time" if skipped else ""
    summary += f", {len(failures)} failed: {failures[0]}" if failures else ""
    return StepOutcome(status, summary, {"results": results, "failures": failures})


def lut_profile(context: SuiteContext) -> StepOutcome:
    """`hwnas profile --device cuda` on the proxyless space, eager batch 32, few samples; print the fit table."""
    import tempfile  # noqa: PLC0415
    from dataclasses import replace  # noqa: PLC0415

    from lut.profile import profile_device, resolve_settings  # noqa: PLC0415
    from lut.report import fit_table  # noqa: PLC0415

    if context.seconds_left() < 150:
        return StepOutcome("skipped", "less than 150 s of the suite's budget left for a device profile")
    samples = 96 if context.quick or context.seconds_left() < 360 else 192
    settings = resolve_settings(space="proxyless", device=context.device, backend="eager", batch_size=32,
                                samples=samples, retest=16, out=tempfile.mkdtemp(prefix="hwnas-gpu-profile-"),
                                progress=False)
    settings = replace(settings, net_config=replace(settings.net_config, budget_s=0.5),
                       op_config=replace(settings.op_config, budget_s=0.3))
    outcome = profile_device(settings)
    if outcome.fit is None:
        return StepOutcome("failed", "; ".join(outcome.notes) or "no fit", {"out": str(outcome.out)})
    print(f"\nproxyless, {context.device} eager fp32 batch 32, {outcome.samples} samples ({outcome.seconds:.0f} s):")
    print(fit_table(outcome.fit))
    linear = outcome.fit.metrics[outcome.fit.chosen]
    summary = (f"{outcome.samples} nets; {outcome.fit.chosen}: MAPE {linear.mape:.1f}% Spearman {linear.spearman:.3f}"
               + ("" if outcome.fit.noise is None else f"; noise floor Spearman {outcome.fit.noise.spearman:.3f}"))
    return StepOutcome("ok", summary, {"out": str(outcome.out), "metrics": dict(outcome.fit.model.metrics)})


def export_found_networks(context: SuiteContext) -> StepOutcome:
    """`hwnas export` of proxyless_gpu and unas_gpu at batch 32 (ONNX, and TensorRT where installed), then timed."""
    import tempfile  # noqa: PLC0415

    from hwnas.export import BatchSpec, ExportOptions, export_network  # noqa: PLC0415
    from profilers import MeasureConfig, available_backends  # noqa: PLC0415

    formats = ("onnx", "tensorrt") if available_backends(context.device)["tensorrt"] is None else ("onnx",)
    rows, data, failures = [], {}, []
    for name in ("proxyless_gpu", "unas_gpu"):
        if context.seconds_left() < 90:
            failures.append(f"{name}: skipped, out of time")
            continue
        options = ExportOptions(formats=formats, device=context.device, batch=BatchSpec.static(32),
                                measure_config=MeasureConfig(budget_s=1.5 if context.quick else 3.0, remeasure=0))
        try:
            result = export_network(name, Path(tempfile.mkdtemp(prefix="hwnas-gpu-export-")) / name, options)
        except Exception as error:  # noqa: BLE001 - report the network and go on with the next one
            failures.append(f"{name}: {type(error).__name__}: {error}")
            continue
        manifest = result.manifest
        data[name] = {"out": str(result.out), "parity": manifest["parity"], "latency": manifest["latency"],
                      "tensorrt": manifest["tensorrt"]}
        worst = {p["runtime"] + "/" + p["device"]: p["max_rel_error"] for p in manifest["parity"]}
        for backend, entry in manifest["latency"].items():
            engine = (manifest["tensorrt"] or {}).get("engine_precision", "") if backend == "tensorrt" else ""
            rows.append([name, backend, entry["context"]["provider"] or "torch", entry["median_ms"],
                         f"{entry['p10_ms']:.2f}-{entry['p90_ms']:.2f}", engine])
        rows.append([name, "parity (max rel)", ", ".join(f"{k} {v:.1e}" for k, v in worst.items()), "", "", ""])
    print_table(f"hwnas export, batch 32 fp32, 224x224 on {torch.cuda.get_device_name(context.device)}",
                ["network", "backend", "provider", "median ms", "p10-p90 ms", "engine precision"], rows)
    status = "ok" if data and not failures else "failed"
    summary = f"exported {', '.join(data) or 'nothing'} as {'+'.join(formats)}" + (f"; {failures[0]}" if failures else "")
    return StepOutcome(status, summary, {"exports": data, "failures": failures})


# UNAS Table 3 (V100, batch 32, PyTorch eager), ms; mnasnet1_0 and shufflenet_v2_x2_0 are timed beside them.
UNAS_TABLE3_MS = {"mobilenet_v2": 9.2, "unas_gpu": 9.8, "proxyless_gpu": 10.1, "mobilenet_v2_1.4": 13.0, "efficientnet_b0": 14.5}


def unas_table3(context: SuiteContext) -> StepOutcome:
    """CUDA eager batch-32 latency of the UNAS Table 3 networks, timed interleaved, against the paper's order."""
    import torchvision  # noqa: PLC0415

    import search_spaces  # noqa: PLC0415
    from profilers import MeasureConfig, measure_interleaved  # noqa: PLC0415

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
    config = MeasureConfig(budget_s=2.0 if context.quick else 4.0, remeasure=0)
    results = measure_interleaved(list(models.values()), backend="eager", device=context.device,
                                  input_shapes=(32, 3, 224, 224), config=config, names=list(models))
    measured = {result.model: result for result in results}
    order = sorted(measured, key=lambda name: measured[name].median_ms)
    rows = [[name, measured[name].median_ms, f"{measured[name].p10_ms:.2f}-{measured[name].p90_ms:.2f}",
             UNAS_TABLE3_MS.get(name, "-"), order.index(name) + 1] for name in order]
    print_table(f"UNAS Table 3 set, CUDA eager fp32 batch 32 on {torch.cuda.get_device_name(context.device)} "
                "(paper: V100)", ["network", "median ms", "p10-p90 ms", "UNAS V100 ms", "rank here"], rows)
    paper = sorted(UNAS_TABLE3_MS, key=UNAS_TABLE3_MS.__getitem__)
    here = [name for name in order if name in UNAS_TABLE3_MS]
    flipped = [f"{a} < {b}" for i, a in enumerate(paper) for b in paper[i + 1:] if here.index(a) > here.index(b)]
    summary = ("same order as UNAS Table 3: " if not flipped else f"{len(flipped)} pair(s) ordered unlike UNAS ({'; '.join(flipped)}): ")
    summary += " < ".join(f"{name} {measured[name].median_ms:.1f}" for name in here)
    return StepOutcome("ok", summary, {"results": [result.to_dict() for result in results], "paper_ms": UNAS_TABLE3_MS,
                                       "order_here": order, "pairs_unlike_paper": flipped})


STEPS: list[tuple[str, Callable[[SuiteContext], StepOutcome]]] = [
    ("GPU tests (pytest -m 'cuda or tensorrt')", gpu_tests),
    ("profilers: CUDA eager / ORT / TensorRT timings", gpu_timings),
    ("lut: proxyless CUDA eager batch-32 profile and fit", lut_profile),
    ("export: proxyless_gpu and unas_gpu to ONNX/TensorRT, timed", export_found_networks),
    ("UNAS Table 3 set: CUDA eager batch 32 vs the paper's order", unas_table3),
]


def main() -> int:
    parser = argparse.ArgumentParser(description="Run every GPU-dependent test and benchmark of hwnas.")
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--json", default="gpu_suite.json", help="where to write every step's numbers")
    parser.add_argument("--quick", action="store_true", help="fewer models, shorter budgets")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(
            "gpu_suite: no CUDA GPU on this machine (torch.cuda.is_available() is False); "
            "run it on a machine with an NVIDIA GPU. Nothing was checked.",
            file=sys.stderr,
        )
        return EXIT_NO_GPU
    context = SuiteContext(args.device, time.monotonic() + DEADLINE_S, args.quick)
    rows, document = [], {"suite": "gpu_suite", "machine": machine(), "steps": []}
    for title, step in STEPS:
        started = time.monotonic()
        if context.seconds_left() <= 0:
            outcome = StepOutcome("skipped", "out of the 8-minute budget")
        else:
            try:
                outcome = step(context)
            except Exception as error:  # noqa: BLE001 - one broken step must not hide the others
                outcome = StepOutcome("failed", f"{type(error).__name__}: {error}")
        seconds = time.monotonic() - started
        rows.append([title, outcome.status, f"{seconds:.0f} s", outcome.summary[:100]])
        document["steps"].append({"step": title, "status": outcome.status, "seconds": seconds,
                                  "summary": outcome.summary, "data": outcome.data})
    print_table("GPU suite", ["step", "status", "time", "summary"], rows)
    write_json(args.json, document)
    return 0 if all(row[1] == "ok" for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
