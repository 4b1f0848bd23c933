"""TensorRT engines of sampled networks, cached by architecture (`hwnas search --backend tensorrt`).

Timing a sampled network with TensorRT means building an engine for it first, and a build
takes seconds to minutes where the timing takes a fraction of a second. The search's memo
already times a network once per search; this cache keeps the engine itself, so a resumed
search, a second search under the same conditions, or the final measurement of a network
drawn before never builds it again.

- One engine file per network, named by a content hash (`engine_key`) of what fixes the
  engine: the architecture's JSON (space, version, configuration, choices; not the
  probabilities a derived network carries), the latency conditions (device, batch, precision,
  ...) and the runtime it was built with. The runtime is the timing cache's file name
  (`profilers.backends.tensorrt.timing_cache_path`: TensorRT version, GPU model and compute
  capability, CUDA version), because an engine, like the timing cache, is "specific to the
  targeted device, CUDA, TensorRT versions" (TensorRT developer guide, "Timing Cache").
- One timing cache file per runtime in the same folder, shared by every build there (the
  backend loads it before and saves it after each build), so a layer tuned for one sampled
  network is not tuned again for the next.
- A build is written through a temporary file and renamed (the backend's `build_engine`), so
  a killed build leaves no half engine under the final name.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from search_spaces import Architecture

ENGINE_SUFFIX = ".engine"


def engine_key(arch: Architecture, conditions: Any, runtime: str) -> str:
    """The content hash naming `arch`'s engine under `conditions` (a dataclass or mapping) and `runtime`."""
    core = {key: value for key, value in arch.to_dict().items() if key in ("space", "space_version", "config", "choices")}
    keyed = asdict(conditions) if is_dataclass(conditions) else dict(conditions) if isinstance(conditions, Mapping) else None
    if keyed is None:
        raise TypeError(f"conditions must be a dataclass or a mapping, not {type(conditions).__name__}")
    text = json.dumps({"arch": core, "conditions": keyed, "runtime": runtime}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class EngineCache:
    """A folder of engines named by `engine_key`, with the shared timing cache beside them."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.builds = 0
        self.hits = 0
        self.build_seconds = 0.0

    def path(self, key: str) -> Path:
        return self.directory / f"{key}{ENGINE_SUFFIX}"

    def get(self, key: str, build: Callable[[Path], None]) -> tuple[Path, float]:
        """(engine file, seconds spent building it now): 0.0 when the file was already there.

        `build(path)` must write the engine to `path` (atomically); a build that returns without
        writing it is an error, never a cache entry."""
        path = self.path(key)
        if path.is_file():
            self.hits += 1
            return path, 0.0
        self.directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        build(path)
        seconds = time.perf_counter() - started
        if not path.is_file():
            raise RuntimeError(f"the engine build for {key} wrote no {path.name}")
        self.builds += 1
        self.build_seconds += seconds
        return path, seconds
