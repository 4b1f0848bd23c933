"""TensorRT (10.x and 11.x Python API): ONNX -> engine -> timed with CUDA events.

- Networks are created strongly typed (the STRONGLY_TYPED flag on 10.x; 11.x
  has nothing else and removed the FP16/INT8 builder flags), so the precision
  comes from the ONNX graph: fp16 is an fp16 export, never a builder flag.
- The precision the engine really has is read back from the engine
  inspector (per-layer output formats), because a strongly typed build may
  keep some layers in fp32; it is recorded in `details["engine_precision"]`.
- A timing cache file makes rebuilds of the same layers fast and the tactic
  choice repeatable; it is loaded before and saved after every build.
- The engine and the inspector's JSON (`.layers.json`) are saved side by side
  in the work folder, so a number can be traced to the exact engine.
- Per-layer times come from `tensorrt.IProfiler` on a separate execution
  context in a separate run: profiling slows execution and must not touch
  the timed runs.
"""

from __future__ import annotations

import collections
import json
import os
import re
import statistics
from pathlib import Path
from typing import Any

import torch

from profilers._device import cuda_unavailable_reason
from profilers._onnx import compare_outputs, onnx_for
from profilers.backends.base import Backend, PrepareRequest, Runner, import_optional, random_input
from profilers.errors import ProfilerError
from profilers.result import LayerTime

_TRT_HINT = "install it with pip install 'hwnas[tensorrt]' (needs an NVIDIA GPU and driver)"
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hwnas"


def import_tensorrt() -> Any:
    return import_optional("tensorrt", _TRT_HINT)


def _torch_dtype(trt: Any, data_type: Any) -> torch.dtype:
    table = {
        trt.float32: torch.float32,
        trt.float16: torch.float16,
        trt.int32: torch.int32,
        trt.int8: torch.int8,
        trt.bool: torch.bool,
    }
    for name, dtype in (("bfloat16", torch.bfloat16), ("int64", torch.int64)):
        if hasattr(trt, name):
            table[getattr(trt, name)] = dtype
    if data_type not in table:
        raise ProfilerError(f"engine tensor type {data_type} is not supported by hwnas; rebuild with fp32/fp16 I/O")
    return table[data_type]


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def build_engine(trt: Any, onnx_path: Path, engine_path: Path, timing_cache: Path, logger: Any) -> bytes:
    """Parse ONNX into a strongly typed network and build a serialized engine, using the timing cache."""
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(_parser_error(parser.get_error(index)) for index in range(parser.num_errors))
        raise ProfilerError(f"TensorRT cannot parse {onnx_path.name}: {errors}; time it with --backend ort or eager")
    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # layer names and formats for the inspector
    cache_bytes = timing_cache.read_bytes() if timing_cache.exists() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ProfilerError(f"TensorRT failed to build an engine from {onnx_path.name}; see the TensorRT log above")
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(timing_cache, bytes(config.get_timing_cache().serialize()))
    data = bytes(serialized)
    _atomic_write(engine_path, data)
    return data


def _parser_error(error: Any) -> str:
    """IParserError's description (its node and message)."""
    return str(error.desc()) if hasattr(error, "desc") else str(error)


def engine_precision(layers_json: str) -> str:
    """Summarise the output formats of the engine's layers, e.g. 'fp16: 52 layers, fp32: 2 layers'.

    The inspector writes a format description per layer output (for example
    "Row major linear FP16 format (kLINEAR)" or "Half"); we count the
    precisions named there.
    """
    counts: collections.Counter[str] = collections.Counter()
    try:
        layers = json.loads(layers_json).get("Layers", [])
    except json.JSONDecodeError:
        return "unknown (inspector output is not JSON)"
    patterns = {"fp16": r"FP16|Half", "bf16": r"BF16|BFloat16", "fp32": r"FP32|Float(?!16)", "int8": r"Int8|INT8"}
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        text = json.dumps(layer.get("Outputs", ""))
        for precision, pattern in patterns.items():
            if re.search(pattern, text):
                counts[precision] += 1
                break
    if not counts:
        return "unknown (build with detailed profiling verbosity to see layer formats)"
    return ", ".join(f"{precision}: {count} layers" for precision, count in counts.most_common())


def _layer_profiler(trt: Any) -> Any:
    """An `IProfiler` that keeps every `report_layer_time` call (ms per layer per run).

    Defined at use because its base class lives in the optional tensorrt module.
    """

    class LayerTimes(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.times: dict[str, list[float]] = collections.defaultdict(list)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.times[layer_name].append(ms)

    return LayerTimes()


class TensorRTRunner(Runner):
    """An engine with an execution context whose I/O tensors are torch device buffers."""

    def __init__(self, request: PrepareRequest) -> None:
        super().__init__()
        trt = import_tensorrt()
        self.trt = trt
        self.request = request
        self.logger = trt.Logger(trt.Logger.WARNING)
        engine_bytes, reference = self._engine_bytes(request)
        self.runtime = trt.Runtime(self.logger)  # must outlive the engine
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise ProfilerError("TensorRT cannot deserialize the engine (built by another TensorRT version or GPU?); rebuild it")
        self.stream = torch.cuda.Stream(request.device)
        self.provider = f"TensorRT {trt.__version__}"
        self.buffers = self._allocate()
        self.context = self._context()
        inspector = self.engine.create_engine_inspector()
        layers_json = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
        self.details["engine_precision"] = engine_precision(layers_json)
        if self.engine_path is not None:
            self.engine_path.with_suffix(".layers.json").write_text(layers_json)
        if reference is not None:
            with torch.cuda.stream(self.stream):
                self()
            self.stream.synchronize()
            self.details["max_abs_diff_vs_eager"] = compare_outputs(
                reference, self.output, request.precision, True, f"TensorRT ({self.details['engine_precision']})"
            )

    def _engine_bytes(self, request: PrepareRequest) -> tuple[bytes, torch.Tensor | None]:
        """Build from a module or an .onnx file (saving the engine), or load an .engine file."""
        if not isinstance(request.model, torch.nn.Module) and Path(request.model).suffix == ".engine":
            self.engine_path = Path(request.model)
            self.details["engine_file"] = str(self.engine_path)
            try:
                return self.engine_path.read_bytes(), None
            except OSError as error:
                raise ProfilerError(f"cannot read {self.engine_path}: {error.strerror}; check the path") from error
        onnx_path, self.input_shape, reference = onnx_for(request, self.details)
        self.engine_path = request.workdir / f"{request.name}-{request.precision}-b{self.input_shape[0]}.engine"
        cache_dir = Path(request.config.workdir) if request.config.workdir else DEFAULT_CACHE_DIR
        timing_cache = cache_dir / f"tensorrt-{self.trt.__version__}-timing.cache"
        data = build_engine(self.trt, onnx_path, self.engine_path, timing_cache, self.logger)
        self.details["engine_file"] = str(self.engine_path)
        self.details["timing_cache"] = str(timing_cache)
        return data, reference

    def _allocate(self) -> dict[str, torch.Tensor]:
        """One device buffer per I/O tensor; inputs filled with random values."""
        trt, engine, device = self.trt, self.engine, self.request.device
        buffers: dict[str, torch.Tensor] = {}
        inputs = outputs = 0
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            shape = tuple(engine.get_tensor_shape(name))
            if any(dim < 0 for dim in shape):
                raise ProfilerError(f"engine tensor {name} has a dynamic shape {shape}; build the engine for a static shape")
            dtype = _torch_dtype(trt, engine.get_tensor_dtype(name))
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                inputs += 1
                self.input_shape = shape
                buffers[name] = random_input(shape, dtype, device, self.request.config.seed)
                precision = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype)
                if precision != self.request.precision:
                    raise ProfilerError(
                        f"the engine takes {dtype} input but {self.request.precision} was asked for: "
                        f"use --precision {precision} or rebuild the engine"
                    )
            else:
                outputs += 1
                buffers[name] = torch.empty(shape, dtype=dtype, device=device)
                self.output = buffers[name]
        if inputs != 1 or outputs != 1:
            raise ProfilerError(f"the engine has {inputs} inputs and {outputs} outputs; hwnas times single-input, single-output models")
        return buffers

    def _context(self) -> Any:
        context = self.engine.create_execution_context()
        for name, tensor in self.buffers.items():
            context.set_tensor_address(name, tensor.data_ptr())
        return context

    def __call__(self) -> None:
        assert self.stream is not None
        self.context.execute_async_v3(self.stream.cuda_stream)

    def layer_times(self, runs: int) -> tuple[LayerTime, ...]:
        """Median GPU time per engine layer, from IProfiler on a separate context."""
        assert self.stream is not None
        profiler = _layer_profiler(self.trt)
        context = self._context()
        context.profiler = profiler
        for _ in range(runs):
            context.execute_async_v3(self.stream.cuda_stream)
            self.stream.synchronize()
        return tuple(LayerTime(name, "", statistics.median(times), "gpu execution") for name, times in profiler.times.items())

    def close(self) -> None:
        self.context = None
        self.engine = None
        self.runtime = None
        self.buffers = {}


class TensorRTBackend(Backend):
    name = "tensorrt"
    description = "NVIDIA TensorRT engine built from ONNX (strongly typed)"

    def unavailable_reason(self, device: torch.device) -> str | None:
        if device.type != "cuda":
            return "TensorRT runs on NVIDIA GPUs only: use --device cuda:N"
        reason = cuda_unavailable_reason()
        if reason is not None:
            return reason
        try:
            import_tensorrt()
        except ProfilerError as error:
            return str(error)
        return None

    def precisions(self, device: torch.device) -> tuple[str, ...]:
        return ("fp32", "fp16")

    def prepare(self, request: PrepareRequest) -> Runner:
        return TensorRTRunner(request)
