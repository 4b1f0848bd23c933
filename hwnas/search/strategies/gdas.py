"""GDAS (Dong & Yang 2019): L(b) forward, the gradient of zeta (straight-through Gumbel); biased.
The supernet trains the hard sample (single path); GDAS's official temperature 10 -> 0.1."""

from __future__ import annotations

from torch import Tensor

from hwnas.estimators import RelaxedSample
from hwnas.search.strategies._pathwise import RelaxedPathwise
from hwnas.search.strategies.registry import register_strategy


@register_strategy("gdas")
class Gdas(RelaxedPathwise):
    temperatures = (10.0, 0.1)

    def evaluated(self, sample: RelaxedSample) -> dict[str, Tensor]:
        return sample.straight_through()
