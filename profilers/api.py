"""`measure` and `measure_interleaved`: prepare, warm up, time adaptively, summarise."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from profilers._context import cpu_load, gpu_state, library_versions
from profilers._device import device_name, parse_device
from profilers._mathmode import cudnn_benchmark, torch_threads
from profilers._timing import HostTimes, time_host, time_rounds, warm_up
from profilers.backends import PrepareRequest, Runner, check_request, get_backend, list_backends
from profilers.config import STATISTICS, MeasureConfig
from profilers.errors import ProfilerError
from profilers.result import LatencyResult, LayerTime, MeasurementContext
from profilers.stats import outlier_count, relative_ci, summarize

Model = nn.Module | str | Path
Shape = tuple[int, ...]
LAYER_PROFILE_RUNS = 20


def available_backends(device: str | torch.device = "cpu") -> dict[str, str | None]:
    """Each backend's name -> None if it works on `device`, else why it does not."""
    try:
        parsed = parse_device(device)
    except ProfilerError as error:
        if not str(device).startswith("cuda"):
            raise  # not a device name at all
        return {name: str(error) for name in list_backends()}
    return {name: get_backend(name).unavailable_reason(parsed) for name in list_backends()}


def check(backend: str, device: str | torch.device, precision: str) -> torch.device:
    """Refuse, before any work, a request that cannot run; returns the parsed device."""
    parsed = parse_device(device)
    check_request(get_backend(backend), parsed, precision)
    return parsed


def measure(
    model: Model,
    *,
    backend: str = "eager",
    device: str | torch.device = "cpu",
    input_shape: Shape = (1, 3, 224, 224),
    precision: str = "fp32",
    config: MeasureConfig | None = None,
    name: str | None = None,
) -> LatencyResult:
    """Latency (ms) of one model: an nn.Module, or a path to an .onnx (or TensorRT .engine) file."""
    return measure_interleaved(
        [model],
        backend=backend,
        device=device,
        input_shapes=input_shape,
        precision=precision,
        config=config,
        names=None if name is None else [name],
    )[0]


def measure_interleaved(
    models: Sequence[Model],
    *,
    backend: str = "eager",
    device: str | torch.device = "cpu",
    input_shapes: Shape | Sequence[Shape] = (1, 3, 224, 224),
    precision: str = "fp32",
    config: MeasureConfig | None = None,
    names: Sequence[str] | None = None,
) -> list[LatencyResult]:
    """Time several models round-robin so slow drift of the machine hits all alike.

    `input_shapes` is one shape for all or one per model. Noisy results
    (interval above the bound) are re-measured `config.remeasure` times,
    together, and their samples pooled. Returns one result per model,
    in order.
    """
    config = config or MeasureConfig()
    parsed = check(backend, device, precision)
    if not models:
        return []
    shapes = _shapes_for(models, input_shapes)
    labels = list(names) if names is not None else [_label(model, index) for index, model in enumerate(models)]
    if len(labels) != len(models):
        raise ProfilerError(f"{len(labels)} names for {len(models)} models; give one name per model")
    threads = config.threads or torch.get_num_threads()
    with contextlib.ExitStack() as stack:
        workdir = Path(config.workdir) if config.workdir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hwnas-")))
        workdir.mkdir(parents=True, exist_ok=True)
        stack.enter_context(torch_threads(threads))  # exactly these threads; the caller's after
        if parsed.type == "cuda":
            stack.enter_context(cudnn_benchmark(True))  # restored after: it must not leak into training
        runners: list[Runner] = []
        stack.callback(lambda: [runner.close() for runner in runners])
        for index, (model, shape, label) in enumerate(zip(models, shapes, labels, strict=True)):
            file_stem = f"{index:03d}-{_file_safe(label)}"
            request = PrepareRequest(model, parsed, shape, precision, threads, config, workdir, file_stem)
            runners.append(get_backend(backend).prepare(request))
        before, load = gpu_state(parsed), cpu_load()
        with torch.inference_mode():
            warmups = [warm_up(runner, config) for runner in runners]
            samples, attempts = _measure_with_retries(runners, config)
            hosts = [time_host(runner, config.host_runs) if runner.stream is not None and config.host_runs else None
                     for runner in runners]
        after = gpu_state(parsed)
        layers = [runner.layer_times(LAYER_PROFILE_RUNS) if config.layer_profile else None for runner in runners]
        shared = {
            "device": str(parsed),
            "device_name": device_name(parsed),
            "backend": backend,
            "precision": precision,
            "threads": threads,
            "versions": library_versions(),
            "channels_last": config.channels_last and backend == "eager",
            "cuda_graphs": config.cuda_graphs and backend == "eager",
            "gpu_before": before,
            "gpu_after": after,
            "cpu_load": load,
            "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        return [
            _result(label, MeasurementContext(**shared, provider=runner.provider, batch_size=runner.input_shape[0],
                    input_shape=tuple(runner.input_shape), details=dict(runner.details)), config, run_samples, tries, warmup,
                    layer, host)
            for label, runner, run_samples, tries, warmup, layer, host
            in zip(labels, runners, samples, attempts, warmups, layers, hosts, strict=True)
        ]


def _measure_with_retries(runners: Sequence[Runner], config: MeasureConfig) -> tuple[list[list[float]], list[int]]:
    """Time all runners; re-time the noisy ones together and pool their samples.

    Pooling (rather than keeping the better attempt) spreads a noisy model's
    samples over two time windows, which is what makes it repeatable under
    slow drift; the median stays robust to a disturbed window.
    """
    samples = time_rounds(runners, config)
    attempts = [1] * len(runners)
    for _ in range(config.remeasure):
        noisy = [i for i, s in enumerate(samples) if relative_ci(s, config.quantile) > config.target_rel_ci]
        if not noisy:
            break
        again = time_rounds([runners[i] for i in noisy], config)
        for index, new in zip(noisy, again, strict=True):
            attempts[index] += 1
            samples[index] = samples[index] + new
    return samples, attempts


def _result(
    label: str,
    context: MeasurementContext,
    config: MeasureConfig,
    samples: list[float],
    attempts: int,
    warmup: int,
    layers: tuple[LayerTime, ...] | None,
    host: HostTimes | None,
) -> LatencyResult:
    summary = summarize(samples)
    rel = relative_ci(samples, config.quantile)
    on_gpu = context.device.startswith("cuda")
    enqueue = statistics.median(host.enqueue_ms) if host else None
    return LatencyResult(
        model=label,
        **dataclasses.asdict(summary),
        samples_ms=tuple(samples),
        statistic=config.statistic,
        statistic_reason=STATISTICS[config.statistic],
        rel_ci=rel,
        noisy=rel > config.target_rel_ci,
        attempts=attempts,
        outliers=outlier_count(samples),
        warmup_runs=warmup,
        context=context,
        layers=layers,
        timing_mode="gpu_events" if on_gpu else "host_wall",
        enqueue_ms=enqueue,
        host_wall_ms=statistics.median(host.wall_ms) if host else (None if on_gpu else summary.median_ms),
        launch_bound=None if enqueue is None else enqueue >= summary.median_ms,
    )


def _shapes_for(models: Sequence[Model], input_shapes: Shape | Sequence[Shape]) -> list[Shape]:
    if input_shapes and all(isinstance(dim, int) for dim in input_shapes):
        shapes = [tuple(input_shapes)] * len(models)  # type: ignore[arg-type]
    else:
        shapes = [tuple(shape) for shape in input_shapes]  # type: ignore[union-attr]
    if len(shapes) != len(models):
        raise ProfilerError(f"{len(shapes)} input shapes for {len(models)} models; give one shape or one per model")
    for shape in shapes:
        if not shape or not all(isinstance(dim, int) and dim > 0 for dim in shape):
            raise ProfilerError(f"input shape {shape} must be positive integers (batch size first)")
    return shapes  # type: ignore[return-value]


def _label(model: Model, index: int) -> str:
    if isinstance(model, nn.Module):
        return f"{type(model).__name__}-{index}" if index else type(model).__name__
    return Path(model).name


def _file_safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:80] or "model"


