"""Supernet ranking quality: inherited-weight accuracy against standalone accuracy (issue #12, item 3;
docs/design.md#81-the-supernet-must-carry-signal).

Protocol, per space (`--space proxyless` or `darts`), on one task (`--task`, default the cluttered MNIST
canvas of `benchmarks/task_separation.py`; the DARTS cell space at a small size on the same data):

1. Architectures across the latency range: `--draws` draws of the networks a search can return
   (uniform in proxyless; in the DARTS edge space a uniform genotype, two edges per node), predicted
   with the device profile's linear model (`prepare` makes or reuses the profile), and `--archs` of them
   at evenly spaced quantiles of the prediction.
2. A supernet trained as the search trains it before its architecture steps: `run_search` with
   `--supernet-steps` weight-only warm-up steps (uniform single-path samples at uniform logits) and one
   architecture step, no latency term; `--supernet-option KEY=VALUE` passes any `SearchConfig` field
   (e.g. a supernet training mode) unchanged.
3. Each architecture's accuracy with inherited weights (`hwnas.search.inherit.inherited_score`: the path
   copied out of the supernet, BatchNorm statistics recalibrated on the same `--bn-batches` search-train
   batches for every architecture, evaluated on search-val).
4. Each architecture trained standalone from scratch with one recipe (`train_network`), training seeds
   0 and 1, evaluated on the test split.
5. Kendall tau and Spearman rho (scipy.stats) of inherited against standalone accuracy (each seed and
   their mean), the ceiling beside them (standalone seed 0 against seed 1), and for context the rank
   correlation of standalone accuracy with predicted latency (what "bigger is better" alone gives).

Results are saved after every unit of work (`--json`, default benchmarks/results/supernet_ranking/<space>-<task>.json;
the supernets' weights go under `--work`); the same command continues a stopped run.

Run:
    nice -n 5 .venv/bin/python benchmarks/supernet_ranking.py --space proxyless
    nice -n 5 .venv/bin/python benchmarks/supernet_ranking.py --space darts
    .venv/bin/python benchmarks/supernet_ranking.py --report-only --json benchmarks/results/supernet_ranking/proxyless-cluttered.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    TASKS, ResultsFile, add_result_options, bench_config, json_path, latency_strata, machine, print_provenance, print_table,
    provenance, results_or_error, within_of,
)
from task_separation import summarise  # noqa: E402

from hwnas.cli._options import parse_options  # noqa: E402
from hwnas.errors import UsageError  # noqa: E402
from hwnas.run import Setup, prepare, run_search, space_for_data  # noqa: E402
from hwnas.search.inherit import calibration_batches, inherited_score  # noqa: E402
from hwnas.search.paths import NOTHING  # noqa: E402
from hwnas.search.train import train_network  # noqa: E402
from search_spaces import Architecture, SearchSpace  # noqa: E402


def supernet_config(setup: Setup, args: argparse.Namespace, options: dict[str, Any]) -> Any:
    """The search configuration that trains the supernet: `--supernet-steps` weight-only warm-up steps
    and one architecture step, no latency term, then the `--supernet-option` fields."""
    changes: dict[str, Any] = {"warmup_steps": args.supernet_steps, "steps": 1, "latency_estimator": "none",
                               "batch_size": args.supernet_batch, "seed": args.seed, "progress": False}
    return setup.config.replace(**{**changes, **options})


def supernet_label(config: Any, options: dict[str, Any], space_changes: dict[str, Any]) -> str:
    """Names one way of training the supernet (steps, batch, weight sharing, training rule, BN, other
    options, the search network's own space options), so the results of several sit side by side
    against the same standalone accuracies."""
    named = {"weight_sharing", "supernet_rule", "supernet_batchnorm", "warmup_steps", "batch_size", "space_config"}
    parts = [f"steps{config.loop.warmup_steps}", f"b{config.loop.batch_size}", config.supernet.weight_sharing, config.rule,
             f"bn-{config.supernet.batchnorm}", *(f"{k}={options[k]}" for k in sorted(options) if k not in named),
             *(f"search-{k}{space_changes[k]}" for k in sorted(space_changes))]
    return "-".join(str(part) for part in parts)


def train_supernet(space: SearchSpace, config: Any, work: Path, data: Any) -> torch.nn.Module:
    """The supernet of `space` (the search network) trained with `config` (loaded from `work` when already trained)."""
    weights = work / "supernet.pt"
    if weights.is_file():
        supernet = space.supernet(weight_sharing=config.supernet.weight_sharing, batchnorm=config.supernet.batchnorm)
        supernet.load_state_dict(torch.load(weights, map_location="cpu"))
        return supernet
    result = run_search(config, work / "run", data=data, measure_final=False)
    torch.save(result.supernet.state_dict(), weights)
    return result.supernet


def results_path(args: argparse.Namespace) -> Path:
    return json_path(args, "supernet_ranking", f"{args.space}-{args.task}")


def _stored_archs(args: argparse.Namespace) -> list[Any] | None:
    """The architectures a previous run of this results file chose (None when there is none yet)."""
    path = results_path(args)
    return json.loads(path.read_text(encoding="utf-8")).get("archs") if path.is_file() else None


def correlations(x: list[float], y: list[float]) -> dict[str, float]:
    tau = stats.kendalltau(x, y)
    rho = stats.spearmanr(x, y)
    return {"kendall_tau": float(tau.statistic), "kendall_p": float(tau.pvalue),
            "spearman": float(rho.statistic), "spearman_p": float(rho.pvalue)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=("proxyless", "darts"), default="proxyless")
    parser.add_argument("--task", choices=sorted(TASKS), default="cluttered")
    parser.add_argument("--archs", type=int, default=20, help="architectures to rank (default: 20)")
    parser.add_argument("--select", choices=("strata", "band"), default="strata",
                        help="strata: evenly spaced quantiles of the predicted latency (the default); band: the first "
                             "--archs draws predicted within +-TOLERANCE of the median prediction (one latency: does "
                             "the task separate architectures there, and does the supernet rank them?)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="--select band's relative window (default: 0.05)")
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--supernet-steps", type=int, default=1500, help="supernet training steps (default: 1500)")
    parser.add_argument("--supernet-batch", type=int, default=32)
    parser.add_argument("--supernet-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a SearchConfig field for the supernet's training (repeatable)")
    parser.add_argument("--supernet-space", action="append", default=[], metavar="KEY=VALUE",
                        help="a space option of the search network only (repeatable), e.g. layers=3: fewer cells than "
                             "the networks it ranks, as DARTS searches with 8 cells and trains 20; the architectures "
                             "are scored with inherited weights in that network")
    parser.add_argument("--bn-batches", type=int, default=10, help="BN recalibration batches (default: 10)")
    parser.add_argument("--bn-batch-size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=400)
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--test-renders", type=int, default=1,
                        help="draws of the generated test split (default: 1; 5 gives 5,000 test images on the cluttered task)")
    parser.add_argument("--shard", default="0/1", metavar="K/N",
                        help="train only the standalone units whose number is K modulo N, so N processes share them")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws, the supernet and BN batches")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                        help="training seeds of the standalone networks (default: 0 1; the first two give the ceiling)")
    parser.add_argument("--latency-backend", help="backend of the profile that spreads the architectures (default: SearchConfig's)")
    parser.add_argument("--profiles", default="profiles", help="profile root, shared with `hwnas search` (default: profiles)")
    parser.add_argument("--work", default="runs/bench-supernet-ranking", help="the supernets' weights go under WORK/<space>")
    add_result_options(parser, "supernet_ranking", "<space>-<task>")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--standalone-only", action="store_true", help="train the standalone networks only")
    only.add_argument("--supernet-only", action="store_true", help="train and score the supernet only")
    args = parser.parse_args(argv)
    if args.archs < 3 or args.draws < args.archs:
        parser.error("--archs must be >= 3 and --draws >= --archs")
    if len(set(args.seeds)) != len(args.seeds) or len(args.seeds) < 2:
        parser.error("--seeds needs at least two different training seeds")
    try:
        args.shard_index, args.shard_count = (int(part) for part in args.shard.split("/"))
    except ValueError:
        parser.error(f"--shard {args.shard!r}: give K/N with whole numbers, e.g. 0/2")
    if not 0 <= args.shard_index < args.shard_count:
        parser.error(f"--shard {args.shard}: K must be in 0..N-1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report_only:
        return report_stored(results_path(args), args)
    started = time.perf_counter()
    try:
        options = parse_options(args.supernet_option, "--supernet-option")
        space_changes = parse_options(args.supernet_space, "--supernet-space")
        conditions: dict[str, Any] = {} if args.latency_backend is None else {"latency_backend": args.latency_backend}
        if args.test_renders != 1:
            conditions["test_renders"] = args.test_renders
        if _stored_archs(args) is not None:
            conditions["latency_estimator"] = "none"  # the architectures are chosen already: no profile needed
        setup = prepare(bench_config(args.task, args.space, **conditions), profile_root=args.profiles)
        if space_changes:
            options["space_config"] = {**setup.config.flat()["space_config"], **space_changes}
        search_space = space_for_data(supernet_config(setup, args, options), setup.data)  # refuses bad options first
    except (UsageError, TypeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    space, data = setup.space, setup.data
    path = results_path(args)
    per_supernet = ("profiles", "latency_backend", "json", "work", "report_only", "seeds", "standalone_only", "supernet_only",
                    "supernet_steps", "supernet_batch", "supernet_option", "supernet_space", "shard", "shard_index", "shard_count")
    identity = {k: v for k, v in vars(args).items() if k not in per_supernet}
    if args.select == "strata":  # files made before --select / --test-renders existed stay readable
        identity.pop("select"), identity.pop("tolerance")
    if args.test_renders == 1:
        identity.pop("test_renders")
    identity["data"] = data.record.indices_sha256
    try:
        results = ResultsFile(path, identity)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    if results.get("archs") is None:
        assert setup.surrogate is not None
        rng = np.random.default_rng(args.seed)
        draws = [setup.space.sample_network(rng) for _ in range(args.draws)]
        predicted = [float(setup.surrogate(space.one_hot(a))) for a in draws]
        if args.select == "strata":
            chosen = latency_strata(predicted, args.archs)
        else:
            chosen = within_of(predicted, float(np.median(predicted)), args.tolerance)[: args.archs]
            if len(chosen) < args.archs:
                print(f"error: only {len(chosen)} of {args.draws} draws lie within ±{args.tolerance:.0%} of the median "
                      "prediction; give more --draws or a wider --tolerance", file=sys.stderr)
                return 2
        results.put({"profile": str(setup.profile), "record": data.record.to_dict(), "space": space.config}, "setup")
        results.put([{"arch": draws[i].to_dict(), "predicted_ms": predicted[i]} for i in chosen], "archs")
    archs = [Architecture.from_dict(item["arch"]) for item in results.get("archs")]
    predicted = [item["predicted_ms"] for item in results.get("archs")]

    if not args.supernet_only:
        for seed, index in shard_units(args.seeds, len(archs), args.shard_index, args.shard_count):
            key, arch = f"{index}:{seed}", archs[index]
            if results.get("standalone", key) is None:
                    report = train_network(space.build(arch), data, steps=args.train_steps, batch_size=args.train_batch,
                                           lr=args.lr, seed=seed)
                    results.put(report.to_dict(), "standalone", key)
                    print(f"arch {index:2d} seed {seed}: standalone accuracy {report.test_accuracy:.4f} "
                          f"({report.seconds:.0f} s)", flush=True)
    if not args.standalone_only:
        config = supernet_config(setup, args, options)
        label = supernet_label(config, options, space_changes)
        clock = time.perf_counter()
        supernet = train_supernet(search_space, config, Path(args.work) / args.space / f"supernet-{label}", data)
        if results.get("supernets", label, "seconds") is None:
            results.put({"options": options, "config": config.flat(), "seconds": time.perf_counter() - clock},
                        "supernets", label)
        batches = calibration_batches(data, args.bn_batches, args.bn_batch_size, seed=args.seed)
        for index, arch in enumerate(archs):
            if results.get("supernets", label, "inherited", str(index)) is None:
                score = inherited_score(search_space, supernet, arch, data, batches=batches, split="val")
                results.put(score.to_dict(), "supernets", label, "inherited", str(index))
                print(f"arch {index:2d} ({predicted[index]:.3f} ms): inherited accuracy {score.accuracy:.4f}", flush=True)
    report_all(results, args, archs, predicted)
    results.put({"machine": machine(), "seconds": time.perf_counter() - started}, "last_run")
    results.put(provenance(argv), "provenance")
    print(f"\nresults in {path}")
    return 0


def report_stored(path: Path, args: argparse.Namespace) -> int:
    """`--report-only`: the tables of a results file, with the settings, seeds and architectures it holds."""
    results = results_or_error(path)
    if results is None:
        return 2
    for key, value in results.doc["identity"].items():
        if key != "data":
            setattr(args, key, value)
    args.seeds = sorted({int(key.split(":")[1]) for key in results.get("standalone") or {}})
    archs = [Architecture.from_dict(item["arch"]) for item in results.get("archs") or []]
    print_provenance(results.doc)
    report_all(results, args, archs, [item["predicted_ms"] for item in results.get("archs") or []], save=False)
    return 0


def report_all(results: ResultsFile, args: argparse.Namespace, archs: list[Architecture], predicted: list[float],
               save: bool = True) -> None:
    """Tables for whatever is complete: standalone seeds, and each supernet's inherited accuracies (their
    correlations saved in the file unless `save` is False)."""
    count = len(archs)
    alone = {s: [results.get("standalone", f"{i}:{s}", "test_accuracy") for i in range(count)] for s in args.seeds}
    if any(v is None for seed in alone.values() for v in seed):
        report_partial(args, predicted, alone)
        return
    mean_alone = [statistics.mean(values) for values in zip(*alone.values(), strict=True)]
    separation(results, args, alone)
    first, second = args.seeds[:2]
    pairs: dict[str, tuple[list[float], list[float]]] = {
        f"ceiling: standalone seed {first} vs seed {second}": (alone[first], alone[second]),
    }
    if len(args.seeds) >= 4:  # split halves: the ceiling for a target averaged over half the seeds
        halves = [[statistics.mean(v) for v in zip(*(alone[s] for s in args.seeds[k::2]), strict=True)] for k in (0, 1)]
        pairs[f"ceiling: mean of seeds {args.seeds[0::2]} vs mean of seeds {args.seeds[1::2]}"] = (halves[0], halves[1])
    pairs[f"context: predicted latency vs standalone mean of {len(args.seeds)}"] = (predicted, mean_alone)
    columns = {f"standalone s{s}": alone[s] for s in args.seeds}
    for label, record in (results.get("supernets") or {}).items():
        inherited = [record.get("inherited", {}).get(str(i), {}).get("accuracy") for i in range(count)]
        if any(v is None for v in inherited):
            continue
        columns[f"inherited [{label}]"] = inherited
        pairs[f"[{label}] inherited vs standalone seed {first}"] = (inherited, alone[first])
        pairs[f"[{label}] inherited vs standalone seed {second}"] = (inherited, alone[second])
        if len(args.seeds) >= 4:
            pairs[f"[{label}] inherited vs standalone mean of seeds {args.seeds[0::2]}"] = (inherited, halves[0])
        pairs[f"[{label}] inherited vs standalone mean of {len(args.seeds)}"] = (inherited, mean_alone)
        # The inherited cross-entropy (negated) ranks without the accuracy's rounding to 1/1,250.
        minus_loss = [-record["inherited"][str(i)]["loss"] for i in range(count)]
        pairs[f"[{label}] -inherited loss vs standalone mean of {len(args.seeds)}"] = (minus_loss, mean_alone)
    print_table(
        f"{args.space} on {args.task}: inherited accuracy (search-val, BN recalibrated on {args.bn_batches} x "
        f"{args.bn_batch_size}) and standalone accuracy (test; {args.train_steps} steps x batch {args.train_batch}, lr {args.lr})",
        ["arch", "predicted ms", *columns], [[i, f"{predicted[i]:.3f}", *(f"{c[i]:.4f}" for c in columns.values())]
                                             for i in range(count)],
    )
    table = {name: correlations(x, y) for name, (x, y) in pairs.items()}
    choice_table = choice_correlations(archs, mean_alone)
    print_table(f"context: how often each choice appears in an architecture vs its standalone mean of {len(args.seeds)} "
                f"(Spearman over {count}; what a search would have to learn)",
                ["choice", "mean count", "min", "max", "Spearman", "p"],
                [[name, f"{c['mean_count']:.2f}", c["min"], c["max"], f"{c['spearman']:+.3f}", f"{c['spearman_p']:.2g}"]
                 for name, c in choice_table.items()])
    print_table(f"rank correlation over {count} architectures", ["pair", "Kendall tau", "p", "Spearman", "p"],
                [[name, f"{c['kendall_tau']:.3f}", f"{c['kendall_p']:.2g}", f"{c['spearman']:.3f}", f"{c['spearman_p']:.2g}"]
                 for name, c in table.items()])
    if save:
        results.put(table, "correlations")
        results.put(choice_table, "choice_correlations")


def choice_correlations(archs: list[Architecture], accuracy: list[float]) -> dict[str, dict[str, Any]]:
    """For each choice that computes something (not `none` / `zero`), how often it appears in each architecture
    and the Spearman correlation of that count with `accuracy`: which ops the genotypes that train well share,
    i.e. the signal a search's supernet must see. Choices that appear equally often everywhere are left out."""
    names = sorted({c for a in archs for c in a.choices.values()} - set(NOTHING))
    counts = {name: [sum(c == name for c in a.choices.values()) for a in archs] for name in names}
    table: dict[str, dict[str, Any]] = {}
    for name, values in counts.items():
        if len(set(values)) < 2:
            continue
        rho = stats.spearmanr(values, accuracy)
        table[name] = {"mean_count": float(np.mean(values)), "min": min(values), "max": max(values),
                       "spearman": float(rho.statistic), "spearman_p": float(rho.pvalue)}
    return table


def report_partial(args: argparse.Namespace, predicted: list[float], alone: dict[int, list[float | None]]) -> None:
    """While the standalone trainings are incomplete: the accuracies there are, and the separation statistics
    over the architectures trained with at least two seeds so far (labelled partial; no correlations yet)."""
    done = sum(v is not None for seed in alone.values() for v in seed)
    print(f"standalone trainings incomplete ({done} of {len(args.seeds) * len(predicted)}): no correlations yet")
    print_table(f"standalone accuracy so far (test; {args.train_steps} steps x batch {args.train_batch}, lr {args.lr})",
                ["arch", "predicted ms", *(f"standalone s{s}" for s in args.seeds)],
                [[i, f"{predicted[i]:.3f}", *("-" if alone[s][i] is None else f"{alone[s][i]:.4f}" for s in args.seeds)]
                 for i in range(len(predicted))])
    by_arch = {i: {s: alone[s][i] for s in args.seeds if alone[s][i] is not None} for i in range(len(predicted))}
    paired = {i: a for i, a in by_arch.items() if len(a) >= 2}
    if len(paired) >= 2:
        summary = summarise(dict(sorted(paired.items())))
        print_table(f"separation so far (partial): {len(paired)} architectures with 2+ seeds",
                    ["noise std, pooled", "spread std of means", "spread / noise", "ANOVA F", "p"],
                    [[f"{summary['noise_std_pooled']:.4f}", f"{summary['spread_std_of_means']:.4f}",
                      f"{summary['ratio_spread_to_noise']:.2f}", f"{summary['anova_F']:.2f}", f"{summary['anova_p']:.3g}"]])


def shard_units(seeds: list[int], count: int, index: int, shards: int) -> list[tuple[int, int]]:
    """The (seed, architecture) trainings shard `index` of `shards` runs: every `shards`-th of the seed-major
    order, so N processes started with K = 0..N-1 train each unit exactly once."""
    return [unit for number, unit in enumerate((s, i) for s in seeds for i in range(count)) if number % shards == index]


def separation_summary(alone: dict[int, list[float]]) -> dict[str, float]:
    """Does the task separate these architectures? `alone`: {training seed: accuracy per architecture}.
    The spread of their standalone means against one architecture's seed-to-seed noise, a one-way ANOVA
    over architectures (benchmarks/task_separation.py's statistics, here over every training seed), and
    the mean Kendall tau between two seeds' rankings (what any ranking of them can reach)."""
    seeds = list(alone)
    by_arch = {index: {seed: alone[seed][index] for seed in seeds} for index in range(len(alone[seeds[0]]))}
    summary = summarise(by_arch)
    seed_taus = [float(stats.kendalltau(alone[a], alone[b]).statistic) for k, a in enumerate(seeds) for b in seeds[k + 1:]]
    summary["kendall_tau_between_seeds_mean"] = statistics.mean(seed_taus)
    return summary


def separation(results: ResultsFile, args: argparse.Namespace, alone: dict[int, list[float]]) -> None:
    """`separation_summary` printed and stored."""
    summary = separation_summary(alone)
    by_arch = alone[args.seeds[0]]
    print_table(
        f"separation: {len(by_arch)} architectures x {len(args.seeds)} training seeds (select: {args.select})",
        ["noise std, pooled", "spread std of means", "spread range", "between std", "spread / noise", "ANOVA F", "p",
         "seed-vs-seed tau (mean of pairs)"],
        [[f"{summary['noise_std_pooled']:.4f}", f"{summary['spread_std_of_means']:.4f}",
          f"{summary['spread_range_of_means']:.4f}", f"{summary['between_arch_std']:.4f}",
          f"{summary['ratio_spread_to_noise']:.2f}", f"{summary['anova_F']:.2f}", f"{summary['anova_p']:.3g}",
          f"{summary['kendall_tau_between_seeds_mean']:.3f}"]])
    results.put(summary, "separation")


if __name__ == "__main__":
    raise SystemExit(main())
