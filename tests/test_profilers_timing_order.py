"""Interleaved timing's order, seen through runners that record their calls (issue #31: timing
each model in one block instead of round-robin turns passed every test).

Expected from the contract (profilers._timing, MeasureConfig): each round gives every model
one turn of one untimed call and `runs_per_round` timed ones; the first model of round r is
model r mod count; rounds go on until every model has `max_runs` samples."""

from __future__ import annotations

import pytest

from profilers._timing import time_burst, time_rounds
from profilers.backends.base import Runner
from profilers.config import MeasureConfig


class Recording(Runner):
    """A CPU runner that does nothing but write its name into a shared log."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def __call__(self) -> None:
        self.log.append(self.name)


def _config(runs_per_round: int, max_runs: int) -> MeasureConfig:
    # Stop on the run count alone: an unreachable precision target and a budget never spent.
    return MeasureConfig(min_runs=max_runs, max_runs=max_runs, runs_per_round=runs_per_round,
                         target_rel_ci=0.0, budget_s=3600.0)


def _expected(names: list[str], runs_per_round: int, rounds: int) -> list[str]:
    calls = []
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            calls += [name] * (1 + runs_per_round)
    return calls


@pytest.mark.parametrize(("count", "runs_per_round", "rounds"), [(2, 1, 3), (3, 2, 4), (4, 3, 2)])
def test_models_take_turns_round_robin_with_a_rotating_start(count: int, runs_per_round: int, rounds: int) -> None:
    log: list[str] = []
    names = [f"m{i}" for i in range(count)]
    samples = time_rounds([Recording(n, log) for n in names], _config(runs_per_round, runs_per_round * rounds))
    assert log == _expected(names, runs_per_round, rounds)
    assert [len(s) for s in samples] == [runs_per_round * rounds] * count
    assert all(ms >= 0.0 for s in samples for ms in s)


def test_a_lone_model_runs_in_bursts_of_ten_without_rewarm() -> None:
    log: list[str] = []
    samples = time_rounds([Recording("solo", log)], _config(2, 30))
    assert log == ["solo"] * 30 and len(samples[0]) == 30


def test_a_burst_is_one_untimed_call_then_the_timed_ones() -> None:
    log: list[str] = []
    runner = Recording("x", log)
    assert len(time_burst(runner, 5)) == 5 and log == ["x"] * 6
    log.clear()
    assert len(time_burst(runner, 4, rewarm=False)) == 4 and log == ["x"] * 4
