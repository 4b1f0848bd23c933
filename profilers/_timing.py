"""Warm-up and interleaved, adaptive timing of prepared runners (samples in ms).

Why interleaved: on a shared machine slow drift (other jobs, frequency
scaling, thermal state) moves latency by several percent over tens of
seconds, much more than per-run jitter. Timing models one after another
gives each model its own slice of that drift; timing them round-robin, a few
runs each per round, spreads the drift evenly over all of them, which is what
a comparison of models (a LUT, a search) needs.

Why adaptive: a fixed run count is too many for a quiet GPU and too few for a
noisy CPU. Rounds continue until every model's reported statistic has a 95%
confidence interval narrower than the bound, or the budget is spent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from profilers.backends.base import Runner, wait_for_current_stream
from profilers.config import MeasureConfig
from profilers.stats import relative_ci


def _sync(runner: Runner) -> None:
    if runner.stream is not None:
        runner.stream.synchronize()


@contextlib.contextmanager
def _on_stream(runner: Runner) -> Iterator[None]:
    """Make the runner's device and stream current, so eager kernels go where the events are
    (a runner on cuda:1 must not launch on the caller's current device)."""
    if runner.stream is None:
        yield
    else:
        with torch.cuda.device(runner.stream.device), torch.cuda.stream(runner.stream):
            yield


def time_burst(runner: Runner, runs: int, rewarm: bool = True) -> list[float]:
    """Time `runs` consecutive calls (ms each), after one untimed call when `rewarm`
    (another model ran just before: its switch-in cost is not this model's latency).

    CPU: `time.perf_counter` around each call (timing mode "host_wall").
    CUDA: a pair of CUDA events per call recorded on the runner's stream and
    one synchronize at the end, so the host never waits between runs and only
    GPU time between events counts (timing mode "gpu_events", trtexec's "GPU
    Compute Time"). Every backend's call only enqueues (ONNX Runtime runs with
    its end-of-run stream synchronisation disabled), so all three time the same thing.
    """
    if runner.stream is None:
        if rewarm:
            runner()
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            runner()
            samples.append((time.perf_counter() - start) * 1000.0)
        return samples
    stream = runner.stream
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(runs)]
    with _on_stream(runner):
        if rewarm:
            runner()
        # torch creates the CUDA event itself at its first record: do that here, outside the timed loop.
        for start_event, end_event in events:
            start_event.record(stream)
            end_event.record(stream)
        for start_event, end_event in events:
            start_event.record(stream)
            runner()
            end_event.record(stream)
    stream.synchronize()
    return [start_event.elapsed_time(end_event) for start_event, end_event in events]


@dataclass(frozen=True)
class HostTimes:
    """Per synchronised run (ms): how long the call took to return (enqueue) and until the
    work was done (end-to-end host wall time)."""

    enqueue_ms: list[float]
    wall_ms: list[float]


def time_host(runner: Runner, runs: int) -> HostTimes:
    """`runs` calls, each waited for before the next, so the launch queue starts empty every
    time: the enqueue time is the pure launch cost (not back-pressure from a full queue),
    and the wall time is what a caller of one inference waits."""
    enqueue, wall = [], []
    with _on_stream(runner):
        for _ in range(runs):
            start = time.perf_counter()
            runner()
            enqueued = time.perf_counter()
            _sync(runner)
            done = time.perf_counter()
            enqueue.append((enqueued - start) * 1000.0)
            wall.append((done - start) * 1000.0)
    return HostTimes(enqueue, wall)


def warm_up(runner: Runner, config: MeasureConfig) -> int:
    """Untimed runs until both `warmup_runs` and `warmup_s` are reached; returns the count."""
    runs = 0
    start = time.perf_counter()
    wait_for_current_stream(runner.stream)
    with _on_stream(runner):
        while runs < config.warmup_runs or time.perf_counter() - start < config.warmup_s:
            runner()
            _sync(runner)
            runs += 1
    return runs


def _finished(samples: list[float], config: MeasureConfig) -> bool:
    if len(samples) >= config.max_runs:
        return True
    return len(samples) >= config.min_runs and relative_ci(samples, config.quantile) <= config.target_rel_ci


def time_rounds(runners: Sequence[Runner], config: MeasureConfig) -> list[list[float]]:
    """Round-robin timing of all runners until each is precise enough or the budget is spent.

    The starting model rotates each round so no model always runs right
    after the same neighbour. Every model stays in the rotation until all are
    done (or it reaches `max_runs`), so all see the same machine state.
    Budget: `config.budget_s` per model.
    """
    samples: list[list[float]] = [[] for _ in runners]
    budget = config.budget_s * len(runners)
    start = time.perf_counter()
    round_index = 0
    count = len(runners)
    # A lone model has no neighbour to share drift with: time it in longer bursts.
    burst = config.runs_per_round if count > 1 else max(config.runs_per_round, 10)
    while True:
        for offset in range(count):
            index = (round_index + offset) % count
            if len(samples[index]) < config.max_runs:
                samples[index].extend(time_burst(runners[index], burst, rewarm=count > 1))
        round_index += 1
        if all(_finished(s, config) for s in samples) or time.perf_counter() - start > budget:
            return samples
