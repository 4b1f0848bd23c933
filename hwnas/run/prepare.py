"""What a search job needs before it starts: the data split, the space sized for it, the device profile.

`prepare` is the set-up of the default run (`hwnas.run.pipeline`) and of every benchmark's search:
the space configuration the run uses when none is given (`default_space`, defined once here), the
data split by the search's seed, and the device profile of that space under the latency conditions
(lut's pipeline: per-op LUT, whole-network samples, linear fit), reused when the profile directory
already holds one. `auto_target` places a latency target inside what the profile measured.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.datasets import DataSplits, FolderSplits, check_network_input, load_data
from hwnas.errors import UsageError
from hwnas.estimators import LinearSurrogate
from hwnas.search.config import SearchConfig
from hwnas.search.latency import LatencyConditions, load_surrogate, surrogate_range
from lut.errors import LutError
from lut.samples import read_directory
from lut.table import load
from search_spaces import SearchSpace, get_space
from search_spaces.files import wait_while_locked

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
