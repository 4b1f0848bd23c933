"""Eager PyTorch: the model as a user runs it (CPU or CUDA; fp32/fp16/bf16)."""

from __future__ import annotations

import torch
from torch import nn

from profilers._device import cuda_unavailable_reason
from profilers._mathmode import torch_math_mode
from profilers.backends.base import (
    PRECISIONS,
    Backend,
    PrepareRequest,
    Runner,
    module_copy,
    random_input,
    wait_for_current_stream,
)
from profilers.errors import ProfilerError


class EagerRunner(Runner):
    """Calls the module (or replays its CUDA graph) on a fixed random input.

    The caller holds `torch.inference_mode()` while timing; the CUDA graph is
    captured under it here.
    """

    def __init__(self, request: PrepareRequest) -> None:
        super().__init__()
        if not isinstance(request.model, nn.Module):
            raise ProfilerError(
                f"{request.name} is a file ({request.model}): the eager backend needs a PyTorch model; "
                "use --backend ort or tensorrt for ONNX/engine files"
            )
        config = request.config
        dtype = PRECISIONS[request.precision]
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model = module_copy(request.model, request.device, request.precision, config.channels_last)
        self.input = random_input(request.input_shape, dtype, request.device, config.seed).contiguous(
            memory_format=memory_format
        )
        self.input_shape = request.input_shape
        self.provider = f"torch {torch.__version__}"
        self.details["memory_format"] = "channels_last" if config.channels_last else "contiguous"
        self.graph: torch.cuda.CUDAGraph | None = None
        if request.device.type == "cuda":
            # profilers.measure turns cudnn.benchmark on for the measurement and restores it after.
            self.stream = torch.cuda.Stream(request.device)
            wait_for_current_stream(self.stream)  # the weights and the input were written on the current stream
            self.details["cudnn.benchmark"] = "True"
            self.details["math_mode"] = torch_math_mode()
            if config.cuda_graphs:
                with torch.cuda.device(request.device):
                    self._capture_graph()
        elif config.cuda_graphs:
            raise ProfilerError("CUDA graphs need a CUDA device: drop cuda_graphs or use --device cuda:N")

    def _capture_graph(self) -> None:
        """Warm up on the side stream (cuDNN autotuning must not be captured), then capture."""
        assert self.stream is not None
        with torch.inference_mode(), torch.cuda.stream(self.stream):
            for _ in range(3):
                self.model(self.input)
        self.stream.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph, stream=self.stream):
            self.output = self.model(self.input)
        self.details["cuda_graph"] = "captured once, replayed per run"

    def __call__(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            self.model(self.input)

    def close(self) -> None:
        self.graph = None


class EagerBackend(Backend):
    name = "eager"
    description = "PyTorch eager mode (model.eval(), inference_mode)"

    def unavailable_reason(self, device: torch.device) -> str | None:
        return cuda_unavailable_reason() if device.type == "cuda" else None

    def precisions(self, device: torch.device) -> tuple[str, ...]:
        return ("fp32", "fp16", "bf16")

    def prepare(self, request: PrepareRequest) -> Runner:
        return EagerRunner(request)
