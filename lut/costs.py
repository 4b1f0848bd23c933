"""MACs and parameters of sampled architectures, cheaply: sums of per-op counts.

Counting a whole network takes a forward pass; with hundreds of samples on
a busy CPU that costs more than timing them. A network of a space is its
fixed parts plus one op per decision, so its counts are the sum of the op
items' counts (each counted once, at batch 1). `CostTable.for_space` checks
the sum against a full count of one network and falls back to full counts
for a space where the parts do not add up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from search_spaces.architecture import Architecture
from search_spaces.base import SearchSpace
from search_spaces.counting import count_macs, count_params


@dataclass(frozen=True)
class CostTable:
    """Per-(decision, choice) MACs and params (per image), plus the fixed parts'; None = count whole nets."""

    op_macs: Mapping[tuple[str, str], int] | None
    op_params: Mapping[tuple[str, str], int] | None
    fixed_macs: int = 0
    fixed_params: int = 0

    @classmethod
    def for_space(cls, space: SearchSpace, check: Architecture) -> CostTable:
        """Count every op item once; keep the table only if it reproduces `check`'s full count."""
        macs: dict[tuple[str, str], int] = {}
        params: dict[tuple[str, str], int] = {}
        for item in space.op_items(1):
            key = (str(item.decision), str(item.choice))
            macs[key] = macs.get(key, 0) + count_macs(item.module, tuple(item.input_shape))
            params[key] = params.get(key, 0) + count_params(item.module)
        fixed = space.fixed_items(1)
        table = cls(
            op_macs=macs,
            op_params=params,
            fixed_macs=sum(count_macs(item.module, tuple(item.input_shape)) for item in fixed),
            fixed_params=sum(count_params(item.module) for item in fixed),
        )
        model = space.build(check)
        if table.counts(check.choices, model, space) != (count_macs(model, tuple(space.input_shape(1))), count_params(model)):
            return cls(None, None)
        return table

    def counts(self, choices: Mapping[str, str], model: nn.Module, space: SearchSpace) -> tuple[int, int]:
        """(MACs per image, params) of the network `model` built from `choices`."""
        if self.op_macs is None or self.op_params is None:
            return count_macs(model, tuple(space.input_shape(1))), count_params(model)
        pairs = list(choices.items())
        return (
            self.fixed_macs + sum(self.op_macs.get(p, 0) for p in pairs),
            self.fixed_params + sum(self.op_params.get(p, 0) for p in pairs),
        )
