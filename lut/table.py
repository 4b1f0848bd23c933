"""The LUT file (lut.json): per-op latencies, fixed parts and the fitted linear model.

One JSON document per profile (docs/design.md#33-lut-and-latency-model-file). It says what was
measured (space name + signature of its configuration), where and how
(device, backend, batch size, precision, full measurement context), the
per-op entries and fixed parts (ms), and the fitted linear model
g(z) = bias_ms + sum coef_ms[decision, choice] * z[decision, choice].
Writes are atomic (temporary file + rename) and the file holds only JSON,
so a table loads in any future Python or scikit-learn. `load(path, expect=...)`
refuses a table measured under other conditions and names the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lut.errors import LutError
from search_spaces.files import MAX_MS, finite_number, latency_ms, read_json, whole_number, write_json

FORMAT_NAME = "hwnas-lut"
FORMAT_VERSION = 1


def _coefficient(value: Any, name: str) -> float:
    """A fitted model term (ms): finite and within +-MAX_MS (it may be negative, a latency may not)."""
    number = finite_number(value, name, LutError)
    if abs(number) > MAX_MS:
        raise LutError(f"{name} is {number:g}, beyond +-{MAX_MS:g} ms: not a fitted latency model")
    return number


def _shape(values: Any, name: str) -> tuple[int, ...]:
    """A tensor shape read from a file: a list of positive whole numbers."""
    if not isinstance(values, list) or not values:
        raise LutError(f"{name} is {values!r}, not a list of sizes")
    return tuple(whole_number(v, name, LutError, minimum=1, maximum=2**31) for v in values)


@dataclass(frozen=True)
class Conditions:
    """What keys every latency number: the same net is another number under other conditions.

    device is what the user asked for ("cpu", "cuda:0"); device_name is what
    the profiler found there (e.g. the GPU model), kept for the reader.
    cuda_graphs: eager timed as CUDA-graph replays (GPU work only, no host
    launch cost); another number than plain eager for a launch-bound network.
    """

    device: str
    backend: str
    batch_size: int
    precision: str
    input_shape: tuple[int, ...]
    device_name: str = ""
    cuda_graphs: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "input_shape": list(self.input_shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Conditions:
        return cls(
            device=str(data["device"]),
            backend=str(data["backend"]),
            batch_size=whole_number(data["batch_size"], "conditions batch_size", LutError, minimum=1, maximum=2**31),
            precision=str(data["precision"]),
            input_shape=_shape(data["input_shape"], "conditions input_shape"),
            device_name=str(data.get("device_name", "")),
            cuda_graphs=_flag(data.get("cuda_graphs", False), "cuda_graphs"),  # absent in LUTs before graph profiles
        )


def cuda_graphs_refusal(device: str, backend: str) -> str | None:
    """Why eager cannot be timed as CUDA-graph replays on `device` with `backend` (None: it can).

    Only eager PyTorch on a CUDA device captures and replays a graph; elsewhere the flag would be
    ignored and the numbers keyed as graph replays would be plain ones."""
    if device.startswith("cuda") and backend == "eager":
        return None
    return f"CUDA-graph replay times eager PyTorch on a CUDA device, not --device {device} --backend {backend}"


def _flag(value: Any, name: str) -> bool:
    """A JSON true/false, strictly ("false" or 0 is a damaged file, not a setting)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class OpEntry:
    """One (decision, choice) timed alone as a module at its exact input shape (median ms, cv)."""

    decision: str
    choice: str
    input_shape: tuple[int, ...]
    median_ms: float
    cv: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "choice": self.choice,
            "input_shape": list(self.input_shape),
            "median_ms": self.median_ms,
            "cv": self.cv,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OpEntry:
        return cls(
            decision=str(data["decision"]),
            choice=str(data["choice"]),
            input_shape=_shape(data["input_shape"], f"input_shape of {data['decision']}={data['choice']}"),
            median_ms=latency_ms(data["median_ms"], f"median_ms of {data['decision']}={data['choice']}", LutError),
            cv=finite_number(data["cv"], f"cv of {data['decision']}={data['choice']}", LutError, nonnegative=True),
        )


@dataclass(frozen=True)
class FixedEntry:
    """A part every architecture has (stem, head), timed alone (median ms, cv)."""

    name: str
    input_shape: tuple[int, ...]
    median_ms: float
    cv: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "input_shape": list(self.input_shape), "median_ms": self.median_ms, "cv": self.cv}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FixedEntry:
        return cls(
            name=str(data["name"]),
            input_shape=_shape(data["input_shape"], f"input_shape of fixed part {data['name']}"),
            median_ms=latency_ms(data["median_ms"], f"median_ms of fixed part {data['name']}", LutError),
            cv=finite_number(data["cv"], f"cv of fixed part {data['name']}", LutError, nonnegative=True),
        )


@dataclass(frozen=True)
class LinearModel:
    """g(z) = bias_ms + sum coef_ms[decision, choice] * z: the surrogate the RELAX estimator uses.

    coefficients maps (decision, choice) to ms; `lut fit` writes one for every feature of the space,
    so an absent pair means a damaged file and is refused.
    kind says how it was fitted (e.g. ridge toward 0, or ridge toward the
    calibrated per-op LUT); metrics holds the held-out evaluation (JSON).
    """

    bias_ms: float
    coefficients: Mapping[tuple[str, str], float]
    kind: str
    alpha: float
    n_train: int
    target: str
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The model's row name in the comparison tables (lut.models), e.g. "linear (ridge to LUT)"."""
        return str(self.metrics.get("chosen") or f"linear ({self.kind})")

    def coefficient(self, decision: str, choice: str) -> float:
        """The term of one (decision, choice); a pair the model lacks is refused, not counted as 0 ms
        (a damaged model would otherwise predict its bias alone and print it as a latency)."""
        try:
            return self.coefficients[(decision, choice)]
        except KeyError:
            raise LutError(f"the fitted model has no coefficient for {decision}={choice} ({len(self.coefficients)} "
                           "present): lut.json is damaged or of another space; re-fit it with `hwnas lut fit DIR`") from None

    def predict(self, choices: Mapping[str, str]) -> float:
        """Predicted latency (ms) of one architecture given its {decision: choice}."""
        return self.bias_ms + sum(self.coefficient(d, c) for d, c in choices.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "bias_ms": self.bias_ms,
            "alpha": self.alpha,
            "n_train": self.n_train,
            "coefficients": [
                {"decision": d, "choice": c, "coef_ms": v} for (d, c), v in self.coefficients.items()
            ],
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinearModel:
        return cls(
            bias_ms=_coefficient(data["bias_ms"], "model bias_ms"),
            coefficients={(str(e["decision"]), str(e["choice"])):
                          _coefficient(e["coef_ms"], f"model coef_ms of {e['decision']}={e['choice']}")
                          for e in data["coefficients"]},
            kind=str(data["kind"]),
            alpha=finite_number(data["alpha"], "model alpha", LutError, nonnegative=True),
            n_train=whole_number(data["n_train"], "model n_train", LutError, minimum=1),
            target=str(data.get("target", "")),
            metrics=_checked_metrics(data.get("metrics", {})),
        )


def _checked_metrics(metrics: Any) -> dict[str, Any]:
    """The stored held-out evaluation, refused unless every table `lut show` and `lut eval` read from
    it has the shape lut.fit writes (a score may be null/NaN: an undefined rank correlation is a fact)."""
    from lut.metrics import FitMetrics  # noqa: PLC0415 - keeps this module free of numpy/scipy at import
    from lut.targets import METHODS  # noqa: PLC0415

    if not isinstance(metrics, dict):
        raise LutError(f"model metrics is a {type(metrics).__name__}, not an object")
    checked = dict(metrics)
    if "target_method" in checked and checked["target_method"] not in METHODS:
        raise LutError(f"model metrics target_method is {checked['target_method']!r}; one of {', '.join(METHODS)}")
    if "test_fraction" in checked:
        fraction = finite_number(checked["test_fraction"], "model metrics test_fraction", LutError)
        if not 0 < fraction < 1:
            raise LutError(f"model metrics test_fraction is {fraction}, not between 0 and 1")
    if "chosen" in checked and not isinstance(checked["chosen"], str):
        raise LutError(f"model metrics chosen is {checked['chosen']!r}, not a model name")
    storable = checked.get("storable")
    if storable is not None and not (isinstance(storable, list) and all(isinstance(n, str) for n in storable)):
        raise LutError(f"model metrics storable is {storable!r}, not a list of model names")
    _check_learning(checked.get("learning", []))
    needed = checked.get("networks_needed")
    if needed is not None and not (isinstance(needed, dict) and all(
            isinstance(n, int) and not isinstance(n, bool) for n in needed.values())):
        raise LutError(f"model metrics networks_needed is {needed!r}, not an object of model name: number of networks")
    for table in ("test", "noise_floors", "validation"):
        rows = checked.get(table) or {}
        if not isinstance(rows, dict):
            raise LutError(f"model metrics {table} is a {type(rows).__name__}, not an object")
        for name, row in rows.items():
            where = f"model metrics {table}/{name}"
            if not isinstance(row, dict):
                raise LutError(f"{where} is a {type(row).__name__}, not an object")
            missing = [key for key in FitMetrics.__dataclass_fields__ if key not in row]
            if missing:
                raise LutError(f"{where} lacks {missing[0]!r}")
            bad = [key for key in FitMetrics.__dataclass_fields__
                   if row[key] is not None and (isinstance(row[key], bool) or not isinstance(row[key], int | float))]
            if bad:
                raise LutError(f"{where}/{bad[0]} is {row[bad[0]]!r}, not a number")
            rows = {**rows, name: {key: math.nan if value is None else value for key, value in row.items()}}
        if table in checked:
            checked[table] = rows
    return checked


def _check_learning(points: Any) -> None:
    """The stored learning curve (lut.fit.LearningPoint.to_dict rows) has the shape `lut show` prints."""
    if not isinstance(points, list):
        raise LutError(f"model metrics learning is a {type(points).__name__}, not a list")
    for point in points:
        if not isinstance(point, dict) or not isinstance(point.get("model"), str) \
                or not isinstance(point.get("n_train"), int) or isinstance(point.get("n_train"), bool):
            raise LutError(f"model metrics learning holds {point!r}, not a {{model, n_train, ...}} point")
        for key in ("mape", "spearman", "kendall", "within_5"):  # what lut.report.stored_fit_table reads
            value = point.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise LutError(f"model metrics learning/{point['model']}/{key} is {value!r}, not a number")


@dataclass(frozen=True)
class LatencyTable:
    """Everything lut.json holds; `lut_sum` and `predict` answer in ms."""

    space: str
    space_version: int
    space_config: Mapping[str, Any]
    space_signature: str
    conditions: Conditions
    context: Mapping[str, Any]
    ops: tuple[OpEntry, ...]
    fixed: tuple[FixedEntry, ...]
    model: LinearModel | None = None

    def op_ms(self) -> dict[tuple[str, str], float]:
        """{(decision, choice): median ms} of the per-op LUT; items sharing a pair (a decision
        used by several cells) add up."""
        table: dict[tuple[str, str], float] = {}
        for e in self.ops:
            table[(e.decision, e.choice)] = table.get((e.decision, e.choice), 0.0) + e.median_ms
        return table

    def lut_sum(self, choices: Mapping[str, str]) -> float:
        """Per-op LUT sum (ms): the chosen ops plus the fixed parts (a skipped layer counts 0)."""
        table = self.op_ms()
        return sum(e.median_ms for e in self.fixed) + sum(table.get((d, c), 0.0) for d, c in choices.items())

    def predict(self, choices: Mapping[str, str]) -> float:
        """Latency (ms) from the fitted linear model; refuses a table that has none."""
        if self.model is None:
            raise LutError("this LUT has no fitted model yet; run `hwnas lut fit DIR` once samples are measured")
        return self.model.predict(choices)

    def with_model(self, model: LinearModel | None) -> LatencyTable:
        return replace(self, model=model)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "space": self.space,
            "space_version": self.space_version,
            "space_config": dict(self.space_config),
            "space_signature": self.space_signature,
            "conditions": self.conditions.to_dict(),
            "context": dict(self.context),
            "ops": [e.to_dict() for e in self.ops],
            "fixed": [e.to_dict() for e in self.fixed],
            "model": None if self.model is None else self.model.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyTable:
        _check_format(data)
        try:
            table = cls(
                space=str(data["space"]),
                space_version=whole_number(data["space_version"], "space_version", LutError),
                space_config=dict(data["space_config"]),
                space_signature=str(data["space_signature"]),
                conditions=Conditions.from_dict(data["conditions"]),
                context=dict(data.get("context", {})),
                ops=tuple(OpEntry.from_dict(e) for e in data["ops"]),
                fixed=tuple(FixedEntry.from_dict(e) for e in data["fixed"]),
                model=None if data.get("model") is None else LinearModel.from_dict(data["model"]),
            )
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as error:
            raise LutError(f"LUT file is missing or has a bad field ({type(error).__name__}: {error}); "
                           "re-run `hwnas profile --device`") from None
        table.check_model_covers_ops()
        return table

    def check_model_covers_ops(self) -> None:
        """Refuse a model without a coefficient for every measured (decision, choice): `lut fit` writes one
        per feature of the space, so a gap is damage. Checked on load, not only when a prediction needs the
        pair: `lut show` printed such a model's scores, and `lut predict` answered for architectures that
        happen to avoid the gap, as if the file were sound."""
        if self.model is None:
            return
        missing = [pair for pair in self.op_ms() if pair not in self.model.coefficients]
        if missing:
            decision, choice = missing[0]
            raise LutError(f"the fitted model has no coefficient for {decision}={choice} ({len(missing)} of "
                           f"{len(self.op_ms())} measured ops missing): lut.json is damaged; re-fit it with "
                           "`hwnas lut fit DIR`")


@dataclass(frozen=True)
class Expectation:
    """What the caller needs a LUT to have been measured for; None accepts anything."""

    space: str | None = None
    space_signature: str | None = None
    device: str | None = None
    backend: str | None = None
    batch_size: int | None = None
    precision: str | None = None
    cuda_graphs: bool | None = None


def _check_format(data: Mapping[str, Any]) -> None:
    if data.get("format") != FORMAT_NAME:
        raise LutError(f"format is {data.get('format')!r}, expected {FORMAT_NAME!r}: this is not an hwnas LUT file")
    if data.get("format_version") != FORMAT_VERSION:
        raise LutError(
            f"format_version is {data.get('format_version')!r}, this hwnas reads {FORMAT_VERSION}; "
            "re-run `hwnas profile --device` to measure a new LUT"
        )


def normalize_device(device: str) -> str:
    """"cuda" and "cuda:0" name the same device; everything else is compared as written."""
    return "cuda:0" if device == "cuda" else device


def check(table: LatencyTable, expect: Expectation) -> None:
    """Refuse `table` if any field of `expect` differs; the message names that field."""
    found: dict[str, Any] = {
        "space": table.space,
        "space_signature": table.space_signature,
        "device": normalize_device(table.conditions.device),
        "backend": table.conditions.backend,
        "batch_size": table.conditions.batch_size,
        "precision": table.conditions.precision,
        "cuda_graphs": table.conditions.cuda_graphs,
    }
    for name, wanted in (
        ("space", expect.space),
        ("space_signature", expect.space_signature),
        ("device", None if expect.device is None else normalize_device(expect.device)),
        ("backend", expect.backend),
        ("batch_size", expect.batch_size),
        ("precision", expect.precision),
        ("cuda_graphs", expect.cuda_graphs),
    ):
        if wanted is not None and found[name] != wanted:
            fix = "under those conditions" if name != "cuda_graphs" else f"{'with' if wanted else 'without'} --cuda-graphs"
            raise LutError(
                f"{name} differs: the LUT was measured with {name}={found[name]!r} but {wanted!r} is needed; "
                f"profile the device {fix} (hwnas profile --device ...)"
            )


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null so any reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json_atomic(path: Path | str, data: Mapping[str, Any]) -> None:
    """Write `data` as JSON that any reader parses (NaN / inf stored as null), atomically."""
    write_json(path, _finite(dict(data)), indent=1, allow_nan=False)


def save(table: LatencyTable, path: Path | str) -> None:
    """Write lut.json atomically."""
    write_json_atomic(path, table.to_dict())


def load(path: Path | str, expect: Expectation | None = None, *, model: bool = True) -> LatencyTable:
    """Read lut.json (a file or a profile directory) and check it against `expect`. `model=False` leaves
    the fitted model out unread: `lut fit` replaces it, so a damaged one must not stop the re-fit."""
    path = Path(path)
    if path.suffix != ".json":  # a profile directory, whether it exists yet or not
        path = path / "lut.json"
    if not path.exists():
        raise LutError(f"no LUT at {path}; run `hwnas profile --device ... --out {path.parent}` first")
    data = read_json(path, LutError, what="LUT", fix="re-run the profile (`hwnas profile --device`)")
    try:
        table = LatencyTable.from_dict(data if model or not isinstance(data, dict) else {**data, "model": None})
    except LutError as error:
        raise LutError(f"LUT {path}: {error}") from None
    if expect is not None:
        check(table, expect)
    return table

