"""REBAR (Tucker et al. 2017), UNAS Eq. 3: the score function with the control variate eta L(zeta),
corrected by eta L(zeta~); unbiased, single path, the UNAS code's fixed temperature 0.4.

With the "reuse" conditional sample (zeta~ equals zeta in value, `hwnas.estimators.gumbel`),
L(zeta) - L(zeta~) has the gradient dL/dx|zeta . (dzeta/dphi - dzeta~/dphi), which one forward at
x = zeta.detach() + (zeta - zeta~) computes: two supernet evaluations per step instead of three.
With "fresh" all three are evaluated. `--tune-variance` (RELAX paper Sec. 3.3) tunes eta, or
tau and eta, online down the gradient of the estimate's variance.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from hwnas.estimators import RelaxedSample, ScoreFunctionResult, control_variate_surrogate
from hwnas.search.strategies._score import ScoreFunction
from hwnas.search.strategies.base import ArchContext
from hwnas.search.sections import EstimatorConfig
from hwnas.search.strategies.registry import register_strategy


@register_strategy("rebar")
class Rebar(ScoreFunction):
    temperatures = (0.4, 0.4)
    owns = {"tune_variance": ("none", "tunes REBAR's temperature and eta; it needs {estimator.accuracy} rebar, not <chosen>")}

    def graphs(self, estimator: EstimatorConfig) -> int:
        reuse = estimator.conditional == "reuse" and estimator.tune_variance != "tau-eta"
        return 1 if reuse else 2  # L(zeta) and L(zeta~) each with its graph

    def estimate(self, ctx: ArchContext, sample: RelaxedSample, reward: Tensor) -> ScoreFunctionResult:
        eta_only = ctx.tuner is not None and not ctx.tuner.tunes_tau
        eta = ctx.estimator.rebar_eta if ctx.tuner is None else 1.0 if eta_only else ctx.tuner.eta
        with ctx.clock("accuracy_relaxed"):
            if ctx.estimator.conditional == "reuse" and (ctx.tuner is None or eta_only):
                shifted = {k: z.detach() + (z - sample.conditional[k]) for k, z in sample.relaxed.items()}
                relaxed = eta * ctx.accuracy(shifted)
                conditional = relaxed.detach()
            else:  # tau tuning needs c~ = eta L(zeta~) with its own graph to tau and eta
                relaxed = eta * ctx.accuracy(sample.relaxed)
                conditional = eta * ctx.accuracy(sample.conditional)
        result = control_variate_surrogate(sample, reward, relaxed, conditional)
        if eta_only:
            result = _tune_eta(ctx, sample, result, float(reward))
        return result


def _tune_eta(ctx: ArchContext, sample: RelaxedSample, result: ScoreFunctionResult, reward: float) -> ScoreFunctionResult:
    """--tune-variance eta: REBAR's estimate is affine in eta, g = a + eta b (`result` holds it at eta = 1), so
    one first-order backward gives b, the tuner's step (`VarianceTuner.step_eta`) and g itself; what returns is
    the result with a linear surrogate whose gradient wrt the logits is g at the tuner's eta."""
    assert ctx.tuner is not None
    names = list(ctx.logits)
    with ctx.clock("backward"):
        control = sample.log_prob * -result.baseline + result.reparameterised  # b's surrogate: reward 0, eta 1
        values = torch.autograd.grad(control.sum(), [ctx.logits[n] for n in names], retain_graph=True, allow_unused=True)
    direction = {n: torch.zeros_like(ctx.logits[n]) if v is None else v.detach() for n, v in zip(names, values, strict=True)}
    eta = float(ctx.tuner.eta.detach())
    estimate = {n: reward * sample.score[n].to(direction[n].dtype) + eta * direction[n] for n in names}
    with ctx.clock("tuning"):
        ctx.tuner.step_eta(estimate, direction)
    linear = sum((ctx.logits[n] * estimate[n]).sum() for n in names)
    return replace(result, surrogate=linear)
