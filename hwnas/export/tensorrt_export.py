"""ONNX file -> TensorRT engine, with its timing cache, inspector JSON and real precision.

The build itself is the profilers' (`profilers.backends.tensorrt.build_engine`):
a strongly typed network parsed from the ONNX file (so fp16 comes from the
fp16 graph, never from a builder flag; TensorRT 11 has no other way),
detailed profiling verbosity, an optimisation profile (the static shape, or
MIN/OPT/MAX of a dynamic batch), and a timing cache keyed by TensorRT version,
GPU and CUDA version, loaded before and saved after the build. This module
only places the results in the export folder:

- `model.engine` and a copy of the timing cache used (`timing.cache`), so a
  rebuild on the same GPU and TensorRT version picks the same tactics fast;
- `model.layers.json`, the engine inspector's per-layer JSON, and the
  precision the engine really runs in, read back from it (a strongly typed
  build may keep layers in fp32). Both come from the profilers' TensorRT
  runner, which the parity check constructs anyway.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from profilers.backends.tensorrt import DEFAULT_CACHE_DIR, ShapeRange, build_engine, import_tensorrt, timing_cache_path

ENGINE_NAME = "model.engine"
TIMING_CACHE_NAME = "timing.cache"


@dataclass(frozen=True)
class TensorRTEngine:
    """A built engine and the files beside it; `version` is TensorRT's."""

    engine: Path
    timing_cache: Path
    shared_timing_cache: Path
    version: str
    notes: dict[str, str]

    @property
    def layers_json(self) -> Path:
        """Where the profilers' TensorRT runner writes the inspector JSON (beside the engine)."""
        return self.engine.with_suffix(".layers.json")

    def to_dict(self, engine_precision: str | None) -> dict[str, Any]:
        return {
            "file": self.engine.name,
            "tensorrt": self.version,
            "network": "strongly typed (precision from the ONNX graph)",
            "engine_precision": engine_precision,
            "inspector": self.layers_json.name if self.layers_json.exists() else None,
            "timing_cache": self.timing_cache.name,
            "shared_timing_cache": str(self.shared_timing_cache),
            **self.notes,
        }


def build_tensorrt_engine(
    onnx_path: Path, folder: Path, device: torch.device, shapes: ShapeRange, cache_dir: Path | None = None
) -> TensorRTEngine:
    """Build `folder/model.engine` from `onnx_path` on `device` for the input `shapes`, with the shared
    timing cache of this TensorRT, GPU and CUDA (`~/.cache/hwnas` unless `cache_dir`), and keep a copy
    of that cache beside the engine."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    shared = timing_cache_path(cache_dir or DEFAULT_CACHE_DIR, str(trt.__version__), device)
    engine = folder / ENGINE_NAME
    built = build_engine(trt, onnx_path, engine, shared, logger, device, shapes)
    local = folder / TIMING_CACHE_NAME
    shutil.copyfile(shared, local)
    return TensorRTEngine(engine, local, shared, str(trt.__version__), dict(built.notes))
