"""Estimator pairs: sensible ones are accepted, the others refused with one line naming the fix;
the CLI turns flags into the same configuration and refuses mistakes with exit code 2."""

from __future__ import annotations

import json

import pytest

from hwnas.cli._options import parse_options
from hwnas.errors import UsageError
from hwnas.search import SearchConfig, get_strategy, list_strategies
from hwnas.search.latency import LatencyConditions

SAMPLING = [name for name in list_strategies() if get_strategy(name).samples]


def test_the_sampling_strategies_are_the_single_path_ones() -> None:
    assert SAMPLING == ["gdas", "snas", "reinforce", "rebar"]


@pytest.mark.parametrize("estimator", SAMPLING)
@pytest.mark.parametrize("latency", ["relax", "reinforce", "expected", "none"])
def test_sampling_estimators_accept_every_latency_estimator(estimator: str, latency: str) -> None:
    config = SearchConfig.from_flat(estimator=estimator, latency_estimator=latency, latency_target_ms=2.0)
    assert config.measures_latency == (latency in ("relax", "reinforce"))


@pytest.mark.parametrize("estimator", sorted(set(list_strategies()) - set(SAMPLING)))
def test_measured_latency_needs_a_sampled_architecture(estimator: str) -> None:
    with pytest.raises(UsageError, match="use estimator.latency expected") as error:
        SearchConfig.from_flat(estimator=estimator, latency_estimator="relax", latency_target_ms=2.0)
    assert "\n" not in str(error.value)
    SearchConfig.from_flat(estimator=estimator, latency_estimator="expected", latency_target_ms=2.0)


def test_unknown_names_and_misplaced_options_are_refused() -> None:
    with pytest.raises(UsageError, match="estimator.accuracy 'enas' is unknown"):
        SearchConfig.from_flat(estimator="enas")
    with pytest.raises(UsageError, match="estimator.darts_order amended applies to estimator.accuracy darts only"):
        SearchConfig.from_flat(estimator="rebar", darts_order="amended")
    with pytest.raises(UsageError, match="latency.target_ms must be positive"):
        SearchConfig.from_flat(latency_target_ms=-1.0)
    with pytest.raises(UsageError, match="egs_samples"):
        SearchConfig.from_flat(estimator="egs", latency_estimator="none", egs_samples=0)


def test_config_json_holds_the_nested_form_and_the_flat_one_still_reads() -> None:
    config = SearchConfig.from_flat(estimator="gdas", latency_target_ms=2.0, steps=7, supernet_rule="fair", tau_start=2.0)
    nested = json.loads(json.dumps(config.to_dict()))
    assert nested["estimator"]["accuracy"] == "gdas" and nested["latency"]["conditions"]["backend"] == "ort"
    assert SearchConfig.from_dict(nested) == config
    flat = config.flat()  # what config.json held before the sections, and a checkpoint's identity
    assert flat["estimator"] == "gdas" and flat["latency_backend"] == "ort" and flat["supernet_rule"] == "fair"
    assert SearchConfig.from_dict(flat) == config
    assert config.latency.conditions == LatencyConditions("cpu", "ort", 1, "fp32", 1)


def test_temperature_defaults_follow_the_papers() -> None:
    assert SearchConfig.from_flat(estimator="gdas").temperatures == (10.0, 0.1)
    assert SearchConfig.from_flat(estimator="rebar").temperatures == (0.4, 0.4)
    assert SearchConfig.from_flat(estimator="gdas", tau_start=10.0, tau_end=1.0).temperatures == (10.0, 1.0)


def test_space_options_parse_json_values() -> None:
    assert parse_options(["C=8", "parameterization=edges", "widths=[1,2]", "small_input=true"]) == {
        "C": 8, "parameterization": "edges", "widths": [1, 2], "small_input": True,
    }
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_options(["C"])


def test_cli_refuses_an_unsupported_pair_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from hwnas.cli import main

    code = main(["search", "--estimator", "darts", "--latency-estimator", "relax", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use --latency-estimator expected" in err
