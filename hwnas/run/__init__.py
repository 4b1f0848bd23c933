"""The run layer: what runs a whole job, between the command line (`hwnas.cli`) and the method (`hwnas.search`).

The layers import downwards only: `hwnas.cli` -> `hwnas.run` -> `hwnas.search`; nothing below imports this
package (`tests/test_import_graph.py`). The benchmarks import the functions below from `hwnas.run` itself.

Modules, one job each:

- `prepare`: what a job needs before it starts: the data split, the space sized for it (`default_space`),
  the device profile with its fitted latency model (`prepare` -> `Setup`), an automatic target.
- `search`: one search job in its run directory: `run_search` loops the bi-level step (`hwnas.search.bilevel`),
  writes metrics, checkpoints and resumes, stops cleanly on a signal, derives and times the result.
- `pipeline`: the whole `hwnas search` run: prepare, target, search, train, export, measure, judge, report.
- `standing`: the found network among the profile's random networks at its measured latency (standing.json).
- `rundir`: the run directory: its files, the refusal to overwrite a run, metrics.jsonl written and read.
- `progress`: the progress bars and their status line.
"""

from __future__ import annotations

from hwnas.run.pipeline import TRAIN_STEPS, PipelineResult, run_pipeline
from hwnas.run.prepare import (AUTO_TARGET_QUANTILE, PROFILE_SAMPLES, Setup, auto_target, default_space, load_search_data,
                               prepare, profile_dir_for, profile_latencies, space_for_data)
from hwnas.run.rundir import CHECKPOINT, DERIVATION_FILE, check_run_dir, default_run_dir, read_metrics
from hwnas.run.search import SearchResult, SearchStopped, run_search
from hwnas.run.standing import Standing, standing

__all__ = [
    "AUTO_TARGET_QUANTILE", "CHECKPOINT", "DERIVATION_FILE", "PROFILE_SAMPLES", "TRAIN_STEPS", "PipelineResult",
    "SearchResult", "SearchStopped", "Setup", "Standing", "auto_target", "check_run_dir", "default_run_dir",
    "default_space", "load_search_data", "prepare", "profile_dir_for", "profile_latencies", "read_metrics",
    "run_pipeline", "run_search", "space_for_data", "standing",
]
