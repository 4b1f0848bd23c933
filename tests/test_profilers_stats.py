"""The statistics module against numpy, and the distribution-free interval's coverage."""

from __future__ import annotations

import numpy as np
import pytest

from profilers.stats import outlier_count, quantile, quantile_ci, relative_ci, summarize


@pytest.fixture(scope="module")
def samples() -> list[float]:
    rng = np.random.default_rng(0)
    return list(rng.lognormal(mean=0.0, sigma=0.3, size=257))


@pytest.mark.parametrize("q", [0.0, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0])
def test_quantile_matches_numpy_linear(samples: list[float], q: float) -> None:
    assert quantile(samples, q) == pytest.approx(np.quantile(samples, q), rel=1e-12)


@pytest.mark.parametrize("size", [1, 2, 5, 10, 257])
def test_summary_matches_numpy(samples: list[float], size: int) -> None:
    values = samples[:size]
    summary = summarize(values)
    assert summary.runs == size
    assert summary.median_ms == pytest.approx(np.median(values))
    assert summary.mean_ms == pytest.approx(np.mean(values))
    assert summary.p10_ms == pytest.approx(np.percentile(values, 10))
    assert summary.p90_ms == pytest.approx(np.percentile(values, 90))
    assert summary.p95_ms == pytest.approx(np.percentile(values, 95))
    assert summary.p99_ms == pytest.approx(np.percentile(values, 99))
    expected_std = np.std(values, ddof=1) if size > 1 else 0.0
    assert summary.std_ms == pytest.approx(expected_std)
    assert summary.cv == pytest.approx(expected_std / np.mean(values))


def test_quantile_ci_brackets_the_quantile_and_shrinks_with_n(samples: list[float]) -> None:
    for q in (0.1, 0.5):
        low, high = quantile_ci(samples, q)
        assert low <= quantile(samples, q) <= high
    assert relative_ci(samples[:30]) > relative_ci(samples)


def test_quantile_ci_of_few_samples_is_the_whole_range() -> None:
    assert quantile_ci([3.0, 1.0, 2.0], 0.5) == (1.0, 3.0)


@pytest.mark.parametrize("q", [0.1, 0.5])
def test_quantile_ci_covers_the_true_quantile_about_95_percent(q: float) -> None:
    rng = np.random.default_rng(1)
    true_value = float(np.exp(-0.3 * 1.2815515655446004)) if q == 0.1 else 1.0  # lognormal(0, 0.3) quantiles
    hits = 0
    trials = 400
    for _ in range(trials):
        low, high = quantile_ci(list(rng.lognormal(0.0, 0.3, size=101)), q, confidence=0.95)
        hits += low <= true_value <= high
    assert 0.92 <= hits / trials <= 0.995


def test_outliers_are_counted_robustly() -> None:
    values = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01, 50.0]
    assert outlier_count(values) == 1
    assert outlier_count([1.0] * 10) == 0


def test_empty_samples_are_refused() -> None:
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        quantile([1.0], 1.5)
