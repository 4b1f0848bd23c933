"""The whole `hwnas search` run: profile -> fit -> target -> search -> train -> export -> measure.

1. Device profile of the search space under the latency conditions (lut's
   pipeline: per-op LUT, whole-network samples, linear fit), reused when the
   profile directory already holds one for the same space and conditions.
2. Latency target: given in ms, or `auto` = a quantile of the latencies of
   the profile's random networks, so it lies inside what this machine
   measures (the search must find networks faster than most random ones).
3. Search with true latency in the loop (`run_search`), derive.
4. Train the derived network briefly from the supernet's weights, export it
   to ONNX and time that file with the target backend, report vs the target.
5. Judge it (docs/design.md#8-judging-a-search) at a cost that fits the run: the supernet's
   search-val accuracy curve, and the derived network against the profile's
   random networks at its measured latency, all with inherited weights
   (`hwnas.search.standing`; standing.json and the report's plot).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas import distributed
from hwnas.datasets import DataSplits, FolderSplits, load_data
from hwnas.estimators import LinearSurrogate
from hwnas.errors import UsageError
from hwnas.objectives import LatencyPenalty
from hwnas.report import write_report
from hwnas.report.runfiles import SUPERNET_TAIL, binned, search_val_accuracy, tail_mean
from hwnas.search.config import SearchConfig
from hwnas.search.latency import FINAL_MEASURE, LatencyConditions, LatencyOracle, load_surrogate, surrogate_range
from hwnas.search.loop import SearchResult, load_search_data, read_metrics, run_search, space_for_data
from hwnas.search.standing import Standing, standing
from hwnas.search.train import TrainReport, train_network
from lut.errors import LutError
from lut.samples import read_directory
from lut.table import load, write_json_atomic
from profilers import LatencyResult
from search_spaces import SearchSpace
from search_spaces.files import atomic_write, wait_while_locked

SMALL_WIDTHS = [16, 8, 16, 24, 32, 48, 64, 96, 256]
SMALL_DEPTHS = [2, 2, 2, 2, 2, 1]

DEFAULT_SPACE_CONFIGS: dict[str, dict[str, dict[str, Any]]] = {
    "cluttered_mnist": {
        "proxyless": {"small_input": False, "widths": SMALL_WIDTHS, "depths": SMALL_DEPTHS},
        "darts": {"parameterization": "edges", "C": 4, "layers": 5},
    },
    "mnist": {
        "proxyless": {"small_input": True, "widths": SMALL_WIDTHS, "depths": SMALL_DEPTHS},
        "darts": {"parameterization": "edges", "C": 8, "layers": 5},
    },
}
"""Per data set (others: the `mnist` entry), the spaces sized so the whole default run takes minutes
on 2 CPU cores. The cluttered 36x36 canvas with the proxyless stem at stride 2 costs about what
MNIST at 14x14 with the small-input stem (stride 1) costs; a 5-cell DARTS network."""

DEFAULT_IMAGE_SIZES: dict[str, dict[str, int]] = {
    "cluttered_mnist": {"proxyless": 36, "darts": 36},
    "mnist": {"proxyless": 14, "darts": 16},
}
"""Side the images are resized to with the default configuration: the cluttered canvas at 36 (a
28-pixel digit still fits); MNIST at 14x14 costs a quarter of 28x28 per step (DARTS needs a multiple of 4)."""


def default_space(dataset: str, space: str) -> tuple[dict[str, Any], int | None]:
    """(space configuration, image side) of a run that gives no space options."""
    key = dataset if dataset in DEFAULT_SPACE_CONFIGS else "mnist"
    return dict(DEFAULT_SPACE_CONFIGS[key].get(space, {})), DEFAULT_IMAGE_SIZES[key].get(space)


AUTO_TARGET_QUANTILE = 0.3

PROFILE_SAMPLES = 30
"""Random networks timed when the run profiles the device (`--profile-samples`)."""

TRAIN_STEPS = 150
"""Training steps of the found network (`--train-steps`): sized, like the search, so the default run takes
minutes on 2 CPU cores."""


@dataclass(frozen=True)
class PipelineResult:
    """Everything the default run reports (latencies in ms, times in seconds)."""

    search: SearchResult
    profile_dir: Path | None
    target_ms: float | None
    target_source: str
    train: TrainReport
    onnx_path: Path | None
    measured: LatencyResult
    accepted: bool | None
    seconds: dict[str, float]
    standing: Standing | None = None
    supernet_val_acc: tuple[float, ...] = ()

    def lines(self) -> list[str]:
        m = self.measured
        run = self.search.run_dir
        if self.target_ms is None:
            target = "target         none (no latency term)"
        else:
            off = 100.0 * (m.value_ms / self.target_ms - 1.0)
            if not self.accepted:
                verdict = "MISSED the target (outside the 15% tolerance)"
            else:
                verdict = "under the target" if off <= 0 else "over the target, within the 15% tolerance"
            target = f"target         {self.target_ms:.3f} ms ({self.target_source}); measured is {off:+.1f}% -> {verdict}"
        profile = "none" if self.profile_dir is None else f"{self.profile_dir}  (report: {self.profile_dir / 'report.md'})"
        return [
            f"architecture   {run / 'arch.json'}",
            *[f"               {line}" for line in self.search.space.describe(self.search.arch)],
            f"metrics        {run / 'metrics.jsonl'}  (latencies timed during search: {run / 'latencies.jsonl'})",
            f"report         {run / 'report.md'}  (plots beside it)",
            f"device profile {profile}",
            f"onnx           {self.onnx_path or '(not exported: the backend runs PyTorch eager)'}",
            f"weights        {run / 'model.pt'}",
            f"test accuracy  {self.train.test_accuracy:.4f} after {self.train.steps} training steps",
            f"latency        {m.value_ms:.3f} ms measured ({m.context.backend} {m.context.provider or ''} on {m.context.device},"
            f" batch {m.context.batch_size}, {m.context.precision}, {m.context.threads} threads; median of {m.runs} runs,"
            f" cv {m.cv:.3f})",
            target,
            *self._supernet_lines(),
            *(self.standing.lines() if self.standing is not None else []),
            *(f"timing         {line}" for line in (self.search.timing.closing_lines() if self.search.timing else [])),
            "time           " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items()),
        ]

    def _supernet_lines(self) -> list[str]:
        """The supernet's search-val accuracy curve and its last 20% against the derived network's test accuracy."""
        values = list(self.supernet_val_acc)
        tail = tail_mean(values)
        if tail is None:
            return []
        ratio = tail / self.train.test_accuracy if self.train.test_accuracy > 0 else float("nan")
        return [f"supernet       search-val accuracy per tenth of the architecture steps: "
                + " ".join(f"{v:.2f}" for v in binned(values)),
                f"               last {SUPERNET_TAIL:.0%}: {tail:.4f} = {ratio:.2f} x the derived network's test accuracy"]


def profile_dir_for(space: SearchSpace, conditions: LatencyConditions, root: str | Path = "profiles") -> Path:
    """profiles/<space>-<config signature>-<device>-<backend>-b<batch>-<precision>[-graphs]: one profile per
    condition (-graphs: timed as CUDA-graph replays; plain eager keeps the name it always had)."""
    device = conditions.device.replace(":", "")
    graphs = "-graphs" if conditions.cuda_graphs else ""
    return Path(root) / (f"{space.name}-{space.signature()[:8]}-{device}-{conditions.backend}-b{conditions.batch_size}"
                         f"-{conditions.precision}{graphs}")


def ensure_profile(space: SearchSpace, conditions: LatencyConditions, out: Path, samples: int, progress: bool) -> Path:
    """Profile the device for this space (resumes or reuses what `out` already holds); returns lut.json."""
    from lut.profile import profile_device, resolve_settings  # noqa: PLC0415 - heavy, only when profiling

    settings = resolve_settings(
        space=space.name, space_options=dict(space.config), device=conditions.device, backend=conditions.backend,
        batch_size=conditions.batch_size, precision=conditions.precision, samples=samples, out=out,
        threads=conditions.threads, progress=progress, cuda_graphs=conditions.cuda_graphs,
    )
    # Another search may be profiling these conditions right now (two searches started together): wait for
    # it and reuse its profile rather than be refused by the profile's lock (which it may also take between
    # our wait and our profile_device: then wait again).
    while True:
        wait_while_locked(out, name=f".{settings.shard.file_name}.lock",
                          on_wait=lambda pid: print(f"waiting for pid {pid}, which is using {out} ...", file=sys.stderr))
        try:
            outcome = profile_device(settings)
            break
        except LutError as error:
            if getattr(error, "locked_by", None) is None:
                raise
    if outcome.fit is None or outcome.table is None or outcome.table.model is None:
        raise UsageError(f"profiling {out} gave no fitted latency model ({'; '.join(outcome.notes)}); use more --profile-samples")
    return out / "lut.json"


def profile_latencies(profile: Path) -> np.ndarray:
    """The measured latencies (ms) of the profile's random networks (first measurements, not re-tests)."""
    return np.array([r.latency_ms for r in read_directory(profile).records if r.repeat == 0])


def auto_target(profile: Path, quantile: float = AUTO_TARGET_QUANTILE) -> float:
    """A latency (ms) inside the range of the profile's random networks: their `quantile`."""
    latencies = profile_latencies(profile)
    if latencies.size == 0:
        raise UsageError(f"{profile} holds no measured networks to place an automatic target in")
    return float(np.quantile(latencies, quantile))


def _profile_for(config: SearchConfig, space: SearchSpace, conditions: LatencyConditions, root: str | Path,
                 samples: int) -> tuple[Path | None, Path | None]:
    """(profile directory, lut.json) to use: the one given, none ('none': RELAX's control variate
    is then fitted online), or the default one for these conditions, profiled now if missing."""
    if config.latency.lut == "none":
        return None, None
    if config.latency.lut is not None:
        given = Path(config.latency.lut)
        lut_path = given if given.suffix == ".json" else given / "lut.json"
        load(lut_path, conditions.expectation(space))
        return lut_path.parent, lut_path
    profile = profile_dir_for(space, conditions, root)
    return profile, ensure_profile(space, conditions, profile, samples, config.loop.progress)


def _keep_onnx(export_dir: Path, target: Path) -> Path | None:
    """The ONNX file the profiler exported and timed, moved to a stable name (None for eager)."""
    files = sorted(export_dir.glob("*.onnx"), key=lambda path: path.stat().st_mtime) if export_dir.exists() else []
    if not files:
        return None
    files[-1].replace(target)
    return target


@dataclass(frozen=True)
class Setup:
    """What every search on the bundled data needs before it starts: the configuration with the
    space filled in, the split data, the latency conditions, and the device profile with its
    fitted linear model (None when there is no latency term or `--lut none`)."""

    config: SearchConfig
    data: DataSplits | FolderSplits
    space: SearchSpace
    conditions: LatencyConditions
    profile: Path | None
    surrogate: LinearSurrogate | None

    def predicted_range(self) -> tuple[float, float]:
        """(fastest, slowest) latency in ms the linear model predicts over the whole space."""
        if self.surrogate is None:
            raise UsageError("no latency model: this setup has no device profile")
        return surrogate_range(self.surrogate)


def prepare(config: SearchConfig, *, profile_root: str | Path = "profiles", profile_samples: int = PROFILE_SAMPLES) -> Setup:
    """Load the data, fill in the space configuration, and profile the device (or reuse a profile)."""
    if not config.data.space_config:
        space_config, side = default_space(config.data.dataset, config.data.space)
        config = config.replace(space_config=space_config, image_size=config.data.image_size or side)
    data = load_search_data(config)
    space = space_for_data(config, data)
    conditions = config.latency.conditions
    profile, surrogate = None, None
    if config.uses_latency:
        profile, lut_path = _profile_for(config, space, conditions, profile_root, profile_samples)
        config = config.replace(lut=None if lut_path is None else str(lut_path))
        if lut_path is not None:
            surrogate = load_surrogate(lut_path, space, conditions)[1]
    return Setup(config, data, space, conditions, profile, surrogate)


def _with_measured_latency(result: SearchResult, measured: LatencyResult) -> SearchResult:
    """The search result with the exported network's measured latency in arch.json's search summary.

    The search leaves it empty (`measure_final=False`: the pipeline times the trained, exported network
    instead, once); writing it back makes arch.json, and the report read from it, state the result.
    """
    summary = {**result.arch.extra.get("search", {}), "measured_latency_ms": measured.value_ms}
    arch = replace(result.arch, extra={**result.arch.extra, "search": summary})
    arch.save(result.run_dir / "arch.json")
    return replace(result, arch=arch)


def run_pipeline(
    config: SearchConfig,
    *,
    out: Path,
    target: str = "auto",
    profile_root: str | Path = "profiles",
    profile_samples: int = PROFILE_SAMPLES,
    train_steps: int = TRAIN_STEPS,
    resume: bool = False,
) -> PipelineResult | None:
    """The default run (see the module docstring); `target` is 'auto' or milliseconds.

    `resume` continues an interrupted search in `out` from its checkpoint. Under
    torchrun every rank searches; rank 0 alone trains, exports and measures (None elsewhere).
    """
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    setup = prepare(config, profile_root=profile_root, profile_samples=profile_samples)
    config, data, conditions, profile = setup.config, setup.data, setup.conditions, setup.profile
    target_ms, source = None, "no latency term"
    if config.uses_latency:
        if target == "auto":
            if profile is None:
                raise UsageError("--latency-target auto places the target in a device profile's range; give a target in ms with --lut none")
            target_ms, source = auto_target(profile), f"auto: {AUTO_TARGET_QUANTILE:.0%} quantile of the profile's random networks"
        else:
            target_ms, source = float(target), "given"
        config = config.replace(latency_target_ms=target_ms)
    seconds["profile"] = time.perf_counter() - clock

    clock = time.perf_counter()
    result = run_search(config, out, data=data, measure_final=False, resume=resume,
                        extra_config={"target_source": source, "profile": None if profile is None else str(profile)})
    seconds["search"] = time.perf_counter() - clock
    if not distributed.init_from_env(config.loop.device).is_main:
        return None  # under torchrun, rank 0 alone trains, exports and measures the found network

    clock = time.perf_counter()
    network = result.space.extract_subnet(result.supernet, result.arch)
    train = train_network(network, data, steps=train_steps, batch_size=config.loop.batch_size, seed=config.loop.seed,
                          device=config.loop.device, threads=config.loop.torch_threads)
    atomic_write(result.run_dir / "model.pt", lambda stream: torch.save(network.state_dict(), stream))
    seconds["train"] = time.perf_counter() - clock

    clock = time.perf_counter()
    oracle = LatencyOracle(result.space, conditions)
    export_dir = result.run_dir / "export"
    measured = oracle.measure(result.arch, FINAL_MEASURE, workdir=export_dir, name="model", model=network.cpu())
    onnx_path = _keep_onnx(export_dir, result.run_dir / f"model-{conditions.precision}.onnx")
    seconds["export+measure"] = time.perf_counter() - clock
    result = _with_measured_latency(result, measured)
    clock = time.perf_counter()
    standing_result = None
    if profile is not None:
        standing_result = standing(result.space, result.supernet, result.arch, measured.value_ms, profile, data,
                                   batch_size=config.loop.batch_size, seed=config.loop.seed, device=config.loop.device,
                                   threads=config.loop.torch_threads)
        standing_result = replace(standing_result, chosen_among=config.loop.derive_candidates)
        standing_result.save(result.run_dir)
    seconds["vs random"] = time.perf_counter() - clock
    accepted: bool | None = None
    if target_ms is not None:
        penalty = LatencyPenalty(target_ms, config.latency.penalty, config.latency.weight, config.latency.beta)
        accepted = penalty.satisfied(measured.value_ms)
    outcome = PipelineResult(result, profile, target_ms, source, train, onnx_path, measured, accepted, seconds,
                             standing_result, tuple(search_val_accuracy(read_metrics(result.run_dir))))
    summary = {
        "arch": str(result.run_dir / "arch.json"), "onnx": None if onnx_path is None else str(onnx_path),
        "profile": None if profile is None else str(profile), "target_ms": target_ms, "target_source": source,
        "measured_latency_ms": measured.value_ms,
        "relative_error": None if target_ms is None else measured.value_ms / target_ms - 1.0, "accepted": accepted,
        "latency_penalty": config.latency.penalty, "predicted_latency_ms": result.predicted_latency_ms,
        "train": train.to_dict(), "seconds": seconds, "measurement": measured.to_dict(),
        "supernet_val_acc_last": tail_mean(list(outcome.supernet_val_acc)),
    }
    write_json_atomic(result.run_dir / "summary.json", summary)
    write_report(result.run_dir)
    return outcome
