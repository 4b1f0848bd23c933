"""Records shared by every search space: an architecture, a decision, an op item.

An architecture is plain data (docs/design.md#31-architecture): it names its space, the
space version and configuration it was drawn from, and one choice per
decision. Everything else (the network, the supernet, the feature vector of
the latency model) is derived from it by the space.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from search_spaces.errors import ArchitectureError
from search_spaces.files import read_json, write_json

_CORE_KEYS = ("space", "space_version", "config", "choices")


@dataclass(frozen=True)
class Decision:
    """One categorical decision of a space; `choices` are in the order used by
    weight vectors (supernet forward) and by the one-hot encoding."""

    name: str
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Architecture:
    """One point of a search space, as in the JSON document of docs/design.md#31-architecture.

    `extra` keeps every other key of the document (name, source, probabilities,
    ...) so that a file read and written again loses nothing.
    """

    space: str
    space_version: int
    config: dict[str, Any]
    choices: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        """Hashable although it holds dicts: architectures go in sets and dict keys
        (sample de-duplication, measurement caches)."""
        return hash(json.dumps([self.space, self.space_version, self.config, self.choices], sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "space": self.space,
            "space_version": self.space_version,
            "config": dict(self.config),
            "choices": dict(self.choices),
        }
        for key, value in self.extra.items():
            document.setdefault(key, value)
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Architecture:
        if not isinstance(document, dict):
            raise ArchitectureError(f"an architecture is a JSON object, got {type(document).__name__}")
        missing = [key for key in _CORE_KEYS if key not in document]
        if missing:
            raise ArchitectureError(
                f"architecture document lacks {', '.join(missing)}; it needs the keys {', '.join(_CORE_KEYS)}"
            )
        config, choices = document["config"], document["choices"]
        if not isinstance(config, dict) or not isinstance(choices, dict):
            raise ArchitectureError("architecture 'config' and 'choices' must be JSON objects")
        bad = [name for name, value in choices.items() if not isinstance(value, str)]
        if bad:
            raise ArchitectureError(f"choices must be strings; decision {bad[0]!r} has {choices[bad[0]]!r}")
        try:
            version = int(document["space_version"])
        except (TypeError, ValueError, OverflowError) as error:
            raise ArchitectureError(f"space_version must be an integer: {error}") from None
        extra = {key: value for key, value in document.items() if key not in _CORE_KEYS}
        return cls(str(document["space"]), version, dict(config), dict(choices), extra)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON document atomically (`search_spaces.files.write_json`)."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Architecture:
        """Read an architecture file; a binary, cut-short or wrongly typed file is refused in one line."""
        document = read_json(path, ArchitectureError, what="architecture file",
                             fix="give an architecture JSON written by hwnas (e.g. `hwnas arch sample --out`)")
        try:
            return cls.from_dict(document)
        except ArchitectureError as error:
            raise ArchitectureError(f"architecture file {path}: {error}") from None


@dataclass(frozen=True)
class OpItem:
    """One module to time for a per-op latency table.

    `decision`/`choice` are None for fixed parts (stem, head). `input_shape`
    is the exact (N, C, H, W) the module sees inside the network. Several
    items may carry the same (decision, choice) when a decision is shared by
    several cells (DARTS spaces): their latencies add up.
    """

    decision: str | None
    choice: str | None
    name: str
    module: nn.Module
    input_shape: tuple[int, ...]
