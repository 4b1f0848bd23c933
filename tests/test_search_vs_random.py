"""benchmarks/search_vs_random.py's tables: the summary of a seed subset of a run is the summary of a run that
only ever held those searches and the random networks matched to them, and its numbers are the plain mean and
standard error (numpy, independently of hwnas.report.compare)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmark_scripts import load_benchmark


def _benchmark():  # noqa: ANN202
    return load_benchmark("search_vs_random")


def _search(seed: int, accuracy: float, tmp: Path) -> dict[str, Any]:
    return {"seed": seed, "arch": {}, "measured_ms": 0.05, "accuracy": accuracy, "accuracies": [accuracy],
            "supernet_val_acc_last": 0.7, "run_dir": str(tmp / f"search-seed{seed}"), "session_ms": [0.05]}


def _random(accuracy: float, matches: list[int]) -> dict[str, Any]:
    return {"arch": {"choices": {}}, "measured_ms": 0.05, "accuracy": accuracy, "accuracies": [accuracy],
            "matches": matches}


def _state(path: Path, searches: list[dict[str, Any]], candidates: list[dict[str, Any]]):  # noqa: ANN202
    state = _benchmark().TargetState(path, {"target_ms": 0.06})
    state.doc["searches"] = {str(s["seed"]): s for s in searches}
    state.doc["candidates"] = candidates
    return state


def test_a_seed_subset_reads_as_a_run_of_those_seeds_alone(tmp_path: Path) -> None:
    accuracy = {0: 0.78, 1: 0.74, 5: 0.80, 6: 0.77, 7: 0.79}
    randoms = [(0.75, [0]), (0.76, [0, 5]), (0.70, [1]), (0.74, [5, 6]), (0.73, [7]), (0.72, [6]), (0.71, []),
               (0.77, [1, 7])]
    searches = [_search(seed, acc, tmp_path) for seed, acc in accuracy.items()]
    everything = _state(tmp_path / "all.json", searches, [_random(a, m) for a, m in randoms])
    subset = [5, 6, 7]
    alone = _state(tmp_path / "alone.json", [s for s in searches if s["seed"] in subset],
                   [_random(a, [s for s in m if s in subset]) for a, m in randoms if set(m) & set(subset)])

    summarize = _benchmark().summarize
    filtered, reference = summarize(everything, 1, subset), summarize(alone, 1)
    for key in ("searched", "random", "difference", "difference_se", "z", "goal_met"):
        assert filtered[key] == pytest.approx(reference[key]), key
    assert [r["seed"] for r in filtered["per_search"]] == subset
    assert [r["random_mean"] for r in filtered["per_search"]] == [r["random_mean"] for r in reference["per_search"]]

    searched = np.array([accuracy[s] for s in subset])
    random = np.array([a for a, m in randoms if set(m) & set(subset)])
    assert filtered["searched"]["n"] == 3 and filtered["random"]["n"] == 5
    assert filtered["difference"] == pytest.approx(searched.mean() - random.mean())
    se = np.sqrt(searched.var(ddof=1) / searched.size + random.var(ddof=1) / random.size)
    assert filtered["difference_se"] == pytest.approx(se)


def test_without_seeds_every_search_is_shown(tmp_path: Path) -> None:
    searches = [_search(seed, 0.7 + seed / 100, tmp_path) for seed in (0, 3, 8)]
    state = _state(tmp_path / "t.json", searches, [_random(0.7, [0]), _random(0.71, [8]), _random(0.9, [])])
    summary = _benchmark().summarize(state, 0)
    assert [r["seed"] for r in summary["per_search"]] == [0, 3, 8]
    assert summary["random"]["n"] == 2  # a random network matched to no search is never counted


@pytest.mark.parametrize("setting", sorted(_benchmark().SETTINGS))
def test_every_setting_is_a_search_a_user_can_run(setting: str) -> None:
    """Each setting's estimator pair passes the checks `hwnas search` applies, in the space it names, and the
    cell-space settings share one latency term (they are compared as differing in the accuracy estimator only)."""
    from hwnas.search.config import check_combination  # noqa: PLC0415

    benchmark = _benchmark()
    space, estimators = benchmark.SETTINGS[setting]
    config = load_benchmark("_common").bench_config("cluttered", space, **estimators)
    check_combination(config)
    assert config.data.space == space and config.estimator.accuracy == estimators["estimator"]
    cell_latency = {e["latency_estimator"] for s, e in benchmark.SETTINGS.values() if s == "darts"}
    assert cell_latency == {"expected"}
