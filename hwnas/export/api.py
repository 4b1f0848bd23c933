"""`export_network`: architecture (+ weights) -> checked, parity-tested, measured export folder.

Order of work, each step refusing with one line what it cannot do:
1. validate the options and the destination (nothing is written yet);
2. resolve the architecture, build the network, load or inherit weights
   (or seed a random initialisation with calibrated BatchNorm statistics);
3. in a staging folder beside the destination: `arch.json`, `model.onnx`
   (checked, optionally simplified), parity on ONNX Runtime, the TensorRT
   engine with its parity, latency per backend, `manifest.json`;
4. rename the staging folder into place.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

import profilers
from hwnas.errors import UsageError
from hwnas.export.manifest import latency_entry, read_manifest, sha256_file, write_manifest
from hwnas.export.onnx_export import check_onnx, export_onnx, simplify_onnx
from hwnas.export.options import ExportOptions
from hwnas.export.parity import Parity, check_parity, ready_module
from hwnas.export.staging import check_destination, staged_folder
from hwnas.export.tensorrt_export import TensorRTEngine, build_tensorrt_engine
from hwnas.export.weights import calibrate_batchnorm, inherit_weights, load_weights
from profilers import LatencyResult
from profilers.backends.tensorrt import ShapeRange, engine_precision
from profilers.backends.base import PRECISIONS, random_input
from search_spaces import Architecture, SearchSpace, load_architecture, space_for
from search_spaces.memory import estimate, refusal

ONNX_NAME = "model.onnx"
ARCH_NAME = "arch.json"
Report = Callable[[str], None]


@dataclass(frozen=True)
class ExportResult:
    """The export folder and its manifest (the same dict that manifest.json holds)."""

    out: Path
    manifest: dict[str, Any]

    @property
    def onnx(self) -> Path:
        return self.out / ONNX_NAME

    @property
    def latency_ms(self) -> dict[str, float]:
        """Reported latency statistic per backend (ms)."""
        return {backend: entry["value_ms"] for backend, entry in self.manifest["latency"].items()}


@dataclass(frozen=True)
class _Target:
    """Where files go: `staging` (renamed to `out` at the end) and `work` (runtime scratch, discarded)."""

    staging: Path
    out: Path
    work: Path


@dataclass(frozen=True)
class _Network:
    arch: Architecture
    space: SearchSpace
    model: nn.Module
    input_shape: tuple[int, ...]  # at batch 1
    weights: dict[str, Any]


def export_network(
    arch: Architecture | str,
    out: str | Path,
    options: ExportOptions | None = None,
    *,
    model: nn.Module | None = None,
    report: Report | None = None,
) -> ExportResult:
    """Export `arch` (an Architecture, a named architecture or an architecture JSON path) to `out`.

    `model` passes an already built and trained network of `arch` (the search
    pipeline's), instead of building one and loading `options.weights`.
    `report` receives the progress lines (parity figures, files, latencies).
    """
    options = options or ExportOptions()
    say = report or (lambda line: None)
    out = Path(out)
    options.validate()
    device, runtimes = _check_device(options)
    for note in runtimes.notes:
        say(note)
    check_destination(out, options.force)
    network = _network(arch, model, options)
    with tempfile.TemporaryDirectory(prefix="hwnas-export-") as work, staged_folder(out, options.force) as staging:
        network.arch.save(staging / ARCH_NAME)
        sections = _export_into(_Target(staging, out, Path(work)), network, options, device, runtimes, say)
        write_manifest(staging, sections)
    manifest = read_manifest(out)
    say(f"wrote {out} ({', '.join(sorted(manifest['files']))}, manifest.json)")
    return ExportResult(out, manifest)


@dataclass(frozen=True)
class _Runtimes:
    """What runs on the export device: ORT there (parity, latency) or only on the CPU, and what is timed."""

    ort_on_device: bool
    measured: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _check_device(options: ExportOptions) -> tuple[torch.device, _Runtimes]:
    """Parse the device and refuse missing runtimes before any work.

    ONNX Runtime's GPU provider is needed only where nothing else can do its
    job: fp16 parity (the CPU provider does not run fp16 graphs faithfully) or
    an explicit `--measure ort`. Otherwise an fp32 export on a GPU machine whose
    onnxruntime has no working CUDA provider (the CPU wheel, or CUDA libraries
    that do not load) checks parity on ORT's CPU provider and times what is
    there, and says so.
    """
    device = profilers.check("eager", options.device, options.precision)
    profilers.check("ort", "cpu", "fp32")
    if "tensorrt" in options.formats:
        profilers.check("tensorrt", device, options.precision)
    ort_reason = None if device.type == "cpu" else profilers.available_backends(str(device))["ort"]
    if ort_reason is not None and (options.precision != "fp32" or options.measure is not None and "ort" in options.measure):
        profilers.check("ort", device, options.precision)  # raises, naming why the provider does not load
    measured = tuple(b for b in options.measured_backends if b != "ort" or ort_reason is None)
    for backend in measured:
        profilers.check(backend, device, options.precision)
    notes = () if ort_reason is None else (
        f"ONNX Runtime on {device}: {ort_reason}; parity checked on ORT's CPU provider, ORT latency not measured",)
    return device, _Runtimes(ort_reason is None, measured, notes)


def _network(arch: Architecture | str, model: nn.Module | None, options: ExportOptions) -> _Network:
    arch = arch if isinstance(arch, Architecture) else load_architecture(str(arch))
    space = space_for(arch)
    shape = tuple(space.input_shape(1))
    if options.input_size is not None:
        shape = (*shape[:-2], options.input_size, options.input_size)
    need = estimate(lambda: space.build(arch), (options.batch.max, *shape[1:]))
    message = refusal(need, f"exporting at batch {options.batch.max} and input {'x'.join(map(str, shape[1:]))}",
                      "lower --input-size or the largest batch (--batch-size / --dynamic-batch MAX)")
    if message:
        raise UsageError(message)
    if model is not None:
        # Used as is only when already in eval mode on the right device and dtype, else copied: never changed.
        return _Network(arch, space, model, shape, {"source": "given module (trained by the caller)"})
    if options.inherit_from is not None:
        built = inherit_weights(space, arch, options.inherit_from)
        weights = {"source": "inherited from supernet", "path": str(options.inherit_from)}
    else:
        with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's random state
            torch.manual_seed(options.seed)
            built = space.build(arch)
        if options.weights is not None:
            load_weights(built, options.weights, arch)
            weights = {"source": "checkpoint", "path": str(options.weights)}
        else:
            calibrate_batchnorm(built, shape, options.seed)
            weights = {
                "source": f"random initialisation (seed {options.seed}), BatchNorm statistics calibrated on N(0,1) inputs",
                "note": "for latency and parity only: not a trained classifier",
            }
    if "path" in weights:
        weights["sha256"] = sha256_file(Path(weights["path"]))
    return _Network(arch, space, built.eval(), shape, weights)


def _export_into(
    target: _Target, network: _Network, options: ExportOptions, device: torch.device, runtimes: _Runtimes, say: Report
) -> dict[str, Any]:
    """Write the artifacts into the staging folder; return the manifest sections."""
    batch = options.batch
    shape = (batch.opt, *network.input_shape[1:])
    export_device = device if options.precision != "fp32" else torch.device("cpu")
    example = random_input(shape, PRECISIONS[options.precision], export_device, options.seed)
    onnx_path = target.staging / ONNX_NAME
    onnx_file = export_onnx(
        ready_module(network.model, export_device, options.precision),
        example,
        onnx_path,
        opset=options.opset,
        dynamic_batch=batch.dynamic,
        exporter=options.exporter,
    )
    say(f"exported {ONNX_NAME}: opset {onnx_file.opset}, {onnx_file.exporter} exporter, checker {onnx_file.checker}")
    simplification = simplify_onnx(onnx_path) if options.simplify else {"applied": False, "note": "not requested"}
    if simplification["applied"]:
        checked = check_onnx(onnx_path, onnx_file.exporter)
        onnx_file = replace(checked, checker=f"{checked.checker} after simplification")
    if options.simplify:
        say(f"simplification: {simplification.get('note') or simplification}")
    parities = _onnx_parity(onnx_path, network, options, device if runtimes.ort_on_device else None, target.work, say)
    engine, precision = None, None
    if "tensorrt" in options.formats:
        engine, precision, parity = _tensorrt(onnx_path, target, network, options, device, shape)
        parities.append(parity)
        say(parity.line())
        say(f"built {engine.engine.name}: TensorRT {engine.version}, engine precision {precision}")
    latency = _measure(network, onnx_path, engine, options, runtimes.measured, device, shape, say)
    return {
        "architecture": network.arch.to_dict(),
        "space_signature": network.space.signature(),
        "weights": network.weights,
        "precision": options.precision,
        "batch": batch.to_dict(),
        "input_shape": list(shape),
        "device": str(device),
        "onnx": {**onnx_file.to_dict(), "simplification": simplification},
        "tensorrt": None if engine is None else engine.to_dict(precision),
        "inputs": [spec.to_dict() for spec in onnx_file.inputs],
        "outputs": [spec.to_dict() for spec in onnx_file.outputs],
        "parity": [parity.to_dict() for parity in parities],
        "latency": {backend: latency_entry(result, target.staging, target.out) for backend, result in latency.items()},
        "notes": list(runtimes.notes),
    }


def _tensorrt(
    onnx_path: Path, target: _Target, network: _Network, options: ExportOptions, device: torch.device,
    shape: tuple[int, ...],
) -> tuple[TensorRTEngine, str, Parity]:
    """Build the engine, check its parity, and read back the precision it really runs in."""
    batch, rest = options.batch, tuple(shape[1:])
    shapes = ShapeRange((batch.min, *rest), (batch.opt, *rest), (batch.max, *rest))
    engine = build_tensorrt_engine(onnx_path, target.staging, device, shapes)
    parity = _parity(network, engine.engine, "tensorrt", device, options, shape, target.work)
    layers = engine.layers_json  # written by the TensorRT runner that the parity check made
    precision = engine_precision(layers.read_text()) if layers.exists() else "unknown (no inspector output)"
    return engine, precision, parity


def _onnx_parity(
    onnx_path: Path, network: _Network, options: ExportOptions, device: torch.device | None, work: Path, say: Report
) -> list[Parity]:
    """fp32: ONNX Runtime's CPU provider at the strict bound, plus the device's provider on a GPU
    (`device` None: ORT has no working provider there); fp16: the device's provider. Each batch
    size the graph is exported for (both ends if dynamic)."""
    places = [torch.device("cpu")] if options.precision == "fp32" else []
    if device is not None and device.type == "cuda":
        places.append(device)
    results = []
    for place in places:
        for size in options.batch.checked_sizes:
            shape = (size, *network.input_shape[1:])
            parity = _parity(network, onnx_path, "ort", place, options, shape, work)
            say(parity.line())
            results.append(parity)
    return results


def _parity(
    network: _Network, artifact: Path, backend: str, device: torch.device, options: ExportOptions,
    shape: tuple[int, ...], work: Path,
) -> Parity:
    return check_parity(
        network.model, artifact, backend=backend, device=device, precision=options.precision,
        input_shape=shape, config=options.measure_config, workdir=work,
    )


def _measure(
    network: _Network, onnx_path: Path, engine: TensorRTEngine | None, options: ExportOptions,
    backends: tuple[str, ...], device: torch.device, shape: tuple[int, ...], say: Report,
) -> dict[str, LatencyResult]:
    """Time each requested backend on the exported files themselves (eager: the module)."""
    subjects: dict[str, tuple[Any, str]] = {
        "eager": (network.model, str(network.arch.extra.get("name", "model"))),
        "ort": (onnx_path, onnx_path.name),
    }
    if engine is not None:
        subjects["tensorrt"] = (engine.engine, engine.engine.name)
    results = {}
    for backend in backends:
        subject, name = subjects[backend]
        result = profilers.measure(
            subject, backend=backend, device=device, input_shape=shape, precision=options.precision,
            config=options.measure_config, name=name,
        )
        say(
            f"latency {backend} ({result.context.provider or 'torch'}) on {device}, batch {shape[0]}: "
            f"{result.statistic} {result.value_ms:.3f} ms (p10-p90 {result.p10_ms:.3f}-{result.p90_ms:.3f}, {result.runs} runs)"
        )
        results[backend] = result
    return results

