"""Where a search step's time goes: seconds per phase, written into each metrics.jsonl line.

#15 asks for the breakdown of a step (data, weight step, accuracy-term
evaluations, their backward, latency timing, optimizer, logging) so that the
cost of measured latency and of each estimator is visible in every run, not
only in a profiler. Phases do not nest; time outside every phase is the
remainder of the step's wall time. On CUDA the clock synchronises the device
at each phase boundary (otherwise asynchronous kernels would be charged to
whichever phase next waits for them); that costs a few idle microseconds per
phase, against steps of tens of milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch


class PhaseClock:
    """Accumulates wall seconds per named phase until `take` hands them over."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        self._synchronize: Callable[[], None] = (
            (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
        )
        self._seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        self._synchronize()
        started = time.perf_counter()
        try:
            yield
        finally:
            self._synchronize()
            self._seconds[phase] = self._seconds.get(phase, 0.0) + time.perf_counter() - started

    def add(self, phase: str, seconds: float) -> None:
        """Charge `seconds` measured elsewhere to `phase`."""
        self._seconds[phase] = self._seconds.get(phase, 0.0) + seconds

    def take(self) -> dict[str, float]:
        """Seconds per phase since the last `take` (and start afresh)."""
        out, self._seconds = self._seconds, {}
        return out
