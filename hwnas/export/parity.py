"""Output parity of an exported file with eager PyTorch, through the runtime that will run it.

The file is run by the profilers' own runners (ONNX Runtime with graph
optimisation level ALL and I/O binding, or the TensorRT engine), i.e. in
exactly the configuration that is timed, on the seeded N(0,1) input the
runner makes (`profilers.backends.base.random_input`); eager runs the same
input on the same device in the same precision.

Errors are relative to the output's scale: max_rel = max|y - y_ref| / max|y_ref|
(an element-wise ratio explodes on logits near zero and says nothing).
Bounds: fp32 on the CPU 1e-3 (both sides are exact fp32 kernels, only the
summation order differs); fp32 on a GPU 1e-2 (cuDNN, ORT's CUDA EP and
TensorRT may use TF32 for convolutions); fp16 5e-2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas.errors import UsageError
from profilers import MeasureConfig
from profilers.backends import PrepareRequest, get_backend
from profilers.backends.base import PRECISIONS, module_copy, random_input

RUNTIMES = {"ort": "onnxruntime", "tensorrt": "tensorrt"}


class ParityError(UsageError):
    """The exported file computes something else than the network (one line, exit 2)."""


def ready_module(model: nn.Module, device: torch.device, precision: str) -> nn.Module:
    """`model` itself when it already is in eval mode on `device` in `precision` (no copy:
    a deepcopy of a 20-cell DARTS network costs seconds), else the profilers' eval-mode copy."""
    dtype = PRECISIONS[precision]
    tensors = [*model.parameters(), *model.buffers()]
    ready = not any(module.training for module in model.modules()) and all(
        tensor.device == device and (tensor.dtype == dtype or not tensor.is_floating_point()) for tensor in tensors
    )
    return model if ready else module_copy(model, device, precision)


def bound(precision: str, device: torch.device) -> float:
    """Largest accepted max_rel error for `precision` on `device` (see module docstring)."""
    if precision != "fp32":
        return 5e-2
    return 1e-3 if device.type == "cpu" else 1e-2


@dataclass(frozen=True)
class Parity:
    """One comparison: runtime output vs eager at one batch size (errors in output units / relative)."""

    runtime: str
    provider: str
    device: str
    precision: str
    batch_size: int
    max_abs_error: float
    max_rel_error: float
    bound_rel: float
    reference_scale: float
    input_spread: float | None  # mean over outputs of their std across the batch: > 0 = input-dependent

    @property
    def passed(self) -> bool:
        """Below the bound, and every number finite (NaN compares false, so NaN fails too)."""
        return math.isfinite(self.max_abs_error) and self.max_rel_error < self.bound_rel

    def line(self) -> str:
        return (
            f"parity {self.runtime} ({self.provider}) on {self.device}, {self.precision}, batch {self.batch_size}: "
            f"max abs {self.max_abs_error:.3g}, max rel {self.max_rel_error:.3g} (bound {self.bound_rel:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["reference"] = f"PyTorch eager, {self.precision} on {self.device}, same seeded N(0,1) input"
        return data


def check_parity(
    model: nn.Module,
    artifact: Path,
    *,
    backend: str,
    device: torch.device,
    precision: str,
    input_shape: tuple[int, ...],
    config: MeasureConfig,
    workdir: Path,
) -> Parity:
    """Run `artifact` once with `backend` and compare with eager; raise ParityError beyond the bound."""
    threads = config.threads or torch.get_num_threads()
    request = PrepareRequest(artifact, device, input_shape, precision, threads, config, workdir, f"parity-{backend}")
    runner = get_backend(backend).prepare(request)
    try:
        runner()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        output = runner.outputs[0] if hasattr(runner, "outputs") else runner.output  # ORT binds every output now
        actual = output.detach().float().cpu()
        provider = runner.provider
        shape = tuple(runner.input_shape)
    finally:
        runner.close()
    example = random_input(shape, PRECISIONS[precision], device, config.seed)
    with torch.inference_mode():
        reference = ready_module(model, device, precision)(example).float().cpu()
    if not (torch.isfinite(actual).all() and torch.isfinite(reference).all()):
        bad = "the exported file's" if not torch.isfinite(actual).all() else "eager PyTorch's"
        raise ParityError(f"parity {RUNTIMES[backend]} on {device}, {precision}: {bad} output is not finite (NaN or "
                          "Inf): the network's weights or arithmetic overflow; nothing was checked, nothing exported")
    difference = (actual.reshape(reference.shape) - reference).abs().max().item()
    scale = reference.abs().max().item()
    result = Parity(
        runtime=RUNTIMES[backend],
        provider=provider,
        device=str(device),
        precision=precision,
        batch_size=shape[0],
        max_abs_error=difference,
        max_rel_error=difference / scale if scale > 0 else float("inf") if difference > 0 else 0.0,
        bound_rel=bound(precision, device),
        reference_scale=scale,
        input_spread=reference.std(dim=0).mean().item() if shape[0] > 1 else None,
    )
    if not result.passed:
        raise ParityError(
            f"{result.line()} exceeds the bound: the exported file does not compute this network "
            "(try --exporter dynamo or another --opset)"
        )
    return result
