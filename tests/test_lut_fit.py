"""lut.fit against independent numpy computations and synthetic profiles with a known truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lut.errors import LutError
from lut.fit import (
    LearningPoint,
    design_matrix,
    evaluate_stored,
    features_from_names,
    fit_and_evaluate,
    is_test,
    networks_needed,
    out_of_fold,
)
from lut.models import adjacent_pairs, fit_calibrated_lut, fit_ridge, fit_ridge_to_lut, pair_matrix
from lut.metrics import score
from lut.samples import SampleRecord
from lut.table import Conditions, FixedEntry, LatencyTable, OpEntry
from lut.targets import latencies
from search_spaces import get_space

DECISIONS = {f"d{i}": ("a", "b", "c") for i in range(6)}
FEATURES = [(d, c) for d, choices in DECISIONS.items() for c in choices]


def _truth(rng: np.random.Generator) -> dict[tuple[str, str], float]:
    return {f: float(rng.uniform(0.1, 1.0)) for f in FEATURES}


def _records(n: int, truth: dict[tuple[str, str], float], *, noise: float, drift: float, seed: int = 0, retest: int = 0,
             pair_ms: float = 0.0) -> list[SampleRecord]:
    """Nets with latency 1 + sum truth (+ pair_ms for every two adjacent decisions that both chose "c"),
    measured in blocks of 5 whose machine speed drifts by `drift`."""
    rng = np.random.default_rng(seed)
    archs = [{d: str(rng.choice(c)) for d, c in DECISIONS.items()} for _ in range(n)]
    jobs = [(i, 0) for i in range(n)] + [(i, 1) for i in range(retest)]
    records = []
    for start in range(0, len(jobs), 5):
        factor = float(np.exp(rng.normal(0, drift)))
        block = f"0-{start}"
        for index, repeat in jobs[start : start + 5]:
            chosen = list(archs[index].values())
            true_ms = 1.0 + sum(truth[(d, c)] for d, c in archs[index].items()) + pair_ms * sum(
                a == b == "c" for a, b in zip(chosen, chosen[1:]))
            ms = true_ms * factor * float(np.exp(rng.normal(0, noise)))
            records.append(
                SampleRecord(index, repeat, block, {"choices": archs[index]}, ms, 3.0 * factor,
                             macs=int(1000 * true_ms + rng.integers(0, 800)), params=int(rng.integers(1, 10**6)),
                             result={})
            )
    return records


def _table(truth: dict[tuple[str, str], float], scale: float) -> LatencyTable:
    return LatencyTable(
        space="toy", space_version=1, space_config={}, space_signature="s",
        conditions=Conditions("cpu", "eager", 1, "fp32", (1, 3, 8, 8)), context={},
        ops=tuple(OpEntry(d, c, (1, 3, 8, 8), scale * v, 0.01) for (d, c), v in truth.items()),
        fixed=(FixedEntry("stem", (1, 3, 8, 8), 0.5, 0.0),),
    )


def test_ridge_matches_the_closed_form_at_its_alpha() -> None:
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, size=(60, 8)).astype(float)
    y = z @ rng.uniform(0, 1, 8) + 2.0 + rng.normal(0, 0.05, 60)
    fit = fit_ridge(z, y)
    zc, yc = z - z.mean(0), y - y.mean()
    coef = np.linalg.solve(zc.T @ zc + fit.alpha * np.eye(8), zc.T @ yc)
    assert fit.coef_ms == pytest.approx(coef, abs=1e-8)
    assert fit.bias_ms == pytest.approx(y.mean() - z.mean(0) @ coef, abs=1e-8)


def test_ridge_to_lut_recovers_an_exact_scaled_lut() -> None:
    rng = np.random.default_rng(2)
    truth = _truth(rng)
    op_ms = np.array([truth[f] for f in FEATURES])
    z = design_matrix([{d: str(rng.choice(c)) for d, c in DECISIONS.items()} for _ in range(30)], FEATURES)
    y = 1.5 * (0.5 + z @ op_ms) + 0.2
    fit = fit_ridge_to_lut(z, y, op_ms, 0.5)
    assert fit.predict(z) == pytest.approx(y, rel=1e-6)


def test_fit_and_evaluate_on_a_known_linear_truth() -> None:
    truth = _truth(np.random.default_rng(3))
    records = _records(200, truth, noise=0.01, drift=0.2, seed=3, retest=20)
    report = fit_and_evaluate(records, FEATURES, _table(truth, scale=0.8), test_fraction=0.25)
    assert report.n_train + report.n_test == 200 and report.n_test > 20
    linear = report.metrics[report.chosen]
    assert linear.spearman > 0.95 and linear.mape < 3.0
    assert linear.spearman > report.metrics["params (linear)"].spearman
    assert set(report.metrics) == {"linear (ridge)", "linear (ridge to LUT)", "LUT sum", "LUT sum, calibrated",
                                   "linear + adjacent pairs", "gradient boosting", "MACs (linear)", "params (linear)"}
    assert set(report.validation) == set(report.metrics) - {"LUT sum", "MACs (linear)", "params (linear)"}
    # the noise floor is the retest pass scored against the first pass, drift-corrected
    corrected = dict(zip([r.key for r in records], latencies(records, "block")))
    first = [corrected[(i, 0)] for i in range(20)]
    second = [corrected[(i, 1)] for i in range(20)]
    assert report.target == "block" and report.noise == score(second, first)
    assert report.noise_floors["raw"].mape > report.noise.mape
    assert max(p.n_train for p in report.learning) == report.n_train
    stored = report.model
    assert stored.metrics["n_test"] == report.n_test and stored.kind in ("ridge", "ridge to LUT", "LUT sum, calibrated")
    arch = records[0].choices
    z = design_matrix([arch], FEATURES)[0]
    assert stored.predict(arch) == pytest.approx(stored.bias_ms + sum(stored.coefficients[f] * z[j] for j, f in enumerate(FEATURES)))


def test_evaluate_stored_scores_without_refitting() -> None:
    truth = _truth(np.random.default_rng(4))
    records = _records(80, truth, noise=0.01, drift=0.0, seed=4)
    report = fit_and_evaluate(records, FEATURES, _table(truth, 1.0), test_fraction=0.3)
    table = _table(truth, 1.0).with_model(report.model)
    rows = evaluate_stored(table, records, test_fraction=0.3)
    for name in (report.chosen, "LUT sum"):
        assert rows[name].to_dict() == pytest.approx(report.metrics[name].to_dict())


def test_too_few_samples_and_foreign_choices_are_refused() -> None:
    truth = _truth(np.random.default_rng(5))
    with pytest.raises(LutError, match="too few"):
        fit_and_evaluate(_records(8, truth, noise=0.0, drift=0.0), FEATURES, None)
    with pytest.raises(LutError, match="not a feature"):
        design_matrix([{"d0": "zzz"}], FEATURES)


def test_design_matrix_is_the_space_encoding() -> None:
    space = get_space("proxyless", resolution=32, small_input=True)
    features = features_from_names(space.feature_names())
    archs = [space.sample(np.random.default_rng(i)) for i in range(5)]
    assert design_matrix([a.choices for a in archs], features) == pytest.approx(np.stack([space.encode(a) for a in archs]))


def test_cost_table_adds_up_to_whole_network_counts() -> None:
    from lut.costs import CostTable
    from search_spaces import count_macs, count_params

    space = get_space("proxyless", resolution=32, small_input=True, depths=[2, 1, 1, 1, 1, 1],
                      widths=[8, 8, 8, 8, 16, 16, 16, 24, 32])
    archs = [space.sample(np.random.default_rng(i)) for i in range(3)]
    costs = CostTable.for_space(space, archs[0])
    assert costs.op_macs is not None
    for arch in archs:
        model = space.build(arch)
        assert costs.counts(arch.choices, model, space) == (count_macs(model, space.input_shape(1)), count_params(model))


def test_adjacent_pair_terms_match_a_loop() -> None:
    rng = np.random.default_rng(6)
    archs = [{d: str(rng.choice(c)) for d, c in DECISIONS.items()} for _ in range(15)]
    z = design_matrix(archs, FEATURES)
    pairs = adjacent_pairs(FEATURES)
    assert len(pairs) == len(DECISIONS) - 1
    columns = [((f"d{i}", a), (f"d{i + 1}", b)) for i in range(len(DECISIONS) - 1) for a in "abc" for b in "abc"]
    expected = np.array([[float(arch[d1] == c1 and arch[d2] == c2) for (d1, c1), (d2, c2) in columns] for arch in archs])
    assert np.array_equal(pair_matrix(z, pairs), expected)


def test_calibrated_lut_is_the_lut_sum_with_one_scale_and_offset() -> None:
    rng = np.random.default_rng(7)
    op_ms = rng.uniform(0.1, 1.0, len(FEATURES))
    z = design_matrix([{d: str(rng.choice(c)) for d, c in DECISIONS.items()} for _ in range(40)], FEATURES)
    y = rng.uniform(2.0, 5.0, 40)
    scale, offset = np.polyfit(0.7 + z @ op_ms, y, 1)
    fit = fit_calibrated_lut(z, y, op_ms, 0.7)
    assert fit.predict(z) == pytest.approx(scale * (0.7 + z @ op_ms) + offset, rel=1e-9)
    assert fit.coef_ms == pytest.approx(scale * op_ms)


def test_validation_predicts_each_training_net_from_the_other_folds() -> None:
    rng = np.random.default_rng(8)
    z = design_matrix([{d: str(rng.choice(c)) for d, c in DECISIONS.items()} for _ in range(30)], FEATURES)
    y = rng.uniform(2.0, 5.0, 30)
    from sklearn.model_selection import KFold  # noqa: PLC0415

    expected = np.empty(30)
    for train, valid in KFold(n_splits=5, shuffle=True, random_state=0).split(z):
        expected[valid] = fit_ridge(z[train], y[train]).predict(z[valid])
    assert out_of_fold(fit_ridge, z, y) == pytest.approx(expected)


def test_interactions_are_found_but_only_a_linear_model_is_stored() -> None:
    truth = _truth(np.random.default_rng(9))
    records = _records(160, truth, noise=0.005, drift=0.0, seed=9, retest=10, pair_ms=0.8)
    report = fit_and_evaluate(records, FEATURES, _table(truth, 1.0), test_fraction=0.25)
    pairs = "linear + adjacent pairs"
    assert report.validation[pairs].mape < 0.5 * report.validation["linear (ridge to LUT)"].mape
    assert report.metrics[pairs].mape < 0.5 * report.metrics["linear (ridge to LUT)"].mape
    assert report.chosen in report.storable and pairs not in report.storable
    assert report.chosen == min(report.storable, key=lambda name: report.validation[name].mape)
    assert report.model.metrics["chosen"] == report.model.name == report.chosen


def test_test_split_targets_cannot_change_what_is_stored() -> None:
    truth = _truth(np.random.default_rng(10))
    records = _records(120, truth, noise=0.02, drift=0.1, seed=10, retest=15)
    rng = np.random.default_rng(11)
    factors = {r.key: float(rng.uniform(0.3, 3.0)) for r in records}  # first passes and retests alike
    moved = [replace(r, latency_ms=r.latency_ms * factors[r.key]) if is_test(r.index, 0.25) else r for r in records]
    assert any(a != b for a, b in zip(records, moved))
    first, second = (fit_and_evaluate(rs, FEATURES, _table(truth, 0.9), test_fraction=0.25) for rs in (records, moved))
    assert first.metrics != second.metrics  # the test rows did see the change ...
    for key in ("chosen", "target_method", "validation", "n_train"):  # ... nothing that chose the model did
        assert first.model.metrics[key] == second.model.metrics[key]
    assert (first.model.bias_ms, first.model.coefficients, first.model.kind, first.model.alpha) == (
        second.model.bias_ms, second.model.coefficients, second.model.kind, second.model.alpha)


def test_networks_needed_is_the_first_size_near_the_final_error() -> None:
    points = [LearningPoint("a", n, mape, 0.0) for n, mape in ((10, 5.0), (20, 2.3), (40, 2.05), (80, 2.0))]
    points += [LearningPoint("b", n, mape, 0.0) for n, mape in ((10, 1.0), (20, 1.0), (40, 1.0), (80, 1.0))]
    assert networks_needed(points) == {"a": 40, "b": 10}
