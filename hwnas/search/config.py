"""What one search run is: `SearchConfig`, and which estimator pairs make sense.

`SearchConfig` is nested and frozen; its sections are the CLI's argument groups: `data` (space
and data), `estimator` (estimators and objective), `latency` (target, penalty and the
`LatencyConditions` it is measured under), `supernet`, `loop` and `checkpoint`. The CLI builds it
from the parsed arguments in one place (`hwnas.cli.search.config_from_args`); its defaults live
here only. A refusal is a `ConfigError` naming the field (`loop.steps`); the CLI names the flag.

The accuracy term and the latency term each get their own gradient estimator
(UNAS Sec. 3.1 splits L = L_d + L_n): REBAR for the cross-entropy plus RELAX
for the measured latency is UNAS; GDAS with the expected-LUT latency is
FBNet/ProxylessNAS-like; REINFORCE for both is MnasNet-like. A pair that
cannot work is refused by `check_combination` with one line that says why
and what to use instead.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from hwnas.estimators import DARTS_ORDERS
from hwnas.errors import UsageError
from hwnas.objectives import ACCURACY_OBJECTIVES, LATENCY_PENALTIES
from hwnas.search.sections import (
    DEFAULT_WARMUP_EPOCHS,
    CheckpointConfig,
    DataConfig,
    EstimatorConfig,
    LatencyConfig,
    LoopConfig,
    SupernetConfig,
)
from hwnas.search.strategies import get_strategy, list_strategies

LATENCY_TIMINGS = ("auto", "inline", "worker")
"""How sampled networks are timed (`hwnas.search.latency_worker`): in line, one after the other
with training; in a worker process on a core / GPU training does not use, overlapping with the
next step (the latency gradient then applies one step late); auto = worker where that is possible."""

WEIGHT_SHARING = ("shared", "independent")
"""The supernet's candidates: `shared` weights (superkernel + elastic expansion / kernel,
`search_spaces.elastic`) or `independent` ones (one module per candidate, the papers' setting)."""

SUPERNET_BATCHNORMS = ("choice", "shared")
"""With shared weights: a BatchNorm per choice, or one sliced to the channels in use (OFA)."""

SUPERNET_RULES = ("sample", "uniform", "depth", "network", "network-multi", "fair", "sandwich")
"""Which paths train the supernet in each weight step (`hwnas.search.paths`)."""

VARIANCE_TUNING = ("none", "eta", "tau-eta")
"""RELAX-paper online tuning of REBAR's eta (cheap: the variance is quadratic in eta, first-order
terms only) or of tau and eta (tau's gradient needs a second-order backward through the relaxed
supernet: several times the cost of a step, benchmarks/search_step_cost.py)."""


SECTIONS: dict[str, type] = {"data": DataConfig, "estimator": EstimatorConfig, "latency": LatencyConfig,
                             "supernet": SupernetConfig, "loop": LoopConfig, "checkpoint": CheckpointConfig}

FLAT_NAMES: dict[str, str] = {
    "estimator.accuracy": "estimator", "estimator.latency": "latency_estimator",
    "latency.target_ms": "latency_target_ms", "latency.penalty": "latency_penalty", "latency.weight": "latency_weight",
    "latency.beta": "latency_beta", "latency.timing": "latency_timing",
    "latency.conditions.device": "latency_device", "latency.conditions.backend": "latency_backend",
    "latency.conditions.batch_size": "latency_batch_size", "latency.conditions.precision": "latency_precision",
    "latency.conditions.threads": "latency_threads", "latency.conditions.cuda_graphs": "latency_cuda_graphs",
    "supernet.batchnorm": "supernet_batchnorm", "supernet.rule": "supernet_rule",
    "checkpoint.every": "checkpoint_every", "checkpoint.seconds": "checkpoint_seconds",
}
"""The one-level names of fields whose name alone is not unique (others keep their own name): what config.json
held before the nesting, and the vocabulary of `SearchConfig.from_flat` / `replace` / `flat`."""


def _paths(cls: type, prefix: str) -> list[str]:
    """Dotted paths of every leaf field under a dataclass (LatencyConditions included)."""
    out: list[str] = []
    for f in fields(cls):
        kind = f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        if dataclasses.is_dataclass(kind):
            out += _paths(type(kind), f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


PATHS: tuple[str, ...] = tuple(path for name, cls in SECTIONS.items() for path in _paths(cls, f"{name}."))
"""Every leaf field of `SearchConfig` as a dotted path (`loop.steps`, `latency.conditions.device`)."""
_BY_FLAT: dict[str, str] = {FLAT_NAMES.get(path, path.rsplit(".", 1)[1]): path for path in PATHS}


class ConfigError(UsageError):
    """A configuration that cannot work; `field` is the dotted path of the field at fault.

    The message may name other fields as `{path}`; `render` shows every field under the names a
    caller uses (the CLI: its flags), `str` under the config's own paths."""

    def __init__(self, field_path: str, detail: str) -> None:
        self.field, self.detail = field_path, detail
        super().__init__(self.render(lambda path: path))

    def render(self, name: Callable[[str], str]) -> str:
        joiner = "" if self.detail.startswith(",") else " "
        return name(self.field) + joiner + re.sub(r"\{([a-z_.]+)\}", lambda m: name(m.group(1)), self.detail)


@dataclass(frozen=True)
class SearchConfig:
    """Every knob of one search (units: learning rates per step, latencies in ms), in the CLI's sections."""

    data: DataConfig = field(default_factory=DataConfig)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def __post_init__(self) -> None:
        check_combination(self)

    @property
    def temperatures(self) -> tuple[float, float]:
        """(start, end) of the Gumbel temperature: `tau_start` / `tau_end`, or the strategy's defaults."""
        start, end = get_strategy(self.estimator.accuracy).temperatures
        tau_start, tau_end = self.estimator.tau_start, self.estimator.tau_end
        return (tau_start if tau_start is not None else start, tau_end if tau_end is not None else end)

    @property
    def rule(self) -> str:
        """The supernet-training rule in force (`supernet.rule`, or the strategy's default)."""
        if self.supernet.rule is not None:
            return self.supernet.rule
        return get_strategy(self.estimator.accuracy).supernet_rule

    def warmup_steps_for(self, train_size: int, world_size: int = 1) -> int:
        """Weight-only steps before the search: `warmup_steps` when given, else `warmup_epochs`
        passes over search-train (`train_size` images, `batch_size` per rank)."""
        if self.loop.warmup_steps is not None:
            return self.loop.warmup_steps
        return max(0, round(self.loop.warmup_epochs * train_size / (self.loop.batch_size * world_size)))

    @property
    def second_order(self) -> bool:
        """Whether the architecture gradient takes a second-order backward (tau tuning, DARTS unrolled or
        amended): it needs the whole batch's graph (recomputed or not), so `loop.micro_batch` cannot cut it."""
        return self.estimator.tune_variance == "tau-eta" or self.estimator.darts_order != "first"

    @property
    def uses_latency(self) -> bool:
        return get_strategy(self.estimator.latency, term="latency").active

    @property
    def measures_latency(self) -> bool:
        """Whether the search times sampled architectures on the target device."""
        return get_strategy(self.estimator.latency, term="latency").measures

    def to_dict(self) -> dict[str, Any]:
        """The nested form config.json holds ({section: {field: value}})."""
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """The one-level form (`FLAT_NAMES`), as config.json held it before the nesting: what a
        checkpoint and the benchmarks' state files are keyed by."""
        return flat_settings(self.to_dict())

    def get(self, path: str) -> Any:
        """The value at a dotted path (`loop.steps`)."""
        value: Any = self
        for part in path.split("."):
            value = getattr(value, part)
        return value

    @classmethod
    def from_paths(cls, values: Mapping[str, Any]) -> SearchConfig:
        """A config from {dotted path: value}; fields not named keep their defaults."""
        return cls().with_paths(values)

    @classmethod
    def from_flat(cls, **values: Any) -> SearchConfig:
        """A config from one-level names (`steps=2, latency_target_ms=0.5`; see `FLAT_NAMES`)."""
        return cls().replace(**values)

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> SearchConfig:
        """The config a config.json's `search` entry holds: the nested form, or the flat one written before
        the nesting (fields this version does not know are left out)."""
        return cls.from_flat(**{k: v for k, v in flat_settings(saved).items() if k in _BY_FLAT})

    def with_paths(self, values: Mapping[str, Any]) -> SearchConfig:
        """This config with the fields at the dotted paths in `values` changed (checked once, at the end)."""
        unknown = sorted(set(values) - set(PATHS))
        if unknown:
            raise ValueError(f"SearchConfig has no field {', '.join(unknown)}; fields: {', '.join(PATHS)}")
        sections = {name: _changed(getattr(self, name), {p.split(".", 1)[1]: v for p, v in values.items()
                                                          if p.split(".", 1)[0] == name}) for name in SECTIONS}
        return SearchConfig(**sections)

    def replace(self, **changes: Any) -> SearchConfig:
        """This config with fields changed by their one-level names (`seed=1, latency_target_ms=2.0`)."""
        unknown = sorted(set(changes) - set(_BY_FLAT))
        if unknown:
            raise ValueError(f"SearchConfig has no field {', '.join(unknown)}; fields: {', '.join(_BY_FLAT)}")
        return self.with_paths({_BY_FLAT[k]: v for k, v in changes.items()})


def _changed(section: Any, values: Mapping[str, Any]) -> Any:
    """`section` with {relative dotted path: value} applied (one level of nesting below: conditions)."""
    direct = {k: v for k, v in values.items() if "." not in k}
    for name in {k.split(".", 1)[0] for k in values if "." in k}:
        inner = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(name + ".")}
        direct[name] = replace(getattr(section, name), **inner)
    return replace(section, **direct) if direct else section


def flat_settings(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A config.json `search` entry in the one-level names, whichever form it was written in: the nested
    one ({section: {field: value}}) is flattened by `FLAT_NAMES` (`latency_cuda_graphs` only when set); the
    flat one (before the nesting) is kept."""
    if not all(isinstance(saved.get(name), Mapping) for name in SECTIONS):
        return dict(saved)
    out: dict[str, Any] = {}
    for path in PATHS:
        value: Any = saved
        for part in path.split("."):
            value = value.get(part, _MISSING) if isinstance(value, Mapping) else _MISSING
        if value is not _MISSING:
            out[FLAT_NAMES.get(path, path.rsplit(".", 1)[1])] = value
    if not out.get("latency_cuda_graphs", True):
        del out["latency_cuda_graphs"]  # no flat file has it: their keys stay what they were
    if out.get("warmup_from", "") is None:
        del out["warmup_from"]  # added later: unset, the keys of older checkpoints and result files stay what they were
    return out


_MISSING = object()


def _one_of(field_path: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(field_path, f"{value!r} is unknown; choose one of {', '.join(allowed)}")


def _check_owned(config: SearchConfig) -> None:
    """A field only one strategy reads (`Strategy.owns`) must keep its default under the others."""
    chosen = config.estimator.accuracy
    for name in list_strategies():
        if name == chosen:
            continue
        for field_name, (default, detail) in get_strategy(name).owns.items():
            value = getattr(config.estimator, field_name)
            if value != default:
                raise ConfigError(f"estimator.{field_name}", detail.replace("<value>", str(value)).replace("<chosen>", chosen))


def check_combination(config: SearchConfig) -> None:
    """Refuse a configuration that cannot work, with one line naming the field and the fix."""
    data, est, lat, loop = config.data, config.estimator, config.latency, config.loop
    _one_of("estimator.accuracy", est.accuracy, list_strategies())
    _one_of("estimator.latency", est.latency, list_strategies("latency"))
    _one_of("estimator.darts_order", est.darts_order, DARTS_ORDERS)
    _one_of("estimator.objective", est.objective, ACCURACY_OBJECTIVES)
    _one_of("latency.penalty", lat.penalty, LATENCY_PENALTIES)
    _one_of("estimator.conditional", est.conditional, ("reuse", "fresh"))
    _one_of("supernet.weight_sharing", config.supernet.weight_sharing, WEIGHT_SHARING)
    _one_of("supernet.batchnorm", config.supernet.batchnorm, SUPERNET_BATCHNORMS)
    if config.supernet.rule is not None:
        _one_of("supernet.rule", config.supernet.rule, SUPERNET_RULES)
    if data.test_renders < 1:
        raise ConfigError("data.test_renders", f"must be at least 1, got {data.test_renders}")
    if not 0 <= loop.warmup_epochs < float("inf"):
        raise ConfigError("loop.warmup_epochs", f"must be a number >= 0, got {loop.warmup_epochs}")
    _one_of("latency.timing", lat.timing, LATENCY_TIMINGS)
    _one_of("estimator.tune_variance", est.tune_variance, VARIANCE_TUNING)
    _check_owned(config)
    if est.tune_variance != "none" and not 0 < est.tune_variance_lr < float("inf"):
        raise ConfigError("estimator.tune_variance_lr", f"must be a positive number, got {est.tune_variance_lr}")
    strategy = get_strategy(est.accuracy)
    if config.measures_latency and not strategy.samples:
        sampling = [name for name in list_strategies() if get_strategy(name).samples]
        raise ConfigError(
            "estimator.latency",
            f"{est.latency} measures a sampled architecture, but {est.accuracy} trains a {strategy.trains} with no "
            f"single architecture to time; use {{estimator.latency}} expected or an estimator that samples "
            f"({', '.join(sampling)})",
        )
    if lat.target_ms is not None and not 0 < lat.target_ms < math.inf:
        raise ConfigError("latency.target_ms", f"must be positive and finite, got {lat.target_ms} ms")
    if loop.steps < 1 or (loop.warmup_steps is not None and loop.warmup_steps < 0) or loop.batch_size < 1 \
            or (loop.arch_batch_size is not None and loop.arch_batch_size < 1):
        raise ConfigError("loop.steps", ", {loop.batch_size} and {loop.arch_batch_size} must be >= 1 and "
                                        "{loop.warmup_steps} >= 0")
    if loop.micro_batch is not None:
        if loop.micro_batch < 2:
            raise ConfigError("loop.micro_batch", f"must be >= 2 images (BatchNorm in training mode needs two values "
                              f"per channel), got {loop.micro_batch}")
        if config.second_order and loop.micro_batch < (loop.arch_batch_size or loop.batch_size):
            raise ConfigError("loop.micro_batch", f"{loop.micro_batch} cannot apply: a second-order backward "
                              "({estimator.tune_variance} tau-eta, {estimator.darts_order} second or amended) needs "
                              "the whole batch's graph; leave {loop.micro_batch} out or lower {loop.arch_batch_size}")
    if loop.derive_candidates < 1:
        raise ConfigError("loop.derive_candidates",
                          f"must be >= 1 (1: the most probable network), got {loop.derive_candidates}")
    if config.checkpoint.every < 1:
        raise ConfigError("checkpoint.every", f"must be >= 1 step, got {config.checkpoint.every}")
    if not 0 < config.checkpoint.seconds < math.inf:
        raise ConfigError("checkpoint.seconds", f"must be a positive number of seconds, got {config.checkpoint.seconds}")
    if est.egs_samples < 1:
        raise ConfigError("estimator.egs_samples", f"(M) must be >= 1, got {est.egs_samples}")
    start, end = config.temperatures
    if start <= 0 or end <= 0:
        raise ConfigError("estimator.tau_start", f"and tau_end (temperatures) must be positive, got {start} -> {end}")
