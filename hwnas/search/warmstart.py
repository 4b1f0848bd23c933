"""One weight warm-up, shared by every search that would have trained the same one.

Why: in the DARTS cell space a search warms its supernet up for 1,500 weight-only steps under the
`network` rule (docs/cell-space.md) and then searches for a few minutes; a verdict runs 3 targets x 5
seeds x several estimators, so the same warm-up would be trained over and over. Under a rule that
draws its paths from its own seeded stream (every rule but `sample`), the warm-up reads nothing of the
estimator, the latency term or the architecture step: the supernet and its SGD state after
`warmup` steps are functions of the fields in `warmup_identity` alone. A search may therefore start
from another search's warm-up (`loop.warmup_from`, the other run's `warmup.pt`) and continue exactly
as if it had trained the warm-up itself: tests/test_warmstart.py checks it bit for bit against a
search that did.

What the warm-up file holds: the supernet weights, the SGD state, the step (= the warm-up length),
the identity below, the data split's digest, the micro-batch in force, and the global random states:
a digest of those the warm-up began from and those it ended with (dropout draws from them). A search
starts from the file only when its own random state before the warm-up has the same digest (building
the estimator or the latency term may draw from it), and then continues from the stored end state. The
architecture logits and their Adam are not stored: the warm-up never touches them. One process only:
under torchrun each rank has its own random state, and sharing is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hwnas import distributed
from hwnas.checkpoint import capture_rng, load_checkpoint, restore_rng, restore_state, save_checkpoint, state_of
from hwnas.errors import UsageError
from hwnas.search.config import SearchConfig

WARMUP_FILE = "warmup.pt"
"""Written into a search's run folder when its warm-up ends (`hwnas.run.search`)."""

MAY_DIFFER = (
    "estimator", "latency_estimator", "darts_order", "amended_eta", "egs_samples", "rebar_eta", "conditional",
    "baseline_decay", "tau_start", "tau_end", "objective", "gen_lambda", "tune_variance", "tune_variance_lr",
    "latency_target_ms", "latency_penalty", "latency_weight", "latency_beta", "latency_device", "latency_backend",
    "latency_batch_size", "latency_precision", "latency_threads", "latency_cuda_graphs", "latency_timing",
    "measure_budget_s", "lut", "supernet_rule", "warmup_steps", "warmup_epochs", "arch_batch_size", "arch_lr",
    "arch_weight_decay", "derive_candidates", "torch_threads", "progress", "checkpoint_every", "checkpoint_seconds",
    "warmup_from",
)
"""Flat config fields (`SearchConfig.flat`) the warm-up does not read: the estimator and latency sections, the
architecture step's settings and the bookkeeping (`torch_threads` as for `--resume`). The supernet rule and the
warm-up length are compared as resolved (`rule`, `warmup`), not as given."""


def warmup_identity(config: SearchConfig, warmup: int) -> dict[str, Any]:
    """What the supernet after the warm-up depends on: every other config field, the rule in force and the length."""
    flat = {key: value for key, value in config.flat().items() if key not in MAY_DIFFER}
    return {**flat, "rule": config.rule, "warmup": warmup}


def rng_digest(state: Mapping[str, Any]) -> str:
    """A digest of torch's random states among those `capture_rng` returns (equal digests: the same states).
    NumPy's and Python's global states are left out: nothing in a search draws from them (its own draws use
    seeded generators), and each process seeds them from the operating system."""
    state = {key: value for key, value in state.items() if key in ("torch", "cuda")}
    digest = hashlib.sha256()

    def add(value: Any) -> None:
        if isinstance(value, Mapping):
            for key in sorted(value):
                digest.update(str(key).encode())
                add(value[key])
        elif isinstance(value, (list, tuple)):
            for item in value:
                add(item)
        elif isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        else:
            digest.update(repr(value).encode())

    add(state)
    return digest.hexdigest()


def why_not_shared(config: SearchConfig, info: distributed.DistInfo) -> str | None:
    """Why this search's warm-up cannot be shared (None when it can)."""
    if info.world_size > 1:
        return "warm-ups are shared by single-process searches only (each torchrun rank has its own random state)"
    if config.rule == "sample":
        return ("its supernet rule is `sample`: the warm-up trains draws of the estimator's own distribution; "
                "give --supernet-rule (uniform, depth, network, ...) to share warm-ups")
    return None


def save_warmup(path: Path, *, config: SearchConfig, warmup: int, supernet: Any, w_optimizer: Any,
                data_sha256: str, micro_batch: int | None, info: distributed.DistInfo, rng_at_start: str) -> None:
    """Write the warm-up file when this search's warm-up can be shared; `rng_at_start` is `rng_digest` of the
    random states before its first step."""
    if why_not_shared(config, info) is not None:
        return
    save_checkpoint(path, {
        "rng_at_start": rng_at_start, "rng_at_end": capture_rng(),
        "kind": "warmup", "step": warmup, "objects": state_of({"supernet": supernet, "w_optimizer": w_optimizer}),
        "identity": warmup_identity(config, warmup), "data_sha256": data_sha256, "micro_batch": micro_batch,
    })


def load_warmup(path: str | Path, *, config: SearchConfig, warmup: int, supernet: Any, w_optimizer: Any,
                data_sha256: str, micro_batch: int | None, info: distributed.DistInfo, rng_now: str) -> int:
    """Restore the supernet, its SGD and the random states from `path`; returns the step to run next (the warm-up's
    end). `rng_now` is `rng_digest` of this search's random states where the warm-up's began. Refuses, in one line, a file whose warm-up is not the one this search would train."""
    reason = why_not_shared(config, info)
    if reason is not None:
        raise UsageError(f"--warmup-from cannot be used: {reason}")
    if not Path(path).is_file():
        raise UsageError(f"--warmup-from {path} is not a regular file; give the warmup.pt a search wrote in its run "
                         "folder when its warm-up ended")
    state = load_checkpoint(path)
    if state.get("kind") != "warmup":
        raise UsageError(f"{path} is not a warm-up file (a search writes one as {WARMUP_FILE} in its run folder)")
    wanted, found = warmup_identity(config, warmup), state["identity"]
    differing = sorted(key for key in set(wanted) | set(found) if wanted.get(key) != found.get(key))
    if differing:
        key = differing[0]
        raise UsageError(f"--warmup-from {path}: its warm-up had {key} = {found.get(key)!r}, this search's "
                         f"{key} = {wanted.get(key)!r}; use a warm-up made with the same weight-training settings")
    if state["data_sha256"] != data_sha256:
        raise UsageError(f"--warmup-from {path} was trained on another data split; use the same --data and --seed")
    if state["micro_batch"] != micro_batch:
        raise UsageError(f"--warmup-from {path} was trained with micro-batch {state['micro_batch']}; this search "
                         f"runs {micro_batch}: give --micro-batch {state['micro_batch']}")
    if state["rng_at_start"] != rng_now:
        raise UsageError(f"--warmup-from {path}: its warm-up began from other random states than this search's "
                         "(building this estimator or latency term drew random numbers); train the warm-up instead")
    restore_state({"supernet": supernet, "w_optimizer": w_optimizer}, state["objects"])
    restore_rng(state["rng_at_end"])
    return int(state["step"])
