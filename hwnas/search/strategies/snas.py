"""SNAS (Xie et al. 2019): L(zeta), zeta = softmax((log theta + G) / tau), pathwise; biased.
The supernet trains the relaxed sample (a mixture), so its default supernet rule is `sample`."""

from __future__ import annotations

import torch
from torch import Tensor

from hwnas.estimators import ArchitectureDistribution, RelaxedSample, sample_relaxed
from hwnas.search.strategies._pathwise import RelaxedPathwise
from hwnas.search.strategies.registry import register_strategy


@register_strategy("snas")
class Snas(RelaxedPathwise):
    trains = "relaxed sample"
    temperatures = (1.0, 0.1)
    supernet_rule = "sample"

    def training_weights(self, estimator, dist: ArchitectureDistribution, tau: float) -> dict[str, Tensor]:  # noqa: ANN001
        with torch.no_grad():
            return dict(sample_relaxed(dist, tau).relaxed)  # type: ignore[arg-type]

    def evaluated(self, sample: RelaxedSample) -> dict[str, Tensor]:
        return dict(sample.relaxed)
