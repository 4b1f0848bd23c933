"""Profile a device for a search space: per-op LUT, whole-network samples, fit, report.

The steps, all under one profile directory, each safe to interrupt:
  1. profile.json: what is being profiled (space signature, seed, device,
     backend, batch size, precision). A re-run must agree on all of it, or it
     is refused naming the field, so two conditions never mix in one file.
  2. Per-op LUT (lut.json): every (decision, choice) and the fixed parts,
     each timed alone at its exact input shape, round-robin in blocks.
  3. Samples (samples.jsonl): architecture i is drawn from the generator
     seeded by (seed, i), so the plan is the same in every run and shard.
     Nets are timed round-robin in blocks together with one fixed reference
     network, so the machine's drift hits a block alike and the reference
     measures it; each block is appended the moment it is timed. A subset
     is measured a second time at the end (repeat 1): the noise floor.
  4. Fit and report (lut.json's model, report.md, PNG plots).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lut.costs import CostTable
from lut.errors import LutError
from lut.fit import FitReport, check_records_match, features_from_names, fit_and_evaluate
from lut.report import write_report
from lut.samples import ReadResult, SampleRecord, Shard, append, read_directory
from lut.table import (Conditions, Expectation, FixedEntry, LatencyTable, OpEntry, cuda_graphs_refusal, load, save,
                       write_json_atomic)
from profilers import MeasureConfig, check, measure_interleaved
from profilers.result import mostly_launch_bound
from search_spaces.files import append_jsonl, drop_torn_tail, finite_number, read_json, read_jsonl, run_lock
from search_spaces.architecture import Architecture
from search_spaces.base import SearchSpace
from search_spaces.registry import get_space

MANIFEST = "profile.json"
OPS_PROGRESS = "ops.partial.jsonl"
"""Per-op timings appended block by block until lut.json holds the whole table (then removed)."""
MANIFEST_FORMAT = "hwnas-profile"
MANIFEST_VERSION = 1
REFERENCE_STREAM = 2**31 - 1
"""Seed stream of the reference network (sample streams are 0, 1, 2, ...)."""


@dataclass(frozen=True)
class ProfileSettings:
    """One device profile request; `resolve_settings` fills the per-device defaults."""

    space: str
    space_config: dict[str, Any]
    device: str
    backend: str
    batch_size: int
    precision: str
    samples: int
    out: Path
    shard: Shard = Shard()
    retest: int = 0
    block_size: int = 8
    seed: int = 0
    test_fraction: float = 0.2
    skip_ops: bool = False
    net_config: MeasureConfig | None = None
    op_config: MeasureConfig | None = None
    progress: bool = True
    fit: bool = True
    cuda_graphs: bool = False


def is_gpu(device: str) -> bool:
    return device.startswith("cuda")


def resolve_settings(
    *,
    space: str = "proxyless",
    space_options: dict[str, Any] | None = None,
    device: str = "cpu",
    backend: str = "eager",
    batch_size: int | None = None,
    precision: str | None = None,
    input_size: int | None = None,
    samples: int | None = None,
    out: str | Path | None = None,
    shard: str | None = None,
    retest: int | None = None,
    block_size: int | None = None,
    threads: int | None = None,
    statistic: str = "median",
    time_per_net: float | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    skip_ops: bool = False,
    progress: bool = True,
    cuda_graphs: bool = False,
) -> ProfileSettings:
    """The settings with every None replaced by the device's default.

    GPU: batch 32 (UNAS's setting), fp32 (fp16 for TensorRT), 2000 samples,
    blocks of 16. CPU: batch 1, 64 px (where the space has a resolution),
    300 samples, blocks of 8, one thread. Retest: 10% of the samples, at most 50.
    cuda_graphs: time eager as CUDA-graph replays (see `launch_bound_note`).
    """
    gpu = is_gpu(device)
    refusal = cuda_graphs_refusal(device, backend) if cuda_graphs else None
    if refusal is not None:
        raise LutError(f"--cuda-graphs: {refusal}; drop it")
    config = dict(space_options or {})
    defaults = get_space(space).config
    if input_size is not None:
        if "resolution" in config and config["resolution"] != input_size:
            raise LutError(f"--input-size {input_size} and --space-option resolution={config['resolution']} "
                           "ask for two resolutions; give one of them")
        config["resolution"] = input_size
    elif not gpu and "resolution" in defaults and "resolution" not in config:
        config["resolution"] = 64
    samples = samples if samples is not None else (2000 if gpu else 300)
    if samples < 1:
        raise LutError(f"--samples must be at least 1, got {samples}")
    if not 0.0 < test_fraction < 1.0:
        raise LutError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
    batch_size = batch_size if batch_size is not None else (32 if gpu else 1)
    precision = precision if precision is not None else ("fp16" if backend == "tensorrt" else "fp32")
    retest = retest if retest is not None else min(50, max(2, samples // 10))
    block_size = block_size if block_size is not None else (16 if gpu else 8)
    if block_size < 1:
        raise LutError(f"--block-size must be at least 1, got {block_size}")
    if out is None:
        graphs = "-graphs" if cuda_graphs else ""  # another number than plain eager: never the same directory
        out = Path("profiles") / f"{space}-{device.replace(':', '')}-{backend}-b{batch_size}-{precision}{graphs}"
    net_config, op_config = default_measure_configs(gpu, threads, statistic)
    if time_per_net is not None:
        if time_per_net <= 0:
            raise LutError(f"--time-per-net {time_per_net} must be positive seconds, e.g. --time-per-net 1.5")
        net_config = replace(net_config, budget_s=time_per_net)
    net_config, op_config = replace(net_config, cuda_graphs=cuda_graphs), replace(op_config, cuda_graphs=cuda_graphs)
    return ProfileSettings(
        space=space,
        space_config=config,
        device=device,
        backend=backend,
        batch_size=batch_size,
        precision=precision,
        samples=samples,
        out=Path(out),
        shard=Shard.parse(shard),
        retest=min(max(0, retest), samples),
        block_size=block_size,
        seed=seed,
        test_fraction=test_fraction,
        skip_ops=skip_ops,
        net_config=net_config,
        op_config=op_config,
        progress=progress,
        cuda_graphs=cuda_graphs,
    )


def default_measure_configs(gpu: bool, threads: int | None, statistic: str = "median") -> tuple[MeasureConfig, MeasureConfig]:
    """Timing budgets per whole net and per op: enough runs for a median within ~1%, bounded in time.

    GPU turns are 8 runs (CPU: 3): every turn starts from an empty launch queue after the
    previous net's synchronize, and on the H200 (2026-11-27) the first timed run of a 2-run
    turn was 2-6% slower than the second for launch-bound nets; longer turns dilute that."""
    base = MeasureConfig(threads=threads, remeasure=0, verify_outputs=False, statistic=statistic)
    if gpu:
        base = replace(base, runs_per_round=8)
        return replace(base, budget_s=3.0), replace(base, budget_s=1.0)
    # One CPU thread unless asked: on a shared machine a descheduled OpenMP worker stalls every
    # barrier, and two threads measured 20x slower and far noisier than one on the 2-core dev box.
    base = replace(base, threads=threads or 1, warmup_runs=3, warmup_s=0.05, min_runs=9, max_runs=400, runs_per_round=3)
    return replace(base, budget_s=0.8), replace(base, budget_s=0.25)


@dataclass(frozen=True)
class ProfileOutcome:
    """What a profile run leaves: the table, the fit (None when too few samples), the problems seen."""

    out: Path
    table: LatencyTable | None
    fit: FitReport | None
    samples: int
    measured_now: int
    problems: tuple[str, ...]
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        from lut.report import fit_table  # noqa: PLC0415

        lines = [f"profile {self.out}: {self.samples} samples ({self.measured_now} measured now) in {self.seconds:.0f} s"]
        lines += [f"warning: {p}" for p in self.problems]
        lines += list(self.notes)
        if self.fit is not None:
            lines += ["", fit_table(self.fit), "", f"report: {self.out / 'report.md'}"]
        return "\n".join(lines)


# ---- the plan ---------------------------------------------------------------------------


def make_space(settings: ProfileSettings) -> SearchSpace:
    return get_space(settings.space, **settings.space_config)


def planned_arch(space: SearchSpace, seed: int, index: int) -> Architecture:
    """Sample `index` of the plan: the same architecture in every run and every shard, drawn among the networks
    a search can return (`sample_network`), so that automatic targets are quantiles of those."""
    return space.sample_network(np.random.default_rng([seed, index]))


def retest_indices(samples: int, retest: int) -> list[int]:
    """Nets measured twice: spread evenly over the plan."""
    if retest <= 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(0, samples - 1, retest)})


def planned_jobs(settings: ProfileSettings) -> list[tuple[int, int]]:
    """(index, repeat) this shard measures, in order: first passes, then the retest pass."""
    first = [(i, 0) for i in range(settings.samples) if settings.shard.owns(i)]
    second = [(i, 1) for i in retest_indices(settings.samples, settings.retest) if settings.shard.owns(i)]
    return first + second


def conditions_of(settings: ProfileSettings, space: SearchSpace, device_name: str = "") -> Conditions:
    return Conditions(
        device=settings.device,
        backend=settings.backend,
        batch_size=settings.batch_size,
        precision=settings.precision,
        input_shape=tuple(space.input_shape(settings.batch_size)),
        device_name=device_name,
        cuda_graphs=settings.cuda_graphs,
    )


def manifest_of(settings: ProfileSettings, space: SearchSpace) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "space": space.name,
        "space_version": space.version,
        "space_config": space.config,
        "space_signature": space.signature(),
        "networks": space.network_draw,
        "seed": settings.seed,
        "device": settings.device,
        "backend": settings.backend,
        "batch_size": settings.batch_size,
        "precision": settings.precision,
        "cuda_graphs": settings.cuda_graphs,
    }


MANIFEST_DEFAULTS: dict[str, Any] = {"cuda_graphs": False, "networks": "uniform"}
"""What a manifest written before a key existed meant by its absence."""


def _comparable(key: str, value: Any, sharded: bool) -> Any:
    """Shards of one profile may run on different GPUs (cuda:0, cuda:1): then only the device type must agree."""
    if key == "device" and sharded and isinstance(value, str):
        return value.split(":")[0]
    return value


def check_manifest(out: Path, manifest: dict[str, Any], sharded: bool = False) -> None:
    """Write profile.json, or refuse to resume a directory profiled under other conditions."""
    path = out / MANIFEST
    if path.exists():
        old = read_json(path, LutError, what="profile manifest", fix="remove it or use another --out")
        for key in ("format_version", "space", "space_signature", "networks", "seed", "device", "backend", "batch_size",
                    "precision", "cuda_graphs"):
            found, asked = (m.get(key, MANIFEST_DEFAULTS.get(key)) for m in (old, manifest))
            if _comparable(key, found, sharded) != _comparable(key, asked, sharded):
                raise LutError(
                    f"{key} differs: {out} was profiled with {key}={found!r}, this run asks {asked!r}; "
                    "use another --out, the original settings to resume, or remove it to profile again"
                )
        return
    write_json_atomic(path, manifest)


def load_manifest(out: Path) -> dict[str, Any]:
    path = Path(out) / MANIFEST
    if not path.exists():
        raise LutError(f"{out} is not a profile directory (no {MANIFEST}); run `hwnas profile --device ... --out {out}`")
    manifest = read_json(path, LutError, what="profile manifest", fix=f"re-run `hwnas profile --device ... --out {out}`")
    for key, kind in (("space", str), ("space_config", dict)):
        if not isinstance(manifest.get(key), kind):
            raise LutError(f"profile manifest {path} has no valid {key!r}; re-run `hwnas profile --device ... --out {out}`")
    return manifest


# ---- measuring ----------------------------------------------------------------------------


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress]:
    """Bars with ETA on stderr when it is a terminal (logs stay clean)."""
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=False,
    )
    with progress:
        yield progress


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _measure(settings: ProfileSettings, modules: Sequence[Any], shapes: Sequence[tuple[int, ...]], config: MeasureConfig | None) -> list[Any]:
    return measure_interleaved(
        list(modules),
        backend=settings.backend,
        device=settings.device,
        input_shapes=list(shapes),
        precision=settings.precision,
        config=config,
    )


def _device_name(context: dict[str, Any]) -> str:
    return str(context.get("device_name") or context.get("device") or "")


def _measured_ops(path: Path) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """{item name: (median ms, cv)} and the measurement context saved so far in ops.partial.jsonl."""
    if not path.exists():
        return {}, {}
    timings: dict[str, tuple[float, float]] = {}
    context: dict[str, Any] = {}
    for _, line in read_jsonl(path, LutError, what="per-op progress file").records:
        try:
            for name, median, cv in line["items"]:
                timings[str(name)] = (finite_number(median, f"{name} median_ms", LutError),
                                      finite_number(cv, f"{name} cv", LutError))
            context = context or dict(line.get("context", {}))
        except (KeyError, TypeError, ValueError, LutError):
            continue  # a line this code did not write: measure those items again
    return timings, context


def measure_ops(settings: ProfileSettings, space: SearchSpace, progress: Progress) -> LatencyTable:
    """Time every op item and fixed part alone, round-robin in blocks; return the table (no model).

    Each block's timings are appended to ops.partial.jsonl the moment they are measured, so an
    interrupted run keeps them and the next run measures only the rest; the file goes once
    lut.json holds the whole table."""
    items = list(space.op_items(settings.batch_size))
    fixed = list(space.fixed_items(settings.batch_size))
    partial = settings.out / OPS_PROGRESS
    timings, context = _measured_ops(partial)
    todo = [it for it in items + fixed if it.name not in timings]
    task = progress.add_task("per-op LUT", total=len(items) + len(fixed), completed=len(items) + len(fixed) - len(todo))
    for chunk in _chunks(todo, max(settings.block_size, 16)):
        results = _measure(settings, [it.module for it in chunk], [tuple(it.input_shape) for it in chunk], settings.op_config)
        context = context or results[0].to_dict()["context"]
        line = {"items": [[it.name, float(r.median_ms), float(r.cv)] for it, r in zip(chunk, results, strict=True)],
                "context": context}
        append_jsonl(partial, [line])
        timings.update({name: (median, cv) for name, median, cv in line["items"]})
        progress.advance(task, len(chunk))
    ops = tuple(OpEntry(str(it.decision), str(it.choice), tuple(it.input_shape), *timings[it.name]) for it in items)
    fixed_entries = tuple(FixedEntry(it.name, tuple(it.input_shape), *timings[it.name]) for it in fixed)
    return new_table(settings, space, context, ops, fixed_entries)


def new_table(
    settings: ProfileSettings,
    space: SearchSpace,
    context: dict[str, Any],
    ops: tuple[OpEntry, ...] = (),
    fixed: tuple[FixedEntry, ...] = (),
) -> LatencyTable:
    """A LatencyTable for this profile (no per-op entries with --skip-ops; the model comes with the fit)."""
    return LatencyTable(
        space=space.name,
        space_version=space.version,
        space_config=space.config,
        space_signature=space.signature(),
        conditions=conditions_of(settings, space, _device_name(context)),
        context=context,
        ops=ops,
        fixed=fixed,
    )


def measure_block(
    settings: ProfileSettings,
    space: SearchSpace,
    jobs: Sequence[tuple[int, int]],
    reference_model: Any,
    costs: CostTable,
) -> list[SampleRecord]:
    """Build the block's nets, time them round-robin with the reference net, return the records."""
    archs = [planned_arch(space, settings.seed, index) for index, _ in jobs]
    models = [space.build(arch) for arch in archs]
    counts = [costs.counts(arch.choices, model, space) for arch, model in zip(archs, models, strict=True)]
    shape = tuple(space.input_shape(settings.batch_size))
    results = _measure(settings, [*models, reference_model], [shape] * (len(models) + 1), settings.net_config)
    reference = results[-1]
    block = f"{settings.shard.index}-{uuid.uuid4().hex[:12]}"
    return [
        SampleRecord(
            index=index,
            repeat=repeat,
            block=block,
            arch=arch.to_dict(),
            latency_ms=float(result.value_ms),
            reference_ms=float(reference.value_ms),
            macs=macs,
            params=params,
            result=result.to_dict(),
            reference_samples_ms=tuple(reference.samples_ms),
            runs_per_round=settings.net_config.runs_per_round if settings.net_config else 0,
        )
        for (index, repeat), arch, result, (macs, params) in zip(jobs, archs, results[:-1], counts, strict=True)
    ]


def _existing_table(out: Path, signature: str, settings: ProfileSettings) -> LatencyTable | None:
    if not (out / "lut.json").exists():
        return None
    return load(
        out,
        Expectation(
            space_signature=signature,
            device=None if settings.shard.count > 1 else settings.device,
            backend=settings.backend,
            batch_size=settings.batch_size,
            precision=settings.precision,
            cuda_graphs=settings.cuda_graphs,
        ),
    )


def fit_directory(out: Path, test_fraction: float = 0.2, seed: int = 0) -> tuple[LatencyTable, FitReport, ReadResult]:
    """Refit the linear model from every samples file in `out`; rewrite lut.json and the report."""
    manifest = load_manifest(out)
    space = get_space(manifest["space"], **manifest["space_config"])
    read = read_directory(out)
    table = load(out, model=False) if (out / "lut.json").exists() else None  # the model is what is re-fitted
    if table is None:
        raise LutError(f"{out} has no lut.json yet; run the profile (without --skip-ops) first")
    check_records_match(table, read.records, f"samples in {out}")
    report = fit_and_evaluate(read.records, features_from_names(space.feature_names()), table, test_fraction, seed)
    table = table.with_model(report.model)
    save(table, out / "lut.json")
    write_report(out, table, report, read)
    return table, report, read


def launch_bound_note(records: Sequence[SampleRecord]) -> str | None:
    """Say when most timed nets were launch-bound (the host's enqueue time >= GPU time).

    Then CUDA-event time is the host's launch speed, not the GPU's work, and the host's speed
    drifts: on the H200 run of 2026-11-27 the raw retest of 16 nets disagreed with their first
    pass by 26% (MAPE), against 4.7% once corrected by the reference net of each block, while
    graph replays of every network timed there had a cv of 0.1-0.4%."""
    share = mostly_launch_bound([r.result.get("launch_bound") for r in records
                                 if not r.result.get("context", {}).get("cuda_graphs")])
    if share is None:
        return None
    bound, known = share
    return (f"note: {bound} of {known} networks were launch-bound (host enqueue >= GPU time): their eager "
            "latency follows the host's launch speed, which drifts; the fit uses the reading with the lowest "
            "retest noise (lut.targets), and `--cuda-graphs` times the GPU's work alone")


def check_settings(settings: ProfileSettings) -> SearchSpace:
    """Everything that can be refused before a file is written: the space configuration, and
    whether the backend can run on the device at that precision. Returns the space."""
    space = make_space(settings)
    check(settings.backend, settings.device, settings.precision)
    if settings.batch_size < 1:
        raise LutError(f"--batch-size must be at least 1, got {settings.batch_size}")
    if settings.out.exists() and not settings.out.is_dir():
        raise LutError(f"--out {settings.out} is a file; give a profile directory")
    return space


def profile_device(settings: ProfileSettings) -> ProfileOutcome:
    """Run (or resume) the whole profile; see the module docstring.

    Inputs are checked before anything is written; the directory is locked for this process
    (one lock per samples file, so shards run side by side), and a second process is refused."""
    space = check_settings(settings)
    with run_lock(settings.out, LutError, what="profile directory", name=f".{settings.shard.file_name}.lock"):
        return _profile_locked(settings, space)


def _profile_locked(settings: ProfileSettings, space: SearchSpace) -> ProfileOutcome:
    started = time.perf_counter()
    out = settings.out
    check_manifest(out, manifest_of(settings, space), sharded=settings.shard.count > 1)
    table = _existing_table(out, space.signature(), settings)
    drop_torn_tail(out / settings.shard.file_name)  # what a kill of the previous run left: resume from whole lines
    measured_now = 0
    with _progress(settings.progress) as progress:
        if table is None and not settings.skip_ops and settings.shard.index == 0:
            table = measure_ops(settings, space, progress)
            save(table, out / "lut.json")
            (out / OPS_PROGRESS).unlink(missing_ok=True)
        done = read_directory(out).done()
        todo = [job for job in planned_jobs(settings) if job not in done]
        if todo:
            reference_arch = planned_arch(space, settings.seed, REFERENCE_STREAM)
            reference = space.build(reference_arch)
            costs = CostTable.for_space(space, reference_arch)
            task = progress.add_task(f"networks (shard {settings.shard})", total=len(todo))
            path = out / settings.shard.file_name
            for block in _chunks(todo, settings.block_size):
                append(path, measure_block(settings, space, block, reference, costs))
                measured_now += len(block)
                progress.advance(task, len(block))
    read = read_directory(out)
    if table is None and settings.shard.index == 0 and read.records:
        table = new_table(settings, space, dict(read.records[0].result.get("context", {})))
        save(table, out / "lut.json")
    fit: FitReport | None = None
    notes: list[str] = [note] if (note := launch_bound_note(read.records)) else []
    if settings.fit and settings.shard.index == 0 and table is not None:
        try:
            table, fit, read = fit_directory(out, settings.test_fraction, settings.seed)
        except LutError as error:
            notes.append(f"not fitted: {error}")
    return ProfileOutcome(
        out=out,
        table=table,
        fit=fit,
        samples=len(read.records),
        measured_now=measured_now,
        problems=read.problems,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
    )
