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

    samples = 96 if context.quick or context.seconds_left() < 300 else 192
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


STEPS: list[tuple[str, Callable[[SuiteContext], StepOutcome]]] = [
    ("GPU tests (pytest -m 'cuda or tensorrt')", gpu_tests),
    ("profilers: CUDA eager / ORT / TensorRT timings", gpu_timings),
    ("lut: proxyless CUDA eager batch-32 profile and fit", lut_profile),
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
