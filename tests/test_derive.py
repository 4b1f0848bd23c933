"""The search's derivation (hwnas.search.derive): the papers' argmax, and the best of K proposals by
inherited accuracy within the latency target, on a real supernet, real data and a real linear latency model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from hwnas.datasets.bundled import load_dataset
from hwnas.estimators import LinearSurrogate
from hwnas.run import DERIVATION_FILE, read_metrics, run_search
from hwnas.search import SearchConfig
from hwnas.search.derive import derive, gumbel_derivation, propose
from hwnas.search.inherit import calibration_batches, inherited_score
from search_spaces import get_space

SPACE = {"small_input": True, "widths": [4, 4, 6, 6, 8, 8, 8, 8, 16], "depths": [1, 2, 1, 1, 1, 1]}


def _space():
    return get_space("proxyless", in_channels=1, num_classes=10, resolution=8, **SPACE)


def _probabilities(space, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {d.name: list(rng.dirichlet(np.ones(len(d.choices)))) for d in space.decisions}


def test_one_candidate_is_the_papers_argmax_derivation() -> None:
    space = _space()
    probabilities = _probabilities(space, 0)
    result = derive(space, probabilities, candidates=1)
    assert result.arch.choices == space.derive(probabilities).choices
    assert result.chosen == 0 and [c.proposed_by for c in result.candidates] == ["argmax"]


def test_gumbel_draws_are_samples_of_the_distribution() -> None:
    """Enumeration reference: each decision's draw frequencies against its probabilities (chi-square, fixed seed)."""
    space = _space()
    probabilities = _probabilities(space, 1)
    log_p = {name: np.log(np.asarray(p)) for name, p in probabilities.items()}
    rng = np.random.default_rng(0)
    draws = [gumbel_derivation(space, log_p, rng) for _ in range(3000)]
    for decision in space.decisions[:4]:
        counts = np.array([sum(a.choices[decision.name] == c for a in draws) for c in decision.choices])
        expected = np.asarray(probabilities[decision.name]) * len(draws)
        assert chisquare(counts, expected).pvalue > 1e-3, (decision.name, counts, expected)


def test_proposals_are_distinct_and_start_with_the_argmax() -> None:
    space = _space()
    probabilities = _probabilities(space, 2)
    proposals = propose(space, probabilities, 12, seed=3)
    keys = [tuple(sorted(a.choices.items())) for a, _ in proposals]
    assert len(proposals) == 12 and len(set(keys)) == 12
    assert proposals[0] == (space.derive(probabilities), "argmax")
    assert propose(space, probabilities, 12, seed=3) == proposals  # seeded


def test_the_most_accurate_candidate_within_the_target_wins() -> None:
    data = load_dataset("digits", seed=0, limit=300)
    space = _space()
    torch.manual_seed(0)
    supernet = space.supernet()
    torch.manual_seed(1)
    model = LinearSurrogate(0.5, {d.name: torch.rand(len(d.choices)) for d in space.decisions})

    def predicted(arch):  # noqa: ANN001, ANN202
        return float(model(space.one_hot(arch)))

    probabilities = _probabilities(space, 4)
    latencies = sorted(predicted(a) for a, _ in propose(space, probabilities, 8, seed=0))
    target = latencies[4]
    result = derive(space, probabilities, candidates=8, supernet=supernet, data=data, predicted_ms=predicted,
                    target_ms=target, seed=0, bn_batches=2, batch_size=16)
    assert len(result.candidates) == 8
    over = [c for c in result.candidates if c.predicted_ms > target]
    assert over and all(not c.within_target and c.accuracy is None for c in over)
    eligible = [c for c in result.candidates if c.within_target]
    assert all(c.accuracy is not None for c in eligible)
    chosen = result.candidates[result.chosen]
    assert chosen.accuracy == max(c.accuracy for c in eligible) and result.arch.choices == chosen.choices
    batches = calibration_batches(data, 2, 16, seed=0)
    assert chosen.accuracy == pytest.approx(inherited_score(space, supernet, result.arch, data, batches=batches).accuracy)
    assert result.to_dict()["candidates"][result.chosen]["choices"] == chosen.choices


def test_a_finished_search_resumed_with_more_candidates_derives_again(tmp_path: Path) -> None:
    config = SearchConfig.from_flat(space="proxyless", space_config=SPACE, dataset="digits", data_limit=300, estimator="gdas",
                                    latency_estimator="none", steps=3, warmup_steps=1, batch_size=16, progress=False)
    first = run_search(config, tmp_path / "run", measure_final=False)
    assert not (tmp_path / "run" / DERIVATION_FILE).exists()
    metrics = read_metrics(tmp_path / "run")
    again = run_search(config.replace(derive_candidates=5), tmp_path / "run", measure_final=False, resume=True)
    assert read_metrics(tmp_path / "run") == metrics  # no step ran again
    assert again.probabilities == first.probabilities
    document = json.loads((tmp_path / "run" / DERIVATION_FILE).read_text())
    assert len(document["candidates"]) == 5 and document["candidates"][0]["choices"] == first.arch.choices
    assert again.arch.choices == document["candidates"][document["chosen"]]["choices"]
    assert json.loads((tmp_path / "run" / "arch.json").read_text())["choices"] == again.arch.choices
