"""Re-check on the GPU what the first GPU suite run (H200, 2026-11-27) showed, in under 3 minutes.

    python benchmarks/gpu_recheck.py --out OUT [--device cuda:0] [--deadline 170]
    python benchmarks/gpu_recheck.py --out /tmp/rc --device cpu     # walks every step here (small inputs)
    python benchmarks/gpu_recheck.py --out /tmp/rc --dry-run        # walks the steps without measuring
    python benchmarks/gpu_recheck.py --report-only --json benchmarks/results/gpu_recheck/<run>.json

Four steps, one per anomaly of that run (docs/benchmark-log.md, "GPU suite"), each printing its table and
writing `OUT/NN-<step>.json` as it ends (`OUT/suite.json` holds all: five files in all). They run in
the order profile noise, interleaving, fp16, search latency; below, by anomaly. The whole record
(command, commit, machine, every step and table) also goes to `--json`, by default
benchmarks/results/gpu_recheck/<GPU name, cpu or dry-run>.json; `--report-only` prints its tables again.

1. interleaving: the UNAS set timed interleaved read ~35% above the same nets timed alone. Single,
   interleaved with 2-run turns (the suite's setting), interleaved with 10-run turns, alternated
   (single, 2, 10, 2, 10, single) so the host's drift shows as a difference between like passes;
   the host's enqueue time beside every median; the first timed run of each turn against the rest.
2. fp16: plain eager fp16 read slower than fp32 (launch-bound). Per forward: CUDA kernels launched,
   layout-transform kernels (cuDNN's nchwToNhwc / nhwcToNchw), casts in front of conv/linear layers
   (`layer_casts`: 0 means the weights and input are already half, no autocast), and the time plain
   and as graph replay, for fp32, fp16 and fp16 channels_last.
3. search latency: where the in-line latency phase (0.27 s per search step) goes: building the
   sampled network, copying it to the GPU, NVML readings, warm-up (cuDNN autotuning on first shapes),
   timing; twice over the same architectures (the second pass has cuDNN's autotuning cached).
4. profile noise: two small device profiles (24 nets + 12 retests, whole networks only), plain eager
   and `--cuda-graphs`: test-retest noise of the raw, block and paired readings, and the fit.

Without CUDA (and no `--device cpu` / `--dry-run`) it exits 3 like the suite.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import add_result_options, json_path, machine, provenance, report_only, table, write_json  # noqa: E402
from gpu_suite import EXIT_NO_GPU, StepOutcome, SuiteContext, _gpu_name, _slug, run_steps  # noqa: E402

DEADLINE_S = 170
GPU_SHAPE = (32, 3, 224, 224)
CPU_SHAPE = (1, 3, 64, 64)  # --device cpu walks the code paths; its numbers mean nothing for a GPU


def _shape(context: SuiteContext) -> tuple[int, ...]:
    return GPU_SHAPE if context.device.startswith("cuda") else CPU_SHAPE


def _cuda(context: SuiteContext) -> bool:
    return context.device.startswith("cuda")


def _models(names: Sequence[str]) -> dict[str, torch.nn.Module]:
    import torchvision  # noqa: PLC0415

    import search_spaces  # noqa: PLC0415

    built: dict[str, torch.nn.Module] = {}
    for name in names:
        if name in ("proxyless_gpu", "unas_gpu"):
            arch = search_spaces.named_architecture(name)
            built[name] = search_spaces.space_for(arch).build(arch)
        else:
            built[name] = torchvision.models.get_model(name, weights=None)
    return built


def first_run_ratio(samples: Sequence[float], turn: int) -> float | None:
    """Median of each turn's first timed run over the median of the turn's other runs (1.0: no switch-in cost)."""
    if turn < 2 or len(samples) < 2 * turn:
        return None
    turns = [samples[i:i + turn] for i in range(0, len(samples) - turn + 1, turn)]
    first = statistics.median(t[0] for t in turns)
    rest = statistics.median(x for t in turns for x in t[1:])
    return first / rest


# ---- 1. interleaved against single ---------------------------------------------------------------

INTERLEAVED = ("mobilenet_v2", "proxyless_gpu", "unas_gpu", "efficientnet_b0")


def interleaving(context: SuiteContext) -> StepOutcome:
    """Alone vs interleaved with 2- and 10-run turns, alternated; graph replay interleaved at the end."""
    from profilers import MeasureConfig, measure, measure_interleaved  # noqa: PLC0415

    if context.dry_run:
        return StepOutcome("skipped", f"dry run (would time {', '.join(INTERLEAVED)} alone and interleaved)")
    models = _models(INTERLEAVED)
    shape = _shape(context)
    base = MeasureConfig(budget_s=0.5, remeasure=0, warmup_s=0.2)
    passes: list[tuple[str, int | None, bool]] = [("alone", None, False), ("interleaved", 2, False), ("interleaved", 10, False),
                                                  ("interleaved", 2, False), ("interleaved", 10, False), ("alone", None, False)]
    if _cuda(context):
        passes.append(("interleaved +graphs", 2, True))
    rows: list[list[Any]] = []
    records = context.data.setdefault("passes", [])
    for number, (mode, turn, graphs) in enumerate(passes, start=1):
        if context.seconds_left() < 20:
            context.data.setdefault("skipped", []).append(f"pass {number} ({mode}): under 20 s left")
            continue
        if turn is None:
            results = [measure(model, device=context.device, input_shape=shape, config=base, name=name)
                       for name, model in models.items()]
        else:
            config = replace(base, runs_per_round=turn, cuda_graphs=graphs)
            results = measure_interleaved(list(models.values()), device=context.device, input_shapes=shape,
                                          config=config, names=list(models))
        for result in results:
            ratio = first_run_ratio(result.samples_ms, turn or 10)
            records.append({"pass": number, "mode": mode, "turn": turn, **result.to_dict()})
            rows.append([number, mode if turn is None else f"{mode}, {turn}-run turns", result.model, result.median_ms,
                         result.p10_ms, result.p90_ms, "-" if result.enqueue_ms is None else f"{result.enqueue_ms:.3f}",
                         "-" if ratio is None else f"{ratio:.3f}", result.runs])
    table(context.record, f"alone vs interleaved, eager fp32 {list(shape)} on {_gpu_name(context.device)}",
                ["pass", "mode", "model", "median ms", "p10 ms", "p90 ms", "enqueue ms", "first/rest of turn", "runs"], rows)
    summary = _interleaving_summary(records)
    return StepOutcome("ok", summary, dict(context.data))


def _interleaving_summary(records: list[dict[str, Any]]) -> str:
    """Per mode: mean over models of (median / the model's mean 'alone' median)."""
    alone: dict[str, list[float]] = {}
    for record in records:
        if record["mode"] == "alone":
            alone.setdefault(record["model"], []).append(record["median_ms"])
    ratios: dict[str, list[float]] = {}
    for record in records:
        if record["model"] in alone and record["mode"] != "alone":
            key = f"{record['mode']} {record['turn']}-run"
            ratios.setdefault(key, []).append(record["median_ms"] / statistics.mean(alone[record["model"]]))
    return "; ".join(f"{key} / alone = {statistics.mean(values):.3f}" for key, values in ratios.items()) or "no ratio"


# ---- 2. fp16 ---------------------------------------------------------------------------------------

CASTS = ("aten::to", "aten::_to_copy")
LAYERS = ("aten::conv2d", "aten::linear", "aten::batch_norm")


def layer_casts(events: Any) -> int:
    """Casts made as a conv / linear / batch-norm layer is entered (what autocast adds; a model whose
    weights and input are already in the precision has none). Casts inside an op's own kernel
    (e.g. a half mean accumulating in float) are the op's business and not counted."""
    return sum(1 for event in events if event.name in CASTS and event.cpu_parent is not None
               and event.cpu_parent.name in LAYERS)


def forward_profile(model: torch.nn.Module, device: str, shape: tuple[int, ...], precision: str,
                    channels_last: bool) -> dict[str, Any]:
    """One forward of the eager backend's prepared runner under torch.profiler: kernels, transforms, casts."""
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    from profilers import MeasureConfig  # noqa: PLC0415
    from profilers.backends import PrepareRequest, get_backend  # noqa: PLC0415

    parsed = torch.device(device)
    request = PrepareRequest(model, parsed, shape, precision, torch.get_num_threads(),
                             MeasureConfig(channels_last=channels_last), Path(tempfile.gettempdir()), "forward")
    runner = get_backend("eager").prepare(request)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if parsed.type == "cuda" else [])
    try:
        with torch.inference_mode():
            for _ in range(3):
                runner()
            if parsed.type == "cuda":
                torch.cuda.synchronize(parsed)
            with profile(activities=activities) as prof:
                runner()
                if parsed.type == "cuda":
                    torch.cuda.synchronize(parsed)
        events = prof.events()
        kernels = [e.name for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
        kernels = [name for name in kernels if "memcpy" not in name.lower() and "memset" not in name.lower()]
        transforms = [name for name in kernels if "nchwtonhwc" in name.lower() or "nhwctonchw" in name.lower()]
        return {"kernels": len(kernels), "layout_transforms": len(transforms), "layer_casts": layer_casts(events),
                "aten_ops": sum(1 for e in events if e.cpu_parent is None and e.name.startswith("aten::")),
                "dtypes": sorted({str(p.dtype) for p in runner.model.parameters()})}
    finally:
        runner.close()


FP16_MODELS = ("mobilenet_v2", "efficientnet_b0")
FP16_VARIANTS = (("fp32", False), ("fp16", False), ("fp16", True))


def fp16(context: SuiteContext) -> StepOutcome:
    """fp32 / fp16 / fp16 channels_last: kernels per forward, casts, plain and graph-replay medians."""
    from profilers import MeasureConfig, measure  # noqa: PLC0415

    if context.dry_run:
        return StepOutcome("skipped", "dry run (would profile and time fp32 / fp16 / fp16 channels_last)")
    shape = _shape(context)
    rows: list[list[Any]] = []
    records = context.data.setdefault("variants", [])
    for name, model in _models(FP16_MODELS).items():
        for precision, channels_last in FP16_VARIANTS:
            if context.seconds_left() < 15:
                context.data.setdefault("skipped", []).append(f"{name}/{precision}: under 15 s left")
                continue
            label = precision + (" channels_last" if channels_last else "")
            try:
                found = forward_profile(model, context.device, shape, precision, channels_last)
            except Exception as error:  # noqa: BLE001 - no profiler here (CUPTI under a sandbox): still time it
                found = {"kernels": None, "layout_transforms": None, "layer_casts": 0, "aten_ops": None, "dtypes": [],
                         "profiler_error": f"{type(error).__name__}: {str(error)[:200]}"}
            if _cuda(context) and found["kernels"] == 0:
                found.update(kernels=None, layout_transforms=None, profiler_error="CUPTI recorded no kernel here")
            config = MeasureConfig(budget_s=0.5, remeasure=0, warmup_s=0.2, channels_last=channels_last)
            plain = measure(model, device=context.device, input_shape=shape, precision=precision, config=config, name=name)
            graphed = (measure(model, device=context.device, input_shape=shape, precision=precision,
                               config=replace(config, cuda_graphs=True), name=name) if _cuda(context) else None)
            records.append({"model": name, "variant": label, **found, "plain": plain.to_dict(),
                            "graphs": None if graphed is None else graphed.to_dict()})
            rows.append([name, label, found["kernels"], found["layout_transforms"], found["layer_casts"], found["aten_ops"],
                         plain.median_ms, "-" if plain.enqueue_ms is None else f"{plain.enqueue_ms:.3f}",
                         "-" if graphed is None else f"{graphed.median_ms:.3f}", ",".join(found["dtypes"])])
    table(context.record, f"fp32 / fp16 eager, {list(shape)} on {_gpu_name(context.device)}, per forward",
                ["model", "precision", "CUDA kernels", "layout transforms", "layer casts", "top-level aten ops",
                 "eager median ms", "enqueue ms", "graph replay ms", "weights"], rows)
    casts = sum(record["layer_casts"] or 0 for record in records)
    summary = f"{len(records)} variants; layer casts in all: {casts}; kernels per forward " + ", ".join(
        f"{r['model']} {r['variant']} {r['kernels']}" for r in records)
    return StepOutcome("ok", summary, dict(context.data))


# ---- 3. the search's in-line latency phase -----------------------------------------------------------

PARTS = ("build", "prepare", "gpu_state", "cpu_load", "warm_up", "timing", "host_runs")


@contextmanager
def _stopwatch(patches: Sequence[tuple[Any, str, str]], seconds: dict[str, float], sync: Callable[[], None]) -> Iterator[None]:
    """Wrap `owner.attribute` so each call adds its wall time to seconds[part] (the real function runs;
    `sync` first, so queued GPU work is charged to the part that queued it)."""
    originals = [(owner, attribute, getattr(owner, attribute)) for owner, attribute, _ in patches]

    def wrap(function: Callable[..., Any], part: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                sync()
                seconds[part] = seconds.get(part, 0.0) + time.perf_counter() - started
        return timed

    for (owner, attribute, part), (_, _, original) in zip(patches, originals, strict=True):
        setattr(owner, attribute, wrap(original, part))
    try:
        yield
    finally:
        for owner, attribute, original in originals:
            setattr(owner, attribute, original)


def search_latency(context: SuiteContext) -> StepOutcome:
    """The suite's search step's oracle (digits, proxyless, batch 32, SEARCH_MEASURE) on 8 sampled
    architectures, twice, with each part of `LatencyOracle.measure` timed."""
    import numpy as np  # noqa: PLC0415

    import profilers.api  # noqa: PLC0415
    from hwnas.datasets import load_data  # noqa: PLC0415
    from hwnas.run import space_for_data  # noqa: PLC0415
    from hwnas.search import SearchConfig  # noqa: PLC0415
    from hwnas.search.latency import SEARCH_MEASURE, LatencyConditions, LatencyOracle  # noqa: PLC0415
    from profilers.backends.eager import EagerBackend  # noqa: PLC0415

    if context.dry_run:
        return StepOutcome("skipped", "dry run (would time 8 sampled networks as the search's oracle does, twice)")
    batch = _shape(context)[0]
    config = SearchConfig.from_flat(space="proxyless", dataset="digits", data_limit=600, device=context.device,
                                    latency_device=context.device, latency_backend="eager", latency_batch_size=batch)
    space = space_for_data(config, load_data("digits", seed=0, limit=600))
    oracle = LatencyOracle(space, LatencyConditions(context.device, "eager", batch, "fp32", config.latency.conditions.threads),
                           config=replace(SEARCH_MEASURE, budget_s=config.latency.measure_budget_s))
    archs = [space.sample(np.random.default_rng([7, i])) for i in range(8)]
    cuda = _cuda(context)
    sync = (lambda: torch.cuda.synchronize(context.device)) if cuda else (lambda: None)
    rows: list[list[Any]] = []
    passes = context.data.setdefault("passes", [])
    for number in (1, 2):
        if context.seconds_left() < 15:
            context.data.setdefault("skipped", []).append(f"pass {number}: under 15 s left")
            continue
        seconds: dict[str, float] = {}
        patches = [(space, "build", "build"), (EagerBackend, "prepare", "prepare"), (profilers.api, "gpu_state", "gpu_state"),
                   (profilers.api, "cpu_load", "cpu_load"), (profilers.api, "warm_up", "warm_up"),
                   (profilers.api, "_measure_with_retries", "timing"), (profilers.api, "time_host", "host_runs")]
        started = time.perf_counter()
        with _stopwatch(patches, seconds, sync):
            results = [oracle.measure_sample(arch) for arch in archs]  # what the search calls per new sample
        total = time.perf_counter() - started
        per_net = {part: seconds.get(part, 0.0) / len(archs) for part in PARTS}
        per_net["other"] = total / len(archs) - sum(per_net.values())
        per_net["total"] = total / len(archs)
        passes.append({"pass": number, "seconds_per_net": per_net, "runs": [r.runs for r in results],
                       "warmup_runs": [r.warmup_runs for r in results], "median_ms": [r.median_ms for r in results]})
        rows.append([number, *[f"{per_net[part] * 1000:.1f}" for part in (*PARTS, "other", "total")],
                     statistics.median(r.runs for r in results), statistics.median(r.warmup_runs for r in results),
                     statistics.median(r.median_ms for r in results)])
    table(context.record, f"search oracle per sampled net (ms of wall time), {space.name} {list(space.input_shape(batch))} "
                f"on {_gpu_name(context.device)}; pass 2 = same nets, cuDNN autotuning cached",
                ["pass", *PARTS, "other", "total", "timed runs", "warm-up runs", "net median ms"], rows)
    summary = "; ".join(f"pass {p['pass']}: {p['seconds_per_net']['total']:.3f} s per net (warm-up "
                        f"{p['seconds_per_net']['warm_up']:.3f}, timing {p['seconds_per_net']['timing']:.3f}, build+prepare "
                        f"{p['seconds_per_net']['build'] + p['seconds_per_net']['prepare']:.3f}, NVML "
                        f"{p['seconds_per_net']['gpu_state']:.3f})" for p in passes)
    return StepOutcome("ok", summary or "no pass ran", dict(context.data))


# ---- 4. device-profile noise: plain eager against graph replay -------------------------------------------

def profile_noise(context: SuiteContext) -> StepOutcome:
    """Two 24-net profiles (12 retested), whole networks only: plain eager, then --cuda-graphs."""
    from lut.profile import profile_device, resolve_settings  # noqa: PLC0415

    if context.dry_run:
        return StepOutcome("skipped", "dry run (would profile 24 networks + 12 retests, plain and as graph replays)")
    cuda = _cuda(context)
    rows: list[list[Any]] = []
    runs = context.data.setdefault("profiles", [])
    for graphs in ((False, True) if cuda else (False,)):
        if context.seconds_left() < 30:
            context.data.setdefault("skipped", []).append(f"cuda_graphs={graphs}: under 30 s left")
            continue
        settings = resolve_settings(space="proxyless", device=context.device, backend="eager", samples=24, retest=12,
                                    block_size=12, batch_size=_shape(context)[0], skip_ops=True, progress=False,
                                    input_size=None if cuda else 64, cuda_graphs=graphs,
                                    out=tempfile.mkdtemp(prefix="hwnas-recheck-profile-"))
        settings = replace(settings, net_config=replace(settings.net_config, budget_s=0.3, warmup_s=0.1))
        outcome = profile_device(settings)
        floors = {} if outcome.fit is None else {k: v.to_dict() for k, v in outcome.fit.noise_floors.items()}
        stored = None if outcome.fit is None else outcome.fit.metrics[outcome.fit.chosen].to_dict()
        runs.append({"cuda_graphs": graphs, "seconds": outcome.seconds, "samples": outcome.samples, "notes": list(outcome.notes),
                     "noise_floors": floors, "fitted_reading": None if outcome.fit is None else outcome.fit.target,
                     "stored_fit": stored, "out": str(outcome.out)})
        label = "graph replay" if graphs else "plain eager"
        for reading, floor in floors.items():
            fitted = outcome.fit is not None and reading == outcome.fit.target
            rows.append([label, f"retest, {reading} reading" + (" (fitted)" if fitted else ""), floor["n"],
                         floor["mape"], floor["spearman"], f"{outcome.seconds:.0f} s"])
        if stored is not None:
            rows.append([label, f"stored fit ({outcome.fit.chosen}), held out", stored["n"], stored["mape"], stored["spearman"], ""])
        for note in outcome.notes:
            print(f"  {label}: {note}")
    table(context.record, f"device profile noise, proxyless eager fp32 batch {_shape(context)[0]} on {_gpu_name(context.device)}",
                ["timing", "what", "n", "MAPE %", "Spearman", "profile time"], rows)
    summary = "; ".join(f"{'graphs' if r['cuda_graphs'] else 'plain'}: raw retest MAPE "
                        f"{r['noise_floors'].get('raw', {}).get('mape', float('nan')):.1f}%, fitted "
                        f"{r['fitted_reading']}" for r in runs)
    return StepOutcome("ok", summary or "no profile ran", dict(context.data))


# The profile first: it checks the fix (--cuda-graphs) and is the longest; the others shrink to what is left.
STEPS = [
    ("profile noise: plain eager vs CUDA-graph replay", profile_noise),
    ("interleaving: alone vs interleaved turns (eager, CUDA)", interleaving),
    ("fp16: kernels, casts and times per forward", fp16),
    ("search latency: where the in-line phase goes", search_latency),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-check the first GPU run's anomalies (about 3 minutes on one GPU).")
    parser.add_argument("--device", default="cuda:0", help="cuda:N, or cpu to walk every step here on small inputs")
    parser.add_argument("--out", default="gpu_recheck", help="folder for suite.json and one JSON file per step")
    parser.add_argument("--dry-run", action="store_true", help="walk the steps without measuring")
    parser.add_argument("--deadline", type=float, default=DEADLINE_S, help=f"seconds for all steps (default {DEADLINE_S})")
    add_result_options(parser, "gpu_recheck", "<GPU name, cpu or dry-run>")
    args = parser.parse_args(argv)
    if args.report_only:
        if args.json is None:
            parser.error("--report-only needs --json FILE (a file under benchmarks/results/gpu_recheck)")
        return report_only(args.json)
    if args.device.startswith("cuda") and not args.dry_run:
        from profilers._device import cuda_unavailable_reason  # noqa: PLC0415

        reason = cuda_unavailable_reason()
        if reason is not None:
            print(f"gpu_recheck: no usable CUDA GPU: {reason}. Nothing was checked "
                  "(`--device cpu` or `--dry-run` walk the steps here).", file=sys.stderr)
            return EXIT_NO_GPU
    context = SuiteContext(args.device, time.monotonic() + args.deadline, dry_run=args.dry_run)
    header = {"suite": "gpu_recheck", "dry_run": args.dry_run, "device": args.device, "machine": machine()}
    context.record.update({"benchmark": "gpu_recheck", "provenance": provenance(argv), **header})
    code = run_steps(STEPS, context, Path(args.out), header)
    run = "dry-run" if args.dry_run else ("cpu" if not _cuda(context) else _slug(_gpu_name(args.device)))
    write_json(json_path(args, "gpu_recheck", run), context.record)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
