"""The latency fit at its edges (issue #31 mutation survivors): feature names whose choice holds '=',
the fewest training nets a fit accepts, and a penalty grid fine and wide enough that the chosen ridge
fit is the one a much finer, wider grid would choose."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from test_lut_fit import FEATURES, _records, _table, _truth

from lut.errors import LutError
from lut.fit import MIN_TRAIN, design_matrix, features_from_names, fit_and_evaluate, fit_ridge, is_test


def test_a_choice_may_contain_an_equals_sign() -> None:
    assert features_from_names(["op=k=3", "depth=2"]) == [("op", "k=3"), ("depth", "2")]


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_the_penalty_grid_finds_the_fit_a_far_finer_grid_finds(noise: float) -> None:
    records = _records(60, _truth(np.random.default_rng(1)), noise=noise, drift=0.0, seed=2)
    z = design_matrix([r.choices for r in records], FEATURES)
    y = np.array([r.latency_ms for r in records])
    reference = RidgeCV(alphas=np.logspace(-6, 8, 200)).fit(z, y).predict(z)
    assert np.max(np.abs(fit_ridge(z, y).predict(z) - reference) / reference) < 0.005


def _with_split(n_train: int, n_test: int, fraction: float) -> list:
    """First-pass records whose stable split holds exactly n_train training and n_test held-out nets."""
    pool = _records(400, _truth(np.random.default_rng(4)), noise=0.01, drift=0.0, seed=6)
    train = [r for r in pool if not is_test(r.index, fraction)][:n_train]
    test = [r for r in pool if is_test(r.index, fraction)][:n_test]
    return train + test


def test_the_fewest_training_nets_a_fit_accepts() -> None:
    table = _table(_truth(np.random.default_rng(4)), 1.0)
    report = fit_and_evaluate(_with_split(MIN_TRAIN, 3, 0.25), FEATURES, table, test_fraction=0.25)
    assert report.n_train == MIN_TRAIN == 10 and report.n_test == 3
    with pytest.raises(LutError, match="9 for training and 3 held out is too few"):
        fit_and_evaluate(_with_split(MIN_TRAIN - 1, 3, 0.25), FEATURES, table, test_fraction=0.25)
    with pytest.raises(LutError, match="10 for training and 1 held out is too few"):
        fit_and_evaluate(_with_split(MIN_TRAIN, 1, 0.25), FEATURES, table, test_fraction=0.25)
