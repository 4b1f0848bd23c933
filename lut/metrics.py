"""How well a latency predictor matches measurements: the numbers every fit is judged by.

All latencies are in milliseconds. The same function scores a model against
held-out measurements and a second measurement pass against the first (the
test-retest noise floor), so a reader can put the two side by side: no model
can agree with one pass better than the other pass does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from lut.errors import LutError


@dataclass(frozen=True)
class FitMetrics:
    """Agreement of `predicted` with `measured` over n networks.

    mape: mean absolute percentage error (%, relative to measured);
    rmse_ms: root mean squared error (ms); within_5 / within_10: share of
    networks whose prediction is within ±5% / ±10% of the measurement (0..1);
    spearman / kendall: rank correlations (what a search that compares
    architectures needs).
    """

    n: int
    mape: float
    rmse_ms: float
    within_5: float
    within_10: float
    spearman: float
    kendall: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> FitMetrics:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def _as_pair(predicted: np.ndarray | list[float], measured: np.ndarray | list[float]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype=float).ravel()
    m = np.asarray(measured, dtype=float).ravel()
    if p.shape != m.shape:
        raise LutError(f"predicted has {p.size} values but measured has {m.size}; score the same networks")
    if p.size < 2:
        raise LutError(f"need at least 2 networks to score a predictor, got {p.size}; measure more samples")
    if np.any(m <= 0) or not np.all(np.isfinite(m)) or not np.all(np.isfinite(p)):
        raise LutError("measured latencies must be finite and positive (ms); the samples file holds a bad value")
    return p, m


def relative_errors(predicted: np.ndarray | list[float], measured: np.ndarray | list[float]) -> np.ndarray:
    """(predicted - measured) / measured per network (a fraction, not %)."""
    p, m = _as_pair(predicted, measured)
    return (p - m) / m


def score(predicted: np.ndarray | list[float], measured: np.ndarray | list[float]) -> FitMetrics:
    """All metrics of `predicted` against `measured` (both ms, same order)."""
    p, m = _as_pair(predicted, measured)
    rel = np.abs(p - m) / m
    spearman = stats.spearmanr(p, m).statistic
    kendall = stats.kendalltau(p, m).statistic
    return FitMetrics(
        n=int(p.size),
        mape=float(100.0 * rel.mean()),
        rmse_ms=float(np.sqrt(np.mean((p - m) ** 2))),
        within_5=float(np.mean(rel <= 0.05)),
        within_10=float(np.mean(rel <= 0.10)),
        spearman=float(np.nan_to_num(spearman)),
        kendall=float(np.nan_to_num(kendall)),
    )


def noise_floor(first_ms: np.ndarray | list[float], second_ms: np.ndarray | list[float]) -> FitMetrics:
    """Test-retest agreement: the second pass scored as if it predicted the first.

    The same networks measured twice, at different times and in different
    blocks. A model can look better than this only by luck.
    """
    return score(second_ms, first_ms)
