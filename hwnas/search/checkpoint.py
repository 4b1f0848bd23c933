"""What a search checkpoint holds, so `hwnas search --resume` continues exactly where SIGTERM stopped it.

The search job's loop (`hwnas.run.search`) calls `save_search` every N steps
and when `hwnas.checkpoint.StopSignal` fires, and `load_search` when
resuming; both take the loop's own objects, so the loop needs no other
change to become resumable.

checkpoint.pt (`hwnas.run.rundir.CHECKPOINT`; `hwnas.checkpoint`: atomic, weights_only) holds the step to
run next, the supernet weights, the architecture logits, both optimisers,
every rank's RNG states, the moving-average baselines, the latency memo
(every architecture timed so far, in order: nothing measured is measured
twice) and the online surrogate's fit. The temperature and the weight
learning rate are functions of the step; the three batch streams are
functions of the number of batches they gave (`hwnas.datasets.endless_from`),
so neither needs storing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hwnas import distributed
from hwnas.checkpoint import capture_rng, load_checkpoint, restore_rng, restore_state, save_checkpoint, state_of
from hwnas.errors import UsageError
from hwnas.estimators import LinearSurrogate, MovingAverageBaseline


RESUME_MAY_CHANGE = ("progress", "device", "torch_threads", "checkpoint_every", "checkpoint_seconds", "derive_candidates")
"""SearchConfig fields (one-level names, `SearchConfig.flat`: a checkpoint's identity) that do not change the trajectory, so `--resume` may differ in them (the derivation
runs after the last step: resuming a finished checkpoint with another `derive_candidates` derives again)."""


def _is_online(surrogate: Any) -> bool:
    """An online surrogate (refitted on the memo as the search goes) rather than a fixed LUT model."""
    return hasattr(surrogate, "_fitted_at") and hasattr(surrogate, "current")


def _memo_holders(oracle: Any) -> list[Any]:
    """The oracle and, under DDP, the wrapped one: each keeps an ordered memo {choices tuple: ms}."""
    holders = [oracle] if oracle is not None else []
    inner = getattr(oracle, "oracle", None)
    return holders + ([inner] if inner is not None else [])


def save_search(path: Path, *, step: int, objects: Mapping[str, Any], baselines: Mapping[str, MovingAverageBaseline],
                oracle: Any, surrogate: Any, config: dict[str, Any], data_sha256: str,
                info: distributed.DistInfo) -> None:
    """Write the checkpoint (rank 0); every rank must call it (RNG states are gathered)."""
    rng = distributed.gather_objects(capture_rng(), info)
    if not info.is_main:
        return
    memo = [[list(key), ms] for key, ms in getattr(oracle, "_memo", {}).items()]
    fit = None
    if _is_online(surrogate):
        fit = {"fitted_at": surrogate._fitted_at, "bias": surrogate.current.bias,  # noqa: SLF001
               "coefficients": dict(surrogate.current.coefficients)}
    save_checkpoint(path, {
        "kind": "search", "step": step, "objects": state_of(objects), "rng": rng, "world_size": info.world_size,
        "baselines": {name: b._value for name, b in baselines.items()},  # noqa: SLF001
        "latency_memo": memo, "online_surrogate": fit, "config": config, "data_sha256": data_sha256,
    })


def load_search(path: Path, *, objects: Mapping[str, Any], baselines: Mapping[str, MovingAverageBaseline],
                oracle: Any, surrogate: Any, config: dict[str, Any], data_sha256: str,
                info: distributed.DistInfo) -> int:
    """Restore everything `save_search` wrote; returns the step to run next. Refuses another run in one line."""
    state = load_checkpoint(path)
    if state.get("kind") != "search":
        raise UsageError(f"{path} is not a search checkpoint")
    for key, value in config.items():
        if key not in RESUME_MAY_CHANGE and state["config"].get(key) != value:
            raise UsageError(f"cannot resume {path}: {key} is {value!r} now but {state['config'].get(key)!r} in the checkpoint")
    if state["data_sha256"] != data_sha256:
        raise UsageError(f"{path} was written for another data split; resume with the same --data and --seed")
    if int(state["world_size"]) != info.world_size:
        raise UsageError(f"{path} was written by {state['world_size']} processes; resume with the same number")
    restore_state(objects, state["objects"])
    for name, baseline in baselines.items():
        baseline._value = state["baselines"][name]  # noqa: SLF001
    memo = {tuple(key): float(ms) for key, ms in state["latency_memo"]}
    for holder in _memo_holders(oracle):
        holder._memo = dict(memo)  # noqa: SLF001
    fit = state["online_surrogate"]
    if fit is not None and _is_online(surrogate):
        surrogate._fitted_at = int(fit["fitted_at"])  # noqa: SLF001
        surrogate.current = LinearSurrogate(float(fit["bias"]), {k: torch.as_tensor(v) for k, v in fit["coefficients"].items()})
    restore_rng(state["rng"][info.rank])
    return int(state["step"])
