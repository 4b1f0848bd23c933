"""A decision point inside a network: named candidate modules, run by weight.

The same module serves the supernet (every candidate present) and the
standalone network (only the chosen candidate present, at the same module
path), so a standalone network inherits supernet weights by a plain
state-dict copy.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from search_spaces.errors import ArchitectureError


def active(weight: Tensor) -> list[int]:
    """Indices of the non-zero entries: the only choices a supernet runs.

    One host synchronisation per decision; the price of single-path cost."""
    return torch.nonzero(weight.detach(), as_tuple=False).flatten().tolist()


def check_weight(decision: str, weight: Tensor, size: int) -> Tensor:
    if weight.dim() != 1 or weight.shape[0] != size:
        raise ArchitectureError(
            f"decision {decision!r} needs a weight vector of shape ({size},), got {tuple(weight.shape)}"
        )
    return weight


class Choice(nn.Module):
    """Candidates of one decision, keyed by choice name.

    forward(x) with weights None: the standalone case, exactly one candidate.
    forward(x, weights): sum over choices with non-zero weight of
    weight * candidate(x), so gradients reach the weights as well.
    """

    def __init__(self, decision: str, choices: tuple[str, ...], candidates: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.decision = decision
        self.choices = choices
        self.candidates = nn.ModuleDict(dict(candidates))

    def forward(self, x: Tensor, weights: Mapping[str, Tensor] | None = None) -> Tensor:
        if weights is None:
            if len(self.candidates) != 1:
                raise ArchitectureError(
                    f"decision {self.decision!r}: a supernet needs weights for every decision"
                )
            return next(iter(self.candidates.values()))(x)
        weight = check_weight(self.decision, weights[self.decision], len(self.choices))
        indices = active(weight)
        if not indices:
            raise ArchitectureError(f"decision {self.decision!r}: every weight is zero; nothing to run")
        out: Tensor | None = None
        for index in indices:
            term = self.candidates[self.choices[index]](x) * weight[index].to(x.dtype)
            out = term if out is None else out + term
        assert out is not None
        return out
