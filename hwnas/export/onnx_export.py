"""nn.Module -> a checked ONNX file at a stated opset, static or dynamic batch.

The one ONNX exporter is `profilers._onnx.export_onnx` (timing uses it at a
static shape); a deployed file also needs the opset its runtime supports
and, for servers, a symbolic batch dimension ("batch"), which this module
asks of it, then checks the file. The input/output names are the profilers',
so `hwnas profile --model model.onnx` reads an exported file like its own.

Checks: `onnx.checker.check_model(full_check=True)` (structure and shape
inference) and the opset actually written. Simplification uses onnxslim
when it is installed; it is not a dependency, so without it the step is
skipped and the manifest says so.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas.errors import UsageError
from profilers._onnx import export_onnx as profilers_export_onnx
_DTYPES = {1: "float32", 10: "float16", 16: "bfloat16", 7: "int64"}  # onnx.TensorProto element types


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (an int, or the symbolic axis name) and element type of a graph input/output."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class OnnxFile:
    """What the exporter wrote: the file, its opset, the exporter, its I/O, the checker verdict."""

    path: Path
    opset: int
    exporter: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    checker: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "opset": self.opset,
            "exporter": self.exporter,
            "checker": self.checker,
        }


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, *, opset: int, dynamic_batch: bool, exporter: str) -> OnnxFile:
    """Export `model` (eval mode, on `example`'s device and dtype) to `path`, then check it."""
    profilers_export_onnx(model.eval(), example, path, exporter, opset=opset, dynamic_batch=dynamic_batch, fallback=False)
    return check_onnx(path, exporter)


def check_onnx(path: Path, exporter: str) -> OnnxFile:
    """Run the ONNX checker with shape inference and read the file's opset and I/O."""
    import onnx  # noqa: PLC0415

    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise UsageError(f"{path.name} fails the ONNX checker: {str(error).splitlines()[0]}") from error
    opset = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), -1)
    initializers = {init.name for init in model.graph.initializer}
    inputs = tuple(_spec(value) for value in model.graph.input if value.name not in initializers)
    outputs = tuple(_spec(value) for value in model.graph.output)
    version = f"onnx {onnx.__version__} check_model(full_check=True)"
    return OnnxFile(path, opset, exporter, inputs, outputs, f"passed ({version})")


def _spec(value: Any) -> TensorSpec:
    tensor = value.type.tensor_type
    shape = tuple(dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?") for dim in tensor.shape.dim)
    return TensorSpec(value.name, shape, _DTYPES.get(tensor.elem_type, f"onnx type {tensor.elem_type}"))


def simplify_onnx(path: Path) -> dict[str, Any]:
    """Simplify the graph in place with onnxslim if installed; return what happened (for the manifest).

    onnxslim is the maintained simplifier (used by TensorRT-Model-Optimizer,
    ultralytics, optimum); onnx-simplifier is not used. ONNX Runtime and
    TensorRT fuse Conv+BN+activation themselves, so simplification mostly
    shrinks the file and helps other runtimes.
    """
    if importlib.util.find_spec("onnxslim") is None:
        return {"tool": None, "applied": False, "note": "onnxslim is not installed (pip install onnxslim); graph kept as exported"}
    import onnx  # noqa: PLC0415
    import onnxslim  # noqa: PLC0415

    before = onnx.load(str(path))
    nodes_before = len(before.graph.node)
    slimmed = onnxslim.slim(before)
    if slimmed is None:
        return {"tool": f"onnxslim {onnxslim.__version__}", "applied": False, "note": "onnxslim returned no model; graph kept"}
    onnx.save(slimmed, str(path))
    return {
        "tool": f"onnxslim {getattr(onnxslim, '__version__', '?')}",
        "applied": True,
        "nodes_before": nodes_before,
        "nodes_after": len(slimmed.graph.node),
    }
