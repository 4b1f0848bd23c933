"""One step of the bi-level search, and the state it changes.

    for each step:  w   <- SGD on L_train(search-train batch) at the estimator's weights
                    phi <- Adam on the estimator's gradient of accuracy + latency terms
                           (search-val batch; a fresh search-train batch for L_gen)

The first steps are a warm-up of the weights alone (`SearchConfig.warmup_steps_for`). `SearchState`
holds what the steps change: the supernet and its SGD, the architecture logits and their Adam, the
temperature schedule, the baselines, the variance tuner, the supernet rule and the latency term.
`SearchState.step` runs one step and returns its metrics record. Where the records, checkpoints and
the derived network go is the run layer's business (`hwnas.run.search` loops this step).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hwnas import distributed
from hwnas.errors import UsageError
from hwnas.estimators import ArchitectureDistribution, LinearSurrogate, LinearTemperature, MovingAverageBaseline, VarianceTuner
from hwnas.objectives import LatencyPenalty
from hwnas.search.config import SearchConfig
from hwnas.search.latency import LatencyOracle, OnlineSurrogate, load_surrogate
from hwnas.search.paths import PathRule
from hwnas.search.phases import PhaseClock
from hwnas.search.steps import ArchContext, arch_step, weight_step, weights_for_training
from hwnas.search.strategies import get_strategy
from hwnas.search.terms import AccuracyTerm, Batch, LatencyTerm, choices_of
from search_spaces import SearchSpace


@dataclass(frozen=True)
class Batches:
    """A step's batch streams: search-train for the weight step; for the architecture step a search-train
    batch (L_gen) and a search-val batch."""

    train: Iterator[Batch]
    arch_train: Iterator[Batch]
    val: Iterator[Batch]


def latency_term(config: SearchConfig, space: SearchSpace, oracle: LatencyOracle | None,
                 surrogate: LinearSurrogate | None, delayed: bool = False) -> tuple[LatencyTerm | None, str]:
    """The search's latency term, and where its linear model comes from ('none' without a latency term)."""
    if not config.uses_latency:
        return None, "none"
    if config.latency.target_ms is None:
        raise UsageError("a latency term needs a latency target in ms (or latency estimator none)")
    penalty = LatencyPenalty(config.latency.target_ms, config.latency.penalty, config.latency.weight, config.latency.beta)
    if surrogate is not None:
        model: LinearSurrogate | OnlineSurrogate = surrogate
        source = "given"
    elif config.latency.lut is not None:
        _, model = load_surrogate(config.latency.lut, space, config.latency.conditions)
        source = str(config.latency.lut)
    else:
        if oracle is None:
            raise UsageError(f"latency estimator {config.estimator.latency} needs a fitted latency model: give a device profile (--lut)")
        model, source = OnlineSurrogate(space, oracle), "online ridge fit on the latencies measured during search"
    return LatencyTerm(space, get_strategy(config.estimator.latency, term="latency"), penalty, model, oracle, config.estimator.baseline_decay, delayed=delayed), source


def probabilities(space: SearchSpace, logits: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """The architecture distribution, per decision {choice: probability}."""
    return {
        d.name: {c: float(p) for c, p in zip(d.choices, torch.softmax(logits[d.name].detach(), -1).tolist(), strict=True)}
        for d in space.decisions
    }


def _cosine(step: int, total: int, start: float, floor: float = 0.1) -> float:
    return start * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1))))


@dataclass
class SearchState:
    """What the steps of one search change (and its checkpoint holds), on this process's device."""

    config: SearchConfig
    space: SearchSpace
    device: torch.device
    info: distributed.DistInfo
    micro_batch: int | None
    net: nn.Module
    train_net: nn.Module
    """`net` as the weight step trains it (wrapped for DDP under torchrun)."""
    logits: dict[str, torch.Tensor]
    rule: PathRule
    latency: LatencyTerm | None
    latency_source: str
    """Where the latency term's linear model comes from (config.json's latency_model)."""
    w_optimizer: torch.optim.Optimizer
    a_optimizer: torch.optim.Optimizer
    temperature: LinearTemperature
    baseline: MovingAverageBaseline
    tuner: VarianceTuner | None
    warmup: int
    clock: PhaseClock

    @classmethod
    def build(cls, config: SearchConfig, space: SearchSpace, device: torch.device, info: distributed.DistInfo, *,
              micro_batch: int | None, train_size: int, oracle: Any, surrogate: LinearSurrogate | None,
              delayed: bool) -> SearchState:
        """A fresh search: the supernet's initial weights (from the seeded global RNG), uniform logits.
        `oracle` times sampled networks (None: none timed here); `delayed`: their latency arrives a step late."""
        net = space.supernet(weight_sharing=config.supernet.weight_sharing,
                             batchnorm=config.supernet.batchnorm).to(device).train()
        warmup = config.warmup_steps_for(train_size, info.world_size)
        rule = PathRule(space, config.rule, config.loop.seed, device)
        train_net = distributed.wrap(net, info, find_unused_parameters=True)  # single path: unused candidates
        logits = {d.name: torch.zeros(len(d.choices), device=device, requires_grad=True) for d in space.decisions}
        latency, source = latency_term(config, space, oracle, surrogate, delayed=delayed)
        loop, estimator = config.loop, config.estimator
        w_optimizer = torch.optim.SGD(net.parameters(), lr=loop.w_lr, momentum=loop.w_momentum, weight_decay=loop.w_weight_decay)
        a_optimizer = torch.optim.Adam(list(logits.values()), lr=loop.arch_lr, betas=(0.5, 0.999),
                                       weight_decay=loop.arch_weight_decay)
        distributed.average_gradients_before_step(a_optimizer, info)
        tuner = None if estimator.tune_variance == "none" else VarianceTuner(
            config.temperatures[0], estimator.rebar_eta, lr=estimator.tune_variance_lr, tune_tau=estimator.tune_variance == "tau-eta")
        return cls(config, space, device, info, micro_batch, net, train_net, logits, rule, latency, source, w_optimizer,
                   a_optimizer, LinearTemperature(loop.steps, *config.temperatures),
                   MovingAverageBaseline(estimator.baseline_decay), tuner, warmup, PhaseClock(device))

    @property
    def total(self) -> int:
        """Steps of the whole search, warm-up included."""
        return self.warmup + self.config.loop.steps

    def resumable(self, oracle: Any, data_sha256: str) -> dict[str, Any]:
        """The keywords of `save_search` and `load_search` (`hwnas.search.checkpoint`): everything to resume exactly."""
        latency = self.latency
        return {
            "objects": {"supernet": self.net, "w_optimizer": self.w_optimizer, "a_optimizer": self.a_optimizer,
                        **{f"logits.{name}": value for name, value in self.logits.items()},
                        **({"tuner": self.tuner} if self.tuner is not None else {}),
                        **({"latency_pending": latency} if latency is not None else {})},
            "baselines": {"accuracy": self.baseline, **({"latency": latency.baseline} if latency is not None else {})},
            "oracle": oracle, "surrogate": None if latency is None else latency._surrogate,  # noqa: SLF001
            "config": self.config.flat(), "data_sha256": data_sha256, "info": self.info,
        }

    def probabilities(self) -> dict[str, dict[str, float]]:
        return probabilities(self.space, self.logits)

    def step(self, global_step: int, batches: Batches) -> tuple[dict[str, Any], Any]:
        """One weight step and, after the warm-up, one architecture step. Returns the step's metrics record and,
        with a delayed latency term, the latency of an earlier sample that arrived meanwhile (or None)."""
        config, clock = self.config, self.clock
        phase = "search" if global_step >= self.warmup else "warm-up"
        lr = _cosine(global_step, self.total, config.loop.w_lr)
        for group in self.w_optimizer.param_groups:
            group["lr"] = lr
        tau = self.temperature(max(global_step - self.warmup, 0)) if self.tuner is None else float(self.tuner.tau.detach())
        dist = ArchitectureDistribution(self.logits)
        with distributed.shared_sampling(self.info):  # every rank trains the same sampled path
            paths = self.rule(global_step, lambda: weights_for_training(config, dist, tau))
        with clock("data"):
            batch = self._on_device(next(batches.train))
        with clock("weight_step"):
            train_loss, train_acc = weight_step(self.train_net, self.w_optimizer, paths, batch, micro_batch=self.micro_batch)
        record: dict[str, Any] = {"step": global_step, "phase": phase, "lr": lr, "tau": tau,
                                  "train_loss": train_loss, "train_acc": train_acc}
        if phase == "warm-up":
            return record, None
        return record, self._arch_step(record, tau, lr, batches)

    def _arch_step(self, record: dict[str, Any], tau: float, lr: float, batches: Batches) -> Any:
        """The architecture step: adds its numbers to `record`; returns the latency that arrived (see `step`)."""
        config, clock = self.config, self.clock
        with clock("data"):
            train_batch, val_batch = self._on_device(next(batches.arch_train)), self._on_device(next(batches.val))
        term = AccuracyTerm(self.net, config.estimator.objective, config.estimator.gen_lambda, train_batch, val_batch,
                            self.micro_batch)
        arch_tau = tau if self.tuner is None else self.tuner.tau
        ctx = ArchContext(config.estimator, self.net, self.logits, term, self.latency, arch_tau, lr, train_batch,
                          self.baseline, self.tuner, clock, self.space)
        if self.tuner is not None:
            record["eta"] = float(self.tuner.eta.detach())
        with distributed.shared_sampling(self.info):  # one architecture sample per step on every rank
            report = arch_step(ctx, self.a_optimizer)
        logging_started = time.perf_counter()
        record.update({"objective": report.objective, "val_loss": report.val_loss, "val_acc": report.val_acc,
                       "entropy": float(ArchitectureDistribution(self.logits).entropy().detach()),
                       "probabilities": self.probabilities()})
        if report.latency is not None:
            record.update({"expected_latency_ms": report.latency.expected_ms,
                           "sampled_latency_ms": report.latency.sampled_ms,
                           "predicted_latency_ms": report.latency.predicted_ms,
                           "latency_penalty": report.latency.penalty})
        if report.sampled is not None:
            record["sampled"] = choices_of(self.space, report.sampled)
        clock.add("logging", time.perf_counter() - logging_started)
        return report.latency.resolved if report.latency is not None else None

    def _on_device(self, batch: Batch) -> Batch:
        return batch[0].to(self.device), batch[1].to(self.device)
