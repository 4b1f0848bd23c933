"""Summary statistics of latency samples (ms), in plain Python.

Kept free of numpy on purpose: the tests check every number here against
numpy's own implementation, which would be a tautology if we called it.
The confidence interval of a quantile is distribution-free (order
statistics), because latency samples are skewed and carry outliers, so a
normal-theory interval of the mean would be too narrow exactly when it
matters.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Location and spread of one set of samples; every value in ms except `cv`."""

    median_ms: float
    mean_ms: float
    p10_ms: float
    p90_ms: float
    std_ms: float
    cv: float
    runs: int
    p95_ms: float
    p99_ms: float


def quantile(samples: Sequence[float], q: float) -> float:
    """The q-quantile with linear interpolation between order statistics
    (numpy's default `method="linear"`)."""
    if not samples:
        raise ValueError("quantile of no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile level {q} is outside [0, 1]")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def summarize(samples: Sequence[float]) -> Summary:
    """Median, mean, p10, p90, p95, p99 (trtexec reports the last three beside the median),
    sample standard deviation (ddof=1) and cv = std / mean."""
    if not samples:
        raise ValueError("summary of no samples")
    values = [float(s) for s in samples]
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Summary(
        median_ms=statistics.median(values),
        mean_ms=mean,
        p10_ms=quantile(values, 0.10),
        p90_ms=quantile(values, 0.90),
        std_ms=std,
        cv=std / mean if mean > 0 else float("inf"),
        runs=len(values),
        p95_ms=quantile(values, 0.95),
        p99_ms=quantile(values, 0.99),
    )


def quantile_ci(samples: Sequence[float], q: float, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the q-quantile.

    The number of samples below the true quantile is Binomial(n, q); the
    interval runs between the order statistics at n*q -/+ z*sqrt(n*q*(1-q))
    (normal approximation of the binomial, rounded outwards). With few
    samples it is the whole range, which is the honest answer.
    """
    if not samples:
        raise ValueError("confidence interval of no samples")
    ordered = sorted(samples)
    n = len(ordered)
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)
    spread = z * math.sqrt(n * q * (1.0 - q))
    low_rank = max(1, math.floor(n * q - spread))
    high_rank = min(n, math.ceil(n * q + spread) + 1)
    return ordered[low_rank - 1], ordered[high_rank - 1]


def relative_ci(samples: Sequence[float], q: float = 0.5, confidence: float = 0.95) -> float:
    """Half-width of the quantile's confidence interval over the quantile itself
    (0.01 = the reported value is known to +-1%)."""
    low, high = quantile_ci(samples, q, confidence)
    centre = quantile(samples, q)
    return (high - low) / (2.0 * centre) if centre > 0 else float("inf")


def outlier_count(samples: Sequence[float], threshold: float = 5.0) -> int:
    """Samples further than `threshold` robust standard deviations (1.4826 x MAD)
    from the median: descheduled runs, page faults, a neighbour's burst."""
    if len(samples) < 3:
        return 0
    centre = statistics.median(samples)
    mad = statistics.median([abs(s - centre) for s in samples]) * 1.4826
    if mad == 0:
        return 0
    return sum(1 for s in samples if abs(s - centre) > threshold * mad)
