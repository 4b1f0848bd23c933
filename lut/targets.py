"""Which latency a sample stands for: raw, or corrected for the machine's drift by the reference net.

Every block of sampled networks is timed round-robin together with one fixed
reference network. Three readings of a record, in ms:
  * "raw": the network's own statistic (median unless configured otherwise);
  * "block": raw x (typical reference / this block's reference), which
    removes drift between blocks (other jobs starting, thermal state);
  * "paired": per round of the round-robin, the network's runs over the
    reference's runs in the same round; the median of those ratios x the
    typical reference. This also removes drift inside a block (seconds).
The reading used for the fit is the one whose test-retest noise floor is
lowest (MAPE of the second pass against the first); the report shows all
three, so a reader sees what the correction bought.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lut.metrics import FitMetrics, noise_floor
from lut.samples import SampleRecord

METHODS: dict[str, str] = {
    "raw": "the network's median ms as measured",
    "block": "median ms x typical reference / the block's reference (drift between blocks removed)",
    "paired": "median over round-robin rounds of (network / reference in the same round) x typical reference "
    "(drift between and inside blocks removed)",
}
DEFAULT = "block"
MIN_PAIRS = 5


def _typical_reference(records: Sequence[SampleRecord]) -> float | None:
    refs = {r.block: r.reference_ms for r in records if r.reference_ms}
    return float(np.median(list(refs.values()))) if refs else None


def _round_ratio(record: SampleRecord) -> float | None:
    """Median over rounds of the network's over the reference's per-round median; None if not aligned."""
    k = record.runs_per_round
    own = record.result.get("samples_ms") or ()
    ref = record.reference_samples_ms
    if k < 1 or not own or not ref or record.result.get("attempts", 1) != 1:
        return None
    rounds = min(len(own), len(ref)) // k
    if rounds < 1:
        return None
    ratios = [np.median(own[j * k : (j + 1) * k]) / np.median(ref[j * k : (j + 1) * k]) for j in range(rounds)]
    return float(np.median(ratios))


def latencies(records: Sequence[SampleRecord], method: str) -> np.ndarray:
    """The chosen reading (ms) of every record, in order; a record lacking what a method needs reads as block/raw."""
    typical = _typical_reference(records)
    values = []
    for r in records:
        block = r.latency_ms * typical / r.reference_ms if typical and r.reference_ms else r.latency_ms
        if method == "raw":
            values.append(r.latency_ms)
        elif method == "block":
            values.append(block)
        elif method == "paired":
            ratio = _round_ratio(r)
            values.append(ratio * typical if ratio is not None and typical else block)
        else:
            raise ValueError(f"unknown latency reading {method!r}; one of {', '.join(METHODS)}")
    return np.array(values)


def retest_pairs(records: Sequence[SampleRecord], method: str) -> tuple[np.ndarray, np.ndarray]:
    """(first pass, second pass) readings of the nets measured twice, by index."""
    values = dict(zip([r.key for r in records], latencies(records, method), strict=True))
    both = sorted(i for (i, repeat) in values if repeat == 1 and (i, 0) in values)
    return np.array([values[(i, 0)] for i in both]), np.array([values[(i, 1)] for i in both])


def available(records: Sequence[SampleRecord]) -> list[str]:
    """The readings these records support."""
    methods = ["raw"]
    if any(r.reference_ms for r in records):
        methods.append("block")
    if any(_round_ratio(r) is not None for r in records):
        methods.append("paired")
    return methods


def noise_floors(records: Sequence[SampleRecord]) -> dict[str, FitMetrics]:
    """Test-retest agreement of every available reading (needs at least 2 nets measured twice)."""
    floors = {}
    for method in available(records):
        first, second = retest_pairs(records, method)
        if first.size >= 2:
            floors[method] = noise_floor(first, second)
    return floors


def choose(records: Sequence[SampleRecord], floors: dict[str, FitMetrics]) -> str:
    """The reading with the lowest retest MAPE (at least MIN_PAIRS pairs), else block when references exist."""
    usable = {m: f for m, f in floors.items() if f.n >= MIN_PAIRS}
    if usable:
        return min(usable, key=lambda m: usable[m].mape)
    return DEFAULT if DEFAULT in available(records) else "raw"
