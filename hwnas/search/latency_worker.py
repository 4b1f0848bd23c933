"""Time sampled architectures in a separate process while the search trains (#15).

Timing the network b_t drawn at step t (build or export it, prepare the
session, warm up, time) cost 30-40% of a search step when done in line. A
worker process does it on a core (or GPU) the training does not use, so it
overlaps with the next step; the search applies b_t's latency gradient one
step late (`hwnas.estimators.delayed` says why that stays unbiased).

- The worker is a spawned process (never forked: torch and ONNX Runtime keep
  threads and CUDA state a fork would copy half-way), started when the search
  starts so its imports overlap with the warm-up steps.
- On the CPU it is pinned to one core (`os.sched_setaffinity`) and, while the
  worker runs, the search process to the others: left to the scheduler, the
  training thread also ran on the worker's core, and eager timings there read
  up to 6x the in-line ones with a 33% test-retest (quiet 2-core machine, one
  other light process; benchmarks/search_step_cost.py). The search trains
  with one thread by default (`SearchConfig.loop.torch_threads`), so it loses no
  parallelism. Cores still share caches and memory bandwidth; the benchmark
  measures what that does to the latencies' test-retest and level.
- It measures exactly as `LatencyOracle.measure_sample` does in line (same
  space, conditions and `MeasureConfig`); the oracle keeps the memo and the log.
- Start-up (imports, then exporting every ONNX part a sample can use:
  `LatencyOracle.prepare_parts`) overlaps with the supernet's warm-up, and the
  search waits for `ready` before its first architecture step
  (`wait_ready`): in a real search (hundreds of warm-up steps) that wait is
  zero, and no architecture step pays for the worker's start-up.
- `auto` takes the worker wherever it has a device of its own: a GPU other
  than the training one, or a CPU core the training leaves free (latency
  timed with one thread). It times in line on the device that trains, under
  torchrun, and where no core is free (`can_overlap`). Eager on the CPU goes
  to the worker too: on a quiet 2-core machine (load ~1) eager timed in the
  worker beside training cost ~1.05x an untimed step against ~1.35x in line,
  and repeated better (test-retest 2.1% vs 5.9%, Spearman 0.98 vs 0.81;
  docs/benchmark-log.md "Search step cost"). An earlier rule kept eager in line
  because it was 3-7x slower beside training; that was measured at load 12,
  where every process fought for the cores.
- A spawned process re-imports the caller's main module: a script that calls
  `run_search` must do so under ``if __name__ == "__main__":`` (as for any
  multiprocessing program), or pass ``latency_timing="inline"``.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.errors import UsageError
from hwnas.search.latency import LatencyConditions, LatencyOracle, SampleTiming
from profilers import MeasureConfig
from search_spaces import get_space

RESULT_TIMEOUT_S = 300.0
"""Waiting longer than this for one result means the worker is stuck."""
POLL_S = 0.5
"""How often a wait checks that the worker is still alive."""


@dataclass(frozen=True)
class WorkerSpec:
    """What the worker needs to rebuild the oracle: the space by name and configuration,
    the latency conditions and the per-network `MeasureConfig`, the core to pin to, and the
    TensorRT engine cache the search's own oracle uses (None: not TensorRT)."""

    space: str
    space_config: dict[str, Any]
    conditions: LatencyConditions
    config: MeasureConfig
    core: int | None
    engine_dir: str | None = None


def _serve(spec: WorkerSpec, requests: Any, replies: Any) -> None:
    """The worker's loop: (key, choices) in, (key, SampleTiming, error) out; None stops it."""
    if spec.core is not None:
        os.sched_setaffinity(0, {spec.core})
    space = get_space(spec.space, **spec.space_config)
    oracle = LatencyOracle(space, spec.conditions, config=spec.config,
                           engine_dir=None if spec.engine_dir is None else Path(spec.engine_dir))
    try:
        oracle.prepare_parts()
    except Exception as error:  # noqa: BLE001 - the search learns it at its first wait
        replies.put(("ready", None, f"exporting the ONNX parts failed: {type(error).__name__}: {error}"))
    else:
        replies.put(("ready", None, None))
    while (item := requests.get()) is not None:
        key, choices = item
        try:
            replies.put((key, oracle.time_sample(space.architecture(choices)), None))
        except Exception as error:  # noqa: BLE001 - reported to the search, which raises it there
            replies.put((key, None, f"{type(error).__name__}: {error}"))


def worker_cores(conditions: Any, training_device: str) -> tuple[int, set[int]] | None:
    """(worker core, search cores) when the latency device is this machine's CPU and there are at
    least two usable cores; None when nothing needs pinning (the latency device is a GPU)."""
    if conditions.device != "cpu":
        return None
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(allowed) < 2:
        return None
    return allowed[-1], set(allowed[:-1])


def can_overlap(conditions: Any, training_device: str, distributed: bool) -> str | None:
    """None if timing can overlap with training without sharing its device, else why not."""
    if distributed:
        return "under torchrun the measuring rank times in line (one sample broadcast per step)"
    if conditions.device == training_device and conditions.device != "cpu":
        return f"latency is timed on {conditions.device}, the device that trains: timing there while training would measure both"
    if conditions.device == "cpu" and worker_cores(conditions, training_device) is None:
        return "this machine offers fewer than two CPU cores to the search: no core is free for timing"
    if conditions.device == "cpu" and training_device == "cpu" and (conditions.threads or 1) > 1:
        return "latency timed with several threads on the CPU that trains: no core would be free for it"
    return None


class LatencyWorker:
    """A process that measures architectures one after another, in the order submitted."""

    def __init__(self, space: Any, conditions: Any, config: Any, training_device: str, *, pin: bool = True,
                 engine_dir: Path | None = None) -> None:
        cores = worker_cores(conditions, training_device) if pin else None
        context = multiprocessing.get_context("spawn")
        self._requests, self._replies = context.Queue(), context.Queue()
        spec = WorkerSpec(space.name, dict(space.config), conditions, config, None if cores is None else cores[0],
                          None if engine_dir is None else str(engine_dir))
        self._process = context.Process(target=_serve, args=(spec, self._requests, self._replies), daemon=True,
                                        name="hwnas-latency-worker")
        self._process.start()
        self._ready = False
        self._results: dict[tuple[str, ...], SampleTiming] = {}
        self._submitted: set[tuple[str, ...]] = set()

    def submit(self, key: tuple[str, ...], choices: dict[str, str]) -> None:
        """Queue one architecture (no-op if it is already queued or measured)."""
        if key in self._submitted:
            return
        self._submitted.add(key)
        self._requests.put((key, dict(choices)))

    def result(self, key: tuple[str, ...]) -> SampleTiming:
        """The timing of a submitted architecture; waits for it."""
        if key not in self._submitted:
            raise KeyError(f"{key} was never submitted to the latency worker")
        self._receive_until(lambda: key in self._results)
        return self._results.pop(key)

    def wait_ready(self) -> None:
        """Wait until the worker has started and exported its parts (returns at once after that)."""
        self._receive_until(lambda: self._ready)

    def _receive_until(self, done: Callable[[], bool]) -> None:
        """Read replies until `done()`; a dead, stuck or failing worker ends the search in one line."""
        waited = 0.0
        while not done():
            try:
                got, timing, error = self._replies.get(timeout=POLL_S)
            except queue.Empty:
                waited += POLL_S
                if not self._process.is_alive():
                    raise UsageError(f"the latency worker exited with code {self._process.exitcode} before timing a "
                                     "sampled network (a script must start the search under if __name__ == '__main__'); "
                                     "rerun with --latency-timing inline") from None
                if waited >= RESULT_TIMEOUT_S:
                    raise UsageError(f"the latency worker gave no result in {RESULT_TIMEOUT_S:.0f} s; "
                                     "rerun with --latency-timing inline") from None
                continue
            waited = 0.0
            if error is not None:
                raise UsageError(f"timing a sampled network in the latency worker failed: {error}")
            if got == "ready":
                self._ready = True
            else:
                self._results[got] = timing

    def close(self) -> None:
        """Stop the worker."""
        if self._process.is_alive():
            self._requests.put(None)
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout=5)
        for channel in (self._requests, self._replies):
            channel.close()
            channel.join_thread()


def resolve_timing(requested: str, conditions: Any, training_device: str, distributed: bool) -> tuple[str, str]:
    """("worker" or "inline", why) for `SearchConfig.latency.timing`: auto is the worker wherever
    `can_overlap` allows it, for every backend; a forced worker that would share the training
    device is refused in one line."""
    reason = can_overlap(conditions, training_device, distributed)
    if requested == "inline":
        return "inline", "timed in line (--latency-timing inline)"
    if requested == "worker" and reason is not None:
        raise UsageError(f"--latency-timing worker: {reason}; use --latency-timing inline or auto")
    if reason is None:
        return "worker", "timed in a worker process overlapping the next step; latency gradients apply one step late"
    return "inline", f"timed in line: {reason}"


@contextmanager
def attached_worker(oracle: Any, enabled: bool, space: Any, training_device: str) -> Iterator[LatencyWorker | None]:
    """A worker attached to `oracle` for the duration of the search loop (closed on any exit)."""
    if not enabled or oracle is None:
        yield None
        return
    target = getattr(oracle, "oracle", None) or oracle  # under DDP the measuring rank's own oracle
    engines = getattr(target, "engines", None)
    worker = LatencyWorker(space, target.conditions, target.config, training_device,
                           engine_dir=None if engines is None else engines.directory)
    target.worker = worker
    cores = worker_cores(target.conditions, training_device)
    previous = os.sched_getaffinity(0) if cores is not None else None
    if cores is not None:
        os.sched_setaffinity(0, cores[1])  # keep the training off the worker's core
    try:
        yield worker
    finally:
        if previous is not None:
            os.sched_setaffinity(0, previous)
        target.worker = None
        worker.close()
