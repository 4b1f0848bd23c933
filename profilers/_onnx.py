"""nn.Module -> ONNX file at one static input shape, and what an ONNX file expects.

Exporter choice: the TorchScript exporter (`torch.onnx.export(..., dynamo=False)`)
by default, the dynamo exporter on request (`MeasureConfig.onnx_exporter`).

- Static shapes are what we time: the LUT and the search key every number by
  its exact input shape, so neither exporter is given dynamic axes, and
  TensorRT then builds for that one shape.
- Speed: tracing exports a small op in ~0.05 s and MobileNetV2 in ~1 s on
  two CPU cores; the dynamo exporter (torch.export + onnxscript) takes ~1.5 s
  for a tiny convnet and ~8 s for MobileNetV2. A device profile exports
  hundreds of single ops, so this decides whether ORT/TensorRT LUTs are
  practical.
- The traced graph runs the module exactly as eager did at that shape, and
  ORT/TensorRT apply their own fusions (Conv+BN, activation fusion) at
  optimisation level ALL, so the onnxscript optimiser adds nothing to the
  timed engine.
- The TorchScript exporter is deprecated in PyTorch >= 2.9: when it is gone
  or fails on a model, we fall back to the dynamo exporter and record which
  one produced the file (`details["onnx_exporter"]`).
"""

from __future__ import annotations

from collections.abc import Sequence

import warnings
from pathlib import Path

import torch
from torch import nn

from profilers.backends.base import PRECISIONS, PrepareRequest, import_optional, module_copy, random_input
from profilers.errors import ProfilerError

OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "output"
_ONNX_PRECISIONS = {1: "fp32", 10: "fp16", 16: "bf16"}  # onnx.TensorProto element types


BATCH_AXIS = "batch"


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: Path,
    exporter: str,
    *,
    opset: int = OPSET,
    dynamic_batch: bool = False,
    fallback: bool = True,
) -> str:
    """Write `model` at `example`'s shape and dtype to `path`; return the exporter used.

    Timing uses the defaults (static shape, `OPSET`, fall back to the other
    exporter). `hwnas export` asks for a stated opset, optionally a symbolic
    batch axis, and no fallback: a shipped file must come from the exporter
    the user chose.
    """
    order = [exporter] + ([other for other in ("torchscript", "dynamo") if other != exporter] if fallback else [])
    dynamic_axes = {INPUT_NAME: {0: BATCH_AXIS}, OUTPUT_NAME: {0: BATCH_AXIS}} if dynamic_batch else None
    errors = []
    for name in order:
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # deprecation and tracer notes, not user errors
                torch.onnx.export(
                    model,
                    (example,),
                    str(path),
                    dynamo=name == "dynamo",
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    opset_version=opset,
                    dynamic_axes=dynamic_axes,
                    verbose=False,
                    external_data=False,
                )
            return name
        except Exception as error:  # noqa: BLE001 - try the other exporter, report both if both fail
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            errors.append(f"{name}: {type(error).__name__}: {first}")
    hint = "use --backend eager for this model" if fallback else "try the other --exporter or another --opset"
    raise ProfilerError(f"ONNX export (opset {opset}) failed ({'; '.join(errors)}); {hint}")


def onnx_signature(path: Path) -> tuple[tuple[int | None, ...], str]:
    """Shape of the first input (None for a symbolic dimension) and its precision."""
    onnx = import_optional("onnx", "pip install onnx")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: BLE001 - any parse failure means the file is not usable
        raise ProfilerError(f"cannot read {path} as ONNX ({type(error).__name__}: {error}); check the file") from error
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise ProfilerError(f"{path} has {len(inputs)} inputs; hwnas times single-input image models only")
    tensor_type = inputs[0].type.tensor_type
    dims = list(tensor_type.shape.dim)
    empty = [index for index, dim in enumerate(dims) if dim.HasField("dim_value") and dim.dim_value <= 0]
    if empty:
        raise ProfilerError(f"{path} takes an input whose dimension {empty[0]} has size "
                            f"{dims[empty[0]].dim_value}: no tensor fits it; re-export the model with a positive "
                            "or a symbolic (dynamic) size there")
    shape = tuple(dim.dim_value if dim.HasField("dim_value") else None for dim in dims)
    precision = _ONNX_PRECISIONS.get(tensor_type.elem_type)
    if precision is None:
        raise ProfilerError(f"{path} takes element type {tensor_type.elem_type}; hwnas times fp32/fp16/bf16 inputs only")
    return shape, precision


def resolve_file_shape(path: Path, requested: tuple[int, ...], precision: str) -> tuple[int, ...]:
    """The file's static shape wins (it is what the graph was built for); symbolic
    dimensions take the requested value. A precision mismatch is refused."""
    shape, file_precision = onnx_signature(path)
    if file_precision != precision:
        raise ProfilerError(
            f"{path.name} takes {file_precision} input but {precision} was asked for: "
            f"use --precision {file_precision}, or export the model in {precision}"
        )
    if len(shape) != len(requested):
        raise ProfilerError(f"{path.name} takes a rank-{len(shape)} input, not {requested}; check --input-size")
    return tuple(dim if dim is not None else want for dim, want in zip(shape, requested, strict=True))


def compare_outputs(reference: torch.Tensor | Sequence[torch.Tensor], actual: torch.Tensor | Sequence[torch.Tensor],
                    precision: str, on_gpu: bool, what: str) -> str:
    """Refuse a converted model whose outputs differ from eager; return the max abs difference.

    A model may have several outputs (a DARTS stem returns two); each is
    compared in order. Tolerance relative to each output's scale: 1e-3 in
    fp32 on the CPU, 1e-2 in fp32 on the GPU (TF32 kernels), 5e-2 in fp16/bf16.
    """
    references = [reference] if isinstance(reference, torch.Tensor) else list(reference)
    actuals = [actual] if isinstance(actual, torch.Tensor) else list(actual)
    if len(references) != len(actuals):
        raise ProfilerError(f"{what} gives {len(actuals)} outputs where eager gives {len(references)}")
    worst = 0.0
    for expected, got in zip(references, actuals):
        expected = expected.detach().float().cpu()
        got = got.detach().float().cpu().reshape(expected.shape)
        scale = max(1.0, expected.abs().max().item())
        difference = (expected - got).abs().max().item()
        tolerance = (5e-2 if precision != "fp32" else 1e-2 if on_gpu else 1e-3) * scale
        if not difference <= tolerance:
            raise ProfilerError(
                f"{what} output differs from eager by {difference:.3g} (tolerance {tolerance:.3g}); "
                "the conversion is wrong for this model: time it with --backend eager"
            )
        worst = max(worst, difference)
    return f"{worst:.3g}"


def onnx_for(request: PrepareRequest, details: dict[str, str]) -> tuple[Path, tuple[int, ...], torch.Tensor | None]:
    """The ONNX file to run, its input shape, and eager's output on the runner's input
    (for the parity check; None for a given file or with verify_outputs off).

    A module is exported in the requested precision (TensorRT 11 networks are
    strongly typed: fp16 means an fp16 graph); a given .onnx file is used as is.
    """
    if isinstance(request.model, nn.Module):
        path = request.workdir / f"{request.name}-{request.precision}.onnx"
        model = module_copy(request.model, request.device, request.precision)
        example = random_input(request.input_shape, PRECISIONS[request.precision], request.device, request.config.seed)
        details["onnx_exporter"] = export_onnx(model, example, path, request.config.onnx_exporter)
        reference = None
        if request.config.verify_outputs:
            with torch.no_grad():
                reference = model(example)
        return path, request.input_shape, reference
    path = Path(request.model)
    if path.suffix != ".onnx":
        raise ProfilerError(f"{path.name} is not an .onnx file; ONNX Runtime and TensorRT build from ONNX")
    details["onnx_file"] = str(path)
    return path, resolve_file_shape(path, request.input_shape, request.precision), None
