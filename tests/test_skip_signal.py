"""benchmarks/skip_signal.py's trained side: the least-squares effects of skipping each block equal
scikit-learn's fit, and an exact linear truth is recovered with zero standard error."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from benchmark_scripts import load_benchmark

DECISIONS = ["a", "b", "c"]


def _networks(rng: np.random.Generator, noise: float) -> list[dict]:
    networks = []
    for _ in range(40):
        skipped = rng.random(3) < 0.3
        ms = 0.05 + 0.01 * rng.random()
        accuracy = 0.6 + 2.0 * ms + skipped @ np.array([0.01, -0.02, 0.03]) + noise * rng.standard_normal()
        networks.append({"measured_ms": ms, "accuracy": accuracy,
                         "arch": {"choices": {d: ("zero" if s else "k3_e3") for d, s in zip(DECISIONS, skipped)}}})
    return networks


def test_exact_truth_is_recovered() -> None:
    effects, (slope, slope_se) = load_benchmark("skip_signal").trained_effects(_networks(np.random.default_rng(0), 0.0), DECISIONS)
    assert slope == pytest.approx(2.0 / 1000) and slope_se == pytest.approx(0.0, abs=1e-9)
    for decision, truth in zip(DECISIONS, [0.01, -0.02, 0.03]):
        assert effects[decision][0] == pytest.approx(truth) and effects[decision][1] == pytest.approx(0.0, abs=1e-9)


def test_noisy_fit_equals_scikit_learn() -> None:
    networks = _networks(np.random.default_rng(1), 0.01)
    effects, (slope, _) = load_benchmark("skip_signal").trained_effects(networks, DECISIONS)
    features = np.array([[n["measured_ms"] * 1000] + [n["arch"]["choices"][d] == "zero" for d in DECISIONS] for n in networks], dtype=float)
    reference = LinearRegression().fit(features, [n["accuracy"] for n in networks])
    assert slope == pytest.approx(reference.coef_[0])
    assert [effects[d][0] for d in DECISIONS] == pytest.approx(list(reference.coef_[1:]))
