"""Fit the latency model g(z) stored in lut.json, and judge every model form on held-out networks.

The target is each network's median latency (ms), read with the drift
correction whose test-retest noise is lowest among the training networks'
retests (lut.targets). The networks are split by a hash of their index into
a training and a test split. Every model form of lut.models is scored by
5-fold cross-validation inside the training split (the validation split);
the stored model is the storable (linear in z) form with the lowest
validation MAPE, refitted on the whole training split. The test split is
touched only to report: every form and the baselines (raw LUT sum, MACs
and parameters with one scale + offset) scored on it, beside the retest
noise floor, plus a learning curve (held-out error against training size).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import KFold

from lut.errors import LutError
from lut.metrics import FitMetrics, score
from lut.models import Candidate, Feature, LinearFit, Predictor, candidates, line
from lut.samples import SampleRecord
from lut.table import LatencyTable, LinearModel
from lut.targets import METHODS, choose, latencies, noise_floors

MIN_TRAIN = 10
FOLDS = 5


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


def op_vector(table: LatencyTable, features: Sequence[Feature]) -> tuple[np.ndarray, float]:
    """The LUT as a coefficient vector over the features (absent pair = 0 ms) and the fixed parts' ms."""
    ops = table.op_ms()
    return np.array([ops.get(f, 0.0) for f in features]), float(sum(e.median_ms for e in table.fixed))


def out_of_fold(fit: Callable[[np.ndarray, np.ndarray], Predictor], z: np.ndarray, y: np.ndarray,
                folds: int = FOLDS) -> np.ndarray:
    """Each training network predicted by the model fitted on the other folds (the validation split)."""
    predicted = np.empty_like(y)
    for train, valid in KFold(n_splits=min(folds, len(y)), shuffle=True, random_state=0).split(z):
        predicted[valid] = fit(z[train], y[train]).predict(z[valid])
    return predicted


def select(validation: Mapping[str, FitMetrics], storable: Sequence[str]) -> str:
    """The storable model with the lowest validation MAPE (ties: the earlier, simpler one)."""
    return min(storable, key=lambda name: validation[name].mape)


@dataclass(frozen=True)
class LearningPoint:
    """Held-out metrics of a model trained on n_train nets (mean over random subsets)."""

    kind: str
    n_train: int
    mape: float
    spearman: float
    kendall: float = float("nan")
    within_5: float = float("nan")

    def to_dict(self) -> dict[str, float | int | str]:
        return {"model": self.kind, "n_train": self.n_train, "mape": self.mape, "spearman": self.spearman,
                "kendall": self.kendall, "within_5": self.within_5}


def learning_curve(
    models: Sequence[Candidate],
    train: Dataset,
    test: Dataset,
    repeats: int = 5,
    seed: int = 0,
) -> list[LearningPoint]:
    """How held-out error falls with training-set size: how many networks each model needs."""
    sizes = sorted({n for n in (10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120) if n < len(train)} | {len(train)})
    points = []
    for candidate in models:
        rng = np.random.default_rng(seed)  # the same subsets for every model
        for n in sizes:
            runs = []
            for _ in range(1 if n == len(train) else repeats):
                pick = rng.choice(len(train), size=n, replace=False)
                runs.append(score(candidate.fit(train.z[pick], train.y[pick]).predict(test.z), test.y))
            points.append(LearningPoint(candidate.name, n, *(float(np.mean([getattr(m, key) for m in runs]))
                                                             for key in ("mape", "spearman", "kendall", "within_5"))))
    return points


def networks_needed(points: Sequence[LearningPoint], slack: float = 0.1) -> dict[str, int]:
    """Per model, the fewest training networks whose held-out MAPE is within `slack` (relative) of the
    MAPE with the whole training split: where more networks stop paying."""
    needed = {}
    for kind in dict.fromkeys(p.kind for p in points):
        curve = sorted((p for p in points if p.kind == kind), key=lambda p: p.n_train)
        final = curve[-1].mape
        needed[kind] = next(p.n_train for p in curve if p.mape <= final * (1 + slack))
    return needed


@dataclass(frozen=True)
class FitReport:
    """Everything the report shows: validation and held-out metrics per model, noise floors, learning curve.

    target names the latency reading fitted (lut.targets.METHODS); noise_floors
    holds the retest agreement of every reading, `noise` the fitted one's.
    validation scores every candidate by 5-fold cross-validation inside the
    training split (what chose the stored model); metrics score every
    candidate and baseline, refitted on the whole training split, on the test split.
    """

    model: LinearModel
    chosen: str
    validation: Mapping[str, FitMetrics]
    storable: tuple[str, ...]
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


def split(records: Sequence[SampleRecord], test_fraction: float) -> tuple[list[SampleRecord], list[SampleRecord]]:
    """(training, test) records, by the stable hash of each network's index (retests follow their network)."""
    train = [r for r in records if not is_test(r.index, test_fraction)]
    return train, [r for r in records if is_test(r.index, test_fraction)]


def fit_and_evaluate(
    records: Sequence[SampleRecord],
    features: Sequence[Feature],
    table: LatencyTable | None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> FitReport:
    """Split; choose the latency reading and the stored model on the training split alone (the reading
    by the training nets' retests, the model by validation folds); score every model on the test split.

    The test split's measurements reach nothing that is stored but the reported test rows."""
    train_records, _ = split(records, test_fraction)
    floors = noise_floors(records)
    target = choose(train_records, noise_floors(train_records))
    data = make_dataset(records, features, table, target)
    test_mask = np.array([is_test(int(i), test_fraction) for i in data.indices], dtype=bool)
    train, test = data.subset(~test_mask), data.subset(test_mask)
    if len(train) < MIN_TRAIN or len(test) < 2:
        raise LutError(
            f"samples: {len(train)} for training and {len(test)} held out is too few to fit; "
            f"measure more (--samples, at least {int(MIN_TRAIN / (1 - test_fraction)) + 3})"
        )
    lut = op_vector(table, features) if table is not None and table.ops else None
    models = candidates(features, lut)
    validation = {c.name: score(out_of_fold(c.fit, train.z, train.y), train.y) for c in models}
    storable = tuple(c.name for c in models if c.storable)
    chosen = select(validation, storable)
    fits = {c.name: c.fit(train.z, train.y) for c in models}

    predictions: dict[str, np.ndarray] = {name: fit.predict(test.z) for name, fit in fits.items()}
    if test.lut_sum is not None:
        predictions["LUT sum"] = test.lut_sum
    for name, train_x, test_x in (("MACs", train.macs, test.macs), ("params", train.params, test.params)):
        scale, offset = line(train_x, train.y)
        predictions[f"{name} (linear)"] = scale * test_x + offset
    metrics = {name: score(pred, test.y) for name, pred in predictions.items()}
    learning = tuple(learning_curve(models, train, test, seed=seed))

    best = fits[chosen]
    if not isinstance(best, LinearFit):  # select() picks among the storable models, which are linear
        raise TypeError(f"{chosen} is not a linear model and cannot be stored")
    model = LinearModel(
        bias_ms=best.bias_ms,
        coefficients={f: float(c) for f, c in zip(features, best.coef_ms, strict=True)},
        kind=best.kind,
        alpha=best.alpha,
        n_train=len(train),
        target=METHODS[target],
        metrics={
            "target_method": target,
            "chosen": chosen,
            "n_train": len(train),
            "n_test": len(test),
            "test_fraction": test_fraction,
            "spread_cv": float(np.std(data.y) / np.mean(data.y)),
            "storable": list(storable),
            "validation": {name: m.to_dict() for name, m in validation.items()},
            "test": {name: m.to_dict() for name, m in metrics.items()},
            "noise_floors": {method: m.to_dict() for method, m in floors.items()},
            "learning": [p.to_dict() for p in learning],
            "networks_needed": networks_needed(learning),
        },
    )
    return FitReport(
        model=model,
        chosen=chosen,
        validation=validation,
        storable=storable,
        metrics=metrics,
        predictions=predictions,
        measured_test=test.y,
        target=target,
        noise_floors=floors,
        learning=learning,
        n_train=len(train),
        n_test=len(test),
        spread=float(np.std(data.y) / np.mean(data.y)),
    )


def _measured_with(table: LatencyTable, record: SampleRecord) -> list[tuple[str, Any, Any]]:
    """(field, the sample's value, the LUT's value) for every field in which `record` was measured
    otherwise than `table`: space, version, each space option, and the timing conditions its
    profiler result records (the device name is left out: shards may run on several GPUs)."""
    arch = record.arch
    config = arch.get("config") if isinstance(arch.get("config"), dict) else {}
    wanted = dict(table.space_config)
    pairs: list[tuple[str, Any, Any]] = [("space", arch.get("space"), table.space),
                                         ("space_version", arch.get("space_version"), table.space_version)]
    pairs += [(f"config {key}", config.get(key), wanted.get(key)) for key in sorted(set(config) | set(wanted))]
    result = record.result if isinstance(record.result, Mapping) else {}
    conditions = table.conditions
    for name, wanted_value in (("backend", conditions.backend), ("batch_size", conditions.batch_size),
                               ("precision", conditions.precision), ("input_shape", list(conditions.input_shape)),
                               ("cuda_graphs", conditions.cuda_graphs)):
        if name in result:
            found = list(result[name]) if name == "input_shape" and isinstance(result[name], list | tuple) else result[name]
            pairs.append((name, found, wanted_value))
    return [(name, found, wanted_value) for name, found, wanted_value in pairs if found != wanted_value]


def check_records_match(table: LatencyTable, records: Sequence[SampleRecord], source: str) -> None:
    """Refuse samples measured for another space, configuration or timing conditions than `table`,
    in one line naming how many and the first field that differs: their one-hot features would
    line up by name and mix another resolution's latencies into the fit or the score."""
    differing: dict[str, list[tuple[SampleRecord, Any, Any]]] = {}
    for record in records:
        for name, found, wanted in _measured_with(table, record):
            differing.setdefault(name, []).append((record, found, wanted))
    if differing:
        name, rows = next(iter(differing.items()))
        record, found, wanted = rows[0]
        raise LutError(f"{source}: {len(rows)} of {len(records)} samples were measured with {name} {found!r} "
                       f"(e.g. sample {record.index}), the LUT with {wanted!r}; keep only samples of the profile's "
                       "own configuration and conditions, or score them against their own profile")


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
    rows = {table.model.name: score([table.model.predict(r.choices) for r in chosen], measured)}
    if table.ops:
        rows["LUT sum"] = score([table.lut_sum(r.choices) for r in chosen], measured)
    return rows
