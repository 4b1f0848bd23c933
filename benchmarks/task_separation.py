"""Does the task separate architectures? Spread of accuracies at one latency against seed-to-seed noise
(issue #12, item 2; docs/design.md#84-the-task-must-separate-architectures).

For each task (default: the new `cluttered_mnist` and the old default, MNIST at 14x14), in the
proxyless space with the latency conditions of `hwnas search` (the device profile is made or reused
by `prepare`):

1. Draw `--draws` uniform architectures, predict their latency with the profile's linear model, and
   keep `--archs` of those whose prediction lies within +-`--tolerance` (default 5%) of the median
   prediction: networks of one latency.
2. Train each from scratch with one recipe (`train_network`: `--train-steps` x `--train-batch`,
   SGD lr `--lr`, cosine) with training seeds 0 and 1, and the first architecture with
   `--noise-seeds` seeds in all; evaluate on the test split.
3. Report the seed-to-seed noise (std over seeds of the first architecture; and the pooled
   within-architecture std over every architecture's two seeds), the spread across architectures
   (std and range of their mean accuracies, and the between-architecture std left after removing the
   noise's share), their ratio, and a one-way ANOVA over architectures (scipy.stats.f_oneway).

Partial results are saved after every training (`--json`); the same command continues a stopped run.

Run (one task per process lets two cores work in parallel):
    nice -n 5 .venv/bin/python benchmarks/task_separation.py --tasks cluttered
    nice -n 5 .venv/bin/python benchmarks/task_separation.py --tasks mnist14
    .venv/bin/python benchmarks/task_separation.py --report-only --json benchmarks/results/task_separation/results-cluttered.json
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    TASKS, ResultsFile, add_result_options, bench_config, json_path, machine, print_provenance, print_table, provenance,
    results_or_error, within_of,
)

from hwnas.run import prepare  # noqa: E402
from hwnas.search.train import train_network  # noqa: E402
from search_spaces import Architecture  # noqa: E402

def summarise(accuracies: dict[int, dict[int, float]]) -> dict[str, float]:
    """Noise and spread from {arch index: {seed: accuracy}}."""
    first = list(accuracies[0].values())
    paired = [list(a.values()) for a in accuracies.values() if len(a) >= 2]
    pooled = math.sqrt(statistics.mean(statistics.variance(v) for v in paired)) if paired else math.nan
    means = [statistics.mean(a.values()) for a in accuracies.values()]
    seeds_per_arch = statistics.mean(len(a) for a in accuracies.values())
    spread = statistics.stdev(means) if len(means) > 1 else math.nan
    between = math.sqrt(max(spread ** 2 - pooled ** 2 / seeds_per_arch, 0.0)) if paired else math.nan
    anova = stats.f_oneway(*paired) if len(paired) > 1 else None
    return {
        "noise_std_one_arch": statistics.stdev(first) if len(first) > 1 else math.nan,
        "noise_seeds_one_arch": len(first),
        "noise_std_pooled": pooled,
        "spread_std_of_means": spread,
        "spread_range_of_means": max(means) - min(means),
        "between_arch_std": between,
        "ratio_spread_to_noise": spread / pooled if pooled else math.nan,
        "anova_F": float(anova.statistic) if anova is not None else math.nan,
        "anova_p": float(anova.pvalue) if anova is not None else math.nan,
    }


def run_task(task: str, args: argparse.Namespace, results: ResultsFile) -> dict[str, float]:
    setup = prepare(bench_config(task, "proxyless"), profile_root=args.profiles)
    assert setup.surrogate is not None
    space, data = setup.space, setup.data
    archs: list[Architecture]
    stored = results.get(task, "archs")
    if stored is None:
        rng = np.random.default_rng(args.seed)
        draws = [space.sample(rng) for _ in range(args.draws)]
        predicted = [float(setup.surrogate(space.one_hot(a))) for a in draws]
        reference = float(np.median(predicted))
        chosen = within_of(predicted, reference, args.tolerance)[: args.archs]
        stored = [{"arch": draws[i].to_dict(), "predicted_ms": predicted[i]} for i in chosen]
        conditions = f"{setup.conditions.backend} on {setup.conditions.device}, batch {setup.conditions.batch_size}"
        results.put({"reference_ms": reference, "profile": str(setup.profile), "record": data.record.to_dict(),
                     "conditions": conditions}, task, "setup")
        results.put(stored, task, "archs")
    archs = [Architecture.from_dict(item["arch"]) for item in stored]
    plan = [(i, 0) for i in range(len(archs))] + [(0, s) for s in range(2, args.noise_seeds)]
    plan += [(i, 1) for i in range(len(archs))]
    for index, seed in plan:
        if results.get(task, "runs", f"{index}:{seed}") is not None:
            continue
        report = train_network(space.build(archs[index]), data, steps=args.train_steps, batch_size=args.train_batch,
                               lr=args.lr, seed=seed)
        results.put({"arch": index, "seed": seed, **report.to_dict()}, task, "runs", f"{index}:{seed}")
        print(f"{task}: arch {index} seed {seed}: test accuracy {report.test_accuracy:.4f} ({report.seconds:.0f} s)",
              flush=True)
    return task_table(task, args, results, save=True)


def task_table(task: str, args: argparse.Namespace, results: ResultsFile, save: bool = False) -> dict[str, float]:
    """Print one task's table from its stored trainings; its summary (saved in the file when `save`)."""
    stored = results.get(task, "archs")
    accuracies: dict[int, dict[int, float]] = {}
    for run in results.get(task, "runs").values():
        accuracies.setdefault(run["arch"], {})[run["seed"]] = run["test_accuracy"]
    accuracies = dict(sorted(accuracies.items()))
    reference = results.get(task, "setup", "reference_ms")
    print_table(
        f"{task}: {len(stored)} architectures predicted within ±{args.tolerance:.0%} of {reference:.3f} ms "
        f"({results.get(task, 'setup', 'conditions') or 'conditions not recorded'}); "
        f"test accuracy after {args.train_steps} steps x batch {args.train_batch}, lr {args.lr}",
        ["arch", "predicted ms", "accuracy per seed", "mean"],
        [[i, f"{stored[i]['predicted_ms']:.3f}", " ".join(f"{a:.4f}" for _, a in sorted(acc.items())),
          f"{statistics.mean(acc.values()):.4f}"] for i, acc in accuracies.items()],
    )
    summary = summarise(accuracies)
    if save:
        results.put(summary, task, "summary")
    return summary


def summary_table(summaries: dict[str, dict[str, float]]) -> None:
    rows = [[task, f"{s['noise_std_one_arch']:.4f} (n={s['noise_seeds_one_arch']})", f"{s['noise_std_pooled']:.4f}",
             f"{s['spread_std_of_means']:.4f}", f"{s['spread_range_of_means']:.4f}", f"{s['between_arch_std']:.4f}",
             f"{s['ratio_spread_to_noise']:.2f}", f"{s['anova_F']:.2f} (p={s['anova_p']:.3g})"] for task, s in summaries.items()]
    print_table("spread at one latency vs seed-to-seed noise (accuracy, fraction)",
                ["task", "noise std, arch 0", "noise std, pooled", "spread std", "spread range", "between std",
                 "spread/noise", "ANOVA F"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["cluttered", "mnist14"])
    parser.add_argument("--archs", type=int, default=6, help="architectures at one latency (default: 6)")
    parser.add_argument("--noise-seeds", type=int, default=4, help="training seeds of the first architecture (default: 4)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="relative latency window (default: 0.05)")
    parser.add_argument("--draws", type=int, default=4000, help="uniform draws to pick from (default: 4000)")
    parser.add_argument("--train-steps", type=int, default=400)
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0, help="seed of the architecture draws")
    parser.add_argument("--profiles", default="profiles", help="profile root, shared with `hwnas search` (default: profiles)")
    add_result_options(parser, "task_separation", "results[-<task> with one --tasks]")
    args = parser.parse_args(argv)
    # One file per task when one task is given, so two processes never write the same file.
    path = json_path(args, "task_separation", "results" if len(args.tasks) > 1 else f"results-{args.tasks[0]}")
    if args.report_only:  # the file's own settings and tasks
        results = results_or_error(path)
        if results is None:
            return 2
        for key, value in results.doc["identity"].items():
            setattr(args, key, value)
        print_provenance(results.doc)
        summary_table({task: task_table(task, args, results) for task in TASKS if results.get(task, "runs")})
        return 0

    started = time.perf_counter()
    identity = {k: v for k, v in vars(args).items() if k not in ("tasks", "profiles", "json", "report_only")}
    results = results_or_error(path, identity)
    if results is None:
        return 2
    results.put(provenance(argv), "provenance")
    summary_table({task: run_task(task, args, results) for task in args.tasks})
    results.put({"machine": machine(), "seconds": time.perf_counter() - started}, "last_run")
    print(f"\nresults in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
