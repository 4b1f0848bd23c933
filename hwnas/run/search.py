"""One search job in its run directory: set up, loop the bi-level step, derive, time the result.

`_run_search` is the loop, in one screen: open the job (rank, seed, data, space, run directory, what
times sampled networks), build the search state (`hwnas.search.bilevel`), record or check config.json,
resume from the checkpoint if asked, then per step: the bi-level step, its metrics line, the progress
bar, and a checkpoint every `checkpoint.every` steps, every `checkpoint.seconds`, at the end and on
SIGINT / SIGTERM (then `SearchStopped`). Under torchrun every rank runs it (rank 0 writes).

The derived architecture is the space's derivation of the final
probabilities (argmax per decision; DARTS edges keep the two strongest
edges per node), or with `derive_candidates` > 1 the best of that and a few
draws by inherited accuracy within the target (`hwnas.search.derive`). Its latency is measured on the target device with the full
protocol and reported against the target.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas import distributed
from hwnas.checkpoint import StopSignal, capture_rng
from hwnas.datasets import DataSplits, FolderSplits, default_workers, endless_from, seeded_loader
from hwnas.errors import UsageError
from hwnas.estimators import LinearSurrogate
from hwnas.run.prepare import load_search_data, space_for_data
from hwnas.run.progress import search_progress, status_line
from hwnas.run.rundir import CHECKPOINT, DERIVATION_FILE, RunDirectory
from hwnas.search.bilevel import Batches, SearchState
from hwnas.search.checkpoint import load_search, save_search
from hwnas.search.config import SearchConfig
from hwnas.search.derive import derive
from hwnas.search.latency import FINAL_MEASURE, SEARCH_MEASURE, LatencyOracle, SearchTiming
from hwnas.search.latency_worker import attached_worker, resolve_timing, worker_cores
from hwnas.search.memory import search_memory_plan
from hwnas.search.terms import LatencyTerm
from hwnas.search.warmstart import WARMUP_FILE, load_warmup, rng_digest, save_warmup
from profilers import LatencyResult, torch_threads
from search_spaces import Architecture, SearchSpace
from search_spaces.files import read_json
from search_spaces.recompute import set_recompute


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


@dataclass(frozen=True)
class _Job:
    """Where and on what one search runs: this process under torchrun, the data split, the space, the
    micro-batch that fits, the run directory, and what times the sampled networks."""

    config: SearchConfig
    info: distributed.DistInfo
    device: torch.device
    data: DataSplits | FolderSplits
    space: SearchSpace
    micro_batch: int | None
    recompute: bool
    """Relaxed decision points rerun at the whole batch in the backward (`search_spaces.recompute`): exact."""
    run: RunDirectory
    oracle: Any
    """Times sampled networks (None: nothing timed; under torchrun a `RankOracle` on every rank)."""
    timing: str
    """'worker' (a process overlapping the next step) or 'inline'."""
    timing_note: str

    @property
    def measuring(self) -> LatencyOracle | None:
        """The oracle that times on this process (None off the measuring rank)."""
        return self.oracle.oracle if isinstance(self.oracle, distributed.RankOracle) else self.oracle

    @property
    def checkpoint(self) -> Path:
        return self.run.path / CHECKPOINT


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
    job = _open(config, out, data, resume)
    state = SearchState.build(config, job.space, job.device, job.info, micro_batch=job.micro_batch,
                              train_size=len(job.data.train), oracle=job.oracle, surrogate=surrogate,
                              delayed=job.timing == "worker")
    set_recompute(state.net, job.recompute)  # exact: relaxed decision points rerun at the whole batch in the backward
    warmup = _warmup_files(job, state)
    rng_at_start = rng_digest(capture_rng())  # what a warm-up shared with this search must have begun from
    started_from = (load_warmup(config.loop.warmup_from, **warmup, rng_now=rng_at_start)
                    if config.loop.warmup_from and not resume else 0)
    _record_config(job, state, extra_config, resume)
    resumable = state.resumable(job.oracle, job.data.record.indices_sha256)
    start = _restore(job, resumable) if resume else started_from
    batches = _batch_streams(job, start, state.warmup)
    metrics = _Metrics(job.run, state.latency)
    saved_at = time.monotonic()  # checkpoints also by wall time: a kill -9 loses at most checkpoint_seconds
    with (search_progress(config.loop.progress and job.info.is_main) as bar, StopSignal() as stop,
          attached_worker(job.oracle, job.timing == "worker", job.space, str(job.device)) as worker):
        for global_step in range(start, state.total):
            if global_step in (start, state.warmup):
                bar.phase(*_bar_phase(state, global_step))
            record, arrived = state.step(global_step, batches)
            if worker is not None and global_step == state.warmup - 1:
                with state.clock("latency"):  # warm-up ends when the worker can time: no architecture step pays its start-up
                    worker.wait_ready()
            metrics.add(_closed(record, state, job.measuring, started), arrived)
            bar.advance(status_line(record, config.latency.target_ms))
            done = global_step + 1
            stopping = distributed.any_rank(stop.requested, job.info)
            overdue = distributed.any_rank(time.monotonic() - saved_at >= config.checkpoint.seconds, job.info)
            if done == state.warmup and done > start:
                save_warmup(job.run.path / WARMUP_FILE, **warmup, rng_at_start=rng_at_start)  # other searches may start from it (--warmup-from)
            if stopping or overdue or done == state.total or done % config.checkpoint.every == 0:
                metrics.flush()  # the memo and metrics.jsonl hold every drawn sample
                save_search(job.checkpoint, step=done, **resumable)
                saved_at = time.monotonic()
            if stopping and done < state.total:
                raise SearchStopped(stop.name or "a signal on another rank", done, job.checkpoint)
    return _finish(job, state, measure_final, started)


def _open(config: SearchConfig, out: str | Path, data: DataSplits | FolderSplits | None, resume: bool) -> _Job:
    """Everything before the supernet: this process's rank, the seed, the data and space, the micro-batch
    (what will not fit is refused before any write), the run directory and the latency oracle."""
    info = distributed.init_from_env(config.loop.device)
    torch.manual_seed(config.loop.seed)
    if data is None:
        data = load_search_data(config)
    space = space_for_data(config, data)
    device = torch.device(info.device)
    plan = search_memory_plan(config, space, str(device))  # refuses what will not fit, before any write
    run = RunDirectory(out, resume=resume, enabled=info.is_main)
    oracle: Any = None
    timing, timing_note = "inline", "nothing is timed during search"
    if config.measures_latency:
        timing, timing_note = resolve_timing(config.latency.timing, config.latency.conditions, str(device), info.enabled)
        if info.rank == distributed.LATENCY_RANK:
            budget = replace(SEARCH_MEASURE, budget_s=config.latency.measure_budget_s)
            oracle = LatencyOracle(space, config.latency.conditions, config=budget, log_path=run.latencies_path)
        if info.enabled:
            oracle = distributed.RankOracle(oracle, info, space)
    return _Job(config, info, device, data, space, plan.micro_batch, plan.recompute, run, oracle, timing, timing_note)


def _record_config(job: _Job, state: SearchState, extra_config: dict[str, Any] | None, resume: bool) -> None:
    """A new search writes config.json; a resumed one checks it now, since the report reads it at the end
    (a damaged one is refused before the search, not after)."""
    if resume:
        if job.run.enabled:
            read_json(job.run.config_path, UsageError, what="run config",
                      fix="the run folder is damaged: start a new search with another --out (without --resume)")
        return
    space = job.space
    job.run.write_json("config.json", {
        "search": job.config.to_dict(), "space": {"name": space.name, "config": space.config, "signature": space.signature()},
        "data": job.data.record.to_dict(), "latency_model": state.latency_source, "latency_timing": job.timing_note,
        "micro_batch": job.micro_batch, "recompute": job.recompute,
        **(extra_config or {}),
    })


def _restore(job: _Job, resumable: dict[str, Any]) -> int:
    """The checkpoint's state restored; drops the metric and timing lines written after it. Returns the next step."""
    start = load_search(job.checkpoint, **resumable)
    job.run.keep_until(start, len(job.oracle) if job.oracle is not None else 0)
    return start


def _warmup_files(job: _Job, state: SearchState) -> dict[str, Any]:
    """The keywords of `save_warmup` and `load_warmup` (`hwnas.search.warmstart`)."""
    return {"config": job.config, "warmup": state.warmup, "supernet": state.net, "w_optimizer": state.w_optimizer,
            "data_sha256": job.data.record.indices_sha256, "micro_batch": job.micro_batch, "info": job.info}


def _batch_streams(job: _Job, start: int, warmup: int) -> Batches:
    """Step-counted streams: resuming at `start` skips exactly the batches already used. Loader workers fit
    the cores the search keeps (without the latency worker's), at most what the data asks."""
    config, info, data = job.config, job.info, job.data
    cores = worker_cores(config.latency.conditions, str(job.device)) if job.timing == "worker" else None
    workers = min(getattr(data, "num_workers", 0), len(cores[1]) if cores is not None else default_workers())

    def stream(split: str, seed: int, consumed: int, size: int) -> Any:
        loader = seeded_loader(getattr(data, split), size, seed=seed, rank=info.rank, drop_last=True,
                               world_size=info.world_size, num_workers=workers)
        return endless_from(loader, consumed)

    searched = max(start - warmup, 0)
    arch_batch = config.loop.arch_batch_size or config.loop.batch_size
    return Batches(stream("train", config.loop.seed, start, config.loop.batch_size),
                   stream("train", config.loop.seed + 1, searched, arch_batch),
                   stream("val", config.loop.seed, searched, arch_batch))


def _bar_phase(state: SearchState, global_step: int) -> tuple[str, int]:
    """The progress bar of the phase (warm-up or search) that starts or resumes at `global_step`: its name, its steps left."""
    estimator = state.config.estimator
    name = f"{estimator.accuracy}{'+' + estimator.latency if state.latency else ''}"
    if global_step >= state.warmup:
        return f"search ({name})", state.total - global_step
    return f"warm-up ({name})", state.warmup - global_step


def _closed(record: dict[str, Any], state: SearchState, measuring: LatencyOracle | None, started: float) -> dict[str, Any]:
    """`record` with the step's seconds per phase, the engines' build time and the run's seconds so far."""
    record["phases"] = state.clock.take()
    if measuring is not None and (built := measuring.take_build_seconds()) is not None:
        record["engine_build_s"] = built  # TensorRT: engines built for the networks timed in this step
    record["seconds"] = time.perf_counter() - started
    return record


class _Metrics:
    """metrics.jsonl, a line per step. With the latency timed in a worker, a search step's line waits for its
    sample's latency, which arrives with a later step or at the next checkpoint (`flush`)."""

    def __init__(self, run: RunDirectory, latency: LatencyTerm | None) -> None:
        self.run, self.latency = run, latency
        self.held: dict[str, Any] | None = None

    def add(self, record: dict[str, Any], arrived: Any) -> None:
        if self.latency is not None and self.latency.delayed and record["phase"] == "search":
            self._write_held(arrived)
            self.held = record  # written when its sample's latency arrives (next step or checkpoint)
        else:
            self.run.append_metrics(record)

    def flush(self) -> None:
        """Wait for the held line's latency and write it."""
        if self.latency is not None:
            self._write_held(self.latency.flush())

    def _write_held(self, arrived: Any) -> None:
        if self.held is not None and arrived is not None:
            self.held.update(arrived.fields())
            self.run.append_metrics(self.held)
            self.held = None


def _finish(job: _Job, state: SearchState, measure_final: bool, started: float) -> SearchResult:
    """Derive the network, time it once on the measuring rank (`measure_final`), write arch.json; the result."""
    config, space, info, latency, measuring = job.config, job.space, job.info, state.latency, job.measuring
    probabilities = state.probabilities()
    derivation = derive(space, {name: list(p.values()) for name, p in probabilities.items()},
                        candidates=config.loop.derive_candidates, supernet=state.net, data=job.data,
                        predicted_ms=None if latency is None else latency.predicted_ms,
                        target_ms=config.latency.target_ms, seed=config.loop.seed, device=str(job.device),
                        threads=config.loop.torch_threads)
    chosen = int(distributed.broadcast_float(derivation.chosen, info))  # one network on every rank, whatever the ties
    derived = space.architecture(derivation.candidates[chosen].choices)
    if info.is_main and config.loop.derive_candidates > 1:
        job.run.write_json(DERIVATION_FILE, {**derivation.to_dict(), "chosen": chosen})
    predicted = latency.predicted_ms(derived) if latency is not None else None
    final: LatencyResult | None = None
    if measure_final and info.rank == distributed.LATENCY_RANK:  # the measuring rank times the result once
        final_oracle = measuring or LatencyOracle(space, config.latency.conditions)
        final = final_oracle.measure(derived, FINAL_MEASURE, name="derived")
    seconds = time.perf_counter() - started
    measured = 0 if job.oracle is None else len(job.oracle)
    search_summary = {
        "estimator": config.estimator.accuracy, "latency_estimator": config.estimator.latency, "objective": config.estimator.objective,
        "steps": config.loop.steps, "target_ms": config.latency.target_ms, "latency_penalty": config.latency.penalty,
        "predicted_latency_ms": predicted, "measured_latency_ms": None if final is None else final.value_ms,
        "conditions": config.latency.conditions.__dict__, "seconds": seconds,
        "measured_during_search": measured,
        **({} if measuring is None else {"engine_build_s": measuring.summary().build_seconds,
                                          "launch_bound_note": measuring.summary().launch_bound_note()}),
    }
    arch = Architecture(derived.space, derived.space_version, derived.config, derived.choices,
                        {"probabilities": probabilities, "search": search_summary})
    if info.is_main:
        arch.save(job.run.arch_path)
    if final is not None:
        job.run.write_json("derived_latency.json", final.to_dict())
    return SearchResult(arch, space, probabilities, job.run.path, seconds, measured, predicted, final,
                        config.latency.target_ms, state.net, job.data, None if measuring is None else measuring.summary())
