"""The default run's verdict: the derived network among the profile's random networks at its latency,
scored with inherited weights (hwnas.run.standing), on a real supernet, real data and a real samples file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.datasets.bundled import load_dataset
from hwnas.search.inherit import calibration_batches, inherited_score
from hwnas.run.standing import MIN_PEERS, Scored, Standing, standing
from lut.samples import SampleRecord, append
from search_spaces import get_space

SPACE = {"small_input": True, "widths": [4, 4, 6, 6, 8, 8, 8, 8, 16], "depths": [1, 2, 1, 1, 1, 1]}


def _scored(ms: float, acc: float) -> Scored:
    return Scored({}, ms, acc)


def test_peers_are_the_band_or_else_the_nearest_and_the_lines_give_the_percentile() -> None:
    random = [_scored(0.96, 0.5), _scored(1.04, 0.7), _scored(1.0, 0.6), _scored(2.0, 0.99), _scored(0.5, 0.1)]
    result = Standing(_scored(1.0, 0.65), random, 0.05)
    peers, in_band = result.peers()
    assert in_band and sorted(p.accuracy for p in peers) == [0.5, 0.6, 0.7]
    text = "\n".join(result.lines())
    assert "0.6000 ± 0.0577" in text and "beats 2 of 3 (percentile 67)" in text and "best random 0.7000" in text
    far = Standing(_scored(1.5, 0.65), random, 0.05)
    peers, in_band = far.peers()
    assert not in_band and len(peers) == MIN_PEERS and "nearest in latency" in "\n".join(far.lines())
    assert Standing.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert "optimistic" not in text
    chosen = Standing(_scored(1.0, 0.65), random, 0.05, chosen_among=8)
    assert "chosen among up to 8 by this score" in "\n".join(chosen.lines())
    assert Standing.from_dict(json.loads(json.dumps(chosen.to_dict()))) == chosen


def test_standing_scores_profile_networks_nearest_in_latency_with_inherited_weights(tmp_path: Path) -> None:
    data = load_dataset("digits", seed=0, limit=300)
    space = get_space("proxyless", in_channels=1, num_classes=10, resolution=8, **SPACE)
    torch.manual_seed(0)
    supernet = space.supernet()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(6)]
    latencies = [0.5, 0.9, 1.0, 1.02, 1.6, 3.0]
    append(tmp_path / "samples.jsonl", [
        SampleRecord(i, 0, "b", arch.to_dict(), ms, None, 1, 1, {}) for i, (arch, ms) in enumerate(zip(archs, latencies, strict=True))
    ] + [SampleRecord(0, 1, "b", archs[0].to_dict(), 1.0, None, 1, 1, {})])  # a retest: not a second network
    derived = space.sample(np.random.default_rng(9))
    result = standing(space, supernet, derived, 1.0, tmp_path, data, count=4, bn_batches=2, batch_size=16)
    assert [r.latency_ms for r in result.random] == [1.0, 1.02, 0.9, 1.6]  # the 4 nearest (log ratio)
    batches = calibration_batches(data, 2, 16)
    expected = inherited_score(space, supernet, archs[2], data, batches=batches).accuracy
    assert result.random[0].accuracy == pytest.approx(expected) and result.random[0].choices == archs[2].choices
    assert result.derived.accuracy == pytest.approx(inherited_score(space, supernet, derived, data, batches=batches).accuracy)
    path = result.save(tmp_path)
    assert Standing.from_dict(json.loads(path.read_text())) == result
