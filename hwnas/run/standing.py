"""Where the found network stands among the device profile's random networks at its latency.

The default run ends by judging its own result the way the design asks
(docs/design.md#82-search-against-random-at-equal-measured-latency),
at a cost that fits in the run: the profile already holds random networks of
the space with their measured latencies, and the supernet's shared weights
give every one of them an accuracy without training (inherited weights,
BatchNorm recalibrated on the same few search-train batches for all:
`hwnas.search.inherit`). The derived network is scored the same way, so the
comparison is like for like; it is a statement about the supernet's ranking,
not about standalone accuracy (benchmarks/search_vs_random.py trains both).

Only the `count` profile networks nearest in latency are scored (each costs a
BN recalibration and one pass over search-val). "At its latency" means within
+-`tolerance` of the derived network's measured latency; when fewer than
`MIN_PEERS` fall in that band, the `MIN_PEERS` nearest are the peers and the
lines say so. Written to standing.json in the run directory for the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from hwnas.datasets import DataSplits, FolderSplits
from hwnas.report.compare import mean_se, percentile_among, within
from hwnas.search.inherit import calibration_batches_up_to, inherited_score
from lut.samples import read_directory
from lut.table import write_json_atomic
from search_spaces import Architecture, SearchSpace

STANDING_FILE = "standing.json"
MIN_PEERS = 3


@dataclass(frozen=True)
class Scored:
    """One network: its choices, measured latency (ms) and inherited-weight accuracy on search-val."""

    choices: dict[str, str]
    latency_ms: float
    accuracy: float


@dataclass(frozen=True)
class Standing:
    """The derived network and the profile networks scored beside it."""

    derived: Scored
    random: list[Scored]
    tolerance: float
    split: str = "val"
    chosen_among: int = 1
    """How many networks the derivation chose the found one from on this split (`--derive-candidates`):
    above 1 the found network's score is the best of several noisy ones, so it reads optimistic."""

    def peers(self) -> tuple[list[Scored], bool]:
        """(networks at the derived one's latency, whether they lie in the +-tolerance band or are the nearest)."""
        band = [r for r in self.random if within(r.latency_ms, self.derived.latency_ms, self.tolerance)]
        if len(band) >= MIN_PEERS:
            return band, True
        nearest = sorted(self.random, key=lambda r: abs(r.latency_ms - self.derived.latency_ms))
        return nearest[:MIN_PEERS], False

    def lines(self) -> list[str]:
        peers, in_band = self.peers()
        if not peers:
            return ["vs random      no profile networks to compare with"]
        accuracies = [p.accuracy for p in peers]
        group = mean_se(accuracies)
        where = (f"within ±{self.tolerance:.0%} of its {self.derived.latency_ms:.3f} ms" if in_band else
                 f"nearest in latency ({min(p.latency_ms for p in peers):.3f}-{max(p.latency_ms for p in peers):.3f} ms;"
                 f" fewer than {MIN_PEERS} within ±{self.tolerance:.0%})")
        better = sum(1 for a in accuracies if a < self.derived.accuracy)
        return [
            f"vs random      inherited-weight accuracy on search-{self.split}: found {self.derived.accuracy:.4f}, "
            f"{len(peers)} profile random networks {where}: {group.mean:.4f} ± {group.se:.4f} (mean ± SE)",
            f"              found network beats {better} of {len(peers)} (percentile "
            f"{percentile_among(self.derived.accuracy, accuracies):.0f}); best random {max(accuracies):.4f}",
            *([f"              (optimistic: the found network was chosen among up to {self.chosen_among} by this score)"]
              if self.chosen_among > 1 else []),
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"derived": asdict(self.derived), "random": [asdict(r) for r in self.random],
                "tolerance": self.tolerance, "split": self.split, "chosen_among": self.chosen_among}

    def save(self, run_dir: Path) -> Path:
        write_json_atomic(run_dir / STANDING_FILE, self.to_dict())
        return run_dir / STANDING_FILE

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Standing:
        return cls(Scored(**document["derived"]), [Scored(**r) for r in document["random"]],
                   float(document["tolerance"]), document.get("split", "val"), int(document.get("chosen_among", 1)))


def profile_networks(space: SearchSpace, profile: Path) -> list[tuple[Architecture, float]]:
    """The profile's random networks (validated against `space`) with their measured latency (ms, first measurement)."""
    return [(space.architecture(r.arch["choices"]), r.latency_ms) for r in read_directory(profile).records if r.repeat == 0]


def nearest(networks: Sequence[tuple[Architecture, float]], latency_ms: float, count: int) -> list[tuple[Architecture, float]]:
    return sorted(networks, key=lambda n: abs(math.log(n[1] / latency_ms)))[:count]


def standing(
    space: SearchSpace,
    supernet: nn.Module,
    derived: Architecture,
    derived_ms: float,
    profile: Path,
    data: DataSplits | FolderSplits,
    *,
    count: int = 10,
    tolerance: float = 0.05,
    bn_batches: int = 10,
    batch_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
    threads: int | None = 1,
) -> Standing:
    """Score the derived network and the `count` profile networks nearest its latency with inherited weights.

    BN statistics come from `bn_batches` search-train batches of `batch_size`, fewer when the split is smaller."""
    batches = calibration_batches_up_to(data, bn_batches, batch_size, seed=seed)

    def score(arch: Architecture) -> float:
        return inherited_score(space, supernet, arch, data, batches=batches, device=device, threads=threads).accuracy

    random = [Scored(dict(arch.choices), ms, score(arch)) for arch, ms in nearest(profile_networks(space, profile), derived_ms, count)]
    return Standing(Scored(dict(derived.choices), derived_ms, score(derived)), random, tolerance)
