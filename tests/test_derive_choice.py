"""Which candidate derive returns, at the edges of its rules (issue #31 mutation survivors): the
papers' argmax by default, a candidate exactly at the target is within it, the argmax stays when
none is, several eligible candidates need the supernet and the data, and every eligible one is
scored the way `inherited_score` scores a network by default (one calibration protocol)."""

from __future__ import annotations

import pytest
import torch
from test_derive import _probabilities, _space

from hwnas.datasets.bundled import load_dataset
from hwnas.search.derive import derive, propose
from hwnas.search.inherit import inherited_score


def _latency_of(space, probabilities, fast_ms: float, slow_ms: float):  # noqa: ANN001, ANN202
    """A latency model under which the argmax network takes `fast_ms` and every other `slow_ms`."""
    argmax = space.derive(probabilities).choices
    return lambda arch: fast_ms if arch.choices == argmax else slow_ms


def test_the_default_is_the_papers_argmax_without_a_supernet() -> None:
    space = _space()
    probabilities = _probabilities(space, 0)
    result = derive(space, probabilities)
    assert result.arch.choices == space.derive(probabilities).choices and len(result.candidates) == 1


def test_a_candidate_exactly_at_the_target_is_within_it() -> None:
    space = _space()
    probabilities = _probabilities(space, 5)
    result = derive(space, probabilities, candidates=4, predicted_ms=_latency_of(space, probabilities, 1.0, 2.0),
                    target_ms=1.0)
    assert [c.within_target for c in result.candidates] == [True, False, False, False]
    assert result.chosen == 0 and result.candidates[0].accuracy is None  # the only eligible one: no scoring


def test_the_argmax_stays_when_no_candidate_is_within_the_target() -> None:
    space = _space()
    probabilities = _probabilities(space, 6)
    result = derive(space, probabilities, candidates=4, predicted_ms=_latency_of(space, probabilities, 3.0, 2.0),
                    target_ms=1.0)
    assert not any(c.within_target for c in result.candidates)
    assert result.chosen == 0 and result.arch.choices == space.derive(probabilities).choices


@pytest.mark.parametrize("missing", ["supernet", "data", "both"])
def test_several_eligible_candidates_need_the_supernet_and_the_data(missing: str) -> None:
    space = _space()
    supernet = None if missing in ("supernet", "both") else space.supernet()
    data = None if missing in ("data", "both") else load_dataset("digits", seed=0, limit=100)
    with pytest.raises(ValueError, match="needs the supernet and the data"):
        derive(space, _probabilities(space, 7), candidates=2, supernet=supernet, data=data)


def test_without_a_target_every_candidate_is_scored_as_inherited_score_scores_it() -> None:
    space = _space()
    data = load_dataset("digits", seed=0)  # 988 search-train images: more than the 10 default batches of 64
    torch.manual_seed(0)
    supernet = space.supernet()
    probabilities = _probabilities(space, 8)
    result = derive(space, probabilities, candidates=3, supernet=supernet, data=data)
    assert all(c.within_target and c.accuracy is not None for c in result.candidates)
    for candidate, (arch, _) in zip(result.candidates, propose(space, probabilities, 3, seed=0), strict=True):
        score = inherited_score(space, supernet, arch, data)
        assert candidate.loss == pytest.approx(score.loss, rel=1e-6)
        assert candidate.accuracy == pytest.approx(score.accuracy)
    best = max(range(3), key=lambda i: (result.candidates[i].accuracy, -i))
    assert result.chosen == best


def test_a_tie_in_accuracy_goes_to_the_earlier_candidate() -> None:
    """A supernet of zeros predicts the same class for every image, so every candidate ties."""
    space = _space()
    supernet = space.supernet()
    with torch.no_grad():
        for parameter in supernet.parameters():
            parameter.zero_()
    result = derive(space, _probabilities(space, 9), candidates=3, supernet=supernet,
                    data=load_dataset("digits", seed=0, limit=200), bn_batches=1, batch_size=16)
    assert len({c.accuracy for c in result.candidates}) == 1
    assert result.chosen == 0
