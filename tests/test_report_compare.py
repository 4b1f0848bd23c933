"""Search statistics at their edges (issue #31 mutation survivors): how a mean with its standard error
reads, when a difference counts as none or as infinitely many standard errors, and the ends of the
latency band and of the percentile."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwnas.report.compare import Difference, MeanSE, difference, mean_se, percentile_among, within


def test_mean_se_reads_as_mean_plus_minus_se_with_n_and_as_a_dash_when_empty() -> None:
    assert str(mean_se([0.5, 0.7])) == f"0.6000 ± {np.std([0.5, 0.7], ddof=1) / math.sqrt(2):.4f} (n=2)"
    assert str(mean_se([0.25])) == "0.2500 ± 0.0000 (n=1)"
    assert str(mean_se([])) == "-"
    empty = mean_se([])
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.se)


@pytest.mark.parametrize("values", [[0.3, 0.5, 0.9], [1.0, 2.0], [0.1] * 5 + [0.2]])
def test_mean_se_against_numpy(values: list[float]) -> None:
    result = mean_se(values)
    assert result.mean == pytest.approx(np.mean(values), rel=1e-12)
    assert result.se == pytest.approx(np.std(values, ddof=1) / math.sqrt(len(values)), rel=1e-12)


def test_z_of_a_difference_at_its_edges() -> None:
    assert Difference(0.0, 0.0).z == 0.0 and Difference(1e-13, 0.0).z == 0.0 and Difference(-1e-13, 1.0).z == 0.0
    assert Difference(0.02, 0.0).z == math.inf and Difference(-0.02, 0.0).z == -math.inf
    assert Difference(0.02, 1e-13).z == math.inf and Difference(-0.02, 1e-13).z == -math.inf
    assert Difference(0.02, 0.01).z == pytest.approx(2.0) and Difference(-0.03, 0.01).z == pytest.approx(-3.0)
    assert math.isnan(Difference(math.nan, 0.1).z)


def test_difference_reads_with_sign_se_and_z() -> None:
    diff = difference(MeanSE(0.9, 0.03, 5), MeanSE(0.85, 0.04, 5))
    assert diff.value == pytest.approx(0.05) and diff.se == pytest.approx(0.05)
    assert str(diff) == "+0.0500 ± 0.0500 (+1.0 SE)"
    assert str(difference(MeanSE(0.8, 0.0, 3), MeanSE(0.9, 0.0, 3))) == "-0.1000 ± 0.0000 (-inf SE)"


@pytest.mark.parametrize(("latency", "inside"), [(1.05, True), (0.95, True), (1.0501, False), (0.9499, False), (1.0, True)])
def test_within_is_a_closed_relative_band(latency: float, inside: bool) -> None:
    assert within(latency, 1.0, 0.05) is inside
    assert within(latency * 3.0, 3.0, 0.05) is inside


def test_percentile_of_nothing_is_no_number_and_ties_count_half() -> None:
    assert math.isnan(percentile_among(0.5, []))
    assert percentile_among(0.5, [0.5, 0.5]) == 50.0
    assert percentile_among(0.5, [0.1, 0.5, 0.9, 0.9]) == pytest.approx(37.5)


def test_the_one_picometre_thresholds_are_inclusive_where_documented() -> None:
    """A difference of exactly 1e-12 counts as none; an SE of exactly 1e-12 counts as no spread."""
    assert Difference(1e-12, 0.0).z == 0.0 and Difference(-1e-12, 0.0).z == 0.0
    assert Difference(0.02, 1e-12).z == math.inf


def test_the_band_includes_its_end_with_the_slack_counted() -> None:
    """tolerance + 1e-12 == 0.5 exactly here, and 1.5 / 1.0 - 1 == 0.5: the end itself is inside."""
    assert within(1.5, 1.0, 0.5 - 1e-12)
    assert within(0.75, 1.0, 0.25 - 1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_the_front_is_a_strict_staircase_that_covers_every_point(seed: int) -> None:
    """With ties in latency and in accuracy: each step is strictly slower and strictly more accurate than
    the one before, and at every point's latency the front reaches at least that point's accuracy."""
    from hwnas.report.compare import pareto_front  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    points = [(float(x), float(y)) for x, y in np.round(rng.uniform(0, 1, (80, 2)), 1)]
    front = pareto_front(points)
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(front, front[1:], strict=False))
    for latency, accuracy in points:
        assert max(acc for lat, acc in front if lat <= latency) >= accuracy
    assert set(front) <= set(points)
