"""Which network a search returns: the most probable one, or the best of a few drawn from its distribution.

The papers derive the most probable architecture of the final distribution
(argmax per decision; the DARTS cell space keeps each node's two strongest
edges). That is `candidates=1`, the default of `SearchConfig`.

With `candidates=K > 1` the search proposes K distinct networks and keeps the
one the supernet rates best, the selection SPOS makes (Guo et al. 2020, Sec.
3.3: inherited weights, BatchNorm recalibrated, `hwnas.search.inherit`) with
the learned distribution as the proposer instead of an evolutionary search:

1. the argmax network, then draws of `space.derive(log p + Gumbel noise)`
   until K distinct networks (the Gumbel-max trick: for argmax derivations an
   exact sample of p; for the DARTS edges the edge rule on perturbed scores);
2. with a latency target, the networks whose predicted latency (the search's
   own latency model) exceeds it are dropped, unless none is left, when the
   argmax network stays;
3. each remaining network's search-val accuracy with inherited weights on the
   same BN calibration batches; the most accurate wins (ties: the earlier).

Why: on the 2-core benchmark task the final distributions stay broad (entropy
at half of uniform's or more after 500 steps) and the argmax network of a
broad distribution is one draw among many plausible ones; a search whose argmax
lands on a poor network returns it (docs/benchmark-log.md, "Search vs random"). The
cost is K BN recalibrations and K passes over search-val, no training. The
selection reads search-val only, never test. Measured there with K = 32: no
accuracy gain over argmax after training (+0.15 +- 0.40 points, paired over 15
searches), since the supernet ranks networks this close only weakly; hence K = 1
stays the default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from torch import nn

from hwnas.datasets import DataSplits, FolderSplits
from hwnas.search.inherit import calibration_batches_up_to, inherited_score
from search_spaces import Architecture, SearchSpace

MAX_DRAWS_PER_CANDIDATE = 20
"""Draws allowed per wanted candidate before giving up on distinct ones (a nearly decided distribution)."""


@dataclass(frozen=True)
class Candidate:
    """One proposed network: its choices, how it was proposed, its predicted latency (ms) and inherited score."""

    choices: dict[str, str]
    proposed_by: str
    predicted_ms: float | None
    within_target: bool
    accuracy: float | None = None
    loss: float | None = None


@dataclass(frozen=True)
class Derivation:
    """The derived network and, with candidates > 1, everything the choice was made from."""

    arch: Architecture
    candidates: list[Candidate]
    chosen: int

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "candidates": [asdict(c) for c in self.candidates]}


def gumbel_derivation(space: SearchSpace, log_p: Mapping[str, np.ndarray], rng: np.random.Generator) -> Architecture:
    """The space's derivation of log-probabilities plus independent Gumbel(0, 1) noise: for an argmax
    derivation a sample of the distribution (Gumbel-max trick), for the DARTS edges the edge rule perturbed."""
    return space.derive({name: (lp + rng.gumbel(size=lp.shape)).tolist() for name, lp in log_p.items()})


def propose(space: SearchSpace, probabilities: Mapping[str, Sequence[float]], count: int, seed: int) -> list[tuple[Architecture, str]]:
    """The argmax network and up to `count - 1` distinct Gumbel-perturbed derivations, in proposal order."""
    proposals = [(space.derive(probabilities), "argmax")]
    seen = {tuple(sorted(proposals[0][0].choices.items()))}
    log_p = {name: np.log(np.maximum(np.asarray(p, dtype=np.float64), 1e-300)) for name, p in probabilities.items()}
    rng = np.random.default_rng([seed, 0xDE1])
    for draw in range(MAX_DRAWS_PER_CANDIDATE * count):
        if len(proposals) >= count:
            break
        arch = gumbel_derivation(space, log_p, rng)
        key = tuple(sorted(arch.choices.items()))
        if key not in seen:
            seen.add(key)
            proposals.append((arch, f"draw {draw}"))
    return proposals


def derive(
    space: SearchSpace,
    probabilities: Mapping[str, Sequence[float]],
    *,
    candidates: int = 1,
    supernet: nn.Module | None = None,
    data: DataSplits | FolderSplits | None = None,
    predicted_ms: Callable[[Architecture], float] | None = None,
    target_ms: float | None = None,
    seed: int = 0,
    bn_batches: int = 10,
    batch_size: int = 64,
    device: str = "cpu",
    threads: int | None = 1,
) -> Derivation:
    """The network the search returns (module docstring); `candidates=1` is the papers' argmax derivation."""
    proposals = propose(space, probabilities, max(1, candidates), seed)

    def latency(arch: Architecture) -> float | None:
        return None if predicted_ms is None else float(predicted_ms(arch))

    scored = [Candidate(dict(a.choices), how, latency(a), True) for a, how in proposals]
    if target_ms is not None:
        scored = [replace(c, within_target=c.predicted_ms is None or c.predicted_ms <= target_ms) for c in scored]
    eligible = [i for i, c in enumerate(scored) if c.within_target] or [0]
    if len(proposals) == 1 or len(eligible) == 1:
        return Derivation(proposals[eligible[0]][0], scored, eligible[0])
    if supernet is None or data is None:
        raise ValueError("deriving among several candidates needs the supernet and the data")
    batches = calibration_batches_up_to(data, bn_batches, batch_size, seed=seed)
    for i in eligible:
        score = inherited_score(space, supernet, proposals[i][0], data, batches=batches, device=device, threads=threads)
        scored[i] = replace(scored[i], accuracy=score.accuracy, loss=score.loss)
    chosen = max(eligible, key=lambda i: (scored[i].accuracy, -i))
    return Derivation(proposals[chosen][0], scored, chosen)

