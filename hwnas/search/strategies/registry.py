"""The one registry of gradient estimators: `register_strategy` refuses a duplicate name (as
torchvision's `register_model` does); `get_strategy` and `list_strategies` are the only lookups.

Two terms have their own names (UNAS Sec. 3.1 splits L = L_d + L_n): `accuracy` strategies
(`--estimator`) and `latency` strategies (`--latency-estimator`); `reinforce` is one of each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

TERMS = ("accuracy", "latency")
_STRATEGIES: dict[str, dict[str, Any]] = {term: {} for term in TERMS}
"""term -> name -> the one instance (a `base.Strategy` or `latency.LatencyStrategy`; not imported here, so
the strategy modules can import the registry)."""

S = TypeVar("S", bound=type)


def register_strategy(name: str, term: str = "accuracy") -> Callable[[S], S]:
    """Class decorator: register one instance of the strategy under `name` for `term`."""
    if term not in TERMS:
        raise ValueError(f"strategy term {term!r} is unknown; choose one of {', '.join(TERMS)}")
    if name != name.lower():
        raise ValueError(f"strategy names are lower case (the CLI lower-cases them); got {name!r}")

    def register(cls: S) -> S:
        if name in _STRATEGIES[term]:
            raise ValueError(f"{term} strategy {name!r} is already registered by {type(_STRATEGIES[term][name]).__qualname__}")
        cls.name = name  # type: ignore[attr-defined]
        _STRATEGIES[term][name] = cls()
        return cls

    return register


def list_strategies(term: str = "accuracy") -> tuple[str, ...]:
    """The registered names of `term`, in registration order (the order the CLI shows)."""
    return tuple(_STRATEGIES[term])


def get_strategy(name: str, term: str = "accuracy"):  # noqa: ANN201 - Strategy or LatencyStrategy by term
    """The strategy registered under `name`; KeyError names the registered ones."""
    try:
        return _STRATEGIES[term][name]
    except KeyError:
        raise KeyError(f"{term} strategy {name!r} is unknown; choose one of {', '.join(_STRATEGIES[term])}") from None
