"""The relative confidence interval against its definition (issue #31: dropping its factor of 2,
an interval twice too wide, passed every test): the half-width of the quantile's interval over
the quantile, with the quantile from numpy."""

from __future__ import annotations

import numpy as np
import pytest

from profilers.stats import quantile_ci, relative_ci


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_relative_ci_is_the_half_width_over_the_quantile(seed: int, q: float) -> None:
    samples = list(np.random.default_rng(seed).lognormal(0.0, 0.3, size=200) + 1.0)
    low, high = quantile_ci(samples, q)
    assert low < high
    assert relative_ci(samples, q) == pytest.approx((high - low) / 2.0 / float(np.quantile(samples, q)), rel=1e-12)


def test_the_interval_is_the_quantile_plus_minus_its_relative_width() -> None:
    """0.01 means +-1%: for a symmetric interval around the quantile, quantile * (1 +- r) are its ends."""
    samples = [float(v) for v in range(1, 102)]  # median 51; order statistics are their ranks
    low, high = quantile_ci(samples, 0.5)
    assert (low + high) / 2 == 51.0
    r = relative_ci(samples, 0.5)
    assert 51.0 * (1 - r) == pytest.approx(low) and 51.0 * (1 + r) == pytest.approx(high)


def test_relative_ci_is_scale_free_and_infinite_at_a_zero_quantile() -> None:
    samples = list(np.random.default_rng(9).normal(10.0, 1.0, size=100))
    assert relative_ci([3.0 * s for s in samples]) == pytest.approx(relative_ci(samples), rel=1e-12)
    assert relative_ci([0.0, 0.0, 0.0, 1.0]) == float("inf")
    assert relative_ci([2.0] * 50) == 0.0
