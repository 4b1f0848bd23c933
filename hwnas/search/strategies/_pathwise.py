"""The shared step of the pathwise (reparameterised, biased) strategies that draw one relaxed
Gumbel sample per step: SNAS evaluates the relaxed sample, GDAS the straight-through hard one."""

from __future__ import annotations

from torch import Tensor

from hwnas.estimators import ArchitectureDistribution, RelaxedSample, sample_relaxed
from hwnas.search.strategies.base import ArchContext, ArchStepReport, Strategy, latency_outcome, pathwise_step


class RelaxedPathwise(Strategy):
    """L(weights(zeta)) forward and its pathwise gradient, plus the latency term on the same sample."""

    def evaluated(self, sample: RelaxedSample) -> dict[str, Tensor]:
        """The weights the accuracy term is evaluated at (carrying zeta's gradient)."""
        raise NotImplementedError

    def surrogate(self, ctx: ArchContext, dist: ArchitectureDistribution) -> tuple[Tensor, ArchStepReport]:
        sample = sample_relaxed(dist, ctx.tau, conditional=ctx.estimator.conditional)
        loss = ctx.accuracy(self.evaluated(sample))
        latency = latency_outcome(ctx, dist, sample)
        return pathwise_step(ctx, loss, latency, {k: int(v) for k, v in sample.index.items()})
