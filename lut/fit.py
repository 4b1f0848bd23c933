"""Fit the linear latency model g(z) = bias + sum coef * z and judge it on held-out networks.

The target is each network's median latency (ms), read with the drift
correction whose test-retest noise is lowest (lut.targets). Two
regularised least-squares fits compete (scikit-learn RidgeCV, the penalty
chosen by leave-one-out cross-validation over a log grid):
  * "ridge": coefficients shrunk toward 0;
  * "ridge to LUT": coefficients shrunk toward the per-op LUT scaled by one
    factor, i.e. ridge on the residual of the calibrated LUT sum. Still
    linear in z, so the RELAX estimator can use it as its control variate.
The one stored is the better by 5-fold cross-validation on the training
split only; the test split is touched only to report. Baselines beside
it: raw LUT sum, LUT sum with one scale + offset, MACs and parameters
(each linear, fitted on the training split).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.model_selection import KFold

from lut.errors import LutError
from lut.metrics import FitMetrics, score
from lut.samples import SampleRecord
from lut.table import LatencyTable, LinearModel
from lut.targets import METHODS, choose, latencies, noise_floors

ALPHAS: np.ndarray = np.logspace(-3, 4, 29)
"""Ridge penalties tried (targets in ms, features one-hot)."""

MIN_TRAIN = 10

Feature = tuple[str, str]


def features_from_names(names: Sequence[str]) -> list[Feature]:
    """The space's feature_names() ("decision=choice") as (decision, choice) pairs."""
    return [tuple(name.split("=", 1)) for name in names]  # type: ignore[misc]


def design_matrix(choices: Sequence[Mapping[str, str]], features: Sequence[Feature]) -> np.ndarray:
    """One-hot matrix z (networks x features): 1 where the network chose that (decision, choice)."""
    column = {feature: j for j, feature in enumerate(features)}
    x = np.zeros((len(choices), len(features)))
    for i, arch in enumerate(choices):
        for decision, choice in arch.items():
            j = column.get((decision, choice))
            if j is None:
                raise LutError(f"decision {decision!r} choice {choice!r} is not a feature of the space; "
                               "the samples were measured for another space configuration")
            x[i, j] = 1.0
    return x


def is_test(index: int, test_fraction: float) -> bool:
    """Stable split by sample index (a hash), so more samples never move a net between splits."""
    digest = hashlib.blake2b(str(index).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < test_fraction


@dataclass(frozen=True)
class Dataset:
    """The first-pass samples as arrays: z (one-hot), y (target ms), LUT sums, MACs, params."""

    indices: np.ndarray
    z: np.ndarray
    y: np.ndarray
    y_raw: np.ndarray
    lut_sum: np.ndarray | None
    macs: np.ndarray
    params: np.ndarray

    def subset(self, mask: np.ndarray) -> Dataset:
        return Dataset(
            indices=self.indices[mask],
            z=self.z[mask],
            y=self.y[mask],
            y_raw=self.y_raw[mask],
            lut_sum=None if self.lut_sum is None else self.lut_sum[mask],
            macs=self.macs[mask],
            params=self.params[mask],
        )

    def __len__(self) -> int:
        return int(self.y.size)


def make_dataset(
    records: Sequence[SampleRecord], features: Sequence[Feature], table: LatencyTable | None, method: str = "block"
) -> Dataset:
    """Arrays of the first-pass records (repeat 0), in index order; y read by `method` (lut.targets)."""
    firsts = sorted((r for r in records if r.repeat == 0), key=lambda r: r.index)
    corrected = dict(zip([r.key for r in records], latencies(records, method), strict=True))
    lut_sum = None
    if table is not None and table.ops:
        lut_sum = np.array([table.lut_sum(r.choices) for r in firsts])
    return Dataset(
        indices=np.array([r.index for r in firsts], dtype=int),
        z=design_matrix([r.choices for r in firsts], features),
        y=np.array([corrected[r.key] for r in firsts]),
        y_raw=np.array([r.latency_ms for r in firsts]),
        lut_sum=lut_sum,
        macs=np.array([r.macs for r in firsts], dtype=float),
        params=np.array([r.params for r in firsts], dtype=float),
    )


@dataclass(frozen=True)
class LinearFit:
    """A fitted linear predictor over z: bias_ms + z @ coef_ms."""

    kind: str
    bias_ms: float
    coef_ms: np.ndarray
    alpha: float

    def predict(self, z: np.ndarray) -> np.ndarray:
        return self.bias_ms + z @ self.coef_ms


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares scale and offset of y on one variable x."""
    model = LinearRegression().fit(x.reshape(-1, 1), y)
    return float(model.coef_[0]), float(model.intercept_)


def fit_ridge(z: np.ndarray, y: np.ndarray) -> LinearFit:
    """Ridge toward zero coefficients, penalty by leave-one-out CV."""
    model = RidgeCV(alphas=ALPHAS).fit(z, y)
    return LinearFit("ridge", float(model.intercept_), np.asarray(model.coef_, dtype=float), float(model.alpha_))


def fit_ridge_to_lut(z: np.ndarray, y: np.ndarray, op_ms: np.ndarray, fixed_ms: float) -> LinearFit:
    """Ridge toward the per-op LUT scaled by one factor: coef = s * lut + delta, delta shrunk to 0."""
    lut_sum = fixed_ms + z @ op_ms
    scale, offset = _line(lut_sum, y)
    residual = y - (scale * lut_sum + offset)
    model = RidgeCV(alphas=ALPHAS).fit(z, residual)
    coef = scale * op_ms + np.asarray(model.coef_, dtype=float)
    bias = offset + scale * fixed_ms + float(model.intercept_)
    return LinearFit("ridge to LUT", bias, coef, float(model.alpha_))


def op_vector(table: LatencyTable, features: Sequence[Feature]) -> tuple[np.ndarray, float]:
    """The LUT as a coefficient vector over the features (absent pair = 0 ms) and the fixed parts' ms."""
    ops = table.op_ms()
    return np.array([ops.get(f, 0.0) for f in features]), float(sum(e.median_ms for e in table.fixed))


def candidate_fitters(table: LatencyTable | None, features: Sequence[Feature]) -> dict[str, Callable[[np.ndarray, np.ndarray], LinearFit]]:
    """The linear-model fitters that apply: ridge always, ridge-to-LUT when there is a per-op LUT."""
    fitters: dict[str, Callable[[np.ndarray, np.ndarray], LinearFit]] = {"ridge": fit_ridge}
    if table is not None and table.ops:
        op_ms, fixed_ms = op_vector(table, features)
        fitters["ridge to LUT"] = lambda z, y: fit_ridge_to_lut(z, y, op_ms, fixed_ms)
    return fitters


def cv_rmse(fitter: Callable[[np.ndarray, np.ndarray], LinearFit], z: np.ndarray, y: np.ndarray, folds: int = 5) -> float:
    """K-fold RMSE (ms) of a fitter on the training split alone."""
    errors = []
    for train, valid in KFold(n_splits=min(folds, len(y)), shuffle=True, random_state=0).split(z):
        fit = fitter(z[train], y[train])
        errors.append((fit.predict(z[valid]) - y[valid]) ** 2)
    return float(np.sqrt(np.mean(np.concatenate(errors))))


@dataclass(frozen=True)
class LearningPoint:
    """Held-out metrics of a linear model trained on n_train nets (mean over repeats)."""

    kind: str
    n_train: int
    mape: float
    spearman: float


def learning_curve(
    fitters: Mapping[str, Callable[[np.ndarray, np.ndarray], LinearFit]],
    train: Dataset,
    test: Dataset,
    repeats: int = 5,
    seed: int = 0,
) -> list[LearningPoint]:
    """How held-out error falls with training-set size: how many samples the fit needs."""
    rng = np.random.default_rng(seed)
    sizes = sorted({n for n in (10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120) if n < len(train)} | {len(train)})
    points = []
    for kind, fitter in fitters.items():
        for n in sizes:
            mapes, rhos = [], []
            for _ in range(1 if n == len(train) else repeats):
                pick = rng.choice(len(train), size=n, replace=False)
                metrics = score(fitter(train.z[pick], train.y[pick]).predict(test.z), test.y)
                mapes.append(metrics.mape)
                rhos.append(metrics.spearman)
            points.append(LearningPoint(kind, n, float(np.mean(mapes)), float(np.mean(rhos))))
    return points


@dataclass(frozen=True)
class FitReport:
    """Everything the report shows: held-out metrics per predictor, noise floors, learning curve.

    target names the latency reading fitted (lut.targets.METHODS); noise_floors
    holds the retest agreement of every reading, `noise` the fitted one's.
    """

    model: LinearModel
    chosen: str
    cv_rmse_ms: Mapping[str, float]
    metrics: Mapping[str, FitMetrics]
    predictions: Mapping[str, np.ndarray]
    measured_test: np.ndarray
    target: str
    noise_floors: Mapping[str, FitMetrics]
    learning: tuple[LearningPoint, ...]
    n_train: int
    n_test: int
    spread: float

    @property
    def noise(self) -> FitMetrics | None:
        return self.noise_floors.get(self.target)


def fit_and_evaluate(
    records: Sequence[SampleRecord],
    features: Sequence[Feature],
    table: LatencyTable | None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> FitReport:
    """Split, fit the linear models and baselines on train, score all on test; keep the CV winner."""
    floors = noise_floors(records)
    target = choose(records, floors)
    data = make_dataset(records, features, table, target)
    test_mask = np.array([is_test(int(i), test_fraction) for i in data.indices], dtype=bool)
    train, test = data.subset(~test_mask), data.subset(test_mask)
    if len(train) < MIN_TRAIN or len(test) < 2:
        raise LutError(
            f"samples: {len(train)} for training and {len(test)} held out is too few to fit; "
            f"measure more (--samples, at least {int(MIN_TRAIN / (1 - test_fraction)) + 3})"
        )
    fitters = candidate_fitters(table, features)
    cv = {kind: cv_rmse(fitter, train.z, train.y) for kind, fitter in fitters.items()}
    chosen = min(cv, key=cv.__getitem__)
    fits = {kind: fitter(train.z, train.y) for kind, fitter in fitters.items()}

    predictions: dict[str, np.ndarray] = {f"linear ({kind})": fit.predict(test.z) for kind, fit in fits.items()}
    if train.lut_sum is not None and test.lut_sum is not None:
        predictions["LUT sum"] = test.lut_sum
        scale, offset = _line(train.lut_sum, train.y)
        predictions["LUT sum, calibrated"] = scale * test.lut_sum + offset
    for name, train_x, test_x in (("MACs", train.macs, test.macs), ("params", train.params, test.params)):
        scale, offset = _line(train_x, train.y)
        predictions[f"{name} (linear)"] = scale * test_x + offset
    metrics = {name: score(pred, test.y) for name, pred in predictions.items()}

    best = fits[chosen]
    model = LinearModel(
        bias_ms=best.bias_ms,
        coefficients={f: float(c) for f, c in zip(features, best.coef_ms, strict=True)},
        kind=best.kind,
        alpha=best.alpha,
        n_train=len(train),
        target=METHODS[target],
        metrics={
            "target_method": target,
            "n_train": len(train),
            "n_test": len(test),
            "test_fraction": test_fraction,
            "spread_cv": float(np.std(data.y) / np.mean(data.y)),
            "cv_rmse_ms": cv,
            "test": {name: m.to_dict() for name, m in metrics.items()},
            "noise_floors": {method: m.to_dict() for method, m in floors.items()},
        },
    )
    return FitReport(
        model=model,
        chosen=f"linear ({chosen})",
        cv_rmse_ms=cv,
        metrics=metrics,
        predictions=predictions,
        measured_test=test.y,
        target=target,
        noise_floors=floors,
        learning=tuple(learning_curve(fitters, train, test, seed=seed)),
        n_train=len(train),
        n_test=len(test),
        spread=float(np.std(data.y) / np.mean(data.y)),
    )


def check_records_match(table: LatencyTable, records: Sequence[SampleRecord], source: str) -> None:
    """Refuse samples measured for another space, space version or configuration than `table`:
    their one-hot features would line up by name and give a meaningless score."""
    wanted_config = dict(table.space_config)
    for record in records:
        arch = record.arch
        config = arch.get("config") if isinstance(arch.get("config"), dict) else {}
        differing = sorted(k for k in set(config) | set(wanted_config) if config.get(k) != wanted_config.get(k))
        for name, found, wanted in (("space", arch.get("space"), table.space),
                                    ("space_version", arch.get("space_version"), table.space_version),
                                    *[(f"config {key}", config.get(key), wanted_config.get(key)) for key in differing[:1]]):
            if found != wanted:
                raise LutError(f"{source}: sample {record.index} was measured with {name} {found!r}, the LUT with "
                               f"{wanted!r}; score samples against the profile of their own space configuration")


def evaluate_stored(
    table: LatencyTable,
    records: Sequence[SampleRecord],
    test_fraction: float | None = None,
) -> dict[str, FitMetrics]:
    """Score the stored model and the raw LUT sum on first-pass records, without refitting.

    test_fraction None: every record (e.g. a samples file measured after the
    fit); a number: only the nets that split holds out.
    """
    if table.model is None:
        raise LutError("this LUT has no fitted model yet; run `hwnas lut fit DIR` first")
    method = str(table.model.metrics.get("target_method", "block"))
    corrected = dict(zip([r.key for r in records], latencies(records, method), strict=True))
    chosen = [
        r for r in records if r.repeat == 0 and (test_fraction is None or is_test(r.index, test_fraction))
    ]
    measured = np.array([corrected[r.key] for r in chosen])
    rows = {f"linear ({table.model.kind})": score([table.model.predict(r.choices) for r in chosen], measured)}
    if table.ops:
        rows["LUT sum"] = score([table.lut_sum(r.choices) for r in chosen], measured)
    return rows
