"""The `network-multi` supernet-training rule (issue #26, a lever for the DARTS cell supernet).

A path is a derivable network (`network`'s draw, from the same stream) whose computing decisions
each also run every other computing choice with probability 1/2, averaged; `none` / `zero` never
join. Checked against its definition by counting, and in a real supernet: gradients reach the
candidates in the path and no other.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import binomtest

from hwnas.search.paths import NOTHING, PathRule
from search_spaces import get_space
from search_spaces.choice import Choice

DARTS = {"C": 4, "layers": 3, "resolution": 12, "num_classes": 10, "in_channels": 1}


def test_paths_extend_the_network_draw_and_join_each_other_choice_half_the_time() -> None:
    space = get_space("darts", **DARTS)
    multi, network = PathRule(space, "network-multi", seed=5), PathRule(space, "network", seed=5)
    joined, chances, steps = 0, 0, 300
    for step in range(steps):
        path, base = multi(step, dict).paths[0], network(step, dict).paths[0]
        for decision in space.decisions:
            weight, drawn = path[decision.name], int(torch.argmax(base[decision.name]))
            support = torch.nonzero(weight).flatten().tolist()
            assert drawn in support  # the genotype's own op is always there
            if decision.choices[drawn] in NOTHING:
                assert support == [drawn]  # a pruned edge stays pruned
                continue
            assert not any(decision.choices[i] in NOTHING for i in support)
            torch.testing.assert_close(weight[support], torch.full((len(support),), 1 / len(support)))
            assert abs(float(weight.sum()) - 1) < 1e-6
            joined += len(support) - 1
            chances += sum(c not in NOTHING for c in decision.choices) - 1
    assert binomtest(joined, chances, 0.5).pvalue > 1e-3, (joined, chances)
    again = PathRule(space, "network-multi", seed=5)
    assert all(torch.equal(multi(7, dict).paths[0][k], v) for k, v in again(7, dict).paths[0].items())
    assert any(not torch.equal(multi(7, dict).paths[0][k], v) for k, v in multi(8, dict).paths[0].items())


def test_gradients_reach_the_candidates_of_the_path_and_no_other() -> None:
    torch.manual_seed(0)
    space = get_space("darts", **DARTS)
    supernet = space.supernet(weight_sharing="independent").train()
    weights = PathRule(space, "network-multi", seed=1)(3, dict).paths[0]
    supernet(torch.randn(4, 1, 12, 12), weights).square().mean().backward()
    checked = 0
    for module in supernet.modules():
        if not isinstance(module, Choice):
            continue
        weight = weights[module.decision]
        for index, choice in enumerate(module.choices):
            parameters = list(module.candidates[choice].parameters()) if choice in module.candidates else []
            if not parameters:
                continue
            grads = [p.grad for p in parameters]
            if weight[index] > 0:
                assert any(g is not None and g.abs().sum() > 0 for g in grads), (module.decision, choice)
                checked += 1
            else:
                assert all(g is None or torch.count_nonzero(g) == 0 for g in grads), (module.decision, choice)
    assert checked > 0
