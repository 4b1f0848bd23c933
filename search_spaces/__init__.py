"""Search spaces of hwnas: decisions, architectures as JSON, standalone
networks, single-path supernets, parameter and MAC counts.

Depends on torch and numpy only. `get_space(name, **config)` is the one
lookup; `list_spaces()` names what is registered.
"""

from __future__ import annotations

from search_spaces.architecture import Architecture, Decision, OpItem
from search_spaces.base import Pruning, SearchSpace
from search_spaces.counting import count_macs, count_params
from search_spaces.errors import ArchitectureError
from search_spaces.registry import (
    get_space,
    list_named_architectures,
    list_spaces,
    load_architecture,
    named_architecture,
    space_for,
)

# Registration happens on import; keep these after the registry import.
from search_spaces import proxyless as _proxyless  # noqa: E402,F401  isort: skip
from search_spaces import darts as _darts  # noqa: E402,F401  isort: skip

__all__ = [
    "Architecture",
    "ArchitectureError",
    "Decision",
    "OpItem",
    "Pruning",
    "SearchSpace",
    "count_macs",
    "count_params",
    "get_space",
    "list_named_architectures",
    "list_spaces",
    "load_architecture",
    "named_architecture",
    "space_for",
]
