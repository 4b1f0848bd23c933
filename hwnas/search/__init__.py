"""Latency-constrained architecture search: the method; the run layer (`hwnas.run`) runs it as a job.

`SearchConfig` says what to run (in sections: data, estimator, latency, supernet, loop,
checkpoint), and each estimator is a registered strategy (`hwnas.search.strategies`).
What runs a whole job (the search in its run directory, resumable, and the default run
around it: profile, fit, search, train, export, measure) is the run layer, `hwnas.run`,
which imports this package and is never imported by it.

Modules, one job each:

- `config`, `sections`: `SearchConfig` and the estimator pairs that cannot work (refused in one line).
- `bilevel`: one step of the search (a weight step, then an architecture step) and the state it changes.
- `steps`: each estimator's weight and architecture step; where estimators meet the supernet.
- `terms`: the accuracy term (L_val, L_gen, L_train) and the latency term (RELAX, REINFORCE,
  expected latency, also over the networks a pruning derivation returns).
- `paths`: which paths train the supernet in a weight step (sample, uniform, depth, network,
  fair, sandwich).
- `latency`, `latency_worker`, `engines`: sampled networks timed on the target device, memoised, in line
  or in a worker process that overlaps the next step; the linear model as control variate.
- `derive`: the network a search returns (argmax, or the best of K draws by inherited accuracy).
- `inherit`: an architecture's accuracy with the supernet's weights, BatchNorm recalibrated.
- `memory`: the search's memory estimate and the micro-batch that fits.
- `train`: short training of a standalone network (the default run's found network, the benchmarks' networks).
- `checkpoint`, `phases`: what a search checkpoint holds for exact resume, seconds per phase of a step.
"""

from __future__ import annotations

from hwnas.search.config import ConfigError, SearchConfig, check_combination
from hwnas.search.strategies import get_strategy, list_strategies

__all__ = ["ConfigError", "SearchConfig", "check_combination", "get_strategy", "list_strategies"]
