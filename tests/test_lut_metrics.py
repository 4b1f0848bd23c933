"""lut.metrics against independent computations (numpy formulas, brute-force pair counting)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lut.errors import LutError
from lut.metrics import noise_floor, relative_errors, score


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(float)


def _kendall_brute(a: np.ndarray, b: np.ndarray) -> float:
    concordant = discordant = 0
    for i, j in itertools.combinations(range(a.size), 2):
        s = np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
        concordant += s > 0
        discordant += s < 0
    return (concordant - discordant) / (a.size * (a.size - 1) / 2)


def test_score_matches_independent_formulas() -> None:
    rng = np.random.default_rng(1)
    measured = rng.uniform(2.0, 10.0, size=40)
    predicted = measured * rng.normal(1.0, 0.07, size=40)
    m = score(predicted, measured)
    rel = np.abs(predicted - measured) / measured
    assert m.n == 40
    assert m.mape == pytest.approx(100 * np.mean(rel))
    assert m.rmse_ms == pytest.approx(np.sqrt(np.mean((predicted - measured) ** 2)))
    assert m.within_5 == pytest.approx(np.count_nonzero(rel <= 0.05) / 40)
    assert m.within_10 == pytest.approx(np.count_nonzero(rel <= 0.10) / 40)
    assert m.spearman == pytest.approx(np.corrcoef(_ranks(predicted), _ranks(measured))[0, 1])
    assert m.kendall == pytest.approx(_kendall_brute(predicted, measured))


def test_perfect_and_reversed_predictions() -> None:
    measured = np.array([1.0, 2.0, 3.0, 4.0])
    perfect = score(measured, measured)
    assert (perfect.mape, perfect.rmse_ms, perfect.within_5, perfect.spearman, perfect.kendall) == (0, 0, 1, 1, 1)
    reversed_ = score(measured[::-1], measured)
    assert reversed_.spearman == pytest.approx(-1.0) and reversed_.kendall == pytest.approx(-1.0)


def test_noise_floor_scores_retest_against_first_pass() -> None:
    first, second = np.array([1.0, 2.0, 4.0]), np.array([1.1, 1.9, 4.0])
    assert noise_floor(first, second) == score(second, first)
    assert relative_errors(second, first) == pytest.approx([0.1, -0.05, 0.0])


@pytest.mark.parametrize(
    ("predicted", "measured", "needle"),
    [([1.0, 2.0], [1.0], "2 values"), ([1.0], [1.0], "at least 2"), ([1.0, 2.0], [0.0, 1.0], "positive")],
)
def test_bad_inputs_are_refused(predicted: list[float], measured: list[float], needle: str) -> None:
    with pytest.raises(LutError, match=needle):
        score(predicted, measured)
