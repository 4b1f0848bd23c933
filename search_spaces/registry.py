"""The only lookup of spaces and named architectures (as torchvision's
`get_model`/`list_models`): a space registers under one name, a duplicate is
refused; named architectures are the JSON files in `search_spaces/data/`.

Names are matched case-insensitively, so the papers' spellings work
(`DARTS_V2`, `GDAS_V1`, `ProxylessNAS`... as `darts_v2`, `gdas_v1`); registered
and file names are lower case. An architecture read from a file or the data
folder comes back with its space's resolved configuration (a widths preset
name becomes its integers): what it records is what is built."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from search_spaces.architecture import Architecture
from search_spaces.base import SearchSpace
from search_spaces.errors import ArchitectureError

DATA_DIR = Path(__file__).resolve().parent / "data"

_SPACES: dict[str, type[SearchSpace]] = {}
S = TypeVar("S", bound=type[SearchSpace])


def register_space(name: str) -> Callable[[S], S]:
    if name != name.lower():
        raise ValueError(f"search space names are lower case (lookups ignore case); got {name!r}")

    def register(cls: S) -> S:
        if name in _SPACES:
            raise ValueError(f"search space {name!r} is already registered by {_SPACES[name].__qualname__}")
        cls.name = name
        _SPACES[name] = cls
        return cls

    return register


def list_spaces() -> list[str]:
    return sorted(_SPACES)


def get_space(name: str, **config: Any) -> SearchSpace:
    """The space `name` (any case) with `config` (defaults fill the rest)."""
    if not isinstance(name, str) or name.lower() not in _SPACES:
        raise ArchitectureError(f"unknown search space {name!r}; available: {', '.join(list_spaces())}")
    return _SPACES[name.lower()](**config)


def space_for(arch: Architecture) -> SearchSpace:
    """The space an architecture was drawn from, rebuilt from its own config."""
    space = get_space(arch.space, **arch.config)
    if arch.space_version != space.version:
        raise ArchitectureError(
            f"architecture has space_version {arch.space_version}; space {arch.space!r} is version {space.version}"
        )
    return space


def list_named_architectures() -> list[str]:
    return sorted(path.stem for path in DATA_DIR.glob("*.json"))


def named_architecture(name: str) -> Architecture:
    """A published architecture by name, in any case (`DARTS_V2` is `darts_v2`)."""
    if not _is_named(name):
        raise ArchitectureError(
            f"no named architecture {name!r}; available: {', '.join(list_named_architectures())}"
        )
    path = DATA_DIR / f"{name.lower()}.json"
    return resolved(Architecture.from_dict(json.loads(path.read_text(encoding="utf-8"))))


def _is_named(name: str) -> bool:
    return isinstance(name, str) and name.lower() in list_named_architectures()


def resolved(arch: Architecture) -> Architecture:
    """`arch` with its space's configuration as the space resolves it (presets
    as integers, defaults filled): files written before presets were resolved
    still load, and say what they build."""
    space = space_for(arch)
    return dataclasses.replace(arch, space=space.name, config=dict(space.config))


def load_architecture(name_or_path: str) -> Architecture:
    """A named architecture (any case), or else an architecture JSON file."""
    if _is_named(name_or_path):
        return named_architecture(name_or_path)
    path = Path(name_or_path)
    if not path.exists():
        raise ArchitectureError(
            f"{name_or_path!r} is neither a named architecture ({', '.join(list_named_architectures())})"
            " nor an existing file (file not found)"
        )
    arch = resolved(Architecture.load(path))
    _check_fits(arch, path)
    return arch


def _check_fits(arch: Architecture, path: Path) -> None:
    """Refuse a file whose network would not fit in memory even at batch 1 (widths of 100000, a
    resolution of 100000, 10**12 classes), with the estimate, before anything is allocated."""
    from search_spaces.memory import estimate, refusal  # noqa: PLC0415 - only files need it

    space = space_for(arch)
    need = estimate(lambda: space.build(arch), tuple(space.input_shape(1)))
    message = refusal(need, f"architecture file {path} at batch 1", "lower its widths, resolution or num_classes")
    if message:
        raise ArchitectureError(message)
