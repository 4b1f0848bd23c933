"""Latency-constrained architecture search (`hwnas search`).

`SearchConfig` says what to run (in sections: data, estimator, latency, supernet, loop,
checkpoint), each estimator is a registered strategy (`hwnas.search.strategies`),
`run_search` runs the bi-level loop and
derives the architecture, `hwnas.search.pipeline` is the whole default run
(profile, fit, search, train, export, measure).

Modules, one job each:

- `config`: `SearchConfig` and the estimator pairs that cannot work (refused in one line).
- `loop`: warm-up, then one weight step and one architecture step per step, then derive.
- `steps`: each estimator's weight and architecture step; where estimators meet the supernet.
- `terms`: the accuracy term (L_val, L_gen, L_train) and the latency term (RELAX, REINFORCE,
  expected latency, also over the networks a pruning derivation returns).
- `paths`: which paths train the supernet in a weight step (sample, uniform, depth, network,
  fair, sandwich).
- `latency`, `latency_worker`: sampled networks timed on the target device, memoised, in line
  or in a worker process that overlaps the next step; the linear model as control variate.
- `derive`: the network a search returns (argmax, or the best of K draws by inherited accuracy).
- `inherit`: an architecture's accuracy with the supernet's weights, BatchNorm recalibrated.
- `standing`: the found network among the profile's random networks at its measured latency.
- `train`: short training of a standalone network (the default run's found network, the benchmarks' networks).
- `checkpoint`, `rundir`, `phases`, `progress`: exact resume, the run directory, seconds per
  phase of a step, progress bars.
"""

from __future__ import annotations

from hwnas.search.config import ConfigError, SearchConfig, check_combination
from hwnas.search.loop import SearchResult, read_metrics, run_search
from hwnas.search.strategies import get_strategy, list_strategies

__all__ = ["ConfigError", "SearchConfig", "SearchResult", "check_combination", "get_strategy", "list_strategies", "read_metrics", "run_search"]
