"""The two terms of the architecture objective as functions of per-decision weights.

`AccuracyTerm` evaluates the accuracy objective (L_val, L_gen or L_train,
`hwnas.objectives`) of the supernet for one step's batches at any weights:
one-hot b, soft zeta, straight-through, multi-hot. `LatencyTerm` turns an
architecture sample into the latency part of the surrogate loss with the
chosen estimator (RELAX / REINFORCE on the *measured* latency, or the
differentiable expected-LUT latency).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hwnas.estimators import (
    ArchitectureDistribution,
    Kept,
    LinearSurrogate,
    MovingAverageBaseline,
    RelaxedSample,
    expected_latency,
)
from hwnas.estimators.delayed import PendingGradient
from hwnas.estimators.score_function import ScoreFunctionResult
from hwnas.objectives import LatencyPenalty, accuracy, accuracy_objective, cross_entropy, needs_train_loss
from hwnas.search.latency import LatencyOracle, OnlineSurrogate
from hwnas.search.strategies.latency import LatencyStrategy
from search_spaces import Architecture, SearchSpace
from search_spaces.recompute import images_interact

Batch = tuple[Tensor, Tensor]


def supernet_loss(net: nn.Module, weights: Mapping[str, Tensor], batch: Batch) -> tuple[Tensor, float]:
    """Cross-entropy (nats) and top-1 accuracy of the supernet at `weights` on one batch."""
    images, labels = batch
    logits = net(images, weights)
    return cross_entropy(logits, labels), accuracy(logits.detach(), labels)


def chunks(batch: Batch, size: int | None) -> list[Batch]:
    """`batch` cut into the fewest micro-batches of at most `size` images, of sizes as equal as they can be
    (12 by 5: 4 + 4 + 4; a last piece of one image would meet BatchNorm's two-value minimum); one piece when
    `size` is None or large."""
    images, labels = batch
    if size is None or size >= len(images):
        return [batch]
    pieces = -(-len(images) // size)
    return list(zip(images.tensor_split(pieces), labels.tensor_split(pieces), strict=True))


def check_pieces_exact(net: nn.Module, size: int | None) -> None:
    """Refuse micro-batches of `size` images on a network whose images interact (`images_interact`):
    their accumulated gradient would not be the batch's."""
    if size is not None and images_interact(net):
        raise ValueError(f"micro-batches of {size} images are not exact for this network: its BatchNorm normalises "
                         "each micro-batch by its own statistics; run the whole batch (recomputed in the backward "
                         "where memory is short: search_spaces.recompute)")


def accumulated_loss(net: nn.Module, weights: Mapping[str, Tensor], batch: Batch, size: int) -> tuple[Tensor, float]:
    """`supernet_loss` of the whole batch computed micro-batch by micro-batch, so that only one
    micro-batch's graph of every candidate is alive at once (issue #30 group 8).

    Each micro-batch's mean cross-entropy, weighted by its share of the batch, is differentiated
    wrt the per-decision weights at once (its graph freed); what returns is a linear surrogate
    L + sum((w - w.detach()) * dL/dw): its value is the batch's loss and its gradient wrt anything
    `weights` depend on (logits, tau) is the batch's, to floating-point error. It carries first
    derivatives only: a second-order backward (DARTS unrolled, tau tuning) needs the whole batch.
    Exact only where images do not interact: a BatchNorm normalising by batch statistics would normalise
    each micro-batch by its own (a ghost batch), so `net` with one is refused (`check_pieces_exact`);
    `search_spaces.recompute` bounds the memory of such a network exactly instead."""
    check_pieces_exact(net, size)
    names = [name for name, w in weights.items() if w.requires_grad]
    leaves = {name: w.detach().requires_grad_(name in names) for name, w in weights.items()}
    total = len(batch[0])
    value, correct = 0.0, 0.0
    grads = [torch.zeros_like(leaves[name]) for name in names]
    for piece in chunks(batch, size):
        loss, acc = supernet_loss(net, leaves, piece)
        share = len(piece[0]) / total
        if names:
            for grad, part in zip(grads, torch.autograd.grad(loss * share, [leaves[n] for n in names], allow_unused=True),
                                  strict=True):
                if part is not None:
                    grad += part
        value += float(loss.detach()) * share
        correct += acc * share
    surrogate = torch.tensor(value, dtype=torch.float32, device=batch[0].device)
    for name, grad in zip(names, grads, strict=True):
        w = weights[name]
        surrogate = surrogate + ((w - w.detach()) * grad.to(w.dtype)).sum()
    return surrogate, correct


class AccuracyTerm:
    """The accuracy objective on this step's search-val batch (and a fresh search-train batch
    for L_gen / L_train); remembers the last validation loss and accuracy for the metrics.

    `micro_batch` (images per forward and backward; None: the whole batch) bounds the memory of an
    evaluation that differentiates every candidate (`accumulated_loss`), where images do not interact;
    an evaluation without a graph (the reward L(b)) always runs the whole batch."""

    def __init__(self, net: nn.Module, kind: str, lam: float, train_batch: Batch | None, val_batch: Batch,
                 micro_batch: int | None = None) -> None:
        self.net, self.kind, self.lam = net, kind, lam
        self.train_batch = train_batch if needs_train_loss(kind) else None
        self.val_batch = val_batch
        self.micro_batch = micro_batch
        self.last_val_loss: float | None = None
        self.last_val_acc: float | None = None

    def _loss(self, weights: Mapping[str, Tensor], batch: Batch) -> tuple[Tensor, float]:
        differentiated = torch.is_grad_enabled() and any(w.requires_grad for w in weights.values())
        if differentiated and self.micro_batch is not None and self.micro_batch < len(batch[0]):
            return accumulated_loss(self.net, weights, batch, self.micro_batch)
        return supernet_loss(self.net, weights, batch)

    def __call__(self, weights: Mapping[str, Tensor]) -> Tensor:
        train_loss = self._loss(weights, self.train_batch)[0] if self.train_batch is not None else None
        val_loss: Tensor | None = None
        if self.kind != "train":
            val_loss, acc = self._loss(weights, self.val_batch)
            self.last_val_loss, self.last_val_acc = float(val_loss.detach()), acc
        return accuracy_objective(self.kind, train_loss, val_loss, self.lam)


@dataclass(frozen=True)
class LatencyOutcome:
    """The latency part of one architecture step: its surrogate loss and what to log (ms)."""

    surrogate: Tensor
    expected_ms: float
    sampled_ms: float | None = None
    predicted_ms: float | None = None
    penalty: float | None = None
    resolved: Resolved | None = None
    """Delayed mode: the previous step's sample, now measured (its gradient is in `surrogate`)."""
    estimate: ScoreFunctionResult | None = None
    """In-line RELAX / REINFORCE: the estimator's result (its graph to tau, for variance tuning)."""


@dataclass(frozen=True)
class Resolved:
    """The measured latency (ms) and penalty of a sample whose gradient was applied one step late."""

    sampled_ms: float
    penalty: float

    def fields(self) -> dict[str, float]:
        """The metrics.jsonl fields of the step that drew the sample."""
        return {"sampled_latency_ms": self.sampled_ms, "latency_penalty": self.penalty}


@dataclass
class _Pending:
    """A drawn sample waiting for its measurement: RELAX / REINFORCE's gradient but the value."""

    arch: Architecture
    gradient: PendingGradient
    baseline: float | None  # REINFORCE: the baseline the sample met (updated with its reward on arrival)
    resolved: Resolved | None = None


def choices_of(space: SearchSpace, index: Mapping[str, Tensor | int]) -> dict[str, str]:
    """Choice indices of a sample (tensors or ints) -> {decision: choice name}."""
    return {d.name: d.choices[int(index[d.name])] for d in space.decisions}


def kept_inputs(space: SearchSpace) -> Kept | None:
    """The space's derivation pruning in the estimators' terms: the expected latency then prices the
    network the search returns (a DARTS genotype), not every decision of the supernet."""
    pruning = space.pruning
    if pruning is None:
        return None
    grouped = {name for group in pruning.groups for name in group}
    choice_lists = {tuple(d.choices) for d in space.decisions if d.name in grouped}
    if len(choice_lists) != 1:
        raise ValueError(f"{space.name}: pruned decisions must share one choice list to index {pruning.dropped!r}")
    return Kept(pruning.groups, pruning.keep, next(iter(choice_lists)).index(pruning.dropped))


class LatencyTerm:
    """lambda_lat * h(latency) with its gradient estimator (a latency strategy,
    `hwnas.search.strategies.latency`: `relax`, `reinforce` or `expected`).

    `delayed`: the sample drawn at step t is timed while the search goes on
    (the oracle's worker) and its gradient is applied at step t+1, completed
    from the parts computed at step t (`hwnas.estimators.delayed`).
    """

    def __init__(
        self,
        space: SearchSpace,
        strategy: LatencyStrategy,
        penalty: LatencyPenalty,
        surrogate: LinearSurrogate | OnlineSurrogate,
        oracle: LatencyOracle | None,
        baseline_decay: float = 0.9,
        *,
        delayed: bool = False,
    ) -> None:
        if strategy.measures and oracle is None:
            raise ValueError(f"latency estimator {strategy.name} needs a latency oracle to measure samples")
        self.strategy, self.space, self.estimator, self.penalty = strategy, space, strategy.name, penalty
        self._surrogate = surrogate
        self.oracle = oracle
        self.baseline = MovingAverageBaseline(baseline_decay)
        self.delayed = delayed and self.strategy.measures
        self._pending: _Pending | None = None
        self.kept = kept_inputs(space)

    @property
    def model(self) -> LinearSurrogate:
        """g for this step (an online surrogate is refitted on past measurements only)."""
        return self._surrogate.update() if isinstance(self._surrogate, OnlineSurrogate) else self._surrogate

    def expected_ms(self, dist: ArchitectureDistribution) -> float:
        """E_p[g(b)] (ms) under the current distribution, of the networks `derive` returns (`kept_inputs`)."""
        with torch.no_grad():
            return float(expected_latency(dist, self.model, self.kept))

    def predicted_ms(self, arch: Architecture) -> float:
        with torch.no_grad():
            return float(self.model(self.space.one_hot(arch)))

    def __call__(self, dist: ArchitectureDistribution, sample: RelaxedSample | None) -> LatencyOutcome:
        g = self.model
        expected = self.expected_ms(dist)
        if not self.strategy.measures:  # the differentiable expectation
            value = self.penalty(expected_latency(dist, g, self.kept))
            return LatencyOutcome(value, expected, penalty=float(value.detach()))
        if sample is None:
            raise ValueError(f"latency estimator {self.estimator} needs an architecture sample")
        assert self.oracle is not None
        arch = self.space.architecture(choices_of(self.space, sample.index))
        with torch.no_grad():
            predicted = float(g(sample.packed_hard()))
        if self.delayed:
            return self._delayed(dist, sample, arch, g, expected, predicted)
        measured = self.oracle.latency_ms(arch)
        reward = self.penalty(measured)
        result = self.strategy.immediate(sample, reward, lambda weights: self.penalty(g(weights)), self.baseline)
        return LatencyOutcome(result.surrogate, expected, measured, predicted, reward, estimate=result)

    def _delayed(self, dist: ArchitectureDistribution, sample: RelaxedSample, arch: Architecture,
                 g: LinearSurrogate, expected: float, predicted: float) -> LatencyOutcome:
        assert self.oracle is not None
        self.oracle.request(arch)  # the worker starts timing b_t now, while this step goes on
        logits = dict(dist.logits)
        parts, baseline = self.strategy.pending(sample, lambda weights: self.penalty(g(weights)), logits, self.baseline)
        previous, self._pending = self._pending, _Pending(arch, parts, baseline)
        if previous is None:
            return LatencyOutcome(torch.zeros((), dtype=torch.float64), expected, None, predicted)
        resolved = self._resolve(previous)
        gradient = previous.gradient.complete(resolved.penalty)
        # A linear surrogate whose gradient wrt the logits is the previous sample's completed estimate.
        surrogate = sum((logits[k] * gradient[k].to(logits[k].dtype)).sum() for k in gradient)
        return LatencyOutcome(surrogate, expected, None, predicted, resolved=resolved)  # type: ignore[arg-type]

    def _resolve(self, pending: _Pending) -> Resolved:
        if pending.resolved is None:
            assert self.oracle is not None
            measured = self.oracle.latency_ms(pending.arch)
            pending.resolved = Resolved(measured, self.penalty(measured))
            if pending.baseline is not None:
                self.baseline.update(pending.resolved.penalty)
        return pending.resolved

    def flush(self) -> Resolved | None:
        """Wait for the pending sample's measurement (before a checkpoint or at the end); its
        gradient stays pending for the next step. None when nothing is pending."""
        return None if self._pending is None else self._resolve(self._pending)

    def state_dict(self) -> dict[str, Any]:
        """The pending sample (delayed mode), so a resumed search applies it as the uninterrupted one does."""
        pending = self._pending
        if pending is None:
            return {"pending": None}
        return {"pending": {"choices": dict(pending.arch.choices), "score": pending.gradient.score,
                            "base": pending.gradient.base, "baseline": pending.baseline,
                            "resolved": None if pending.resolved is None else [pending.resolved.sampled_ms,
                                                                                pending.resolved.penalty]}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = state["pending"]
        if saved is None:
            self._pending = None
            return
        resolved = None if saved["resolved"] is None else Resolved(*saved["resolved"])
        self._pending = _Pending(self.space.architecture(saved["choices"]), PendingGradient(saved["score"], saved["base"]),
                                 saved["baseline"], resolved)
