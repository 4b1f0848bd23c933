"""Proposals follow the learned distribution (issue #31 mutation survivors): a choice of probability
zero is never proposed, and a nearly decided distribution proposes networks near its argmax."""

from __future__ import annotations

import numpy as np
from test_derive import _space

from hwnas.search.derive import propose


def _peaked(space, top: float) -> dict[str, list[float]]:  # noqa: ANN001
    """`top` on each decision's first choice, the rest spread evenly; the last choice gets 0 when there are 3+."""
    probabilities = {}
    for decision in space.decisions:
        k = len(decision.choices)
        rest = [(1.0 - top) / max(1, k - 2)] * (k - 2) + [0.0] if k > 2 else [1.0 - top]
        probabilities[decision.name] = [top, *rest]
    return probabilities


def test_a_zero_probability_choice_is_never_proposed() -> None:
    space = _space()
    probabilities = _peaked(space, 0.4)
    forbidden = {d.name: d.choices[-1] for d in space.decisions if len(d.choices) > 2}
    assert forbidden
    for seed in range(3):
        for arch, _ in propose(space, probabilities, 16, seed=seed):
            assert all(arch.choices[name] != choice for name, choice in forbidden.items())


def test_a_nearly_decided_distribution_proposes_networks_near_its_argmax() -> None:
    """With 0.9 on one choice per decision a draw differs from the argmax in ~10% of its decisions
    (a little more, as the proposals must be distinct); uniform draws would differ in most."""
    space = _space()
    probabilities = _peaked(space, 0.9)
    proposals = propose(space, probabilities, 12, seed=0)
    argmax = proposals[0][0].choices
    assert len({tuple(sorted(arch.choices.items())) for arch, _ in proposals}) == len(proposals) == 12
    differing = [sum(arch.choices[name] != argmax[name] for name in argmax) for arch, _ in proposals[1:]]
    assert np.mean(differing) < 0.3 * len(argmax), (differing, len(argmax))
