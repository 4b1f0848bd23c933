"""`hwnas profile --model NAME_OR_FILE[,...]`: time networks; without --model, profile the device.

One table row per model x backend (median ms, p10-p90, cv, images/s), the
statistic it reports and why; `--json` writes every result with its full
context. Device profiling (no --model) lives in `hwnas.cli.profile_device`,
which adds its own flags to this parser.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hwnas.cli import profile_device
from hwnas.cli._options import positive_float, positive_int, writable_file
from hwnas.errors import UsageError

PROFILE_FORMAT = "hwnas.profile"
PROFILE_VERSION = 1
DEFAULT_BUDGET_S = 10.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="time networks on a device and backend (--model), or profile a device for search",
        description=(
            "With --model: time each model with each backend and print median latency (ms) with its spread. "
            "Without --model: profile the device for a search space (LUT, sampled networks, fitted latency model)."
        ),
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda:N (default: cpu)")
    parser.add_argument("--backend", type=str.lower, default="eager", help="comma-separated: eager, ort, tensorrt (default: eager)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="batch size (default: 1 with --model)")
    parser.add_argument("--input-size", type=positive_int, default=None, help="input height = width in pixels (default: the model's)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default=None, help="default: fp32 with --model")
    group = parser.add_argument_group("timing networks (--model)")
    group.add_argument(
        "--model",
        default=None,
        help="comma-separated torchvision names, architecture names/JSON files, .onnx or .engine files",
    )
    group.add_argument("--list-models", action="store_true", help="list the model names --model accepts and exit")
    group.add_argument("--json", default=None, metavar="FILE", help="write all results with their context to FILE")
    group.add_argument("--ort-provider", choices=("cpu", "cuda", "tensorrt"), default=None, help="ONNX Runtime provider (default: the device's)")
    group.add_argument("--channels-last", action="store_true", help="eager: channels_last memory format")
    group.add_argument("--cuda-graphs", action="store_true", help="eager on CUDA: replay a captured CUDA graph (also for a device profile)")
    group.add_argument("--budget", type=positive_float, default=None,
                       help="seconds of timing per model and backend at most (default: 10; a device profile takes --time-per-net)")
    group.add_argument("--statistic", choices=("median", "p10"), default="median", help="reported statistic (default: median)")
    profile_device.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.list_models:
        return _list_models()
    if args.model is None:
        return profile_device.run(args)
    import profilers  # noqa: PLC0415 - keeps `hwnas --help` fast
    from hwnas.models import resolve_model  # noqa: PLC0415

    batch_size = 1 if args.batch_size is None else args.batch_size
    precision = args.precision or "fp32"
    backends = _split(args.backend, "--backend")
    specs = _split(args.model, "--model")
    for backend in backends:
        profilers.check(backend, args.device, precision)
    models = [resolve_model(spec, batch_size=batch_size, input_size=args.input_size) for spec in specs]
    for resolved in models:
        _check_file_backends(resolved, backends)
        note = _static_file_note(resolved, args.batch_size, args.input_size)
        if note:
            print(note, file=sys.stderr)
    json_path = _json_target(args.json)
    config = profilers.MeasureConfig(
        budget_s=DEFAULT_BUDGET_S if args.budget is None else args.budget,
        threads=args.threads,
        channels_last=args.channels_last,
        cuda_graphs=args.cuda_graphs,
        ort_provider=args.ort_provider,
        statistic=args.statistic,
        seed=args.seed,
    )
    results: list[Any] = []
    try:
        _measure_all(models, backends, args.device, precision, config, results)
    except KeyboardInterrupt:
        if json_path is not None and results:
            _write_json(json_path, results)  # keep what was measured before the interrupt
        raise
    _print_table(results)
    note = profile_device.precision_note(args.device, precision)
    if note:
        print(note)
    if json_path is not None:
        _write_json(json_path, results)
        print(f"wrote {len(results)} results with their context to {json_path}")
    return 0


def _check_file_backends(resolved: Any, backends: list[str]) -> None:
    """An .onnx file runs on ort/tensorrt and an .engine on tensorrt only: refuse before timing anything."""
    allowed = {"onnx file": ("ort", "tensorrt"), "tensorrt engine": ("tensorrt",)}.get(resolved.source)
    if allowed is None:
        return
    refused = [backend for backend in backends if backend not in allowed]
    if refused:
        raise UsageError(
            f"{resolved.name} is an {resolved.source}; backend {', '.join(refused)} cannot run it: "
            f"use --backend {','.join(allowed)}"
        )


def _measure_all(models: list[Any], backends: list[str], device: str, precision: str, config: Any, results: list[Any]) -> None:
    """Each model x backend, one after another, with a progress bar on stderr; appends to `results`."""
    import profilers  # noqa: PLC0415
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import Progress  # noqa: PLC0415

    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("profiling", total=len(models) * len(backends))
        for resolved in models:
            for backend in backends:
                progress.update(task, description=f"{resolved.name} on {backend}")
                results.append(
                    profilers.measure(
                        resolved.model,
                        backend=backend,
                        device=device,
                        input_shape=resolved.input_shape,
                        precision=precision,
                        config=config,
                        name=resolved.name,
                    )
                )
                progress.advance(task)


def _static_file_note(resolved: Any, batch_size: int | None, input_size: int | None) -> str | None:
    """One line when an .onnx file's static input shape overrides --batch-size / --input-size the user
    gave: the file is timed as built, and saying so is better than ignoring the flag silently."""
    if resolved.source != "onnx file" or (batch_size is None and input_size is None):
        return None
    from profilers._onnx import onnx_signature  # noqa: PLC0415

    shape, _ = onnx_signature(resolved.model)
    ignored = []
    if batch_size is not None and shape and shape[0] is not None and shape[0] != batch_size:
        ignored.append(f"--batch-size {batch_size}")
    if input_size is not None and len(shape) == 4 and any(d is not None and d != input_size for d in shape[2:]):
        ignored.append(f"--input-size {input_size}")
    if not ignored:
        return None
    fixed = "x".join("?" if d is None else str(d) for d in shape)
    return (f"note: {resolved.name} has a static input shape {fixed}: {' and '.join(ignored)} do not apply to it "
            "(export it with a dynamic batch, or at that size, to time another shape)")


def _print_table(results: list[Any]) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    first = results[0].context
    table = Table(
        title=f"{first.device_name} ({first.device}), batch {first.batch_size}, {first.precision}, {first.threads} threads"
    )
    for column in ("model", "backend", f"{results[0].statistic} ms", "p10-p90 ms", "cv", "runs", "images/s"):
        table.add_column(column, justify="left" if column in ("model", "backend") else "right")
    for result in results:
        backend = result.context.backend
        if result.context.provider and backend == "ort":
            backend = f"ort ({result.context.provider.removesuffix('ExecutionProvider')})"
        table.add_row(
            result.model,
            backend,
            _ms(result.value_ms) + (" *" if result.noisy else ""),
            f"{_ms(result.p10_ms)}-{_ms(result.p90_ms)}",
            f"{result.cv:.3f}",
            str(result.runs),
            f"{result.throughput:.1f}",
        )
    console = Console()
    console.print(table)
    console.print(f"reported statistic: {results[0].statistic_reason}", highlight=False)
    load = first.cpu_load
    if load is not None and load > 1.0:
        console.print(
            f"note: the CPU was busy (load {load:.1f} per core when timing began): other work shares this machine, "
            "so timings include waiting; compare numbers only from the same run",
            highlight=False,
        )
    if any(result.noisy for result in results):
        console.print(
            "* noisy: the 95% interval stayed wider than +-1% after re-measuring; the machine is busy", highlight=False
        )


def _ms(value: float) -> str:
    """Milliseconds with about four significant digits."""
    return f"{value:.{max(0, 3 - len(str(int(value))))}f}"


def _split(value: str, flag: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise UsageError(f"{flag} is empty: give at least one name")
    return items


def _json_target(value: str | None) -> Path | None:
    return None if value is None else writable_file(value, "--json")


def _write_json(path: Path, results: list[Any]) -> None:
    """Atomic write: a reader never sees half a file."""
    from search_spaces.files import write_json  # noqa: PLC0415 - keeps `hwnas --help` fast

    write_json(path, {
        "format": PROFILE_FORMAT,
        "version": PROFILE_VERSION,
        "results": [result.to_dict() for result in results],
    })


def _list_models() -> int:
    from hwnas.models import architecture_names, torchvision_model_names  # noqa: PLC0415

    print("architectures (search_spaces):", ", ".join(architecture_names()) or "(none)")
    print("torchvision:", ", ".join(torchvision_model_names()))
    print("files: any .onnx file (ort, tensorrt) or TensorRT .engine file (tensorrt)")
    return 0
