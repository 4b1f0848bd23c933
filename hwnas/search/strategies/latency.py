"""The latency-term strategies (`--latency-estimator`): how lambda_lat * h(latency) gets its gradient.

- relax:     RELAX on the *measured* latency of the step's sample, the LUT model as control variate (UNAS)
- reinforce: (h(L(b)) - c) d log p(b) on the measured latency, c a moving-average baseline (MnasNet-like)
- expected:  the differentiable expectation of the LUT model under p (FBNet / ProxylessNAS-like); times nothing
- none:      no latency term

`hwnas.search.terms.LatencyTerm` runs them; a measuring one needs an accuracy strategy that samples.
A measured value may arrive one step late (the worker); `pending` then returns the estimate but
for that value (`hwnas.estimators.delayed`), completed when it arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from torch import Tensor

from hwnas.estimators import MovingAverageBaseline, RelaxedSample, ScoreFunctionResult, reinforce, relax
from hwnas.estimators.delayed import PendingGradient, pending_relax
from hwnas.search.strategies.registry import register_strategy

Control = Callable[[Mapping[str, Tensor]], Tensor]
"""h(g(weights)): the penalty of the LUT model at relaxed weights, RELAX's control variate."""


class LatencyStrategy:
    """One latency-term estimator; register a subclass with `@register_strategy(name, term="latency")`."""

    name: ClassVar[str]
    active: ClassVar[bool] = True
    """Whether there is a latency term at all."""
    measures: ClassVar[bool] = True
    """Whether the search times the sampled architecture on the target device (needs a sampling strategy)."""

    def immediate(self, sample: RelaxedSample, reward: Tensor, control: Control,
                  baseline: MovingAverageBaseline) -> ScoreFunctionResult:
        """The estimate for a sample whose penalty `reward` = h(measured) is known now."""
        raise NotImplementedError(f"latency estimator {self.name} times nothing")

    def pending(self, sample: RelaxedSample, control: Control, logits: dict[str, Tensor],
                baseline: MovingAverageBaseline) -> tuple[PendingGradient, float | None]:
        """The estimate but for the measured value (timed while the search goes on), and the baseline
        the sample met (None when the strategy keeps none)."""
        raise NotImplementedError(f"latency estimator {self.name} times nothing")


@register_strategy("relax", term="latency")
class Relax(LatencyStrategy):
    def immediate(self, sample: RelaxedSample, reward: Tensor, control: Control,
                  baseline: MovingAverageBaseline) -> ScoreFunctionResult:
        return relax(sample, reward, control)

    def pending(self, sample: RelaxedSample, control: Control, logits: dict[str, Tensor],
                baseline: MovingAverageBaseline) -> tuple[PendingGradient, float | None]:
        return pending_relax(sample, control, logits), None


@register_strategy("reinforce", term="latency")
class LatencyReinforce(LatencyStrategy):
    def immediate(self, sample: RelaxedSample, reward: Tensor, control: Control,
                  baseline: MovingAverageBaseline) -> ScoreFunctionResult:
        result = reinforce(sample, reward, baseline.value)
        baseline.update(reward)
        return result

    def pending(self, sample: RelaxedSample, control: Control, logits: dict[str, Tensor],
                baseline: MovingAverageBaseline) -> tuple[PendingGradient, float | None]:
        # (R - c) score, c the baseline before R arrives (updated with R on arrival)
        score = {k: v.detach() for k, v in sample.score.items()}
        return PendingGradient(score, {k: -baseline.value * v for k, v in score.items()}), baseline.value


@register_strategy("expected", term="latency")
class Expected(LatencyStrategy):
    measures = False


@register_strategy("none", term="latency")
class NoLatency(LatencyStrategy):
    active = False
    measures = False
