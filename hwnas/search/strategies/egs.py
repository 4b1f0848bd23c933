"""Ensemble Gumbel-softmax (EGS, Chang et al. 2019): L(max_m b_m) forward, the gradient of
max_m zeta_m over M samples per decision; biased. It trains a multi-hot ensemble, not one path,
so there is no single network to time and its default supernet rule is `sample`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hwnas.estimators import ArchitectureDistribution, sample_ensemble
from hwnas.search.strategies.base import ArchContext, ArchStepReport, Strategy, latency_outcome, pathwise_step
from hwnas.search.strategies.registry import register_strategy

if TYPE_CHECKING:
    from hwnas.search.sections import EstimatorConfig


@register_strategy("egs")
class Egs(Strategy):
    samples = False
    trains = "multi-hot ensemble"
    temperatures = (1.0, 0.1)
    supernet_rule = "sample"

    def training_weights(self, estimator: EstimatorConfig, dist: ArchitectureDistribution, tau: float) -> dict[str, Tensor]:
        with torch.no_grad():
            return dict(sample_ensemble(dist, estimator.egs_samples, tau).codes)  # type: ignore[arg-type]

    def surrogate(self, ctx: ArchContext, dist: ArchitectureDistribution) -> tuple[Tensor, ArchStepReport]:
        ensemble = sample_ensemble(dist, ctx.estimator.egs_samples, ctx.tau)
        loss = ctx.accuracy(ensemble.weights)
        return pathwise_step(ctx, loss, latency_outcome(ctx, dist), None)
