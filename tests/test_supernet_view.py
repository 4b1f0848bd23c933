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


def _verdict_document() -> dict:
    """A search_vs_random result file's shape: two searches at one target, a random network matched to both, one
    matched to none, one untrained."""
    return {"targets": [{"target_ms": 0.4, "per_search": [
        {"seed": 1, "choices": {"a": "x"}, "accuracy": 0.8},
        {"seed": 2, "choices": {"a": "y"}, "accuracy": 0.7},
        {"seed": 3, "choices": {"a": "z"}, "accuracy": None}],
        "random_networks": [{"arch": {"a": "p"}, "matches": [1, 2], "accuracy": 0.75},
                            {"arch": {"a": "q"}, "matches": [], "accuracy": 0.9},
                            {"arch": {"a": "r"}, "matches": [2], "accuracy": None},
                            {"arch": {"a": "s"}, "matches": [3], "accuracy": 0.6}]}]}


def test_a_verdict_file_yields_each_trained_search_with_its_trained_matches() -> None:
    found = load_benchmark("supernet_view").verdict_searches(_verdict_document())
    assert [(t, s["seed"], s["arch"], [r["arch"] for r in randoms]) for t, s, randoms in found] == [
        (0.4, 1, {"a": "x"}, [{"a": "p"}]), (0.4, 2, {"a": "y"}, [{"a": "p"}])]


def test_rank_agreement_counts_a_shared_random_once_and_equals_pair_counting() -> None:
    module = load_benchmark("supernet_view")
    rng = np.random.default_rng(5)
    shared = (float(rng.random()), float(rng.random()))
    views = []
    for seed in range(4):
        own = rng.random((3, 2))
        views.append(module.SearchView(0.4, seed, float(rng.random()), [shared[0], *own[:, 0]], 0.0, [0.0] * 4,
                                       float(rng.random()), [shared[1], *own[:, 1]]))
    document: dict = {}
    module.rank_agreement(views, document)
    pairs = {(v.supernet_searched, v.trained_searched) for v in views}
    pairs |= {p for v in views for p in zip(v.supernet_randoms, v.trained_randoms)}
    x, y = np.array(sorted(pairs)).T
    sign = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    n = x.size
    assert document["rank_agreement"]["0.4"]["networks"] == n == 4 + 1 + 12
    assert document["rank_agreement"]["0.4"]["kendall_tau"] == pytest.approx(sign.sum() / (n * (n - 1)))


def test_a_fresh_supernet_trains_the_verdict_config_with_the_options() -> None:
    module = load_benchmark("supernet_view")
    path = Path(__file__).resolve().parent.parent / "benchmarks/results/search_vs_random/gdas-cell-cluttered.json"
    args = module.parse(["--verdict", str(path), "--supernet-steps", "40", "--supernet-seed", "7",
                         "--supernet-option", "supernet_batchnorm=shared"])
    document = module.read_result(path)
    config = module.fresh_supernet_config(document, args)
    flat, saved = config.flat(), document["search_config"]
    assert (flat["warmup_steps"], flat["seed"], flat["supernet_batchnorm"], flat["latency_estimator"]) == (40, 7, "shared", "none")
    assert all(flat[k] == saved[k] for k in ("space_config", "supernet_rule", "w_lr", "batch_size", "weight_sharing"))
    assert args.json.name == "gdas-cell-cluttered-fresh-steps40-seed7-shared-network-bn-shared.json"


def test_a_missing_verdict_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        load_benchmark("supernet_view").parse(["--verdict", str(tmp_path / "none.json")])
    assert stopped.value.code == 2
    assert "no result file" in capsys.readouterr().err


def test_a_result_file_of_another_benchmark_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = Path(__file__).resolve().parent.parent / "benchmarks/results/search_memory/cpu-224-recompute.json"
    with pytest.raises(SystemExit) as stopped:
        load_benchmark("supernet_view").parse(["--verdict", str(other)])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "is not a search_vs_random result file" in err and "Traceback" not in err
