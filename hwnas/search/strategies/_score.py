"""The shared step of the score-function (unbiased) strategies: draw b, zeta, zeta~ once, take
the reward L(b) without a graph, let the strategy turn it into an estimate, then add the latency
term on the same sample (and, with `--tune-variance tau-eta`, tune on what the step applies)."""

from __future__ import annotations

import torch
from torch import Tensor

from hwnas.estimators import ArchitectureDistribution, RelaxedSample, ScoreFunctionResult, sample_relaxed
from hwnas.search.strategies.base import ArchContext, ArchStepReport, Strategy, latency_outcome


class ScoreFunction(Strategy):
    """(L(b) - c) d log p(b) with the strategy's control variate c (`estimate`)."""

    def estimate(self, ctx: ArchContext, sample: RelaxedSample, reward: Tensor) -> ScoreFunctionResult:
        """The accuracy term's estimator result for this sample and its reward L(b)."""
        raise NotImplementedError

    def surrogate(self, ctx: ArchContext, dist: ArchitectureDistribution) -> tuple[Tensor, ArchStepReport]:
        sample = sample_relaxed(dist, ctx.tau, conditional=ctx.estimator.conditional)
        with ctx.clock("accuracy_hard"), torch.no_grad():
            reward = ctx.accuracy(sample.hard)
        val_loss, val_acc = ctx.accuracy.last_val_loss, ctx.accuracy.last_val_acc
        result = self.estimate(ctx, sample, reward)
        latency = latency_outcome(ctx, dist, sample)
        if ctx.tuner is not None and ctx.tuner.tunes_tau:
            with ctx.clock("tuning"):
                # the variance of what this step applies: REBAR's estimate plus RELAX's when timed in line
                estimates = [result] + ([latency.estimate] if latency is not None and latency.estimate is not None else [])
                ctx.tuner.step(estimates, ctx.logits)
        total = result.surrogate + (latency.surrogate if latency is not None else 0.0)
        report = ArchStepReport(float(reward), val_loss, val_acc, {k: int(v) for k, v in sample.index.items()}, latency)
        return total, report
