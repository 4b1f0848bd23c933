"""The one interface every search space offers (docs/design.md#31-architecture).

A space is a list of named categorical decisions plus a configuration
(widths, resolution, classes, ...). Sampling, validation, the one-hot
encoding and the derivation from probabilities are the same for every space
and live here; building networks and supernets is each space's own.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from search_spaces.architecture import Architecture, Decision, OpItem
from search_spaces.choice import copy_weights
from search_spaces.counting import AUXILIARY
from search_spaces.errors import ArchitectureError


@dataclass(frozen=True)
class ChainPart:
    """One part of a network that is a chain (each part's output is the next one's input): its
    name (as the per-op LUT names it: position and choice, or `stem` / `head`), the exact input
    shape it sees, and how to build it (called only when the module itself is needed)."""

    name: str
    input_shape: tuple[int, ...]
    build: Callable[[], nn.Module]



@dataclass(frozen=True)
class Pruning:
    """`derive` keeps `keep` decisions of each group and sets the others to `dropped` (DARTS: two input
    edges per node, the rest `none`)."""

    groups: tuple[tuple[str, ...], ...]
    keep: int
    dropped: str

class SearchSpace:
    """Base class: subclasses set `name`, `version`, normalise `config` and
    implement `_decisions`, `build`, `supernet`, `input_shape`."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    ARCHITECTURE_KEYS: ClassVar[tuple[str, ...]] = ()
    """Configuration keys that say what the choices mean (proxyless widths, DARTS
    parameterization): an architecture drawn with other values is another network,
    and `validate` refuses it. The other keys say how the network is instantiated
    (input size, classes, CIFAR or ImageNet body, C, cells, auxiliary head) and may
    differ, as DARTS evaluates a searched cell in a larger network."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config: dict[str, Any] = json.loads(json.dumps(dict(config)))

    # ---- decisions -------------------------------------------------------------------
    @cached_property
    def decisions(self) -> list[Decision]:
        return self._decisions()

    def _decisions(self) -> list[Decision]:
        raise NotImplementedError(f"{type(self).__name__} must define _decisions(): every registered space does")

    @cached_property
    def _decision_index(self) -> dict[str, Decision]:
        return {decision.name: decision for decision in self.decisions}

    def signature(self) -> str:
        """Stable hash of name + version + configuration: a LUT measured for one
        configuration is refused for another."""
        payload = json.dumps({"space": self.name, "version": self.version, "config": self.config}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    # ---- architectures -----------------------------------------------------------------
    def architecture(self, choices: Mapping[str, str], **extra: Any) -> Architecture:
        arch = Architecture(self.name, self.version, dict(self.config), dict(choices), dict(extra))
        self.validate(arch)
        return arch

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Uniform over every decision independently."""
        return self.architecture(
            {d.name: d.choices[int(rng.integers(len(d.choices)))] for d in self.decisions}
        )

    @property
    def network_draw(self) -> str:
        """Names what `sample_network` draws; a device profile records it, since its plan is made of these draws."""
        return "uniform"

    def sample_network(self, rng: np.random.Generator) -> Architecture:
        """A uniform draw among the networks `derive` can return: what a device profile measures and a
        searched network is compared with. Where every architecture is derivable (argmax), `sample`."""
        return self.sample(rng)

    @property
    def pruning(self) -> Pruning | None:
        """How `derive` prunes decisions to a fixed choice, or None where it is the argmax of every decision.
        A latency term that prices the derived network needs this (`hwnas.estimators.expected_latency`)."""
        return None

    def validate(self, arch: Architecture) -> None:
        """Raise ArchitectureError naming the decision and its allowed choices."""
        if arch.space != self.name:
            raise ArchitectureError(f"architecture belongs to space {arch.space!r}, not {self.name!r}")
        if arch.space_version != self.version:
            raise ArchitectureError(
                f"architecture has space_version {arch.space_version}; space {self.name!r} is version {self.version}"
            )
        self._check_config(arch)
        for decision in self.decisions:
            if decision.name not in arch.choices:
                raise ArchitectureError(
                    f"decision {decision.name!r} has no choice; allowed: {', '.join(decision.choices)}"
                )
            value = arch.choices[decision.name]
            if value not in decision.choices:
                raise ArchitectureError(
                    f"decision {decision.name!r} has choice {value!r}; allowed: {', '.join(decision.choices)}"
                )
        unknown = sorted(set(arch.choices) - set(self._decision_index))
        if unknown:
            raise ArchitectureError(
                f"decision {unknown[0]!r} does not exist in space {self.name!r} with this configuration"
                f" ({len(unknown)} unknown); decisions look like {self.decisions[0].name!r}"
            )

    def _check_config(self, arch: Architecture) -> None:
        """Refuse an architecture whose configuration gives its choices another
        meaning here (issue #13: proxyless_gpu built at the search widths)."""
        if not self.ARCHITECTURE_KEYS:
            return
        theirs = _normalised_config(type(self), json.dumps(arch.config, sort_keys=True))
        for key in self.ARCHITECTURE_KEYS:
            if theirs.get(key) != self.config.get(key):
                raise ArchitectureError(
                    f"architecture was drawn with {key}={json.dumps(theirs.get(key))} but this {self.name} space has"
                    f" {key}={json.dumps(self.config.get(key))}: build it with space_for(arch), or give the space"
                    f" the architecture's {key}"
                )

    def encode(self, arch: Architecture) -> np.ndarray:
        """One-hot feature vector (float64) of the linear latency model: the
        decisions in order, each one-hot over its choices."""
        self.validate(arch)
        vector = np.zeros(sum(len(d.choices) for d in self.decisions), dtype=np.float64)
        offset = 0
        for decision in self.decisions:
            vector[offset + decision.choices.index(arch.choices[decision.name])] = 1.0
            offset += len(decision.choices)
        return vector

    def feature_names(self) -> list[str]:
        return [f"{d.name}={choice}" for d in self.decisions for choice in d.choices]

    def one_hot(self, arch: Architecture, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """The supernet weights that select exactly `arch` (one-hot per decision)."""
        self.validate(arch)
        weights = {}
        for decision in self.decisions:
            vector = torch.zeros(len(decision.choices), device=device)
            vector[decision.choices.index(arch.choices[decision.name])] = 1.0
            weights[decision.name] = vector
        return weights

    def derive(self, probabilities: Mapping[str, Sequence[float]]) -> Architecture:
        """The architecture a search ends with: argmax of each decision.
        (The DARTS edge parameterization overrides this with its top-2 rule.)"""
        return self.architecture(
            {d.name: d.choices[int(np.argmax(self._probabilities(probabilities, d)))] for d in self.decisions}
        )

    @staticmethod
    def _probabilities(probabilities: Mapping[str, Sequence[float]], decision: Decision) -> np.ndarray:
        if decision.name not in probabilities:
            raise ArchitectureError(f"no probabilities for decision {decision.name!r}")
        values = np.asarray(probabilities[decision.name], dtype=np.float64)
        if values.shape != (len(decision.choices),):
            raise ArchitectureError(
                f"decision {decision.name!r} needs {len(decision.choices)} probabilities"
                f" ({', '.join(decision.choices)}), got shape {values.shape}"
            )
        return values

    # ---- networks ----------------------------------------------------------------------
    def build(self, arch: Architecture, num_classes: int | None = None) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must define build(): every registered space does")

    def supernet(self, **kwargs: Any) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must define supernet(): every registered space does")

    def input_shape(self, batch_size: int) -> tuple[int, int, int, int]:
        raise NotImplementedError(f"{type(self).__name__} must define input_shape(): every registered space does")

    def extract_subnet(self, supernet: nn.Module, arch: Architecture) -> nn.Module:
        """The standalone network of `arch` carrying the supernet's weights.

        Standalone networks keep the supernet's module paths (a decision point
        holds only its chosen candidate), so inheritance is a copy path by path;
        a candidate of a weight-sharing supernet is cropped and sliced out of its
        shared block (`search_spaces.choice.copy_weights`)."""
        parameter = next(supernet.parameters(), None)
        network = self.build(arch).to(parameter.device if parameter is not None else "cpu")
        # The supernet has no auxiliary head (DARTS trains it only in the final
        # network): the standalone head keeps its initialisation.
        head = getattr(network, AUXILIARY, None)
        if head is not None and getattr(supernet, AUXILIARY, None) is None:
            setattr(network, AUXILIARY, None)
        try:
            copy_weights(supernet, network)
        finally:
            if head is not None:
                setattr(network, AUXILIARY, head)
        return network.train(supernet.training)

    def op_items(self, batch_size: int) -> list[OpItem]:
        raise ArchitectureError(f"per-op items are not available for space {self.name!r}")

    def fixed_items(self, batch_size: int) -> list[OpItem]:
        raise ArchitectureError(f"per-op items are not available for space {self.name!r}")

    def chain(self, arch: Architecture, batch_size: int) -> list[ChainPart] | None:
        """`build(arch)` as a chain of parts, in order, at `batch_size`; None where the network is not
        a chain (DARTS cells read two earlier outputs). Lets a profiler assemble a sampled network's
        ONNX graph from parts exported once (`profilers.onnx_parts`)."""
        return None

    def describe(self, arch: Architecture) -> list[str]:
        """Human-readable lines that say what the architecture is (CLI `arch show`)."""
        self.validate(arch)
        return [f"{name} = {choice}" for name, choice in arch.choices.items()]


@lru_cache(maxsize=256)
def _normalised_config(space: type[SearchSpace], config_json: str) -> dict[str, Any]:
    """The configuration `space` makes of `config` (defaults filled, presets
    resolved); cached because `validate` runs on every encode and build. Read only."""
    return space(**json.loads(config_json)).config


def check_config_keys(space: str, config: Mapping[str, Any], allowed: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in; an unknown key is refused with the allowed ones listed."""
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ArchitectureError(
            f"space {space!r} has no configuration key {unknown[0]!r}; allowed: {', '.join(allowed)}"
        )
    return {**allowed, **config}


def check_config_values(space: str, config: Mapping[str, Any], *, integers: Mapping[str, int] = {},
                        fractions: Sequence[str] = (), flags: Sequence[str] = ()) -> None:
    """Refuse a configuration value of the wrong type or range before anything is built or written:
    `integers` maps a key to its minimum, `fractions` must lie in [0, 1), `flags` must be true/false."""
    def refuse(key: str, wanted: str) -> None:
        raise ArchitectureError(f"space {space!r}: {key} must be {wanted}, got {config[key]!r}; "
                                f"set it as KEY=VALUE (--set / --space-option {key}=...)")

    for key, minimum in integers.items():
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            refuse(key, f"an integer >= {minimum}")
    for key in fractions:
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            refuse(key, "a number in [0, 1)")
    for key in flags:
        if not isinstance(config.get(key), bool):
            refuse(key, "true or false")
