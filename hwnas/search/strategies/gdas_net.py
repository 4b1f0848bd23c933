"""GDAS on the networks a search returns (`gdas-net`): GDAS's straight-through Gumbel gradient, with the
hard sample a network the space's derivation can return.

Why: in the DARTS edge space a GDAS sample runs one op on every input edge of every node (each node sums
2-5 edges), a network no search returns and one a supernet trained under the `network` rule (genotypes:
two input edges per node) never runs (docs/cell-space.md). Here the sample is `space.derive` of the
Gumbel-perturbed log-probabilities z = log p + G, as `hwnas.search.derive` proposes candidates: per node
the two edges whose best non-`none` score in z is highest, each with that op. The weights are GDAS's on
every decision the derivation chose by its scores, b - softmax(z / tau).detach() + softmax(z / tau); an
edge the derivation pruned is the constant one-hot of `none` (no gradient: the other edges' scores, not
its own op's, removed it). In a space whose derivation is the argmax per decision, `derive(z)` is the
Gumbel-max sample itself and this is GDAS exactly (tests/test_gdas_net.py checks both).

It draws a network, but not b ~ p (the pruning depends on the other edges), so there is no sample for
RELAX or REINFORCE to time: its latency term is `expected` (or none).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hwnas.estimators import ArchitectureDistribution
from hwnas.estimators.gumbel import perturb
from hwnas.search.strategies.base import ArchContext, ArchStepReport, Strategy, latency_outcome, pathwise_step
from hwnas.search.strategies.registry import register_strategy
from search_spaces.darts.space import NONE


@register_strategy("gdas-net")
class GdasNetwork(Strategy):
    samples = False
    trains = "derivable network"
    temperatures = (10.0, 0.1)
    supernet_rule = "network"

    def surrogate(self, ctx: ArchContext, dist: ArchitectureDistribution) -> tuple[Tensor, ArchStepReport]:
        if ctx.space is None:
            raise ValueError("gdas-net needs the search space in its ArchContext")
        space = ctx.space
        z = {name: perturb(log_theta, ()) for name, log_theta in dist.log_probabilities().items()}
        arch = space.derive({name: value.detach().tolist() for name, value in z.items()})
        pruned = space.pruning is not None
        weights, sampled = {}, {}
        for decision in space.decisions:
            index = decision.choices.index(arch.choices[decision.name])
            hard = torch.nn.functional.one_hot(torch.tensor(index, device=z[decision.name].device),
                                               len(decision.choices)).to(z[decision.name].dtype)
            sampled[decision.name] = index
            if pruned and decision.choices[index] == NONE:
                weights[decision.name] = hard
            else:
                relaxed = torch.softmax(z[decision.name] / ctx.tau, dim=-1)
                weights[decision.name] = hard - relaxed.detach() + relaxed
        loss = ctx.accuracy(weights)
        return pathwise_step(ctx, loss, latency_outcome(ctx, dist), sampled)
