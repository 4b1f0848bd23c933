"""Judging a found network against random ones at equal measured latency.

The protocol: docs/design.md#82-search-against-random-at-equal-measured-latency.

One home for the statistics the search-vs-random benchmark and the default
run's final lines share: which random networks count as "at the same
latency" (measured within a relative tolerance), the mean with its standard
error, where a network falls among the random ones (percentile), and the
random networks' Pareto front (the most accurate network at or below each
latency). Accuracies are fractions in [0, 1]; latencies in ms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class MeanSE:
    """Mean of `n` values and its standard error (sample std / sqrt(n); 0 for n < 2)."""

    mean: float
    se: float
    n: int

    def __str__(self) -> str:
        return "-" if self.n == 0 else f"{self.mean:.4f} ± {self.se:.4f} (n={self.n})"


def mean_se(values: Sequence[float]) -> MeanSE:
    n = len(values)
    if n == 0:
        return MeanSE(math.nan, math.nan, 0)
    mean = sum(values) / n
    if n < 2:
        return MeanSE(mean, 0.0, 1)
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return MeanSE(mean, math.sqrt(variance / n), n)


@dataclass(frozen=True)
class Difference:
    """`a.mean - b.mean` with the standard error of the difference of two independent means."""

    value: float
    se: float

    @property
    def z(self) -> float:
        """How many standard errors the difference is (inf when both groups have no spread; a difference
        or SE below 1e-12, rounding of equal values, counts as none; nan when a group is empty)."""
        if math.isnan(self.value):
            return math.nan
        if abs(self.value) <= 1e-12:
            return 0.0
        if self.se > 1e-12:
            return self.value / self.se
        return math.copysign(math.inf, self.value)

    def __str__(self) -> str:
        return "-" if math.isnan(self.value) else f"{self.value:+.4f} ± {self.se:.4f} ({self.z:+.1f} SE)"


def difference(a: MeanSE, b: MeanSE) -> Difference:
    return Difference(a.mean - b.mean, math.sqrt(a.se**2 + b.se**2))


def within(latency_ms: float, reference_ms: float, tolerance: float) -> bool:
    """Whether `latency_ms` lies within +-`tolerance` (relative) of `reference_ms`, ends included
    (1e-12 of slack so that 1.05 counts as within 5% of 1.0 in floating point)."""
    return abs(latency_ms / reference_ms - 1.0) <= tolerance + 1e-12


def percentile_among(value: float, others: Sequence[float]) -> float:
    """Percent of `others` below `value`, ties counted half (50 when equal to all; nan without others)."""
    if not others:
        return math.nan
    below = sum(1 for o in others if o < value)
    ties = sum(1 for o in others if o == value)
    return 100.0 * (below + 0.5 * ties) / len(others)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """(latency, accuracy) points no other point beats on both (faster or equal and more accurate),
    sorted by latency: the best accuracy reachable at or below each latency."""
    front: list[tuple[float, float]] = []
    for latency, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or accuracy > front[-1][1]:
            front.append((latency, accuracy))
    return front
