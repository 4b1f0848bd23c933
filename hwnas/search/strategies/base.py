"""What every accuracy strategy is: `Strategy`, plus the step context it reads (`ArchContext`) and
the report it returns (`ArchStepReport`).

A strategy owns everything that differs between estimators: whether it samples one architecture
per step, its default temperature schedule and supernet rule, the weights it hands the supernet in
a weight step, and its architecture gradient. The loop (`hwnas.run.search`) and the steps
(`hwnas.search.steps`) only ever call these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from hwnas.estimators import ArchitectureDistribution, MovingAverageBaseline, VarianceTuner, sample_relaxed
from hwnas.search.phases import PhaseClock

from hwnas.search.sections import EstimatorConfig
from hwnas.search.terms import AccuracyTerm, Batch, LatencyOutcome, LatencyTerm
from search_spaces import SearchSpace

DEFAULT_SUPERNET_RULE = "depth"
"""The supernet rule of the single-path strategies: Once-for-All's uniform depth. Under `uniform` the supernet
rated skipping a block 0.5-3 points worse than training does and searched networks tied with random ones at loose
targets; `depth` removed most of that bias and the searches beat random at all three targets (docs/benchmark-log.md,
"The `depth` rule, pre-registered verdict"). Strategies that train a mixture (softmax, relaxed, multi-hot) set
`sample`: they keep training what they search."""


@dataclass(frozen=True)
class ArchStepReport:
    """What one architecture step saw (losses in nats, latencies in ms)."""

    objective: float
    val_loss: float | None
    val_acc: float | None
    sampled: dict[str, int] | None
    latency: LatencyOutcome | None


@dataclass
class ArchContext:
    """Everything an architecture step needs; built fresh each step by the loop."""

    estimator: EstimatorConfig
    """The estimator section of the search's config (`SearchConfig.estimator`)."""
    net: nn.Module
    logits: dict[str, Tensor]
    accuracy: AccuracyTerm
    latency: LatencyTerm | None
    tau: float | Tensor
    w_lr: float
    train_batch: Batch
    baseline: MovingAverageBaseline
    tuner: VarianceTuner | None = None
    """--tune-variance: tau (then `tuner.tau`) and REBAR's eta follow the variance gradient."""
    clock: PhaseClock = field(default_factory=PhaseClock)
    space: SearchSpace | None = None
    """The search space (for strategies whose sample is a network of the space, `gdas-net`)."""


def latency_outcome(ctx: ArchContext, dist: ArchitectureDistribution, sample: Any = None) -> LatencyOutcome | None:
    """This step's latency term (None without one), timed as the `latency` phase."""
    if ctx.latency is None:
        return None
    with ctx.clock("latency"):
        return ctx.latency(dist, sample)


def pathwise_step(ctx: ArchContext, loss: Tensor, latency: LatencyOutcome | None,
                  sampled: dict[str, int] | None) -> tuple[Tensor, ArchStepReport]:
    """A pathwise strategy's surrogate (the accuracy loss it differentiates plus the latency term's
    surrogate) and its report."""
    total = loss + (latency.surrogate if latency is not None else 0.0)
    return total, ArchStepReport(float(loss.detach()), ctx.accuracy.last_val_loss, ctx.accuracy.last_val_acc, sampled, latency)


class Strategy:
    """One accuracy-term gradient estimator. Subclass it in one module and decorate the class with
    `@register_strategy("name")`; override `training_weights` and `surrogate` (or `gradient`, for an
    estimator that computes gradients itself, as DARTS does)."""

    name: ClassVar[str]
    samples: ClassVar[bool] = True
    """Draws one architecture b ~ p per step: only then is there a network whose latency can be
    measured for RELAX / REINFORCE."""
    trains: ClassVar[str] = "single path"
    """What the supernet runs in its steps (named when a measuring latency estimator is refused)."""
    temperatures: ClassVar[tuple[float, float]] = (1.0, 1.0)
    """(start, end) of the linearly annealed Gumbel temperature when `--tau` is not given."""
    supernet_rule: ClassVar[str] = DEFAULT_SUPERNET_RULE
    """The supernet rule when `--supernet-rule` is not given (`hwnas.search.paths`)."""
    owns: ClassVar[dict[str, tuple[Any, str]]] = {}
    """Fields of `EstimatorConfig` only this strategy reads: {field: (default, why)}. Under any other
    strategy a non-default value is refused with a `ConfigError` on that field saying `why` (<value>: the
    value, <chosen>: the strategy in use, {estimator.accuracy}: that field's name, the CLI's flag)."""

    def graphs(self, estimator: EstimatorConfig) -> int:
        """How many differentiated supernet evaluations of one objective keep their graphs at once in
        the architecture step (the memory estimate, `hwnas.search.memory`)."""
        return 1

    def training_weights(self, estimator: EstimatorConfig, dist: ArchitectureDistribution, tau: float) -> dict[str, Tensor]:
        """The (detached) per-decision weights the supernet is trained at in this step's weight step:
        by default a hard sample b ~ p (single path, so only the sampled ops run)."""
        with torch.no_grad():
            return dict(sample_relaxed(dist, tau).hard)  # type: ignore[arg-type]

    def surrogate(self, ctx: ArchContext, dist: ArchitectureDistribution) -> tuple[Tensor, ArchStepReport]:
        """A scalar whose gradient wrt the logits is the estimate of accuracy + latency terms."""
        raise NotImplementedError(f"{self.name} computes its gradient directly (`gradient`), not through a surrogate")

    def gradient(self, ctx: ArchContext, dist: ArchitectureDistribution) -> tuple[dict[str, Tensor], ArchStepReport]:
        """The estimate wrt every decision's logits: by default the autograd of `surrogate`."""
        names = list(ctx.logits)
        surrogate, report = self.surrogate(ctx, dist)
        with ctx.clock("backward"):
            values = torch.autograd.grad(surrogate, [ctx.logits[n] for n in names], allow_unused=True)
        return {n: torch.zeros_like(ctx.logits[n]) if g is None else g for n, g in zip(names, values, strict=True)}, report
