"""Why the single-path DARTS cell supernet learns slowly: its learning speed against the number of distinct paths.

The shared-weight DARTS edge supernet (C=4, 5 cells, the `cluttered` task) is trained with weight steps only,
SGD lr 0.05 momentum 0.9 (the search's warm-up), on the same batches for every setting of a seed, on:

- K fixed genotypes in turn (K = 1, 2, 8, ...; genotypes are what a search returns, `sample_network`);
- a fresh uniform genotype every step (the `network` supernet rule): K unbounded.

At each checkpoint: the mean training loss of the last 50 steps (nats; chance 2.303), and the search-val
accuracy (one-hot weights, BatchNorm in training mode, as the search's architecture step sees it) on the
paths it trains: its K genotypes (at most 8 of them), or, for the fresh draws, 8 genotypes it may never
have seen. A single fixed network is the baseline; the last column is each setting's accuracy at the last
checkpoint minus the baseline's, paired by seed (± standard error over seeds).

If the loss at K = 1 and 2 falls as fast as a standalone network's while it stays near chance for fresh
draws, the supernet is not broken: every extra path it must serve slows it down, and a search's warm-up
of 6 epochs is far from enough for this space.

Run (quiet machine, one process):
    nice -n 5 .venv/bin/python benchmarks/path_diversity.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ResultsFile, bench_config, machine, print_table  # noqa: E402
from supernet_training import _eval_batches, _mean_sd, path_accuracy  # noqa: E402

from hwnas.datasets import endless_from, load_data, seeded_loader  # noqa: E402
from hwnas.search.loop import space_for_data  # noqa: E402
from hwnas.search.paths import PathRule  # noqa: E402
from hwnas.search.steps import weight_step  # noqa: E402
from search_spaces import SearchSpace  # noqa: E402

FRESH = 0
"""The setting with a fresh uniform genotype every step (the `network` rule)."""


def setting_name(paths: int) -> str:
    return "fresh genotype every step" if paths == FRESH else f"{paths} fixed genotype{'s' if paths > 1 else ''}"


def run_one(paths: int, seed: int, args: argparse.Namespace, data: Any, space: SearchSpace) -> dict[str, Any]:
    torch.manual_seed(seed)
    net = space.supernet(weight_sharing="shared").train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    rule = PathRule(space, "network", seed)
    fixed = [space.sample_network(np.random.default_rng([seed, 500, i])) for i in range(paths)]
    evaluated = fixed[:8] if paths != FRESH else [space.sample_network(np.random.default_rng([seed, 900, i])) for i in range(8)]
    batches = endless_from(seeded_loader(data.train, 32, seed=seed, drop_last=True), 0)
    val = _eval_batches(data, args.eval_batches)
    losses: list[float] = []
    curve: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        weights = rule(step - 1, dict) if paths == FRESH else space.one_hot(fixed[(step - 1) % paths])
        loss, _ = weight_step(net, optimizer, weights, next(batches))
        losses.append(loss)
        if step in args.checkpoints:
            curve[str(step)] = {"loss": float(np.mean(losses[-50:])), "acc": path_accuracy(net, space, evaluated, val)}
            print(f"  {setting_name(paths)}, seed {seed}, step {step}: loss {curve[str(step)]['loss']:.3f} "
                  f"acc {curve[str(step)]['acc']:.3f}", flush=True)
    return {"curve": curve, "seconds_per_step": (time.perf_counter() - started) / args.steps}


def report(results: ResultsFile, args: argparse.Namespace) -> None:
    last, rows = str(args.checkpoints[-1]), []
    base = {s: results.get("runs", str(args.paths[0]), str(s), "curve", last, "acc") for s in args.seeds}
    for paths in args.paths:
        runs = {s: results.get("runs", str(paths), str(s)) for s in args.seeds}
        runs = {s: r for s, r in runs.items() if r is not None}
        row: list[Any] = [setting_name(paths), len(runs)]
        row += [_mean_sd([r["curve"][str(c)]["loss"] for r in runs.values()]) for c in args.checkpoints]
        row += [_mean_sd([r["curve"][str(c)]["acc"] for r in runs.values()]) for c in args.checkpoints]
        row.append(f"{statistics.mean(r['seconds_per_step'] for r in runs.values()):.3f}" if runs else "-")
        paired = [r["curve"][last]["acc"] - base[s] for s, r in runs.items() if base[s] is not None]
        row.append(f"{statistics.mean(paired):+.3f} ± {statistics.stdev(paired) / len(paired) ** 0.5:.3f}"
                   if len(paired) > 1 else "-")
        rows.append(row)
    columns = (["paths trained", "seeds"] + [f"loss@{c}" for c in args.checkpoints] + [f"acc@{c}" for c in args.checkpoints]
               + ["s/step", f"Δacc@{last} vs {setting_name(args.paths[0])} (± SE)"])
    print_table(f"DARTS cell supernet (shared weights, cluttered task): learning against path diversity "
                f"(mean ± sd over seeds {args.seeds})", columns, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, nargs="+", default=[1, 2, 8, FRESH],
                        help="settings: K fixed genotypes in turn; 0 = a fresh genotype every step (default: 1 2 8 0)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--json", default="runs/bench-path-diversity/results.json", help="results file")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if any(p < 0 for p in args.paths):
        print("--paths takes counts of fixed genotypes (>= 1) or 0 for a fresh one every step", file=sys.stderr)
        return 2
    args.checkpoints = sorted(c for c in args.checkpoints if c <= args.steps)
    results = ResultsFile(args.json, {"steps": args.steps, "checkpoints": args.checkpoints,
                                      "eval_batches": args.eval_batches})
    torch.set_num_threads(1)
    if not args.report_only:
        config = bench_config("cluttered", "darts")
        data = load_data(config.data.dataset, seed=0, val_fraction=config.data.val_fraction, test_fraction=config.data.test_fraction,
                         image_size=config.data.image_size)
        space = space_for_data(config, data)
        results.put(machine(), "machines", time.strftime("%Y-%m-%dT%H:%M:%S"))
        for seed in args.seeds:
            for paths in args.paths:
                if results.get("runs", str(paths), str(seed)) is None:
                    results.put(run_one(paths, seed, args, data, space), "runs", str(paths), str(seed))
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
