"""A toy objective with a known exact gradient: the test bench of every estimator.

``D`` decisions with ``K_e`` choices each; the value of architecture ``b`` is a
table ``T[b] = sum_e A_e[b_e] + s * R[b]``: an additive part (what a LUT can
represent) plus an arbitrary interaction part ``R`` (what it cannot).
The smooth extension to relaxed inputs is the multilinear one,
``f(x) = sum_b T[b] prod_e x_e[b_e]``: equal to ``T`` on one-hots, a
polynomial elsewhere, so REBAR's ``L_d`` is differentiable as it requires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from hwnas.estimators.distribution import ArchitectureDistribution, DecisionKey


@dataclass(frozen=True)
class ToyProblem:
    """``table`` has shape ``(K_1, ..., K_D)``; ``additive[e]`` is ``A_e``;
    ``logits`` the distribution's starting point, decisions named ``d0, d1, ...``."""

    table: Tensor
    additive: tuple[Tensor, ...]
    logits: dict[str, Tensor]

    @classmethod
    def random(cls, decisions: int = 4, choices: int | Sequence[int] = 5, interaction: float = 1.0, seed: int = 0,
               logit_scale: float = 1.0, dtype: torch.dtype = torch.float64) -> ToyProblem:
        sizes = [choices] * decisions if isinstance(choices, int) else list(choices)
        if len(sizes) != decisions:
            raise ValueError(f"{decisions} decisions but {len(sizes)} choice counts")
        g = torch.Generator().manual_seed(seed)
        additive = tuple(torch.randn(k, generator=g, dtype=dtype) for k in sizes)
        table = interaction * torch.randn(sizes, generator=g, dtype=dtype)
        for e, a in enumerate(additive):
            shape = [1] * decisions
            shape[e] = sizes[e]
            table = table + a.reshape(shape)
        logits = {f"d{e}": logit_scale * torch.randn(k, generator=g, dtype=dtype) for e, k in enumerate(sizes)}
        return cls(table=table, additive=additive, logits=logits)

    def distribution(self) -> ArchitectureDistribution:
        return ArchitectureDistribution(self.logits)

    def __call__(self, weights: Mapping[DecisionKey, Tensor]) -> Tensor:
        """The multilinear extension ``f(x)`` over batch dims of the weights."""
        xs = list(weights.values())
        batch = torch.broadcast_shapes(*(x.shape[:-1] for x in xs))
        r = xs[0] @ self.table.reshape(xs[0].shape[-1], -1)  # contract the first decision unbatched
        r = r.expand(*batch, r.shape[-1])
        for x in xs[1:]:
            k = x.shape[-1]
            r = (x.expand(*batch, k).unsqueeze(-1) * r.reshape(*batch, k, -1)).sum(-2)
        return r.squeeze(-1)

    def lookup(self, index: Mapping[DecisionKey, Tensor]) -> Tensor:
        """``T[b]`` for hard choices (no gradient): the 'measured' value."""
        return self.table[tuple(index.values())]
