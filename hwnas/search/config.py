"""What one search run is: `SearchConfig`, and which estimator pairs make sense.

The accuracy term and the latency term each get their own gradient estimator
(UNAS Sec. 3.1 splits L = L_d + L_n): REBAR for the cross-entropy plus RELAX
for the measured latency is UNAS; GDAS with the expected-LUT latency is
FBNet/ProxylessNAS-like; REINFORCE for both is MnasNet-like. A pair that
cannot work is refused by `check_combination` with one line that says why
and what to use instead.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hwnas.estimators import DARTS_ORDERS
from hwnas.errors import UsageError
from hwnas.objectives import ACCURACY_OBJECTIVES, LATENCY_PENALTIES
from hwnas.search.strategies import get_strategy, list_strategies

LATENCY_TIMINGS = ("auto", "inline", "worker")
"""How sampled networks are timed (`hwnas.search.latency_worker`): in line, one after the other
with training; in a worker process on a core / GPU training does not use, overlapping with the
next step (the latency gradient then applies one step late); auto = worker where that is possible."""

WEIGHT_SHARING = ("shared", "independent")
"""The supernet's candidates: `shared` weights (superkernel + elastic expansion / kernel,
`search_spaces.elastic`) or `independent` ones (one module per candidate, the papers' setting)."""

SUPERNET_BATCHNORMS = ("choice", "shared")
"""With shared weights: a BatchNorm per choice, or one sliced to the channels in use (OFA)."""

SUPERNET_RULES = ("sample", "uniform", "depth", "network", "fair", "sandwich")
"""Which paths train the supernet in each weight step (`hwnas.search.paths`)."""

DEFAULT_WARMUP_EPOCHS = 6.0
"""Weight-only passes over search-train before the architecture steps (unless `warmup_steps` is given)."""

VARIANCE_TUNING = ("none", "eta", "tau-eta")
"""RELAX-paper online tuning of REBAR's eta (cheap: the variance is quadratic in eta, first-order
terms only) or of tau and eta (tau's gradient needs a second-order backward through the relaxed
supernet: several times the cost of a step, benchmarks/search_step_cost.py)."""


@dataclass(frozen=True)
class SearchConfig:
    """Every knob of one search (units: learning rates per step, latencies in ms).

    `torch_threads` is the intra-op thread count while training (None keeps
    torch's): 1 by default, because two OpenMP threads on two cores that
    other processes also use run tiny convolutions ~20x slower, not faster.

    A checkpoint is written every `checkpoint_every` steps and at least every
    `checkpoint_seconds` of wall time (whichever comes first), so a hard kill
    loses minutes at most even when steps are slow.

    Steps count architecture updates after the warm-up's weight-only steps (`warmup_steps`, or
    `warmup_epochs` passes over search-train when that is None);
    each step also takes one weight step first (GDAS Alg. 1: W on a
    search-train batch, then A on a search-val batch).
    """

    space: str = "proxyless"
    space_config: dict[str, Any] = field(default_factory=dict)
    dataset: str = "cluttered_mnist"
    image_size: int | None = None
    data_limit: int | None = None
    val_fraction: float = 0.25
    test_fraction: float = 0.2
    test_renders: int = 1
    """Draws of the test split for a generated data set (`hwnas.datasets.bundled.load_dataset`)."""

    estimator: str = "rebar"
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

    latency_estimator: str = "relax"
    latency_target_ms: float | None = None
    latency_penalty: str = "hinge"
    latency_weight: float = 1.0
    latency_beta: float = 1.0

    steps: int = 50
    warmup_steps: int | None = None
    batch_size: int = 32
    arch_batch_size: int | None = None
    """Images in each architecture step's search-train and search-val batches (None: `batch_size`).
    A larger one is the cheapest way to more signal per step: batch 128 had 2.4x the gradient SNR of
    batch 32 for 2.7x the time (BENCHMARKS.md, "Signal per architecture step")."""
    w_lr: float = 0.05
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    arch_lr: float = 0.05
    arch_weight_decay: float = 0.0
    weight_sharing: str = "shared"
    supernet_batchnorm: str = "choice"
    supernet_rule: str | None = None
    warmup_epochs: float = DEFAULT_WARMUP_EPOCHS
    derive_candidates: int = 1
    """Networks the derivation chooses among (`hwnas.search.derive`): 1 = the most probable (the papers');
    K > 1 = it and K-1 draws from the final distribution, within the latency target, the best by
    inherited search-val accuracy (SPOS's selection)."""

    device: str = "cpu"
    torch_threads: int | None = 1
    latency_device: str = "cpu"
    latency_backend: str = "ort"
    latency_batch_size: int = 1
    latency_precision: str = "fp32"
    latency_threads: int | None = 1
    measure_budget_s: float = 0.15
    latency_timing: str = "auto"
    tune_variance: str = "none"
    tune_variance_lr: float = 0.02
    lut: str | None = None
    seed: int = 0
    progress: bool = True
    checkpoint_every: int = 50
    checkpoint_seconds: float = 120.0

    def __post_init__(self) -> None:
        check_combination(self)

    @property
    def temperatures(self) -> tuple[float, float]:
        """(start, end) of the Gumbel temperature: `tau_start` / `tau_end`, or the strategy's defaults."""
        start, end = get_strategy(self.estimator).temperatures
        return (self.tau_start if self.tau_start is not None else start, self.tau_end if self.tau_end is not None else end)

    @property
    def rule(self) -> str:
        """The supernet-training rule in force (`supernet_rule`, or the estimator's default)."""
        if self.supernet_rule is not None:
            return self.supernet_rule
        return get_strategy(self.estimator).supernet_rule

    def warmup_steps_for(self, train_size: int, world_size: int = 1) -> int:
        """Weight-only steps before the search: `warmup_steps` when given, else `warmup_epochs`
        passes over search-train (`train_size` images, `batch_size` per rank)."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return max(0, round(self.warmup_epochs * train_size / (self.batch_size * world_size)))

    @property
    def uses_latency(self) -> bool:
        return get_strategy(self.latency_estimator, term="latency").active

    @property
    def measures_latency(self) -> bool:
        """Whether the search times sampled architectures on the target device."""
        return get_strategy(self.latency_estimator, term="latency").measures

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> SearchConfig:
        return replace(self, **changes)


def _one_of(flag: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{flag} {value!r} is unknown; choose one of {', '.join(allowed)}")


def _check_owned(config: SearchConfig) -> None:
    """A field only one strategy reads (`Strategy.owns`) must keep its default under the others."""
    for name in list_strategies():
        if name == config.estimator:
            continue
        for field_name, (default, message) in get_strategy(name).owns.items():
            value = getattr(config, field_name)
            if value != default:
                raise UsageError(f"--{field_name.replace('_', '-')} " + message.replace("<value>", str(value)).replace("<chosen>", config.estimator)
                                 .replace("{estimator.accuracy}", "--estimator"))


def check_combination(config: SearchConfig) -> None:
    """Refuse a configuration that cannot work, with one line naming the fix."""
    _one_of("--estimator", config.estimator, list_strategies())
    _one_of("--latency-estimator", config.latency_estimator, list_strategies("latency"))
    _one_of("--darts-order", config.darts_order, DARTS_ORDERS)
    _one_of("--objective", config.objective, ACCURACY_OBJECTIVES)
    _one_of("--latency-penalty", config.latency_penalty, LATENCY_PENALTIES)
    _one_of("--conditional", config.conditional, ("reuse", "fresh"))
    _one_of("--weight-sharing", config.weight_sharing, WEIGHT_SHARING)
    _one_of("--supernet-batchnorm", config.supernet_batchnorm, SUPERNET_BATCHNORMS)
    if config.supernet_rule is not None:
        _one_of("--supernet-rule", config.supernet_rule, SUPERNET_RULES)
    if config.test_renders < 1:
        raise UsageError(f"--test-renders must be at least 1, got {config.test_renders}")
    if not 0 <= config.warmup_epochs < float("inf"):
        raise UsageError(f"--warmup-epochs must be a number >= 0, got {config.warmup_epochs}")
    _one_of("--latency-timing", config.latency_timing, LATENCY_TIMINGS)
    _one_of("--tune-variance", config.tune_variance, VARIANCE_TUNING)
    _check_owned(config)
    if config.tune_variance != "none" and not 0 < config.tune_variance_lr < float("inf"):
        raise UsageError(f"--tune-variance-lr must be a positive number, got {config.tune_variance_lr}")
    strategy = get_strategy(config.estimator)
    if config.measures_latency and not strategy.samples:
        sampling = [name for name in list_strategies() if get_strategy(name).samples]
        raise UsageError(
            f"--latency-estimator {config.latency_estimator} measures a sampled architecture, but {config.estimator} "
            f"trains a {strategy.trains} with no single architecture to time; use --latency-estimator expected "
            f"or an estimator that samples ({', '.join(sampling)})"
        )
    if config.latency_target_ms is not None and not 0 < config.latency_target_ms < math.inf:
        raise UsageError(f"--latency-target must be positive and finite, got {config.latency_target_ms} ms")
    if config.steps < 1 or (config.warmup_steps is not None and config.warmup_steps < 0) or config.batch_size < 1 \
            or (config.arch_batch_size is not None and config.arch_batch_size < 1):
        raise UsageError("--steps, --batch-size and --arch-batch-size must be >= 1 and --warmup-steps >= 0")
    if config.derive_candidates < 1:
        raise UsageError(f"--derive-candidates must be >= 1 (1: the most probable network), got {config.derive_candidates}")
    if config.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be >= 1 step, got {config.checkpoint_every}")
    if not 0 < config.checkpoint_seconds < math.inf:
        raise UsageError(f"--checkpoint-seconds must be a positive number of seconds, got {config.checkpoint_seconds}")
    if config.egs_samples < 1:
        raise UsageError(f"--egs-samples (M) must be >= 1, got {config.egs_samples}")
    start, end = config.temperatures
    if start <= 0 or end <= 0:
        raise UsageError(f"temperatures must be positive, got {start} -> {end}")

