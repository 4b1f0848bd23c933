"""ONNX Runtime: CPU, CUDA and TensorRT execution providers, chosen explicitly.

The session uses graph optimisation level ALL and I/O binding. On CUDA the
input and output live in device buffers owned by torch, and the CUDA EP is
given our stream as its compute stream, so the CUDA events around a run
measure exactly ORT's kernels and no host copies. A session that silently
falls back to another provider is refused: the number would be mislabelled.
"""

from __future__ import annotations

import collections
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from profilers._device import cuda_unavailable_reason
from profilers._onnx import compare_outputs, onnx_for
from profilers.backends.base import PRECISIONS, Backend, PrepareRequest, Runner, import_optional, random_input
from profilers.errors import ProfilerError
from profilers.result import LayerTime

_PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
_ORT_HINT = "pip install onnxruntime-gpu (or onnxruntime for CPU only)"


def _ort() -> Any:
    return import_optional("onnxruntime", _ORT_HINT)


def provider_key(device: torch.device, choice: str | None) -> str:
    """The ORT provider to use: the explicit choice, else CPU on cpu and CUDA on cuda."""
    key = choice or ("cuda" if device.type == "cuda" else "cpu")
    if (key == "cpu") != (device.type == "cpu"):
        raise ProfilerError(f"ORT provider {key} does not run on {device}: pick a matching --device / --ort-provider")
    return key


def _numpy_dtype(precision: str) -> Any:
    import numpy as np  # noqa: PLC0415

    return {"fp32": np.float32, "fp16": np.float16}[precision]


class OrtRunner(Runner):
    """One InferenceSession with its I/O bound once; a call is `run_with_iobinding`."""

    def __init__(self, request: PrepareRequest) -> None:
        super().__init__()
        ort = _ort()
        self.request = request
        self.key = provider_key(request.device, request.config.ort_provider)
        path, self.input_shape, reference = onnx_for(request, self.details)
        self.path = path
        dtype = PRECISIONS[request.precision]
        if request.device.type == "cuda":
            self.stream = torch.cuda.Stream(request.device)
        self.input = random_input(self.input_shape, dtype, request.device, request.config.seed)
        self.session = self._session(ort, enable_profiling=False)
        self.provider = self.session.get_providers()[0]
        self.output = self._allocate_output(dtype)
        self.binding = self._bind(self.session)
        self.details.setdefault("onnx_file", str(path))
        self.details["graph_optimization_level"] = "ORT_ENABLE_ALL"
        self.details["io_binding"] = "device buffers" if request.device.type == "cuda" else "host buffers"
        if reference is not None:
            self.session.run_with_iobinding(self.binding)
            if self.stream is not None:
                self.stream.synchronize()  # the output is written on our stream
            self.details["max_abs_diff_vs_eager"] = compare_outputs(
                reference, self.output, request.precision, request.device.type == "cuda", f"ONNX Runtime ({self.provider})"
            )

    def _session(self, ort: Any, enable_profiling: bool) -> Any:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.request.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        if enable_profiling:
            options.enable_profiling = True
            options.profile_file_prefix = str(self.request.workdir / f"{self.request.name}-ort-profile")
        wanted = _PROVIDER_NAMES[self.key]
        try:
            session = ort.InferenceSession(str(self.path), options, providers=self._providers())
        except Exception as error:  # noqa: BLE001 - ORT raises its own untyped errors
            raise ProfilerError(f"ONNX Runtime cannot load {self.path.name} with {wanted}: {error}") from error
        if session.get_providers()[0] != wanted:
            raise ProfilerError(
                f"ONNX Runtime fell back from {wanted} to {session.get_providers()[0]}; "
                "run `hwnas doctor` to see why the provider does not load"
            )
        return session

    def _providers(self) -> list[Any]:
        if self.key == "cpu":
            return ["CPUExecutionProvider"]
        device = self.request.device
        assert self.stream is not None
        cuda_options = {
            "device_id": str(device.index or 0),
            "user_compute_stream": str(self.stream.cuda_stream),
            "cudnn_conv_algo_search": "EXHAUSTIVE",
        }
        providers: list[Any] = [("CUDAExecutionProvider", cuda_options)]
        if self.key == "tensorrt":
            workdir = str(self.request.workdir)
            trt_options = {
                "device_id": str(device.index or 0),
                "user_compute_stream": str(self.stream.cuda_stream),
                "trt_fp16_enable": str(self.request.precision == "fp16"),
                "trt_engine_cache_enable": "True",
                "trt_engine_cache_path": workdir,
                "trt_timing_cache_enable": "True",
                "trt_timing_cache_path": workdir,
            }
            providers.insert(0, ("TensorrtExecutionProvider", trt_options))
        return providers

    def _allocate_output(self, dtype: torch.dtype) -> torch.Tensor:
        outputs = self.session.get_outputs()
        if len(outputs) != 1:
            raise ProfilerError(f"{self.path.name} has {len(outputs)} outputs; hwnas times single-output models only")
        shape = outputs[0].shape
        if not all(isinstance(dim, int) and dim > 0 for dim in shape):
            # A symbolic output shape: learn it from one run on the host.
            first = self.session.run(None, {self.session.get_inputs()[0].name: self.input.cpu().numpy()})[0]
            shape = list(first.shape)
        return torch.empty(tuple(shape), dtype=dtype, device=self.request.device)

    def _bind(self, session: Any) -> Any:
        binding = session.io_binding()
        device = self.request.device
        element_type = _numpy_dtype(self.request.precision)
        for tensor, name, bind in (
            (self.input, session.get_inputs()[0].name, binding.bind_input),
            (self.output, session.get_outputs()[0].name, binding.bind_output),
        ):
            bind(
                name=name,
                device_type=device.type,
                device_id=device.index or 0,
                element_type=element_type,
                shape=tuple(tensor.shape),
                buffer_ptr=tensor.data_ptr(),
            )
        return binding

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.binding)

    def layer_times(self, runs: int) -> tuple[LayerTime, ...]:
        """Median time per ONNX node from ORT's own profiler, in a separate session.

        Under CUDA these are host-side launch times (ORT's profiler times the
        kernel call on the CPU, not the GPU execution), and they say so.
        """
        session = self._session(_ort(), enable_profiling=True)
        binding = self._bind(session)
        for _ in range(runs):
            session.run_with_iobinding(binding)
        trace = Path(session.end_profiling())
        kind = "cpu execution" if self.key == "cpu" else "host launch (not GPU time)"
        durations: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
        for event in json.loads(trace.read_text()):
            if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
                name = event["name"].removesuffix("_kernel_time")
                durations[(name, event.get("args", {}).get("op_name", ""))].append(event["dur"] / 1000.0)
        return tuple(LayerTime(name, op, statistics.median(times), kind) for (name, op), times in durations.items())

    def close(self) -> None:
        self.session = None
        self.binding = None


class OrtBackend(Backend):
    name = "ort"
    description = "ONNX Runtime (CPU, CUDA or TensorRT execution provider)"

    def unavailable_reason(self, device: torch.device) -> str | None:
        try:
            ort = _ort()
        except ProfilerError as error:
            return str(error)
        if device.type == "cpu":
            return None
        reason = cuda_unavailable_reason()
        if reason is not None:
            return reason
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return f"this onnxruntime ({ort.__version__}) has no CUDAExecutionProvider; {_ORT_HINT}"
        return None

    def precisions(self, device: torch.device) -> tuple[str, ...]:
        return ("fp32", "fp16")

    def prepare(self, request: PrepareRequest) -> Runner:
        return OrtRunner(request)
