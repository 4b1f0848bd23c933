"""The latency model forms of lut/models.py against sklearn and numpy computed here (issue #31's mutation
survivors of lut/models.py): the pairs model is ridge on the choices and the adjacent-pair products, the boosted
model adds trees fitted to the linear model's residual, the calibrated LUT sum is unpenalised least squares."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, RidgeCV

from lut.fit import design_matrix
from lut.models import ALPHAS, adjacent_pairs, fit_boosted, fit_calibrated_lut, fit_pairs, fit_ridge, pair_matrix

DECISIONS = {f"d{i}": ("a", "b", "c") for i in range(5)}
FEATURES = [(d, c) for d, choices in DECISIONS.items() for c in choices]


def _nets(rng: np.random.Generator, n: int) -> list[dict[str, str]]:
    return [{d: str(rng.choice(c)) for d, c in DECISIONS.items()} for _ in range(n)]


def _pair_columns(archs: list[dict[str, str]]) -> np.ndarray:
    """One column per (choice of d_i, choice of d_i+1), written as a loop over the networks."""
    names = list(DECISIONS)
    return np.array([[float(arch[a] == ca and arch[b] == cb) for a, b in zip(names, names[1:])
                      for ca in DECISIONS[a] for cb in DECISIONS[b]] for arch in archs])


def _interacting_latency(rng: np.random.Generator, archs: list[dict[str, str]]) -> np.ndarray:
    """1 ms + a per-choice cost + 0.9 ms whenever two adjacent decisions both chose 'c', with a little noise."""
    cost = {f: float(rng.uniform(0.1, 1.0)) for f in FEATURES}
    names = list(DECISIONS)
    return np.array([1.0 + sum(cost[(d, arch[d])] for d in names) + 0.9 * sum(arch[a] == arch[b] == "c" for a, b in zip(names, names[1:]))
                     for arch in archs]) + rng.normal(0.0, 0.01, len(archs))


def test_the_pairs_model_is_ridge_on_the_choices_and_their_adjacent_products() -> None:
    """Without a base: sklearn's RidgeCV (the same penalty grid) on [z, pair columns] of y, predicting new networks.
    With the calibrated LUT as base: the base plus that ridge on the base's residual."""
    rng = np.random.default_rng(0)
    train, new = _nets(rng, 60), _nets(rng, 20)
    y = _interacting_latency(rng, train)
    z, z_new = design_matrix(train, FEATURES), design_matrix(new, FEATURES)
    x, x_new = np.hstack([z, _pair_columns(train)]), np.hstack([z_new, _pair_columns(new)])
    pairs = adjacent_pairs(FEATURES)

    reference = RidgeCV(alphas=ALPHAS).fit(x, y)
    assert fit_pairs(z, y, None, pairs).predict(z_new) == pytest.approx(reference.predict(x_new), rel=1e-9)

    op_ms = rng.uniform(0.1, 1.0, len(FEATURES))
    base = fit_calibrated_lut(z, y, op_ms, 0.5)
    on_residual = RidgeCV(alphas=ALPHAS).fit(x, y - base.predict(z))
    assert fit_pairs(z, y, base, pairs).predict(z_new) == pytest.approx(base.predict(z_new) + on_residual.predict(x_new), rel=1e-9)


def test_a_space_of_one_decision_has_no_pair_terms() -> None:
    """sum over adjacent decisions of K_i * K_i+1 columns: none when there is one decision, and the pairs model is then
    the plain ridge model."""
    features = [("only", c) for c in "abcd"]
    rng = np.random.default_rng(1)
    z = np.eye(4)[rng.integers(0, 4, 30)]
    y = z @ np.array([1.0, 2.0, 3.0, 4.5]) + rng.normal(0.0, 0.05, 30)
    assert adjacent_pairs(features) == ()
    assert pair_matrix(z, adjacent_pairs(features)).shape == (30, 0)
    fitted = fit_pairs(z, y, None, adjacent_pairs(features))
    assert fitted.pair_coef_ms.shape == (0,)
    assert fitted.predict(z) == pytest.approx(fit_ridge(z, y).predict(z), rel=1e-12)


def test_boosting_on_the_linear_residual_fits_the_training_nets_better_than_the_linear_part() -> None:
    """Trees fitted to y - linear(z) are added to the linear model: on the training networks of a latency with
    interactions the sum is closer to y than the linear model alone (a difference would be further)."""
    rng = np.random.default_rng(2)
    train = _nets(rng, 120)
    y = _interacting_latency(rng, train)
    z = design_matrix(train, FEATURES)
    linear = fit_ridge(z, y)
    boosted = fit_boosted(z, y, linear)
    linear_error = float(np.abs(linear.predict(z) - y).mean())
    assert float(np.abs(boosted.predict(z) - y).mean()) < 0.5 * linear_error


def test_the_calibrated_lut_sum_is_unpenalised_least_squares() -> None:
    """One scale and one offset by ordinary least squares (numpy's lstsq here), so its recorded penalty is 0."""
    rng = np.random.default_rng(3)
    archs = _nets(rng, 40)
    z = design_matrix(archs, FEATURES)
    op_ms = rng.uniform(0.1, 1.0, len(FEATURES))
    y = 0.8 * (0.3 + z @ op_ms) + 0.4 + rng.normal(0.0, 0.05, 40)
    (scale, offset), *_ = np.linalg.lstsq(np.column_stack([0.3 + z @ op_ms, np.ones(40)]), y, rcond=None)
    fit = fit_calibrated_lut(z, y, op_ms, 0.3)
    assert fit.alpha == 0.0
    assert fit.coef_ms == pytest.approx(scale * op_ms, rel=1e-9)
    assert fit.bias_ms == pytest.approx(offset + scale * 0.3, rel=1e-9)
    assert LinearRegression().fit((0.3 + z @ op_ms).reshape(-1, 1), y).coef_[0] == pytest.approx(scale, rel=1e-9)


@pytest.mark.parametrize("with_lut", [False, True])
def test_exactly_the_model_forms_whose_predictions_are_affine_in_z_are_storable(with_lut: bool) -> None:
    """lut.json stores per-choice coefficients and the search needs g linear in z: a candidate is storable if and only
    if its fitted predictions on unseen networks are exactly bias + z @ coef (least squares on [1, z] leaves no
    residual); on a latency with interactions the pairs and boosted forms are not."""
    from lut.models import candidates  # noqa: PLC0415

    rng = np.random.default_rng(4)
    train, new = _nets(rng, 80), _nets(rng, 200)
    y = _interacting_latency(rng, train)
    z, z_new = design_matrix(train, FEATURES), design_matrix(new, FEATURES)
    lut = (rng.uniform(0.1, 1.0, len(FEATURES)), 0.5) if with_lut else None
    forms = candidates(FEATURES, lut)
    assert len(forms) == (5 if with_lut else 3)
    for form in forms:
        predicted = form.fit(z, y).predict(z_new)
        design = np.column_stack([np.ones(len(z_new)), z_new])
        coef, *_ = np.linalg.lstsq(design, predicted, rcond=None)
        affine = float(np.abs(design @ coef - predicted).max()) < 1e-9
        assert form.storable == affine, form.name


def test_the_boosted_reference_runs_the_settings_its_docstring_fixes() -> None:
    """fit_boosted's settings are fixed on purpose ("so validation compares model forms, not a hyperparameter search")
    and `lut fit` reports against them: 100 rounds, trees of depth at most 3, shrinkage 0.1. Read from what the
    fitted model does: the number of stages, each tree's depth, and each stage's step in sklearn's staged predictions
    divided by that stage's tree output."""
    rng = np.random.default_rng(5)
    train = _nets(rng, 120)
    y = _interacting_latency(rng, train)
    z = design_matrix(train, FEATURES)
    trees = fit_boosted(z, y, fit_ridge(z, y)).trees
    assert trees.n_estimators_ == 100
    assert max(stage[0].get_depth() for stage in trees.estimators_) == 3
    staged = np.array(list(trees.staged_predict(z)))
    steps = np.diff(staged, axis=0)  # stage m's step: shrinkage * tree_m(z)
    outputs = np.array([stage[0].predict(z) for stage in trees.estimators_[1:]])
    moved = np.abs(outputs) > 1e-9
    assert np.allclose(steps[moved] / outputs[moved], 0.1, rtol=1e-9)
