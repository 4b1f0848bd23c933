"""The latency fit at its edges (issue #31 mutation survivors): feature names whose choice holds '=',
the fewest training nets a fit accepts, and a penalty grid fine and wide enough that the chosen ridge
fit is the one a much finer, wider grid would choose."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from test_lut_fit import FEATURES, _records, _table, _truth

from lut.errors import LutError
from lut.fit import (
    MIN_TRAIN,
    LearningPoint,
    check_records_match,
    design_matrix,
    features_from_names,
    fit_and_evaluate,
    is_test,
    networks_needed,
)
from lut.models import Candidate, fit_ridge


RIDGE = Candidate("linear (ridge)", True, fit_ridge)


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
    report = fit_and_evaluate(_with_split(MIN_TRAIN, 2, 0.25), FEATURES, table, test_fraction=0.25)
    assert report.n_train == MIN_TRAIN == 10 and report.n_test == 2
    with pytest.raises(LutError, match="9 for training and 2 held out is too few"):
        fit_and_evaluate(_with_split(MIN_TRAIN - 1, 2, 0.25), FEATURES, table, test_fraction=0.25)
    with pytest.raises(LutError, match="10 for training and 1 held out is too few"):
        fit_and_evaluate(_with_split(MIN_TRAIN, 1, 0.25), FEATURES, table, test_fraction=0.25)


def test_ridge_to_lut_learns_the_part_the_scaled_lut_misses() -> None:
    """y = 1.5 x LUT sum + 0.2 + a per-op correction the LUT does not know: the fit beats the scaled LUT
    by far, and its coefficients move from 1.5 x LUT toward 1.5 x LUT + correction."""
    from lut.models import fit_ridge_to_lut  # noqa: PLC0415
    from lut.models import line as _line  # noqa: PLC0415

    rng = np.random.default_rng(8)
    op_ms = np.array([_truth(np.random.default_rng(8))[f] for f in FEATURES])
    correction = rng.uniform(0.3, 0.6, len(FEATURES)) * rng.choice([-1.0, 1.0], len(FEATURES))
    z = design_matrix([{d: str(rng.choice(c)) for d, c in {f[0]: ("a", "b", "c") for f in FEATURES}.items()}
                       for _ in range(120)], FEATURES)
    lut_sum = 0.5 + z @ op_ms
    y = 1.5 * lut_sum + 0.2 + z @ correction
    fit = fit_ridge_to_lut(z, y, op_ms, 0.5)
    scale, offset = _line(lut_sum, y)
    scaled_lut_rmse = np.sqrt(np.mean((scale * lut_sum + offset - y) ** 2))
    assert np.sqrt(np.mean((fit.predict(z) - y) ** 2)) < 0.1 * scaled_lut_rmse
    target = 1.5 * op_ms + correction
    assert np.mean(np.abs(fit.coef_ms - target)) < np.mean(np.abs(scale * op_ms - target))


def test_an_op_the_lut_lacks_counts_zero_milliseconds() -> None:
    from lut.fit import op_vector  # noqa: PLC0415

    truth = _truth(np.random.default_rng(5))
    table = _table({f: v for f, v in truth.items() if f != FEATURES[0]}, 1.0)
    ops, fixed = op_vector(table, FEATURES)
    assert ops[0] == 0.0 and ops[1:] == pytest.approx([truth[f] for f in FEATURES[1:]]) and fixed == 0.5


@pytest.mark.parametrize("n", [60, 4])
def test_validation_predictions_are_sklearns_out_of_fold_predictions(n: int) -> None:
    """Reference: cross_val_predict over the same folds (shuffled K-fold, seed 0, K = min(5, n))."""
    from sklearn.model_selection import KFold, cross_val_predict  # noqa: PLC0415

    from lut.fit import out_of_fold  # noqa: PLC0415
    from lut.models import ALPHAS  # noqa: PLC0415

    records = _records(n, _truth(np.random.default_rng(2)), noise=0.05, drift=0.0, seed=4)
    z = design_matrix([r.choices for r in records], FEATURES)
    y = np.array([r.latency_ms for r in records])
    folds = KFold(n_splits=min(5, n), shuffle=True, random_state=0)
    predicted = cross_val_predict(RidgeCV(alphas=ALPHAS), z, y, cv=folds)
    assert out_of_fold(fit_ridge, z, y) == pytest.approx(predicted, rel=1e-9)


def test_the_learning_curve_doubles_from_ten_and_ends_at_the_whole_training_split() -> None:
    from lut.fit import learning_curve, make_dataset  # noqa: PLC0415

    records = _records(5230, _truth(np.random.default_rng(5)), noise=0.02, drift=0.0, seed=3)
    data = make_dataset(records, FEATURES, None)
    train, test = data.subset(np.arange(len(data)) < 5200), data.subset(np.arange(len(data)) >= 5200)
    points = learning_curve([RIDGE], train, test, repeats=1)
    assert [p.n_train for p in points] == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 5200]
    assert {p.kind for p in points} == {RIDGE.name}
    assert points[-1].mape < points[0].mape


def test_points_below_the_whole_split_average_their_repeats_and_the_whole_split_is_one_fit() -> None:
    from lut.fit import learning_curve, make_dataset  # noqa: PLC0415

    records = _records(130, _truth(np.random.default_rng(5)), noise=0.05, drift=0.0, seed=3)
    data = make_dataset(records, FEATURES, None)
    train, test = data.subset(np.arange(len(data)) < 100), data.subset(np.arange(len(data)) >= 100)
    once = learning_curve([RIDGE], train, test, repeats=1)
    averaged = learning_curve([RIDGE], train, test, repeats=5)
    # n = 100: the whole training split (in another row order), whatever the repeats
    assert once[-1].n_train == averaged[-1].n_train == 100
    assert once[-1].mape == pytest.approx(averaged[-1].mape, rel=1e-9)
    assert all(a.mape != b.mape for a, b in zip(once[:-1], averaged[:-1], strict=True))


def test_defaults_hold_out_a_fifth_and_every_learning_point_is_a_number() -> None:
    records = _records(200, _truth(np.random.default_rng(5)), noise=0.02, drift=0.0, seed=3)
    report = fit_and_evaluate(records, FEATURES, _table(_truth(np.random.default_rng(5)), 1.0))
    assert report.model.metrics["test_fraction"] == 0.2 and 0.12 <= report.n_test / 200 <= 0.28
    assert report.n_test == sum(is_test(i, 0.2) for i in range(200))
    assert all(np.isfinite(p.mape) and np.isfinite(p.spearman) for p in report.learning)


def test_samples_of_another_space_configuration_are_refused_by_name() -> None:
    import dataclasses  # noqa: PLC0415

    from lut.fit import check_records_match  # noqa: PLC0415

    truth = _truth(np.random.default_rng(5))
    table = dataclasses.replace(_table(truth, 1.0), space_config={"C": 8, "layers": 3})
    record = _records(1, truth, noise=0.0, drift=0.0)[0]

    def arch(**changes):  # noqa: ANN003, ANN202
        return dataclasses.replace(record, arch={"space": "toy", "space_version": 1, "config": {"C": 8, "layers": 3},
                                                  "choices": record.choices, **changes})

    check_records_match(table, [arch()], "s.jsonl")
    with pytest.raises(LutError, match="config C 16 .*the LUT with 8"):
        check_records_match(table, [arch(config={"C": 16, "layers": 3})], "s.jsonl")
    with pytest.raises(LutError, match="config width 2 .*the LUT with None"):
        check_records_match(table, [arch(config={"C": 8, "layers": 3, "width": 2})], "s.jsonl")
    with pytest.raises(LutError, match="space_version 2 .*the LUT with 1"):
        check_records_match(table, [arch(space_version=2)], "s.jsonl")


def _firsts(records):  # noqa: ANN001, ANN202 - SampleRecord lists
    return sorted((r for r in records if r.repeat == 0), key=lambda r: r.index)


def test_one_variable_baselines_and_the_spread_against_numpy() -> None:
    """The MACs and params baselines are least-squares lines fitted on the training nets (numpy's polyfit here),
    evaluated on the held-out nets; the spread is the coefficient of variation of all first-pass latencies."""
    truth = _truth(np.random.default_rng(7))
    records = _records(60, truth, noise=0.05, drift=0.0, seed=4)  # no drift: every reading is the raw ms
    report = fit_and_evaluate(records, FEATURES, _table(truth, 0.8), test_fraction=0.25)
    firsts = _firsts(records)
    y = np.array([r.latency_ms for r in firsts])
    held_out = np.array([is_test(r.index, 0.25) for r in firsts])
    np.testing.assert_allclose(report.measured_test, y[held_out], rtol=1e-12)
    for name, x in (("MACs", [r.macs for r in firsts]), ("params", [r.params for r in firsts])):
        x = np.array(x, dtype=float)
        slope, intercept = np.polyfit(x[~held_out], y[~held_out], 1)
        assert abs(intercept) > 1e-3 * np.mean(y)  # an offset a sign error would show
        np.testing.assert_allclose(report.predictions[f"{name} (linear)"], slope * x[held_out] + intercept, rtol=1e-7)
    assert report.spread == pytest.approx(np.std(y) / np.mean(y), rel=1e-9)
    assert report.model.metrics["spread_cv"] == pytest.approx(np.std(y) / np.mean(y), rel=1e-9)


def test_without_a_per_op_lut_only_the_models_that_need_none_are_compared() -> None:
    truth = _truth(np.random.default_rng(7))
    records = _records(60, truth, noise=0.05, drift=0.0, seed=4)
    plain = {"linear (ridge)", "linear + adjacent pairs", "gradient boosting"}
    for table in (None, replace(_table(truth, 0.8), ops=())):
        report = fit_and_evaluate(records, FEATURES, table, test_fraction=0.25)
        assert set(report.validation) == plain
        assert set(report.predictions) == plain | {"MACs (linear)", "params (linear)"}


def _toy_samples(table, **result):  # noqa: ANN001, ANN003, ANN202
    """Samples of the toy space measured under `table`'s conditions, with `result` overriding the recorded ones."""
    recorded = {"backend": table.conditions.backend, "batch_size": table.conditions.batch_size,
                "precision": table.conditions.precision, "input_shape": list(table.conditions.input_shape),
                "cuda_graphs": table.conditions.cuda_graphs, **result}
    return [replace(r, arch={"space": table.space, "space_version": table.space_version, **r.arch}, result=recorded)
            for r in _records(4, _truth(np.random.default_rng(1)), noise=0.0, drift=0.0)]


def test_samples_timed_under_other_conditions_are_refused_by_field() -> None:
    """A profile read back from JSON records the input shape as a list, one built in memory as a tuple: both
    are the LUT's shape. Any recorded timing condition that differs is refused, naming the field."""
    table = _table(_truth(np.random.default_rng(1)), 1.0)
    check_records_match(table, _toy_samples(table), "samples")
    check_records_match(table, _toy_samples(table, input_shape=tuple(table.conditions.input_shape)), "samples")
    for field, value in (("backend", "ort"), ("batch_size", 4), ("precision", "fp16"), ("input_shape", [1, 3, 16, 16]),
                         ("input_shape", (1, 3, 16, 16)), ("cuda_graphs", not table.conditions.cuda_graphs)):
        with pytest.raises(LutError, match=f"4 of 4 samples were measured with {field} "):
            check_records_match(table, _toy_samples(table, **{field: value}), "samples")


def test_networks_needed_is_the_fewest_within_the_slack_a_zero_slack_included() -> None:
    """With no slack the answer is the smallest training size already at the whole split's MAPE (the last point
    always qualifies); a slack admits any point at or below final x (1 + slack), the boundary included."""
    def curve(mapes):  # noqa: ANN001, ANN202
        return [LearningPoint("m", n, mape, 0.9, 0.8, 0.5) for n, mape in zip((10, 20, 40, 80), mapes, strict=True)]

    assert networks_needed(curve([9.0, 6.0, 5.0, 4.0]), slack=0.0) == {"m": 80}
    assert networks_needed(curve([9.0, 4.0, 4.0, 4.0]), slack=0.0) == {"m": 20}
    assert networks_needed(curve([9.0, 5.0, 4.5, 4.0]), slack=0.25) == {"m": 20}  # 5.0 == 4.0 x 1.25 exactly
    assert networks_needed(curve([9.0, 5.5, 4.5, 4.0]), slack=0.25) == {"m": 40}
