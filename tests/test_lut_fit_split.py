"""No test-split leakage in the latency-model fit (issue #31): the held-out nets' latencies may
be anything, the fitted model stays the same; only the held-out scores move."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_lut_fit import FEATURES, _records, _table, _truth

from lut.fit import fit_and_evaluate, is_test

FRACTION = 0.25


def _scrambled(records, which):  # noqa: ANN001, ANN202 - SampleRecord lists
    rng = np.random.default_rng(11)
    return [dataclasses.replace(r, latency_ms=float(rng.uniform(0.1, 50.0))) if which(r.index) else r for r in records]


def _fitted(records):  # noqa: ANN001, ANN202
    report = fit_and_evaluate(records, FEATURES, _table(_truth(np.random.default_rng(5)), 0.8), test_fraction=FRACTION)
    model = report.model
    return report, (model.bias_ms, dict(model.coefficients), report.chosen,
                    {name: m.mape for name, m in report.validation.items()}, report.n_train)


def test_scrambling_held_out_targets_leaves_the_fit_unchanged() -> None:
    truth = _truth(np.random.default_rng(5))
    records = _records(80, truth, noise=0.02, drift=0.0, seed=3)
    held_out = [r.index for r in records if is_test(r.index, FRACTION)]
    assert 10 <= len(held_out) <= 30
    report, fit = _fitted(records)
    scrambled_report, scrambled_fit = _fitted(_scrambled(records, lambda index: is_test(index, FRACTION)))
    assert scrambled_fit[0] == pytest.approx(fit[0], abs=1e-12)
    assert scrambled_fit[1] == pytest.approx(fit[1], abs=1e-12)
    assert scrambled_fit[2:] == fit[2:]
    assert report.n_test == scrambled_report.n_test == len(held_out)
    # The held-out rows are the ones scored: their scramble ruins the test error.
    chosen = report.chosen
    assert scrambled_report.metrics[chosen].rmse_ms > 10 * report.metrics[chosen].rmse_ms


def test_scrambling_training_targets_changes_the_fit() -> None:
    """The same check can see a change: the training rows do move the model."""
    records = _records(80, _truth(np.random.default_rng(5)), noise=0.02, drift=0.0, seed=3)
    _, fit = _fitted(records)
    _, scrambled_fit = _fitted(_scrambled(records, lambda index: not is_test(index, FRACTION)))
    assert abs(scrambled_fit[0] - fit[0]) > 1e-3 or scrambled_fit[1] != pytest.approx(fit[1], abs=1e-3)


def _perfect_raw_retests(records, which):  # noqa: ANN001, ANN202 - SampleRecord lists
    """The second pass of the nets `which` selects reads exactly its first pass's raw milliseconds (its block's
    reference, hence its block reading, unchanged): on those nets alone `raw` has a noise floor of zero."""
    first = {r.index: r.latency_ms for r in records if r.repeat == 0}
    return [dataclasses.replace(r, latency_ms=first[r.index]) if r.repeat == 1 and which(r.index) else r
            for r in records]


def test_the_latency_reading_is_chosen_by_the_training_nets_retests_only() -> None:
    """Every net measured twice under strong drift between blocks: the drift-corrected `block` reading has the
    lowest retest noise. Making the held-out nets' retests agree perfectly in `raw` must not move the choice
    (only the training split chooses); doing the same to the training nets must (the check can see a change)."""
    records = _records(80, _truth(np.random.default_rng(5)), noise=0.01, drift=0.3, seed=3, retest=80)
    held_out = sum(is_test(r.index, FRACTION) for r in records if r.repeat == 1)
    assert held_out >= 5  # enough retest pairs for a held-out-only choice to count (lut.targets.MIN_PAIRS)
    report, _ = _fitted(records)
    assert report.target == "block"
    leaked, _ = _fitted(_perfect_raw_retests(records, lambda index: is_test(index, FRACTION)))
    assert leaked.target == "block"
    trained, _ = _fitted(_perfect_raw_retests(records, lambda index: not is_test(index, FRACTION)))
    assert trained.target == "raw"
