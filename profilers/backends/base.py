"""The one surface every backend offers, and the registry the CLI looks names up in.

A backend *prepares* a model once (export, build, allocate device buffers,
make random inputs) and returns a `Runner`; `profilers._timing` then times
runners without knowing which backend made them (the nn-Meter split:
profiler = backend runner, statistics = shared parser).
"""

from __future__ import annotations

import abc
import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from profilers.config import MeasureConfig
from profilers.errors import ProfilerError
from profilers.result import LayerTime

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class PrepareRequest:
    """What to prepare: one model at one exact input shape, precision and device."""

    model: Any  # nn.Module, or a Path to an .onnx / .engine file
    device: torch.device
    input_shape: tuple[int, ...]
    precision: str
    threads: int
    config: MeasureConfig
    workdir: Path
    name: str = "model"


class Runner(abc.ABC):
    """One prepared model; calling it runs one inference on its own random input.

    On CUDA the call only enqueues work on `stream` (the timer records CUDA
    events on that stream around it); on the CPU it returns when done.
    """

    stream: torch.cuda.Stream | None = None
    provider: str = ""
    input_shape: tuple[int, ...] = ()
    details: dict[str, str]

    def __init__(self) -> None:
        self.details = {}

    @abc.abstractmethod
    def __call__(self) -> None: ...

    def layer_times(self, runs: int) -> tuple[LayerTime, ...] | None:
        """Per-layer times from a separate profiling run; None if the backend has none."""
        return None

    def close(self) -> None:
        """Release sessions, engines and device buffers."""


class Backend(abc.ABC):
    """A way to run a model: eager PyTorch, ONNX Runtime, TensorRT."""

    name: str = ""
    description: str = ""

    @abc.abstractmethod
    def unavailable_reason(self, device: torch.device) -> str | None:
        """None when this backend works on `device`, else why not and how to fix it."""

    @abc.abstractmethod
    def precisions(self, device: torch.device) -> tuple[str, ...]:
        """Precisions this backend can time on `device`."""

    @abc.abstractmethod
    def prepare(self, request: PrepareRequest) -> Runner:
        """Export/build/allocate once, so that every timed call is the model's work only."""


@dataclass
class _Registry:
    backends: dict[str, Backend] = field(default_factory=dict)


_REGISTRY = _Registry()


def register_backend(backend: Backend) -> Backend:
    """Add a backend under its name; a duplicate name is a bug, not an override."""
    if backend.name in _REGISTRY.backends:
        raise ValueError(f"a profiler backend named {backend.name!r} is already registered")
    _REGISTRY.backends[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    """The backend `name`, in any case (`ORT` is `ort`)."""
    try:
        return _REGISTRY.backends[name.lower()]
    except KeyError:
        raise ProfilerError(f"unknown backend {name!r}: choose from {', '.join(list_backends())}") from None


def list_backends() -> list[str]:
    return list(_REGISTRY.backends)


def check_request(backend: Backend, device: torch.device, precision: str) -> None:
    """Refuse, before any work, a backend that cannot run here or a precision it cannot do."""
    reason = backend.unavailable_reason(device)
    if reason is not None:
        raise ProfilerError(f"backend {backend.name} cannot run on {device}: {reason}")
    if precision not in PRECISIONS:
        raise ProfilerError(f"unknown precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    allowed = backend.precisions(device)
    if precision not in allowed:
        raise ProfilerError(
            f"backend {backend.name} cannot time {precision} on {device.type}: use --precision {' or '.join(allowed)}"
        )


def module_copy(model: torch.nn.Module, device: torch.device, precision: str, channels_last: bool = False) -> torch.nn.Module:
    """An eval-mode copy on `device` in `precision`: preparing never changes the caller's module."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return copy.deepcopy(model).eval().to(device=device, dtype=PRECISIONS[precision], memory_format=memory_format)


def wait_for_current_stream(stream: torch.cuda.Stream | None) -> None:
    """Order `stream` after the work already queued on the current stream of its device.

    Weights, inputs and output buffers are made on the current (usually default)
    stream; a side stream that does not wait for it may read them before they
    are written. Every backend calls this after preparing and before its first run.
    """
    if stream is not None:
        stream.wait_stream(torch.cuda.current_stream(stream.device))


def random_input(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, seed: int) -> torch.Tensor:
    """Standard-normal input: real values, never zeros (zeros can hit fast paths)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator).to(device=device, dtype=dtype)


def import_optional(module: str, hint: str) -> Any:
    """Import an optional dependency at use; fail with the import error and a hint."""
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ProfilerError(f"{module} is not importable ({error}); {hint}") from error
