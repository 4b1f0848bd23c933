"""Gradient estimators of a search, one registered strategy per method.

Accuracy term (`--estimator`, `Strategy` in `base`): darts, gdas, egs, snas, reinforce, rebar, gdas-net.
Latency term (`--latency-estimator`, `LatencyStrategy` in `latency`): relax, reinforce, expected, none.
`register_strategy` refuses a duplicate name; `get_strategy` and `list_strategies` are the only
lookups (the CLI's help, the config's checks and the loop all go through them).

A strategy owns whether it samples one architecture per step, its default temperature schedule
and supernet rule, the weights it hands the supernet in the weight step, and its architecture
gradient. Nothing outside this package branches on a strategy's name.

Adding an accuracy estimator, say `foo`:

1. One new module `hwnas/search/strategies/foo.py` with a subclass of `Strategy` decorated
   `@register_strategy("foo")`: set `samples`, `temperatures` and `supernet_rule` when they differ
   from the defaults, override `training_weights` when the supernet should not train a hard sample,
   and `surrogate` (a scalar whose gradient wrt the logits is the estimate; see `gdas.py`, or the
   shared steps in `_pathwise.py` / `_score.py`) or `gradient` (see `darts.py`). A config field that
   only it reads goes in `owns`, so other strategies refuse it.
2. Import the module below, so it registers when the package loads.
3. Its tests: tests/test_strategies.py runs every registered strategy through real search steps
   (parametrised over `list_strategies()`); add a test of its gradient against an exact reference.

A latency estimator is a `LatencyStrategy` subclass in `latency.py` (or a new module imported below).
"""

from __future__ import annotations

# Registration order is the order the CLI lists them in: keep new ones at the end.
from hwnas.search.strategies import darts, gdas, egs, snas, reinforce, rebar, gdas_net, latency  # noqa: F401, I001 - they register
from hwnas.search.strategies.base import DEFAULT_SUPERNET_RULE, ArchContext, ArchStepReport, Strategy
from hwnas.search.strategies.latency import LatencyStrategy
from hwnas.search.strategies.registry import get_strategy, list_strategies, register_strategy

__all__ = [
    "DEFAULT_SUPERNET_RULE",
    "ArchContext",
    "ArchStepReport",
    "LatencyStrategy",
    "Strategy",
    "get_strategy",
    "list_strategies",
    "register_strategy",
]
