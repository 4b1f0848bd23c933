"""TensorRT (10.x and 11.x Python API): ONNX -> engine -> timed with CUDA events.

- Networks are created strongly typed (the STRONGLY_TYPED flag on 10.x; 11.x
  has nothing else and removed the FP16/INT8 builder flags), so the precision
  comes from the ONNX graph: fp16 is an fp16 export, never a builder flag.
- The precision the engine really has is read back from the engine
  inspector (per-layer output formats), because a strongly typed build may
  keep some layers in fp32; it is recorded in `details["engine_precision"]`.
- A timing cache file makes rebuilds of the same layers fast and the tactic
  choice repeatable; it is loaded before and saved after every build. Its
  timings are "specific to the targeted device, CUDA, TensorRT versions"
  (TensorRT 10 developer guide, "Optimizing Builder Performance: Timing
  Cache"), so the file is keyed by all three (`timing_cache_path`); a cache
  that `set_timing_cache` still refuses is replaced by an empty one and the
  build says so. It is written through a unique temporary name, so LUT shards
  building at once never write into each other's file.
- A network with a dynamic input cannot be built without an optimisation
  profile: one is added, min = opt = max at the resolved input shape (an ONNX
  file exported with a symbolic batch, timed at one batch), or the given
  (min, opt, max) range for a dynamic-batch export. A static input needs none.
- Build, deserialisation, execution context and buffers are made with the
  request's GPU current (`torch.cuda.device`), so `cuda:1` means cuda:1.
- `execute_async_v3` returns False when it could not enqueue; that is an
  error, never a run of ~0 ms.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from profilers._device import cuda_unavailable_reason
from profilers._onnx import compare_outputs, onnx_for
from profilers.backends.base import Backend, PrepareRequest, Runner, import_optional, random_input, wait_for_current_stream
from profilers.errors import ProfilerError
from profilers.result import LayerTime
from search_spaces.files import atomic_write

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


Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShapeRange:
    """The optimisation profile of the one input: the shapes TensorRT accepts (min..max) and tunes for (opt)."""

    min: Shape
    opt: Shape
    max: Shape

    @classmethod
    def fixed(cls, shape: Shape) -> ShapeRange:
        return cls(tuple(shape), tuple(shape), tuple(shape))


@dataclass(frozen=True)
class BuiltEngine:
    """A serialized engine and what the build wants recorded (timing cache fate, TF32 flag)."""

    data: bytes
    notes: dict[str, str] = field(default_factory=dict)


def timing_cache_path(cache_dir: Path, trt_version: str, device: torch.device) -> Path:
    """The timing cache file for this TensorRT version, GPU model (and compute capability) and CUDA version."""
    properties = torch.cuda.get_device_properties(device)
    gpu = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{properties.name}-sm{properties.major}{properties.minor}").strip("_")
    return cache_dir / f"tensorrt-{trt_version}-{gpu}-cuda{torch.version.cuda}-timing.cache"


def build_engine(
    trt: Any, onnx_path: Path, engine_path: Path, timing_cache: Path, logger: Any,
    device: torch.device, shapes: ShapeRange,
) -> BuiltEngine:
    """Parse ONNX into a strongly typed network and build a serialized engine on `device`,
    with an optimisation profile for `shapes` and the timing cache loaded before and saved after."""
    with torch.cuda.device(device):
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
        profile = _profile(builder, network, shapes, onnx_path)
        if profile is None:
            notes = {"optimization_profile": f"none needed: static input {list(shapes.opt)}"}
        else:
            if config.add_optimization_profile(profile) < 0:
                raise ProfilerError(f"TensorRT refuses the optimisation profile {shapes} for {onnx_path.name}")
            notes = {"optimization_profile": f"min {list(shapes.min)} opt {list(shapes.opt)} max {list(shapes.max)}"}
        notes["timing_cache_loaded"] = _attach_timing_cache(config, timing_cache)
        if hasattr(trt.BuilderFlag, "TF32"):
            notes["math_mode"] = f"TensorRT builder flag TF32 (fp32 layers): {'on' if config.get_flag(trt.BuilderFlag.TF32) else 'off'}"
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ProfilerError(f"TensorRT failed to build an engine from {onnx_path.name}; see the TensorRT log above")
        cache = config.get_timing_cache()
        if cache is not None:
            atomic_write(timing_cache, bytes(cache.serialize()))
        data = bytes(serialized)
        atomic_write(engine_path, data)
    return BuiltEngine(data, notes)


def _profile(builder: Any, network: Any, shapes: ShapeRange, onnx_path: Path) -> Any:
    """The optimisation profile for the network's one input when it has a dynamic dimension
    (None for a static input: there is nothing to choose); its rank must match the shapes."""
    if network.num_inputs != 1:
        raise ProfilerError(f"{onnx_path.name} has {network.num_inputs} inputs; hwnas times single-input models")
    tensor = network.get_input(0)
    declared = tuple(tensor.shape)
    if len(declared) != len(shapes.opt) or any(d >= 0 and d != o for d, o in zip(declared, shapes.opt, strict=False)):
        raise ProfilerError(f"{onnx_path.name} takes input shape {declared}, not {shapes.opt}; check --input-size / --batch-size")
    if all(dim >= 0 for dim in declared):
        return None
    profile = builder.create_optimization_profile()
    profile.set_shape(tensor.name, shapes.min, shapes.opt, shapes.max)
    return profile


def _attach_timing_cache(config: Any, path: Path) -> str:
    """Load the cache file into the build; a file TensorRT refuses (another GPU, version or a
    damaged file) is replaced by an empty cache, and the returned note says which happened."""
    data = path.read_bytes() if path.exists() else b""
    try:
        cache = config.create_timing_cache(data)
        attached = cache is not None and config.set_timing_cache(cache, False)
    except Exception:  # noqa: BLE001 - TensorRT raises plain RuntimeError for a damaged cache
        attached = False
    if attached:
        return f"{path.name} ({len(data)} bytes)" if data else f"{path.name} (new)"
    if not config.set_timing_cache(config.create_timing_cache(b""), False):
        raise ProfilerError("TensorRT refuses even an empty timing cache; check the TensorRT installation")
    return f"{path.name} refused by set_timing_cache (from another GPU or TensorRT, or damaged): started empty"


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
        self.provider = f"TensorRT {trt.__version__}"
        with torch.cuda.device(request.device):  # engine, context and buffers on the request's GPU
            engine_bytes, reference = self._engine_bytes(request)
            self.runtime = trt.Runtime(self.logger)  # must outlive the engine
            self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
            if self.engine is None:
                raise ProfilerError(
                    "TensorRT cannot deserialize the engine (built by another TensorRT version or GPU?); rebuild it"
                )
            self.stream = torch.cuda.Stream(request.device)
            self.input_name, self.input_shape = self._input()
            self.context = self.engine.create_execution_context()
            self._set_input_shape(self.context)
            self.buffers = self._allocate()
            self._bind(self.context)
            wait_for_current_stream(self.stream)  # the buffers were filled on the current stream
            inspector = self.engine.create_engine_inspector()
            layers_json = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
        self.details["engine_precision"] = engine_precision(layers_json)
        if self.engine_path is not None:
            self.engine_path.with_suffix(".layers.json").write_text(layers_json)
        if reference is not None:
            with torch.cuda.device(request.device), torch.cuda.stream(self.stream):
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
            self.details["math_mode"] = "TensorRT engine file: TF32 flag of its build not recorded"
            try:
                return self.engine_path.read_bytes(), None
            except OSError as error:
                raise ProfilerError(f"cannot read {self.engine_path}: {error.strerror}; check the path") from error
        onnx_path, shape, reference = onnx_for(request, self.details)
        self.engine_path = request.workdir / f"{request.name}-{request.precision}-b{shape[0]}.engine"
        cache_dir = Path(request.config.workdir) if request.config.workdir else DEFAULT_CACHE_DIR
        timing_cache = timing_cache_path(cache_dir, self.trt.__version__, request.device)
        built = build_engine(self.trt, onnx_path, self.engine_path, timing_cache, self.logger, request.device,
                             ShapeRange.fixed(shape))
        self.details.update(built.notes)
        self.details["engine_file"] = str(self.engine_path)
        self.details["timing_cache"] = str(timing_cache)
        return built.data, reference

    def _input(self) -> tuple[str, tuple[int, ...]]:
        """The one input's name and the shape to run: the engine's, with dynamic dimensions
        taken from the request (and checked against the engine's optimisation profile)."""
        trt, engine = self.trt, self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [name for name in names if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1 or len(names) != 2:
            raise ProfilerError(
                f"the engine has {len(inputs)} inputs and {len(names) - len(inputs)} outputs; "
                "hwnas times single-input, single-output models"
            )
        name = inputs[0]
        declared = tuple(engine.get_tensor_shape(name))
        requested = tuple(self.request.input_shape)
        if len(declared) != len(requested):
            raise ProfilerError(f"the engine takes a rank-{len(declared)} input, not {requested}; check --input-size")
        shape = tuple(want if dim < 0 else dim for dim, want in zip(declared, requested, strict=True))
        if any(dim < 0 for dim in declared):
            low, _, high = (tuple(s) for s in engine.get_tensor_profile_shape(name, 0))
            if not all(lo <= d <= hi for lo, d, hi in zip(low, shape, high, strict=True)):
                raise ProfilerError(f"input shape {shape} is outside the engine's profile {low}..{high}; use a batch size inside it")
        return name, shape

    def _set_input_shape(self, context: Any) -> None:
        if not context.set_input_shape(self.input_name, self.input_shape):
            raise ProfilerError(f"TensorRT refuses input shape {self.input_shape} for this engine; rebuild it for that shape")

    def _allocate(self) -> dict[str, torch.Tensor]:
        """One device buffer per I/O tensor at the context's (resolved) shapes; the input random."""
        trt, engine, device = self.trt, self.engine, self.request.device
        buffers: dict[str, torch.Tensor] = {}
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = _torch_dtype(trt, engine.get_tensor_dtype(name))
            if name == self.input_name:
                buffers[name] = random_input(shape, dtype, device, self.request.config.seed)
                precision = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype)
                if precision != self.request.precision:
                    raise ProfilerError(
                        f"the engine takes {dtype} input but {self.request.precision} was asked for: "
                        f"use --precision {precision} or rebuild the engine"
                    )
            else:
                buffers[name] = torch.empty(shape, dtype=dtype, device=device)
                self.output = buffers[name]
        return buffers

    def _bind(self, context: Any) -> None:
        for name, tensor in self.buffers.items():
            if not context.set_tensor_address(name, tensor.data_ptr()):
                raise ProfilerError(f"TensorRT refuses the buffer of tensor {name}; rebuild the engine")

    def __call__(self) -> None:
        assert self.stream is not None
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise ProfilerError("TensorRT could not enqueue the engine (execute_async_v3 returned False); see its log above")

    def layer_times(self, runs: int) -> tuple[LayerTime, ...]:
        """Median GPU time per engine layer, from IProfiler on a separate context."""
        assert self.stream is not None
        profiler = _layer_profiler(self.trt)
        with torch.cuda.device(self.request.device):
            context = self.engine.create_execution_context()
            self._set_input_shape(context)
            self._bind(context)
            context.profiler = profiler
            for _ in range(runs):
                if not context.execute_async_v3(self.stream.cuda_stream):
                    raise ProfilerError("TensorRT could not enqueue the profiling run; see its log above")
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
