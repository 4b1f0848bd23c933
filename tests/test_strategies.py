"""The strategy registry: names are unique, lookups go through it, the CLI lists what it holds,
and a strategy registered from outside runs a real search with nothing else changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from hwnas.datasets import load_dataset
from hwnas.errors import UsageError
from hwnas.run import read_metrics, run_search
from hwnas.search import SearchConfig
from hwnas.search.strategies import Strategy, get_strategy, list_strategies, register_strategy, registry
from hwnas.search.strategies.base import ArchContext, ArchStepReport


def test_the_registry_holds_the_methods_with_their_published_defaults() -> None:
    """The values the estimator tables held before the registry (GDAS's official 10 -> 0.1, the UNAS
    code's fixed 0.4, mixtures keep training their mixture, single paths train `depth`)."""
    assert list_strategies() == ("darts", "gdas", "egs", "snas", "reinforce", "rebar", "gdas-net")
    assert list_strategies("latency") == ("relax", "reinforce", "expected", "none")
    assert {n: get_strategy(n).temperatures for n in list_strategies()} == {
        "darts": (1.0, 1.0), "gdas": (10.0, 0.1), "egs": (1.0, 0.1), "snas": (1.0, 0.1),
        "reinforce": (0.4, 0.4), "rebar": (0.4, 0.4), "gdas-net": (10.0, 0.1)}
    assert {n: get_strategy(n).supernet_rule for n in list_strategies()} == {
        "darts": "sample", "gdas": "depth", "egs": "sample", "snas": "sample", "reinforce": "depth", "rebar": "depth",
        "gdas-net": "network"}
    assert [n for n in list_strategies("latency") if get_strategy(n, term="latency").measures] == ["relax", "reinforce"]
    assert [n for n in list_strategies("latency") if not get_strategy(n, term="latency").active] == ["none"]


def test_a_duplicate_or_badly_named_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="'gdas' is already registered by Gdas"):
        register_strategy("gdas")(type("Again", (Strategy,), {}))
    with pytest.raises(ValueError, match="lower case"):
        register_strategy("GDAS2")
    with pytest.raises(ValueError, match="term"):
        register_strategy("x", term="energy")
    with pytest.raises(KeyError, match="choose one of darts, gdas"):
        get_strategy("enas")
    assert list_strategies() == ("darts", "gdas", "egs", "snas", "reinforce", "rebar", "gdas-net")


def test_a_field_one_strategy_owns_is_refused_under_the_others() -> None:
    with pytest.raises(UsageError, match="estimator.tune_variance tunes REBAR's temperature and eta; it needs estimator.accuracy rebar, not gdas"):
        SearchConfig.from_flat(estimator="gdas", tune_variance="eta")
    SearchConfig.from_flat(estimator="rebar", tune_variance="eta")
    SearchConfig.from_flat(estimator="darts", darts_order="second", latency_estimator="expected")


@pytest.fixture
def private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of the registry for one test, so a test strategy never leaks into other tests."""
    monkeypatch.setattr(registry, "_STRATEGIES", {term: dict(known) for term, known in registry._STRATEGIES.items()})  # noqa: SLF001


def test_a_new_strategy_is_one_registered_class(private_registry: None, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A strategy whose gradient is zero leaves the logits at zero (uniform probabilities) while the
    supernet trains the weights it hands out: the loop reaches it only through the registry."""
    handed: list[dict[str, Tensor]] = []

    @register_strategy("still")
    class Still(Strategy):
        temperatures = (2.0, 0.5)
        supernet_rule = "sample"

        def training_weights(self, config, dist, tau):  # noqa: ANN001, ANN202
            weights = {k: v.detach() for k, v in dist.probabilities().items()}
            handed.append(weights)
            return weights

        def surrogate(self, ctx: ArchContext, dist) -> tuple[Tensor, ArchStepReport]:  # noqa: ANN001
            loss = ctx.accuracy({k: v.detach() for k, v in dist.probabilities().items()})
            return 0.0 * sum(v.sum() for v in ctx.logits.values()), ArchStepReport(
                float(loss.detach()), ctx.accuracy.last_val_loss, ctx.accuracy.last_val_acc, None, None)

    from hwnas.cli import build_parser  # noqa: PLC0415 - after the registration: the help lists it

    with pytest.raises(SystemExit):
        build_parser().parse_args(["search", "--help"])
    assert "rebar, gdas-net, still (default: rebar)" in " ".join(capsys.readouterr().out.split())

    config = SearchConfig.from_flat(space="proxyless", space_config={"small_input": True, "widths": [4, 4, 4, 4, 8, 8, 8, 8, 16],
                                                                     "depths": [1, 1, 1, 1, 1, 1]},
                                    dataset="digits", estimator="still", latency_estimator="none", steps=2, warmup_steps=1,
                                    batch_size=8, progress=False)
    assert (config.temperatures, config.rule) == ((2.0, 0.5), "sample")
    result = run_search(config, tmp_path, data=load_dataset("digits", limit=200, seed=0), measure_final=False)
    assert len(handed) == 3  # one weight step per warm-up and search step, at the strategy's weights
    assert [m["tau"] for m in read_metrics(tmp_path)] == [2.0, 2.0, 0.5]
    for probabilities in result.probabilities.values():
        values = list(probabilities.values())
        assert values == pytest.approx([1 / len(values)] * len(values))
    assert result.arch.extra["search"]["estimator"] == "still"
    torch.testing.assert_close(handed[0][next(iter(handed[0]))], handed[-1][next(iter(handed[-1]))])
