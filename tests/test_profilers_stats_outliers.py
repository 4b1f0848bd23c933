"""Outlier counts against numpy's median and MAD, at the edges the definition draws: strictly beyond
`threshold` robust standard deviations (1.4826 x MAD), fewer than three samples, a zero MAD."""

from __future__ import annotations

import numpy as np
import pytest

from profilers.stats import outlier_count, summarize

SIGMA = 1.4826  # robust standard deviations per MAD under normality


def _reference(samples: list[float], threshold: float) -> int:
    x = np.asarray(samples)
    centre = np.median(x)
    mad = SIGMA * np.median(np.abs(x - centre))
    return 0 if len(x) < 3 or mad == 0 else int(np.sum(np.abs(x - centre) > threshold * mad))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [2.0, 3.5, 5.0])
def test_outlier_count_matches_numpy(seed: int, threshold: float) -> None:
    rng = np.random.default_rng(seed)
    samples = list(rng.normal(20.0 + seed, 1.0, size=60)) + list(rng.uniform(23.0 + seed, 40.0 + seed, size=5))
    assert outlier_count(samples, threshold) == _reference(samples, threshold) > 0


def test_a_sample_exactly_at_the_threshold_is_not_an_outlier() -> None:
    # median 0, MAD 1: the last sample sits exactly at 5 robust standard deviations.
    samples = [-1.0, 0.0, 0.0, 1.0, 5.0 * SIGMA]
    assert outlier_count(samples) == 0
    assert outlier_count([*samples[:-1], 5.0 * SIGMA * 1.0001]) == 1


def test_the_default_threshold_is_five_robust_standard_deviations() -> None:
    samples = [-1.0, 0.0, 0.0, 1.0, 5.5 * SIGMA]
    assert outlier_count(samples) == outlier_count(samples, 5.0) == 1
    assert outlier_count(samples, 6.0) == 0


def test_three_samples_are_enough_two_are_not() -> None:
    assert outlier_count([0.0, 1.0, 100.0]) == 1
    assert outlier_count([1.0, 100.0]) == 0


def test_a_zero_mad_counts_no_outliers() -> None:
    assert outlier_count([5.0, 5.0, 5.0, 5.0, 9.0]) == 0


def test_cv_of_a_zero_mean_is_infinite() -> None:
    assert summarize([-1.0, 1.0]).cv == float("inf")
    assert summarize([0.0, 0.0]).cv == float("inf")
