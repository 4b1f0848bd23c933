"""lut.table: the LUT file round-trips as plain JSON and refuses a mismatch naming the field."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lut.errors import LutError
from lut.table import (
    FORMAT_VERSION,
    Conditions,
    Expectation,
    FixedEntry,
    LatencyTable,
    LinearModel,
    OpEntry,
    load,
    save,
)


def _table() -> LatencyTable:
    return LatencyTable(
        space="proxyless",
        space_version=1,
        space_config={"resolution": 32},
        space_signature="abc123",
        conditions=Conditions("cpu", "eager", 1, "fp32", (1, 3, 32, 32), "x86"),
        context={"threads": 2},
        ops=(
            OpEntry("l1", "k3e3", (1, 16, 16, 16), 0.5, 0.01),
            OpEntry("l1", "zero", (1, 16, 16, 16), 0.01, 0.02),
            OpEntry("l2", "k3e3", (1, 16, 16, 16), 0.25, 0.01),
            OpEntry("l2", "k3e3", (1, 16, 8, 8), 0.25, 0.01),
        ),
        fixed=(FixedEntry("stem", (1, 3, 32, 32), 0.2, 0.01), FixedEntry("head", (1, 320, 1, 1), 0.1, 0.0)),
        model=LinearModel(
            bias_ms=0.3,
            coefficients={("l1", "k3e3"): 0.6, ("l1", "zero"): 0.0, ("l2", "k3e3"): 0.4},
            kind="ridge",
            alpha=1.0,
            n_train=10,
            target="median ms",
            metrics={"test": {}, "noise_floor": None},
        ),
    )


def test_round_trip_is_plain_json(tmp_path: Path) -> None:
    table = _table()
    save(table, tmp_path / "lut.json")
    data = json.loads((tmp_path / "lut.json").read_text())
    assert data["format"] == "hwnas-lut" and data["format_version"] == FORMAT_VERSION
    assert load(tmp_path) == table
    assert [p.name for p in tmp_path.iterdir()] == ["lut.json"]  # no temporary file left behind


def test_lut_sum_adds_shared_entries_and_fixed_parts() -> None:
    table = _table()
    assert table.lut_sum({"l1": "k3e3", "l2": "k3e3"}) == pytest.approx(0.2 + 0.1 + 0.5 + 0.25 + 0.25)
    assert table.predict({"l1": "zero", "l2": "k3e3"}) == pytest.approx(0.3 + 0.0 + 0.4)


@pytest.mark.parametrize(
    ("field", "expect"),
    [
        ("space", Expectation(space="darts")),
        ("space_signature", Expectation(space_signature="other")),
        ("device", Expectation(device="cuda:0")),
        ("backend", Expectation(backend="ort")),
        ("batch_size", Expectation(batch_size=32)),
        ("precision", Expectation(precision="fp16")),
    ],
)
def test_mismatch_is_refused_naming_the_field(tmp_path: Path, field: str, expect: Expectation) -> None:
    save(_table(), tmp_path / "lut.json")
    with pytest.raises(LutError, match=rf"^{field} differs"):
        load(tmp_path / "lut.json", expect=expect)


def test_matching_expectation_loads(tmp_path: Path) -> None:
    save(_table(), tmp_path / "lut.json")
    expect = Expectation("proxyless", "abc123", "cpu", "eager", 1, "fp32")
    assert load(tmp_path, expect=expect).space == "proxyless"


def test_cuda_and_cuda0_are_the_same_device(tmp_path: Path) -> None:
    table = _table()
    save(replace(table, conditions=replace(table.conditions, device="cuda")), tmp_path / "lut.json")
    assert load(tmp_path, Expectation(device="cuda:0")).conditions.device == "cuda"


def test_other_format_version_and_garbage_are_refused(tmp_path: Path) -> None:
    data = _table().to_dict()
    data["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "lut.json").write_text(json.dumps(data))
    with pytest.raises(LutError, match="lut.json: format_version is"):
        load(tmp_path)
    (tmp_path / "lut.json").write_text("{not json")
    with pytest.raises(LutError, match="not valid JSON"):
        load(tmp_path)
    with pytest.raises(LutError, match="no LUT at"):
        load(tmp_path / "missing")
