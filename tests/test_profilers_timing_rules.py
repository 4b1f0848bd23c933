"""When timing stops and what a host-timed run records, seen through runners that record their calls
(issue #31 mutation survivors). No assertion on how fast anything is: only counts, order and the
invariants every clock reading must satisfy."""

from __future__ import annotations

import math
import time

import pytest
from test_profilers_timing_order import Recording, _expected

from profilers._timing import time_host, time_rounds, warm_up
from profilers.config import MeasureConfig


def test_rounds_stop_once_every_model_has_min_runs_when_any_precision_will_do() -> None:
    log: list[str] = []
    config = MeasureConfig(min_runs=4, max_runs=100, runs_per_round=2, target_rel_ci=math.inf, budget_s=3600.0)
    samples = time_rounds([Recording("a", log), Recording("b", log)], config)
    assert log == _expected(["a", "b"], 2, 2) and [len(s) for s in samples] == [4, 4]


def test_a_spent_budget_ends_the_rounds_after_the_current_one() -> None:
    log: list[str] = []
    config = MeasureConfig(min_runs=50, max_runs=100, runs_per_round=2, target_rel_ci=0.0, budget_s=0.0)
    samples = time_rounds([Recording("a", log), Recording("b", log), Recording("c", log)], config)
    assert log == _expected(["a", "b", "c"], 2, 1) and [len(s) for s in samples] == [2, 2, 2]


def test_warm_up_runs_exactly_the_runs_asked_when_no_time_is_asked() -> None:
    log: list[str] = []
    assert warm_up(Recording("w", log), MeasureConfig(warmup_runs=7, warmup_s=0.0)) == 7
    assert log == ["w"] * 7


def test_warm_up_runs_until_the_time_asked_has_passed_too() -> None:
    log: list[str] = []
    start = time.perf_counter()
    runs = warm_up(Recording("w", log), MeasureConfig(warmup_runs=1, warmup_s=0.02))
    assert time.perf_counter() - start >= 0.02  # the loop cannot end before: not a speed claim
    assert runs == len(log) and runs > 1


def test_host_times_are_one_per_call_and_wall_includes_enqueue() -> None:
    log: list[str] = []
    start = time.perf_counter()
    times = time_host(Recording("h", log), 9)
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    assert log == ["h"] * 9 and len(times.enqueue_ms) == len(times.wall_ms) == 9
    assert all(0.0 <= e <= w for e, w in zip(times.enqueue_ms, times.wall_ms, strict=True))
    assert sum(times.wall_ms) <= elapsed_ms


class Sleeping(Recording):
    """A runner whose every call takes at least `ms` milliseconds (sleep never returns early)."""

    def __init__(self, ms: float, log: list[str]) -> None:
        super().__init__("s", log)
        self.ms = ms

    def __call__(self) -> None:
        super().__call__()
        time.sleep(self.ms / 1000.0)


def test_burst_samples_are_milliseconds_of_each_call() -> None:
    from profilers._timing import time_burst  # noqa: PLC0415

    log: list[str] = []
    start = time.perf_counter()
    samples = time_burst(Sleeping(2.0, log), 4, rewarm=False)
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    assert len(samples) == 4 and all(ms >= 2.0 for ms in samples) and sum(samples) <= elapsed_ms


class Clock:
    """A clock that moves only when a runner says so: exact arithmetic for the ms conversions."""

    def __init__(self) -> None:
        self.now = 1000.0  # seconds; far from zero, so start + end would show

    def perf_counter(self) -> float:
        return self.now


class Ticking(Recording):
    def __init__(self, clock: Clock, seconds: float, log: list[str]) -> None:
        super().__init__("t", log)
        self.clock, self.seconds = clock, seconds

    def __call__(self) -> None:
        super().__call__()
        self.clock.now += self.seconds


def test_samples_are_exactly_the_clocks_seconds_times_1000(monkeypatch) -> None:  # noqa: ANN001
    """Only the module's clock is replaced; the code under test is the real one."""
    import profilers._timing as timing  # noqa: PLC0415

    clock = Clock()
    monkeypatch.setattr(timing, "time", clock)
    log: list[str] = []
    assert timing.time_burst(Ticking(clock, 0.00125, log), 3) == [pytest.approx(1.25, abs=1e-9)] * 3
    host = timing.time_host(Ticking(clock, 0.0005, log), 2)
    assert host.enqueue_ms == [pytest.approx(0.5, abs=1e-9)] * 2 and host.wall_ms == [pytest.approx(0.5, abs=1e-9)] * 2


def test_warm_up_stops_as_soon_as_the_time_asked_has_passed(monkeypatch) -> None:  # noqa: ANN001
    """warmup_s 0.5 and calls of exactly 0.25 s (binary fractions: no rounding): two calls, not three."""
    import profilers._timing as timing  # noqa: PLC0415

    clock = Clock()
    monkeypatch.setattr(timing, "time", clock)
    log: list[str] = []
    assert timing.warm_up(Ticking(clock, 0.25, log), MeasureConfig(warmup_runs=0, warmup_s=0.5)) == 2
    assert timing.warm_up(Ticking(clock, 0.25, log), MeasureConfig(warmup_runs=3, warmup_s=0.5)) == 3


def _ticking_rounds(monkeypatch, count: int, **config) -> tuple[list[str], list[list[float]]]:  # noqa: ANN001
    import profilers._timing as timing  # noqa: PLC0415

    clock = Clock()
    monkeypatch.setattr(timing, "time", clock)
    log: list[str] = []
    runners = [Ticking(clock, 0.25, log) for _ in range(count)]
    for index, runner in enumerate(runners):
        runner.name = f"m{index}"
    return log, timing.time_rounds(runners, MeasureConfig(**config))


def test_identical_samples_meet_a_zero_precision_target_at_min_runs(monkeypatch) -> None:  # noqa: ANN001
    """Every call takes exactly 0.25 s, so the interval has zero width: <= 0 is met once min_runs are in."""
    log, samples = _ticking_rounds(monkeypatch, 2, min_runs=4, max_runs=40, runs_per_round=2, target_rel_ci=0.0,
                                   budget_s=3600.0)
    assert [len(s) for s in samples] == [4, 4] and log == _expected(["m0", "m1"], 2, 2)


def test_the_budget_is_per_model(monkeypatch) -> None:  # noqa: ANN001
    """budget_s 1.0 per model, two models: 2.0 s in all. A round is 2 x 3 calls x 0.25 s = 1.5 s, so a
    second round starts (1.5 <= 2.0) and a third does not (3.0 > 2.0)."""
    log, samples = _ticking_rounds(monkeypatch, 2, min_runs=50, max_runs=100, runs_per_round=2,
                                   target_rel_ci=0.0, budget_s=1.0)
    assert [len(s) for s in samples] == [4, 4] and log == _expected(["m0", "m1"], 2, 2)


def test_a_lone_model_times_ten_runs_per_round(monkeypatch) -> None:  # noqa: ANN001
    log, samples = _ticking_rounds(monkeypatch, 1, min_runs=1, max_runs=100, runs_per_round=2,
                                   target_rel_ci=math.inf, budget_s=3600.0)
    assert len(samples[0]) == 10 and log == ["m0"] * 10


def test_a_budget_spent_exactly_is_not_yet_exceeded(monkeypatch) -> None:  # noqa: ANN001
    """budget_s 0.75 per model, two models: 1.5 s, exactly one round; the rounds stop only past it."""
    log, samples = _ticking_rounds(monkeypatch, 2, min_runs=50, max_runs=100, runs_per_round=2,
                                   target_rel_ci=0.0, budget_s=0.75)
    assert [len(s) for s in samples] == [4, 4] and log == _expected(["m0", "m1"], 2, 2)
