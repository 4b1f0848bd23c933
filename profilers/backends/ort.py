"""ONNX Runtime: CPU, CUDA and TensorRT execution providers, chosen explicitly.

The session uses graph optimisation level ALL and I/O binding. On CUDA the
input and output live in device buffers owned by torch, and the CUDA EP is
given our stream as its compute stream, so the CUDA events around a run
measure exactly ORT's kernels and no host copies. Each run passes RunOptions
with `disable_synchronize_execution_providers=1`: by default ORT ends every
run with cudaStreamSynchronize on the compute stream
(include/onnxruntime/core/session/onnxruntime_run_options_config_keys.h), which
would make a sample host wall time while eager and TensorRT samples are GPU
time; without it a run only enqueues, as theirs do. A provider is probed
before use (`_ort_probe`), and a session that silently falls back to another
provider is refused: the number would be mislabelled.

ORT's TensorRT EP (1.2x-1.31) links libnvinfer.so.10 (`readelf -d
libonnxruntime_providers_tensorrt.so` of onnxruntime-gpu 1.31.1) and asks for
fp16 with `trt_fp16_enable`, i.e. a weakly typed network, which TensorRT 11
removed: with TensorRT 11 installed it is refused in one line.
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
from profilers.backends._ort_probe import provider_unusable_reason
from profilers.backends.base import (
    PRECISIONS,
    Backend,
    PrepareRequest,
    Runner,
    import_optional,
    random_input,
    wait_for_current_stream,
)
from profilers.errors import ProfilerError
from profilers.result import LayerTime

_PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
_ORT_HINT = "pip install onnxruntime-gpu (or onnxruntime for CPU only)"
NO_SYNC = "disable_synchronize_execution_providers"  # RunOptions key: a run only enqueues on the stream


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
        self.run_options = None
        if request.device.type == "cuda":
            _refuse_unusable(self.key, request.device)
            self.stream = torch.cuda.Stream(request.device)
            self.run_options = ort.RunOptions()
            self.run_options.add_run_config_entry(NO_SYNC, "1")
            self.details["run_options"] = f"{NO_SYNC}=1 (a run only enqueues on the stream)"
        self.input = random_input(self.input_shape, dtype, request.device, request.config.seed)
        self.session = self._session(ort, enable_profiling=False)
        self.provider = self.session.get_providers()[0]
        self.outputs = self._allocate_outputs(dtype)
        self.binding = self._bind(self.session)
        wait_for_current_stream(self.stream)  # the input and output buffers were made on the current stream
        self.details.setdefault("onnx_file", str(path))
        self.details["graph_optimization_level"] = "ORT_ENABLE_ALL"
        self.details["io_binding"] = "device buffers" if request.device.type == "cuda" else "host buffers"
        if request.device.type == "cuda":
            self.details["math_mode"] = _math_mode(self.session, self.provider)
        if reference is not None:
            self.session.run_with_iobinding(self.binding, self.run_options)
            if self.stream is not None:
                self.stream.synchronize()  # the output is written on our stream
            self.details["max_abs_diff_vs_eager"] = compare_outputs(
                reference, self.outputs, request.precision, request.device.type == "cuda", f"ONNX Runtime ({self.provider})"
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

    def _allocate_outputs(self, dtype: torch.dtype) -> list[torch.Tensor]:
        """One device buffer per graph output (a DARTS stem returns two), bound once."""
        outputs = self.session.get_outputs()
        shapes = [output.shape for output in outputs]
        if not all(isinstance(dim, int) and dim > 0 for shape in shapes for dim in shape):
            # A symbolic output shape: learn the shapes from one run on the host.
            first = self.session.run(None, {self.session.get_inputs()[0].name: self.input.cpu().numpy()})
            shapes = [list(array.shape) for array in first]
        # A graph may list one value twice under one name (a stem returning (y, y)): one buffer per name.
        buffers: dict[str, torch.Tensor] = {}
        for output, shape in zip(outputs, shapes):
            buffers.setdefault(output.name, torch.empty(tuple(shape), dtype=dtype, device=self.request.device))
        return [buffers[output.name] for output in outputs]

    def _bind(self, session: Any) -> Any:
        binding = session.io_binding()
        device = self.request.device
        element_type = _numpy_dtype(self.request.precision)
        bound = [(self.input, session.get_inputs()[0].name, binding.bind_input)]
        names = {output.name: tensor for tensor, output in zip(self.outputs, session.get_outputs())}
        bound += [(tensor, name, binding.bind_output) for name, tensor in names.items()]
        for tensor, name, bind in bound:
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
        self.session.run_with_iobinding(self.binding, self.run_options)

    def layer_times(self, runs: int) -> tuple[LayerTime, ...]:
        """Median time per ONNX node from ORT's own profiler, in a separate session.

        Under CUDA these are host-side launch times (ORT's profiler times the
        kernel call on the CPU, not the GPU execution), and they say so.
        """
        session = self._session(_ort(), enable_profiling=True)
        binding = self._bind(session)
        for _ in range(runs):
            session.run_with_iobinding(binding)  # synchronised (default RunOptions): one run at a time
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


def _refuse_unusable(key: str, device: torch.device) -> None:
    """One line, before any work, when the chosen GPU provider does not load here."""
    if key == "tensorrt":
        reason = ort_tensorrt_reason()
        if reason is not None:
            raise ProfilerError(reason)
    reason = provider_unusable_reason(_PROVIDER_NAMES[key], device.index or 0)
    if reason is not None:
        raise ProfilerError(f"{reason}; run `hwnas doctor`, or time with another --ort-provider / --backend")


def ort_tensorrt_reason() -> str | None:
    """ORT's TensorRT EP needs TensorRT 10; None when the installed tensorrt (if any) is 10.x."""
    try:
        import tensorrt  # noqa: PLC0415
    except ImportError:
        return None  # the probe then names the missing libnvinfer.so.10
    major = int(str(tensorrt.__version__).split(".")[0])
    if major < 11:
        return None
    return (
        f"ONNX Runtime {_ort().__version__}'s TensorRT EP links libnvinfer.so.10 and builds weakly typed fp16 networks "
        f"(trt_fp16_enable), which TensorRT {tensorrt.__version__} removed: pip install 'hwnas[tensorrt-ort]' "
        "(pins TensorRT 10), or time TensorRT 11 with --backend tensorrt"
    )


def _math_mode(session: Any, provider: str) -> str:
    """The TF32 setting ORT's CUDA EP runs with, as the session reports it (ORT's default is on)."""
    options = session.get_provider_options().get(provider, {})
    if "use_tf32" in options:
        return f"{provider} use_tf32={options['use_tf32']}"
    return f"{provider}: TF32 setting not reported (TensorRT EP: TensorRT's default, TF32 allowed for fp32 layers)"


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
        reason = provider_unusable_reason("CUDAExecutionProvider", device.index or 0)
        if reason is not None:
            return f"{reason}; {_ORT_HINT} matching this CUDA (run `hwnas doctor`)"
        return None

    def precisions(self, device: torch.device) -> tuple[str, ...]:
        return ("fp32", "fp16")

    def prepare(self, request: PrepareRequest) -> Runner:
        return OrtRunner(request)
