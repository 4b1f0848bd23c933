"""Checkpoints that resume a run exactly, and a clean stop on SIGINT / SIGTERM.

A checkpoint is data, never code: it is written with `torch.save` and read
with `torch.load(..., weights_only=True)`, so it may hold only tensors,
dicts, lists, tuples, numbers, strings and None — state_dicts of modules,
optimisers and schedulers qualify. Random states are stored as tensors
(`capture_rng` / `restore_rng`): Python's `random`, NumPy's global
generator, torch's CPU generator and every CUDA device's generator.

Writes are atomic (`search_spaces.files.atomic_write`: temporary file, fsync, rename):
a run killed while saving keeps its previous checkpoint intact.

`StopSignal` turns SIGINT / SIGTERM (what a Ctrl-C, `kill`, Slurm's
pre-emption and torchrun's shutdown send) into a flag the loop reads at a
step boundary: it then checkpoints and exits, so nothing measured or
trained is lost. A second SIGINT interrupts at once.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import numpy as np
import torch

from hwnas.errors import UsageError
from search_spaces.files import atomic_write

FORMAT = "hwnas-checkpoint"
VERSION = 1


def capture_rng() -> dict[str, Any]:
    """Every global random state as tensors and plain numbers."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Set every global random state captured by `capture_rng`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["name"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"], nps["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def state_of(objects: Mapping[str, Any]) -> dict[str, Any]:
    """Checkpointable state of named objects: `state_dict()` of modules, optimisers and
    schedulers; a detached copy of tensors (e.g. architecture logits)."""
    state: dict[str, Any] = {}
    for name, obj in objects.items():
        if hasattr(obj, "state_dict"):
            state[name] = obj.state_dict()
        elif isinstance(obj, torch.Tensor):
            state[name] = obj.detach().clone()
        else:
            raise TypeError(f"{name}: {type(obj).__name__} has no state_dict and is not a tensor")
    return state


def restore_state(objects: Mapping[str, Any], state: Mapping[str, Any]) -> None:
    """Inverse of `state_of`: load_state_dict, or copy into the tensor in place (keeps optimiser references)."""
    missing = [name for name in objects if name not in state]
    if missing:
        raise UsageError(f"the checkpoint lacks {', '.join(missing[:3])}; it was written by another kind of run")
    for name, obj in objects.items():
        if hasattr(obj, "load_state_dict"):
            obj.load_state_dict(state[name])
        else:
            with torch.no_grad():
                obj.copy_(state[name])


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Write `state` (plus format and version) atomically to `path`."""
    document = {"format": FORMAT, "version": VERSION, **state}
    return atomic_write(path, lambda stream: torch.save(document, stream))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, refusing anything else in one line."""
    source = Path(path)
    if not source.is_file():
        raise UsageError(f"checkpoint {source} does not exist; nothing to resume (drop --resume to start afresh)")
    try:
        state = torch.load(source, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - refusals of the safe unpickler and corrupt files alike
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UsageError(f"cannot read checkpoint {source} with weights_only=True ({first[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"{source} is not an hwnas checkpoint (no format {FORMAT!r})")
    if state.get("version") != VERSION:
        raise UsageError(f"checkpoint {source} has version {state.get('version')}; this hwnas reads version {VERSION}")
    return state


class StopSignal:
    """Context manager: SIGINT / SIGTERM set `requested` instead of killing the process.

    The loop checks `requested` after each step, checkpoints and returns.
    Handlers are installed only in the main thread (Python's rule) and the
    previous ones are restored on exit. A second SIGINT raises
    KeyboardInterrupt at once, for a user who does not want to wait.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return "" if self.signum is None else signal.Signals(self.signum).name

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopSignal:
        try:
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: leave signals to the default handlers
            self._previous.clear()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
