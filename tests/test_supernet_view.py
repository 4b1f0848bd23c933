"""benchmarks/supernet_view.py: the per-search gaps and percentiles, and their per-target mean +- SE, equal an
independent numpy computation; searches without a matched random are left out; a folder without finished
searches is refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark_scripts import load_benchmark


def _views(rng: np.random.Generator) -> list:
    SearchView = load_benchmark("supernet_view").SearchView  # noqa: N806
    views = []
    for seed in range(5):
        k = int(rng.integers(0, 6)) if seed else 0  # seed 0 has no matched random
        views.append(SearchView(0.06, seed, rng.random(), rng.random(k).tolist(), rng.random(), rng.random(k).tolist(),
                                rng.random(), rng.random(k).tolist()))
    return views


def test_gaps_and_percentiles_equal_numpy() -> None:
    views = _views(np.random.default_rng(3))
    summary = load_benchmark("supernet_view").summarize(views)
    kept = [v for v in views if v.supernet_randoms]
    assert summary["searches"] == len(kept) == 4
    for name, searched, randoms in (("supernet_gap", "supernet_searched", "supernet_randoms"),
                                    ("supernet_loss_gap", "supernet_loss_searched", "supernet_loss_randoms"),
                                    ("trained_gap", "trained_searched", "trained_randoms")):
        gaps = np.array([getattr(v, searched) - np.mean(getattr(v, randoms)) for v in kept])
        assert summary[name]["mean"] == pytest.approx(gaps.mean())
        assert summary[name]["se"] == pytest.approx(gaps.std(ddof=1) / np.sqrt(gaps.size))
    below = [100 * np.mean(np.array(v.supernet_randoms) < v.supernet_searched) for v in kept]  # no ties in random draws
    assert summary["supernet_percentile"] == pytest.approx(np.mean(below))


def test_a_folder_without_finished_searches_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        load_benchmark("supernet_view").main(["--results", str(tmp_path)])
    assert stopped.value.code == 2
    assert "holds no finished search" in capsys.readouterr().err
