"""Every estimator runs a few real search steps in both spaces; every derived architecture
validates and builds. Tiny networks on scikit-learn's digits (8x8), latency timed for real
(PyTorch eager on the CPU) for the estimators that measure sampled networks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hwnas.datasets import DataSplits, load_dataset
from hwnas.run import read_metrics, run_search, space_for_data
from hwnas.search import SearchConfig
from hwnas.search.latency import LatencyConditions, LatencyOracle, OnlineSurrogate
from search_spaces import Architecture

SPACES = {
    "proxyless": {"small_input": True, "widths": [4, 4, 4, 4, 8, 8, 8, 8, 16], "depths": [1, 1, 1, 1, 1, 1]},
    "darts": {"parameterization": "factorized", "op_set": "s2", "C": 2, "layers": 3},
}
CASES = [
    ("darts", "first", "none"),
    ("darts", "second", "none"),
    ("darts", "amended", "expected"),
    ("gdas", "first", "relax"),
    ("egs", "first", "expected"),
    ("snas", "first", "relax"),
    ("reinforce", "first", "reinforce"),
    ("rebar", "first", "relax"),
]


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_dataset("digits", limit=300, seed=0)


def _config(space: str, estimator: str, order: str, latency: str, **changes: object) -> SearchConfig:
    base = dict(
        space=space, space_config=SPACES[space], dataset="digits", estimator=estimator, darts_order=order,
        latency_estimator=latency, latency_target_ms=None if latency == "none" else 0.5, steps=2, warmup_steps=1,
        batch_size=8, latency_backend="eager", latency_threads=1, measure_budget_s=0.02, progress=False,
        objective="gen",
    )
    base.update(changes)
    return SearchConfig.from_flat(**base)  # type: ignore[arg-type]


def _fitted_surrogate(config: SearchConfig, data: DataSplits):
    """A real linear latency model: ridge on a few measured random networks of the space."""
    space = space_for_data(config, data)
    oracle = LatencyOracle(space, LatencyConditions(threads=1))
    generator = __import__("numpy").random.default_rng(0)
    for _ in range(6):
        oracle.latency_ms(space.sample(generator))
    return OnlineSurrogate(space, oracle).update()


@pytest.mark.parametrize("space", sorted(SPACES))
@pytest.mark.parametrize(("estimator", "order", "latency"), CASES, ids=[f"{e}-{o}-{lat}" for e, o, lat in CASES])
def test_estimator_runs_and_derives_a_buildable_architecture(
    space: str, estimator: str, order: str, latency: str, digits: DataSplits, tmp_path: Path
) -> None:
    config = _config(space, estimator, order, latency)
    surrogate = _fitted_surrogate(config, digits) if latency == "expected" else None
    result = run_search(config, tmp_path, data=digits, surrogate=surrogate, measure_final=False)

    result.space.validate(result.arch)
    network = result.space.build(result.arch).eval()
    with torch.no_grad():
        assert network(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    saved = Architecture.load(tmp_path / "arch.json")
    assert saved.choices == result.arch.choices
    probabilities = saved.extra["probabilities"]
    for decision in result.space.decisions:
        assert sum(probabilities[decision.name].values()) == pytest.approx(1.0, abs=1e-5)

    metrics = read_metrics(tmp_path)
    assert [m["phase"] for m in metrics] == ["warm-up", "search", "search"]
    assert all(torch.isfinite(torch.tensor(m["objective"])) for m in metrics[1:])
    if latency in ("relax", "reinforce"):
        assert all(m["sampled_latency_ms"] > 0 for m in metrics[1:])
        assert (tmp_path / "latencies.jsonl").exists()
    if latency == "expected":
        assert all(m["expected_latency_ms"] > 0 for m in metrics[1:])


def test_architecture_logits_move_and_derived_latency_is_measured(digits: DataSplits, tmp_path: Path) -> None:
    config = _config("proxyless", "rebar", "first", "relax", steps=3, arch_lr=0.1)
    result = run_search(config, tmp_path, data=digits, measure_final=True)
    uniform = [1.0 / len(d.choices) for d in result.space.decisions]
    moved = [max(abs(p - u) for p in result.probabilities[d.name].values()) for d, u in zip(result.space.decisions, uniform)]
    assert max(moved) > 1e-3
    assert result.final_latency is not None and result.final_latency.value_ms > 0
    assert result.arch.extra["search"]["measured_latency_ms"] == result.final_latency.value_ms
    assert result.measured_during_search >= 1
