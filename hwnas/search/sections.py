"""The sections of `hwnas.search.config.SearchConfig`, one frozen dataclass per argument group of
`hwnas search`: what a search is asked, without the checks (those need the strategies, which read
`EstimatorConfig`: kept apart so the strategies import this module and not the config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwnas.search.latency import LatencyConditions

DEFAULT_WARMUP_EPOCHS = 6.0
"""Weight-only passes over search-train before the architecture steps (unless `warmup_steps` is given)."""

@dataclass(frozen=True)
class DataConfig:
    """The search space and the data it is searched on (`hwnas.datasets.bundled.load_dataset`)."""

    space: str = "proxyless"
    space_config: dict[str, Any] = field(default_factory=dict)
    dataset: str = "cluttered_mnist"
    image_size: int | None = None
    data_limit: int | None = None
    val_fraction: float = 0.25
    test_fraction: float = 0.2
    test_renders: int = 1
    """Draws of the test split for a generated data set."""


@dataclass(frozen=True)
class EstimatorConfig:
    """The gradient estimator of each term (`hwnas.search.strategies`), their options and the accuracy objective."""

    accuracy: str = "rebar"
    latency: str = "relax"
    darts_order: str = "first"
    amended_eta: float = 0.1
    egs_samples: int = 4
    rebar_eta: float = 1.0
    conditional: str = "reuse"
    baseline_decay: float = 0.9
    tau_start: float | None = None
    tau_end: float | None = None
    objective: str = "gen"
    gen_lambda: float = 0.5
    tune_variance: str = "none"
    tune_variance_lr: float = 0.02


def _search_conditions() -> LatencyConditions:
    """ONNX Runtime, one thread: steadier on a shared machine than torch's default threads."""
    return LatencyConditions(device="cpu", backend="ort", batch_size=1, precision="fp32", threads=1)


@dataclass(frozen=True)
class LatencyConfig:
    """The latency target (ms), the penalty's shape, and where and how latency is measured."""

    target_ms: float | None = None
    penalty: str = "hinge"
    weight: float = 1.0
    beta: float = 1.0
    conditions: LatencyConditions = field(default_factory=_search_conditions)
    timing: str = "auto"
    measure_budget_s: float = 0.15
    lut: str | None = None


@dataclass(frozen=True)
class SupernetConfig:
    """How the supernet holds its candidates and which paths train it (None: the strategy's rule)."""

    weight_sharing: str = "shared"
    batchnorm: str = "choice"
    rule: str | None = None


@dataclass(frozen=True)
class LoopConfig:
    """The bi-level loop. Steps count architecture updates after the warm-up's weight-only steps
    (`warmup_steps`, or `warmup_epochs` passes over search-train when that is None); each step also
    takes one weight step first (GDAS Alg. 1: W on a search-train batch, then A on a search-val batch).

    `torch_threads` is the intra-op thread count while training (None keeps torch's): 1 by default,
    because two OpenMP threads on two cores that other processes also use run tiny convolutions ~20x
    slower, not faster."""

    steps: int = 50
    warmup_steps: int | None = None
    warmup_epochs: float = DEFAULT_WARMUP_EPOCHS
    batch_size: int = 32
    arch_batch_size: int | None = None
    """Images in each architecture step's search-train and search-val batches (None: `batch_size`).
    A larger one is the cheapest way to more signal per step (docs/benchmark-log.md, "Signal per architecture step")."""
    micro_batch: int | None = None
    """Images per forward and backward of a step, where images do not interact (None: the plan that fits,
    `hwnas.search.memory`): the weight step and every differentiated supernet evaluation run their batch
    in pieces of this size whose gradients accumulate, while `batch_size` / `arch_batch_size` stay the
    statistical batches. A supernet with BatchNorm normalising by batch statistics (every one hwnas
    builds) refuses a piece smaller than the batch: it would be normalised by its own statistics. There
    the memory of a relaxed evaluation is bounded exactly by recomputing it in the backward
    (`search_spaces.recompute`), chosen by the memory estimate."""
    w_lr: float = 0.05
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    arch_lr: float = 0.05
    arch_weight_decay: float = 0.0
    derive_candidates: int = 1
    """Networks the derivation chooses among (`hwnas.search.derive`): 1 = the most probable (the papers');
    K > 1 = it and K-1 draws from the final distribution, within the latency target, the best by
    inherited search-val accuracy (SPOS's selection)."""
    warmup_from: str | None = None
    """Another search's warm-up file (its run folder's `warmup.pt`) to start from instead of training the warm-up
    again: refused unless that warm-up is the one this search would train (`hwnas.search.warmstart`)."""
    device: str = "cpu"
    torch_threads: int | None = 1
    seed: int = 0
    progress: bool = True


@dataclass(frozen=True)
class CheckpointConfig:
    """A checkpoint every `every` steps and at least every `seconds` of wall time (whichever comes
    first), so a hard kill loses minutes at most even when steps are slow."""

    every: int = 50
    seconds: float = 120.0
