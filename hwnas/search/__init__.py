"""Latency-constrained architecture search (`hwnas search`).

`SearchConfig` says what to run, `run_search` runs the bi-level loop and
derives the architecture, `hwnas.search.pipeline` is the whole default run
(profile, fit, search, train, export, measure).
"""

from __future__ import annotations

from hwnas.search.config import ESTIMATORS, LATENCY_ESTIMATORS, SearchConfig, check_combination
from hwnas.search.loop import SearchResult, read_metrics, run_search

__all__ = ["ESTIMATORS", "LATENCY_ESTIMATORS", "SearchConfig", "SearchResult", "check_combination", "read_metrics", "run_search"]
