"""The bi-level search loop: warm-up, then alternate weight and architecture steps, then derive.

    for each step:  w   <- SGD on L_train(search-train batch) at the estimator's weights
                    phi <- Adam on the estimator's gradient of accuracy + latency terms
                           (search-val batch; a fresh search-train batch for L_gen)

The derived architecture is the space's derivation of the final
probabilities (argmax per decision; DARTS edges keep the two strongest
edges per node), or with `derive_candidates` > 1 the best of that and a few
draws by inherited accuracy within the target (`hwnas.search.derive`). Its latency is measured on the target device with the full
protocol and reported against the target.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas import distributed
from hwnas.checkpoint import StopSignal
from hwnas.datasets import DataSplits, FolderSplits, check_network_input, default_workers, endless_from, load_data, seeded_loader
from hwnas.errors import UsageError
from hwnas.estimators import ArchitectureDistribution, LinearSurrogate, LinearTemperature, MovingAverageBaseline, VarianceTuner
from hwnas.objectives import LatencyPenalty
from hwnas.search.config import SearchConfig
from hwnas.search.latency import (FINAL_MEASURE, SEARCH_MEASURE, LatencyConditions, LatencyOracle, OnlineSurrogate, SearchTiming,
                                  load_surrogate)
from hwnas.search.latency_worker import attached_worker, resolve_timing, worker_cores
from hwnas.search.memory import search_memory_plan
from hwnas.search.phases import PhaseClock
from hwnas.search.progress import search_progress, status_line
from hwnas.search.checkpoint import CHECKPOINT, load_search, save_search
from hwnas.search.derive import DERIVATION_FILE, derive
from hwnas.search.rundir import RunDirectory
from search_spaces.files import read_json, read_jsonl
from search_spaces.recompute import set_recompute
from hwnas.search.paths import PathRule
from hwnas.search.strategies import get_strategy
from hwnas.search.steps import ArchContext, arch_step, weight_step, weights_for_training
from hwnas.search.terms import AccuracyTerm, LatencyTerm, choices_of
from profilers import LatencyResult, torch_threads
from search_spaces import Architecture, SearchSpace, get_space


@dataclass(frozen=True)
class SearchResult:
    """What a search leaves: the derived architecture (probabilities inside), where the
    files are, and the numbers to report (ms, seconds). `supernet` holds the trained
    shared weights for inheritance (not serialised)."""

    arch: Architecture
    space: SearchSpace
    probabilities: dict[str, dict[str, float]]
    run_dir: Path
    seconds: float
    measured_during_search: int
    predicted_latency_ms: float | None
    final_latency: LatencyResult | None
    target_ms: float | None
    supernet: nn.Module = field(repr=False, compare=False)
    data: DataSplits | FolderSplits = field(repr=False, compare=False)
    timing: SearchTiming | None = None
    """What timing the sampled networks added up to (None where this rank timed none); its closing lines."""


class SearchStopped(Exception):
    """SIGINT / SIGTERM stopped the search at a step boundary after writing its checkpoint."""

    def __init__(self, signal_name: str, step: int, checkpoint: Path) -> None:
        super().__init__(f"stopped by {signal_name} after step {step}; checkpoint {checkpoint}; "
                         "continue with the same command and --resume")
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint


def load_search_data(config: SearchConfig) -> DataSplits | FolderSplits:
    """The data of `config.data`, split by the search's seed."""
    data = config.data
    return load_data(data.dataset, seed=config.loop.seed, val_fraction=data.val_fraction, test_fraction=data.test_fraction,
                     image_size=data.image_size, limit=data.data_limit, test_renders=data.test_renders)


def space_for_data(config: SearchConfig, data: DataSplits | FolderSplits) -> SearchSpace:
    """The search space with the data's channels, classes and side filled in (user keys win)."""
    channels, height, _ = data.image_shape
    filled = {"in_channels": channels, "num_classes": data.num_classes, "resolution": height, **config.data.space_config}
    space = get_space(config.data.space, **filled)
    check_network_input(space, data.image_shape, channels_only=True)
    return space


def _latency_term(config: SearchConfig, space: SearchSpace, oracle: LatencyOracle | None,
                  surrogate: LinearSurrogate | None, delayed: bool = False) -> tuple[LatencyTerm | None, str]:
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


def _probabilities(space: SearchSpace, logits: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    return {
        d.name: {c: float(p) for c, p in zip(d.choices, torch.softmax(logits[d.name].detach(), -1).tolist(), strict=True)}
        for d in space.decisions
    }


def _cosine(step: int, total: int, start: float, floor: float = 0.1) -> float:
    return start * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1))))


def run_search(
    config: SearchConfig,
    out: str | Path,
    *,
    data: DataSplits | FolderSplits | None = None,
    surrogate: LinearSurrogate | None = None,
    measure_final: bool = True,
    extra_config: dict[str, Any] | None = None,
    resume: bool = False,
) -> SearchResult:
    """Search, derive, and (if `measure_final`) time the derived architecture; files go to `out`.

    Checkpoints every `config.checkpoint.every` steps and on SIGINT / SIGTERM
    (then raises `SearchStopped`), so a pre-empted search loses at most the
    step in progress; `resume` continues from out/checkpoint.pt with the
    trajectory an uninterrupted run would have had. Under torchrun every
    rank runs this with the same config (rank 0 decides samples and writes).
    """
    with torch_threads(config.loop.torch_threads):
        return _run_search(config, out, data, surrogate, measure_final, extra_config, resume)


def _run_search(
    config: SearchConfig,
    out: str | Path,
    data: DataSplits | FolderSplits | None,
    surrogate: LinearSurrogate | None,
    measure_final: bool,
    extra_config: dict[str, Any] | None,
    resume: bool,
) -> SearchResult:
    started = time.perf_counter()
    info = distributed.init_from_env(config.loop.device)
    torch.manual_seed(config.loop.seed)
    if data is None:
        data = load_search_data(config)
    space = space_for_data(config, data)
    device = torch.device(info.device)
    plan = search_memory_plan(config, space, str(device))  # refuses what will not fit, before any write
    run = RunDirectory(out, resume=resume, enabled=info.is_main)
    net = space.supernet(weight_sharing=config.supernet.weight_sharing,
                         batchnorm=config.supernet.batchnorm).to(device).train()
    set_recompute(net, plan.recompute)  # exact: relaxed decision points rerun at the whole batch in the backward
    warmup = config.warmup_steps_for(len(data.train), info.world_size)
    rule = PathRule(space, config.rule, config.loop.seed, device)
    train_net = distributed.wrap(net, info, find_unused_parameters=True)  # single path: unused candidates
    logits = {d.name: torch.zeros(len(d.choices), device=device, requires_grad=True) for d in space.decisions}

    oracle: Any = None
    timing, timing_note = "inline", "nothing is timed during search"
    if config.measures_latency:
        timing, timing_note = resolve_timing(config.latency.timing, config.latency.conditions, str(device), info.enabled)
        if info.rank == distributed.LATENCY_RANK:
            budget = replace(SEARCH_MEASURE, budget_s=config.latency.measure_budget_s)
            oracle = LatencyOracle(space, config.latency.conditions, config=budget, log_path=run.latencies_path)
        if info.enabled:
            oracle = distributed.RankOracle(oracle, info, space)
    measuring = oracle.oracle if isinstance(oracle, distributed.RankOracle) else oracle  # None off the measuring rank
    latency, surrogate_source = _latency_term(config, space, oracle, surrogate, delayed=timing == "worker")
    if resume and run.enabled:  # the report reads it at the end: a damaged one is refused now, not after the search
        read_json(run.config_path, UsageError, what="run config",
                  fix="the run folder is damaged: start a new search with another --out (without --resume)")
    if not resume:
        run.write_json("config.json", {
            "search": config.to_dict(), "space": {"name": space.name, "config": space.config, "signature": space.signature()},
            "data": data.record.to_dict(), "latency_model": surrogate_source, "latency_timing": timing_note,
            "micro_batch": plan.micro_batch, "recompute": plan.recompute,
            **(extra_config or {}),
        })

    w_optimizer = torch.optim.SGD(net.parameters(), lr=config.loop.w_lr, momentum=config.loop.w_momentum,
                                  weight_decay=config.loop.w_weight_decay)
    a_optimizer = torch.optim.Adam(list(logits.values()), lr=config.loop.arch_lr, betas=(0.5, 0.999),
                                   weight_decay=config.loop.arch_weight_decay)
    distributed.average_gradients_before_step(a_optimizer, info)
    temperature = LinearTemperature(config.loop.steps, *config.temperatures)
    baseline = MovingAverageBaseline(config.estimator.baseline_decay)
    estimator = config.estimator
    tuner = None if estimator.tune_variance == "none" else VarianceTuner(
        config.temperatures[0], estimator.rebar_eta, lr=estimator.tune_variance_lr, tune_tau=estimator.tune_variance == "tau-eta")
    total = warmup + config.loop.steps
    resumable = {
        "objects": {"supernet": net, "w_optimizer": w_optimizer, "a_optimizer": a_optimizer,
                    **{f"logits.{name}": value for name, value in logits.items()},
                    **({"tuner": tuner} if tuner is not None else {}),
                    **({"latency_pending": latency} if latency is not None else {})},
        "baselines": {"accuracy": baseline, **({"latency": latency.baseline} if latency is not None else {})},
        "oracle": oracle, "surrogate": None if latency is None else latency._surrogate,  # noqa: SLF001
        "config": config.flat(), "data_sha256": data.record.indices_sha256, "info": info,
    }
    checkpoint_path = run.path / CHECKPOINT
    start = load_search(checkpoint_path, **resumable) if resume else 0
    if resume:
        run.keep_until(start, len(oracle) if oracle is not None else 0)

    # Loader workers fit the cores the search keeps (without the latency worker's), at most what the data asks
    cores = worker_cores(config.latency.conditions, str(device)) if timing == "worker" else None
    workers = min(getattr(data, "num_workers", 0), len(cores[1]) if cores is not None else default_workers())

    def batches(split: str, seed: int, consumed: int, size: int) -> Any:
        """A step-counted stream: resuming skips exactly the `consumed` batches already used."""
        loader = seeded_loader(getattr(data, split), size, seed=seed, rank=info.rank, drop_last=True,
                               world_size=info.world_size, num_workers=workers)
        return endless_from(loader, consumed)

    searched = max(start - warmup, 0)
    arch_batch = config.loop.arch_batch_size or config.loop.batch_size
    train_batches = batches("train", config.loop.seed, start, config.loop.batch_size)
    arch_train_batches = batches("train", config.loop.seed + 1, searched, arch_batch)
    val_batches = batches("val", config.loop.seed, searched, arch_batch)

    def to_device(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[0].to(device), batch[1].to(device)

    clock = PhaseClock(device)
    held: dict[str, Any] | None = None  # with a worker: this step's record waits for its sample's latency

    def write_held(resolved: Any) -> None:
        nonlocal held
        if held is not None and resolved is not None:
            held.update(resolved.fields())
            run.append_metrics(held)
            held = None

    saved_at = time.monotonic()  # checkpoints also by wall time: a kill -9 loses at most checkpoint_seconds
    with (search_progress(config.loop.progress and info.is_main) as bar, StopSignal() as stop,
          attached_worker(oracle, timing == "worker", space, str(device)) as worker):
        for global_step in range(start, total):
            phase = "search" if global_step >= warmup else "warm-up"
            if global_step in (start, warmup):
                remaining = (total if phase == "search" else warmup) - global_step
                bar.phase(f"{phase} ({config.estimator.accuracy}{'+' + config.estimator.latency if latency else ''})", remaining)
            step = global_step - warmup if phase == "search" else -1
            lr = _cosine(global_step, total, config.loop.w_lr)
            for group in w_optimizer.param_groups:
                group["lr"] = lr
            tau = temperature(max(step, 0)) if tuner is None else float(tuner.tau.detach())
            dist = ArchitectureDistribution(logits)
            with distributed.shared_sampling(info):  # every rank trains the same sampled path
                paths = rule(global_step, lambda: weights_for_training(config, dist, tau))
            with clock("data"):
                batch = to_device(next(train_batches))
            with clock("weight_step"):
                train_loss, train_acc = weight_step(train_net, w_optimizer, paths, batch, micro_batch=plan.micro_batch)
            record: dict[str, Any] = {"step": global_step, "phase": phase, "lr": lr, "tau": tau,
                                      "train_loss": train_loss, "train_acc": train_acc}
            if phase == "search":
                with clock("data"):
                    train_batch, val_batch = to_device(next(arch_train_batches)), to_device(next(val_batches))
                term = AccuracyTerm(net, config.estimator.objective, config.estimator.gen_lambda, train_batch, val_batch,
                                    plan.micro_batch)
                arch_tau = tau if tuner is None else tuner.tau
                ctx = ArchContext(config.estimator, net, logits, term, latency, arch_tau, lr, train_batch, baseline, tuner, clock)
                if tuner is not None:
                    record["eta"] = float(tuner.eta.detach())
                with distributed.shared_sampling(info):  # one architecture sample per step on every rank
                    report = arch_step(ctx, a_optimizer)
                logging_started = time.perf_counter()
                record.update({"objective": report.objective, "val_loss": report.val_loss, "val_acc": report.val_acc,
                               "entropy": float(ArchitectureDistribution(logits).entropy().detach()),
                               "probabilities": _probabilities(space, logits)})
                if report.latency is not None:
                    record.update({"expected_latency_ms": report.latency.expected_ms,
                                   "sampled_latency_ms": report.latency.sampled_ms,
                                   "predicted_latency_ms": report.latency.predicted_ms,
                                   "latency_penalty": report.latency.penalty})
                if report.sampled is not None:
                    record["sampled"] = choices_of(space, report.sampled)
                clock.add("logging", time.perf_counter() - logging_started)
            if worker is not None and global_step == warmup - 1:
                with clock("latency"):  # warm-up ends when the worker can time: no architecture step pays its start-up
                    worker.wait_ready()
            record["phases"] = clock.take()
            if measuring is not None and (built := measuring.take_build_seconds()) is not None:
                record["engine_build_s"] = built  # TensorRT: engines built for the networks timed in this step
            record["seconds"] = time.perf_counter() - started
            if latency is not None and latency.delayed and phase == "search":
                write_held(report.latency.resolved if report.latency is not None else None)
                held = record  # written when its sample's latency arrives (next step or checkpoint)
            else:
                run.append_metrics(record)
            bar.advance(status_line(record, config.latency.target_ms))
            done = global_step + 1
            stopping = distributed.any_rank(stop.requested, info)
            overdue = distributed.any_rank(time.monotonic() - saved_at >= config.checkpoint.seconds, info)
            if stopping or overdue or done == total or done % config.checkpoint.every == 0:
                if latency is not None:
                    write_held(latency.flush())  # the memo and metrics.jsonl hold every drawn sample
                save_search(checkpoint_path, step=done, **resumable)
                saved_at = time.monotonic()
            if stopping and done < total:
                raise SearchStopped(stop.name or "a signal on another rank", done, checkpoint_path)

    probabilities = _probabilities(space, logits)
    derivation = derive(space, {name: list(p.values()) for name, p in probabilities.items()},
                        candidates=config.loop.derive_candidates, supernet=net, data=data,
                        predicted_ms=None if latency is None else latency.predicted_ms,
                        target_ms=config.latency.target_ms, seed=config.loop.seed, device=str(device),
                        threads=config.loop.torch_threads)
    chosen = int(distributed.broadcast_float(derivation.chosen, info))  # one network on every rank, whatever the ties
    derived = space.architecture(derivation.candidates[chosen].choices)
    if info.is_main and config.loop.derive_candidates > 1:
        run.write_json(DERIVATION_FILE, {**derivation.to_dict(), "chosen": chosen})
    predicted = latency.predicted_ms(derived) if latency is not None else None
    final: LatencyResult | None = None
    if measure_final and info.rank == distributed.LATENCY_RANK:  # the measuring rank times the result once
        final_oracle = measuring or LatencyOracle(space, config.latency.conditions)
        final = final_oracle.measure(derived, FINAL_MEASURE, name="derived")
    seconds = time.perf_counter() - started
    search_summary = {
        "estimator": config.estimator.accuracy, "latency_estimator": config.estimator.latency, "objective": config.estimator.objective,
        "steps": config.loop.steps, "target_ms": config.latency.target_ms, "latency_penalty": config.latency.penalty,
        "predicted_latency_ms": predicted, "measured_latency_ms": None if final is None else final.value_ms,
        "conditions": config.latency.conditions.__dict__, "seconds": seconds,
        "measured_during_search": 0 if oracle is None else len(oracle),
        **({} if measuring is None else {"engine_build_s": measuring.summary().build_seconds,
                                          "launch_bound_note": measuring.summary().launch_bound_note()}),
    }
    arch = Architecture(derived.space, derived.space_version, derived.config, derived.choices,
                        {"probabilities": probabilities, "search": search_summary})
    if info.is_main:
        arch.save(run.arch_path)
    if final is not None:
        run.write_json("derived_latency.json", final.to_dict())
    return SearchResult(arch, space, probabilities, run.path, seconds, 0 if oracle is None else len(oracle),
                        predicted, final, config.latency.target_ms, net, data,
                        None if measuring is None else measuring.summary())


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The metrics.jsonl of a run, one dict per step (a line torn by a kill is left out)."""
    return [record for _, record in read_jsonl(Path(run_dir) / "metrics.jsonl", UsageError, what="metrics file").records]
