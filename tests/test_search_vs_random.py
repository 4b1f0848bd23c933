"""benchmarks/search_vs_random.py's tables: the summary of a seed subset of a run is the summary of a run that
only ever held those searches and the random networks matched to them, and its numbers are the plain mean and
standard error (numpy, independently of hwnas.report.compare)."""

from __future__ import annotations

import json
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


def test_each_new_target_file_draws_its_own_pool_seed_and_keeps_it(tmp_path: Path) -> None:
    """#29: random pools no longer repeat across work folders; the seed is recorded and a resumed file keeps it."""
    from hwnas.errors import UsageError  # noqa: PLC0415

    first = _state(tmp_path / "a.json", [], [])
    second = _state(tmp_path / "b.json", [], [])
    seeds = first.pool_seed(None), second.pool_seed(None)
    assert seeds[0] != seeds[1]
    resumed = _benchmark().TargetState(tmp_path / "a.json", {"target_ms": 0.06})
    assert resumed.pool_seed(None) == seeds[0] and resumed.doc["pool_seed"] == seeds[0]
    with pytest.raises(UsageError, match="--pool-seed"):
        resumed.pool_seed(seeds[0] + 1)
    assert _state(tmp_path / "c.json", [], []).pool_seed(7) == 7


def test_the_loosest_target_searches_with_its_own_penalty_in_its_identity() -> None:
    identity = {"setting": "unas", "search": {"latency_penalty": "hinge", "steps": 50}}
    target_identity = _benchmark().target_identity
    assert target_identity(identity, 0.06, "hinge") == {**identity, "target_ms": 0.06}
    loose = target_identity(identity, 0.07, "abs")
    assert loose["search"] == {"latency_penalty": "abs", "steps": 50} and identity["search"]["latency_penalty"] == "hinge"


def test_report_only_prints_where_each_searched_network_lands_from_the_summary_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The summary file alone rebuilds the tables; each search's landing is its measured latency against its
    target and its percentile among the profile's random networks (counted here with numpy)."""
    benchmark = _benchmark()
    searches = [_search(0, 0.78, tmp_path), {**_search(1, 0.74, tmp_path), "measured_ms": 0.066}]
    state = _state(tmp_path / "t.json", searches, [_random(0.75, [0]), _random(0.70, [1])])
    pool = [0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10]
    summary = benchmark.summarize(state, 0, None, pool)
    assert [r["pool_percentile"] for r in summary["per_search"]] == [
        pytest.approx(100 * np.mean(np.asarray(pool) <= ms)) for ms in (0.05, 0.066)]
    document = {"setting": "unas", "args": {"tolerance": 0.05, "train_seeds": [0]}, "profile_range_ms": [0.03, 0.10],
                "targets": [summary], "provenance": {"command": "python benchmarks/search_vs_random.py"}}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(document))
    assert benchmark.main(["--report-only", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    landing = [line for line in printed.splitlines() if line.startswith("| 0.060")]
    assert any("| 0.050 " in line and "-16.7%" in line and "| 38 " in line for line in landing), landing
    assert any("| 0.066 " in line and "+10.0%" in line and "| 50 " in line for line in landing), landing
    assert "searched vs random at equal measured latency" in printed


def test_agreement_is_the_mean_pairwise_share_of_decisions_derived_alike() -> None:
    rows = [{"choices": {"a": "k3", "b": "k5", "c": "zero"}}, {"choices": {"a": "k3", "b": "k7", "c": "zero"}},
            {"choices": {"a": "k5", "b": "k7", "c": "k3"}}]
    # pairs: (0,1) 2/3, (0,2) 0/3, (1,2) 1/3 -> mean 1/3
    assert _benchmark().agreement_cell(rows) == "33%"
    assert _benchmark().agreement_cell(rows[:1]) == "-"


def test_warmups_are_kept_by_what_shapes_them_and_reused_across_targets_and_estimators(tmp_path: Path) -> None:
    """`--warmups`: one file per warm-up identity (seed, weight settings), the same for another target or
    estimator; a search that trained its warm-up leaves it there with its seconds, a later one reads them."""
    from types import SimpleNamespace  # noqa: PLC0415

    from hwnas.datasets import load_dataset  # noqa: PLC0415
    from hwnas.search import SearchConfig  # noqa: PLC0415

    bench = _benchmark()
    setup = SimpleNamespace(data=load_dataset("digits", limit=200, seed=0))
    base = {"space": "darts", "supernet_rule": "network", "warmup_steps": 10, "latency_estimator": "expected"}
    gdas = SearchConfig.from_flat(**base, estimator="gdas", latency_target_ms=0.4)
    egs = SearchConfig.from_flat(**base, estimator="egs", latency_target_ms=0.5, arch_lr=0.3)
    other_seed = SearchConfig.from_flat(**base, estimator="gdas", latency_target_ms=0.4, seed=1)
    kept = bench.shared_warmup(setup, gdas, tmp_path / "warmups")
    assert kept == bench.shared_warmup(setup, egs, tmp_path / "warmups")
    assert kept != bench.shared_warmup(setup, other_seed, tmp_path / "warmups")
    assert bench.shared_warmup(setup, gdas.replace(supernet_rule="sample"), tmp_path / "warmups") is None

    trained = tmp_path / "t0" / "search-seed0"
    trained.mkdir(parents=True)
    (trained / "warmup.pt").write_bytes(b"the supernet after its warm-up")
    rows = [{"step": 0, "phase": "warm-up", "seconds": 1.5}, {"step": 1, "phase": "warm-up", "seconds": 3.0},
            {"step": 2, "phase": "search", "seconds": 4.0}]
    (trained / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert bench.keep_warmup(trained, kept) == 3.0
    assert kept.read_bytes() == b"the supernet after its warm-up"
    started_from_it = tmp_path / "t1" / "search-seed0"
    started_from_it.mkdir(parents=True)
    assert bench.keep_warmup(started_from_it, kept) == 3.0  # the seconds of the warm-up it started from
