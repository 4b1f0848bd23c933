"""lut.fit against independent numpy computations and synthetic profiles with a known truth."""

from __future__ import annotations

import numpy as np
import pytest

from lut.errors import LutError
from lut.fit import (
    design_matrix,
    evaluate_stored,
    features_from_names,
    fit_and_evaluate,
    fit_ridge,
    fit_ridge_to_lut,
)
from lut.metrics import score
from lut.samples import SampleRecord
from lut.table import Conditions, FixedEntry, LatencyTable, OpEntry
from lut.targets import latencies
from search_spaces import get_space

DECISIONS = {f"d{i}": ("a", "b", "c") for i in range(6)}
FEATURES = [(d, c) for d, choices in DECISIONS.items() for c in choices]


def _truth(rng: np.random.Generator) -> dict[tuple[str, str], float]:
    return {f: float(rng.uniform(0.1, 1.0)) for f in FEATURES}


def _records(n: int, truth: dict[tuple[str, str], float], *, noise: float, drift: float, seed: int = 0, retest: int = 0) -> list[SampleRecord]:
    """Nets with latency 1 + sum truth, measured in blocks of 5 whose machine speed drifts by `drift`."""
    rng = np.random.default_rng(seed)
    archs = [{d: str(rng.choice(c)) for d, c in DECISIONS.items()} for _ in range(n)]
    jobs = [(i, 0) for i in range(n)] + [(i, 1) for i in range(retest)]
    records = []
    for start in range(0, len(jobs), 5):
        factor = float(np.exp(rng.normal(0, drift)))
        block = f"0-{start}"
        for index, repeat in jobs[start : start + 5]:
            true_ms = 1.0 + sum(truth[(d, c)] for d, c in archs[index].items())
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
                                   "MACs (linear)", "params (linear)"}
    # the noise floor is the retest pass scored against the first pass, drift-corrected
    corrected = dict(zip([r.key for r in records], latencies(records, "block")))
    first = [corrected[(i, 0)] for i in range(20)]
    second = [corrected[(i, 1)] for i in range(20)]
    assert report.target == "block" and report.noise == score(second, first)
    assert report.noise_floors["raw"].mape > report.noise.mape
    assert max(p.n_train for p in report.learning) == report.n_train
    stored = report.model
    assert stored.metrics["n_test"] == report.n_test and stored.kind in ("ridge", "ridge to LUT")
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
