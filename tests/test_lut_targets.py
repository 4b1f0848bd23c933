"""lut.targets: the raw, block and paired readings against independent numpy computations."""

from __future__ import annotations

import numpy as np
import pytest

from lut.samples import SampleRecord
from lut.targets import available, choose, latencies, noise_floors


def _record(index: int, repeat: int, block: str, own: list[float], ref: list[float], k: int) -> SampleRecord:
    return SampleRecord(index, repeat, block, {"choices": {}}, float(np.median(own)), float(np.median(ref)), 0, 0,
                        {"samples_ms": own, "attempts": 1}, tuple(ref), k)


def _records(seed: int = 0, nets: int = 12) -> tuple[list[SampleRecord], np.ndarray]:
    """Nets of known latency in blocks of 4; the machine speed drifts between blocks and between rounds."""
    rng = np.random.default_rng(seed)
    true_ms = rng.uniform(5, 10, nets)
    records = []
    for start in range(0, nets, 4):
        speed = np.repeat(np.exp(rng.normal(0, 0.3, 6)), 3)  # 6 rounds of 3 runs, one speed per round
        ref = list(4.0 * speed)
        for i in range(start, min(start + 4, nets)):
            records.append(_record(i, 0, f"b{start}", list(true_ms[i] * speed), ref, 3))
    return records, true_ms


def test_raw_and_block_readings() -> None:
    records, _ = _records()
    raw = latencies(records, "raw")
    assert raw == pytest.approx([r.latency_ms for r in records])
    typical = np.median([np.median(r.reference_samples_ms) for r in records[::4]])
    assert latencies(records, "block") == pytest.approx([r.latency_ms * typical / r.reference_ms for r in records])


def test_paired_reading_removes_drift_inside_blocks() -> None:
    records, true_ms = _records()
    paired = latencies(records, "paired")
    typical = np.median([r.reference_ms for r in records[::4]])
    assert paired == pytest.approx(true_ms / 4.0 * typical)
    assert available(records) == ["raw", "block", "paired"]


def test_paired_falls_back_to_block_when_rounds_are_not_aligned() -> None:
    records, _ = _records()
    pooled = [SampleRecord(r.index, r.repeat, r.block, r.arch, r.latency_ms, r.reference_ms, 0, 0,
                           {**r.result, "attempts": 2}, r.reference_samples_ms, 3) for r in records]
    assert latencies(pooled, "paired") == pytest.approx(latencies(pooled, "block"))
    assert available(pooled) == ["raw", "block"]


def test_noise_floors_and_choice() -> None:
    records, true_ms = _records(nets=12)
    rng = np.random.default_rng(5)
    for i in range(6):  # measured again later, in its own block with its own drift
        speed = np.repeat(np.exp(rng.normal(0, 0.3, 6)), 3)
        records.append(_record(i, 1, "retest", list(true_ms[i] * speed), list(4.0 * speed), 3))
    floors = noise_floors(records)
    assert set(floors) == {"raw", "block", "paired"} and floors["paired"].n == 6
    assert floors["paired"].mape == pytest.approx(0.0, abs=1e-9)
    assert choose(records, floors) == "paired"
    assert choose(records, {}) == "block"
    with pytest.raises(ValueError, match="unknown latency reading"):
        latencies(records, "mean")
