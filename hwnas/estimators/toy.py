"""A toy objective with a known exact gradient: the test bench of every estimator.

``D`` decisions with ``K`` choices each; the value of architecture ``b`` is a
table ``T[b] = sum_e A_e[b_e] + s * R[b]``: an additive part (what a LUT can
represent) plus an arbitrary interaction part ``R`` (what it cannot).
The smooth extension to relaxed inputs is the multilinear one,
``f(x) = sum_b T[b] prod_e x_e[b_e]``: equal to ``T`` on one-hots, a
polynomial elsewhere, so REBAR's ``L_d`` is differentiable as it requires.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from hwnas.estimators.distribution import ArchitectureDistribution, DecisionKey


@dataclass(frozen=True)
class ToyProblem:
    """``table`` has shape ``(K,) * D``; ``logits`` the distribution's starting point."""

    table: Tensor
    additive: Tensor
    logits: dict[str, Tensor]

    @classmethod
    def random(cls, decisions: int = 4, choices: int = 5, interaction: float = 1.0, seed: int = 0,
               logit_scale: float = 1.0, dtype: torch.dtype = torch.float64) -> ToyProblem:
        g = torch.Generator().manual_seed(seed)
        additive = torch.randn(decisions, choices, generator=g, dtype=dtype)
        table = interaction * torch.randn((choices,) * decisions, generator=g, dtype=dtype)
        for e in range(decisions):
            shape = [1] * decisions
            shape[e] = choices
            table = table + additive[e].reshape(shape)
        logits = {f"d{e}": logit_scale * torch.randn(choices, generator=g, dtype=dtype) for e in range(decisions)}
        return cls(table=table, additive=additive, logits=logits)

    def distribution(self) -> ArchitectureDistribution:
        return ArchitectureDistribution(self.logits)

    def __call__(self, weights: Mapping[DecisionKey, Tensor]) -> Tensor:
        """The multilinear extension ``f(x)`` over batch dims of the weights."""
        xs = list(weights.values())
        batch = torch.broadcast_shapes(*(x.shape[:-1] for x in xs))
        r = self.table.expand(*batch, *self.table.shape)
        for x in xs:
            k = x.shape[-1]
            r = (x.expand(*batch, k).unsqueeze(-2) @ r.reshape(*batch, k, -1)).squeeze(-2)
        return r.squeeze(-1)

    def lookup(self, index: Mapping[DecisionKey, Tensor]) -> Tensor:
        """``T[b]`` for hard choices (no gradient): the 'measured' value."""
        return self.table[tuple(index.values())]
