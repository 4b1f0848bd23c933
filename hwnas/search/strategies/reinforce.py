"""REINFORCE (Williams 1992): (L(b) - c) d log p(b), c a moving-average baseline of the reward;
unbiased, single path (MnasNet-like with the REINFORCE latency term). Its temperature only
matters for the relaxed sample RELAX's control variate uses (the UNAS code's fixed 0.4)."""

from __future__ import annotations

from torch import Tensor

from hwnas.estimators import RelaxedSample, ScoreFunctionResult, reinforce
from hwnas.search.strategies._score import ScoreFunction
from hwnas.search.strategies.base import ArchContext
from hwnas.search.strategies.registry import register_strategy


@register_strategy("reinforce")
class Reinforce(ScoreFunction):
    temperatures = (0.4, 0.4)

    def estimate(self, ctx: ArchContext, sample: RelaxedSample, reward: Tensor) -> ScoreFunctionResult:
        result = reinforce(sample, reward, ctx.baseline.value)
        ctx.baseline.update(reward)
        return result
