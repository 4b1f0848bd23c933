"""What one search step costs, and what measured latency adds to it (#15).

    .venv/bin/python benchmarks/search_step_cost.py                 # 2 rounds, ~5 min on a quiet 2-core box
    .venv/bin/python benchmarks/search_step_cost.py --rounds 1 --steps 10   # a quick look

1. Step cost. The default run's space and data, REBAR for accuracy, with
   each latency configuration below; every search takes `--warmup`
   weight-only steps, then `--steps` architecture steps. With a latency
   worker the warm-up lasts until the worker reports ready (imports done,
   every ONNX part exported: `LatencyWorker.wait_ready`, called by the search
   loop at the end of the warm-up), as in a real search whose hundreds of
   warm-up steps hide the worker's start-up; that wait is reported in its own
   column and is in no step's median. So the architecture steps measured are
   the steady state, every one of them counted.
   Configurations run round-robin (one search each per round) so a load
   drift of the shared machine hits all alike. Per search: median seconds
   of a weight-only step (less the wait for the worker) and of a search
   step (from metrics.jsonl); the ratio of the search step to the no-timing
   configuration's *in the same round*, with a 95% bootstrap interval over
   the steps of both searches.
2. Breakdown of a search step: median seconds per phase (metrics.jsonl
   `phases`: data, weight step, accuracy-term evaluations at b and at the
   relaxed sample, their backward, latency, optimizer, logging).
3. Latency test-retest under search conditions, before (#15: timed in line,
   training paused) and after (timed in the worker while training runs on
   the other core), both as the search times a sample
   (`LatencyOracle.measure_sample`: ORT from joined parts): the same sampled
   networks measured twice each way;
   mean absolute % difference between the passes, Spearman, the difference
   with the common shift removed (benchmarks/profiler_repeatability.py's
   measures), and the level of worker timings against in-line ones.
4. Variance tuning (--tune-variance none / eta / tau-eta): one search each
   (expected-LUT latency, so only REBAR's estimate is tuned); at the final
   state of each, the variance of REBAR's architecture-gradient estimate
   over fresh samples at the fixed (tau 0.4, eta 1) and at the tuned
   (tau, eta), and the search step's cost.

Prints tables; writes JSON (--json, default benchmarks/results/search_step_cost/seed<seed>.json); `--report-only` prints them again.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_result_options, finish, json_path, machine, provenance, report_only, table  # noqa: E402
from profiler_repeatability import mean_abs_pct_diff, shift_removed_pct_diff  # noqa: E402

from hwnas.estimators import ArchitectureDistribution, MovingAverageBaseline  # noqa: E402
from hwnas.run import Setup, auto_target, prepare, read_metrics, run_search  # noqa: E402
from hwnas.search import SearchConfig  # noqa: E402
from hwnas.search.latency import SEARCH_MEASURE, LatencyOracle  # noqa: E402
from hwnas.search.latency_worker import LatencyWorker  # noqa: E402
from hwnas.search.steps import ArchContext, weight_step  # noqa: E402
from hwnas.search.strategies import get_strategy  # noqa: E402
from hwnas.search.terms import AccuracyTerm  # noqa: E402
from hwnas.datasets import seeded_loader  # noqa: E402

BASELINE = "REBAR + expected-LUT latency (nothing timed)"
CONFIGS: dict[str, dict[str, Any]] = {
    "REBAR + RELAX, ORT (the default: worker, ONNX from parts)": {"latency_backend": "ort"},
    BASELINE: {"latency_backend": "ort", "latency_estimator": "expected"},
    "REBAR + RELAX, eager (auto: worker)": {"latency_backend": "eager"},
    "REBAR + RELAX, ORT in line (as before #15, ONNX from parts)": {"latency_backend": "ort", "latency_timing": "inline"},
    "REBAR + RELAX, eager in line (auto's choice before)": {"latency_backend": "eager", "latency_timing": "inline"},
}
"""The issue's three rows (the default ORT row and eager, both with `--latency-timing auto`: the worker
wherever a core is free), and each backend timed in line as before #15."""
PHASES = ("data", "weight_step", "accuracy_hard", "accuracy_relaxed", "backward", "latency", "optimizer", "logging")


def step_seconds(run: Path) -> tuple[list[float], list[float], list[dict[str, float]], float]:
    """(weight-only step seconds, search step seconds, search steps' phases, seconds the warm-up waited for
    the latency worker) of a run. A step's duration is the time between its record and the one before
    (step 0 has none); a warm-up step's excludes its wait for the worker (`phases["latency"]`, only in the
    last warm-up step)."""
    metrics = read_metrics(run)
    rows = metrics[1:]
    durations = [b["seconds"] - a["seconds"] for a, b in zip(metrics, rows)]
    waits = [m.get("phases", {}).get("latency", 0.0) if m["phase"] == "warm-up" else 0.0 for m in metrics]
    warm = [d - w for d, w, m in zip(durations, waits[1:], rows) if m["phase"] == "warm-up"]
    search = [d for d, m in zip(durations, rows) if m["phase"] == "search"]
    return warm, search, [m.get("phases", {}) for m in rows if m["phase"] == "search"], sum(waits)


def bootstrap_ratio(numerator: list[float], denominator: list[float], seed: int = 0, n: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval of median(numerator) / median(denominator) over the steps."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(numerator), np.asarray(denominator)
    ratios = [np.median(rng.choice(a, a.size)) / np.median(rng.choice(b, b.size)) for _ in range(n)]
    return float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))


def setups(seed: int, profiles: str) -> dict[str, Setup]:
    """One prepared setup (data, profile, linear model) per backend: RELAX's control variate is the
    backend's own fitted model, as in `hwnas search`."""
    return {backend: prepare(SearchConfig.from_flat(seed=seed, progress=False, latency_backend=backend), profile_root=profiles)
            for backend in ("ort", "eager")}


def step_cost(prepared: dict[str, Setup], args: argparse.Namespace, work: Path) -> tuple[list[list[Any]], dict[str, Any]]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    targets = {backend: auto_target(setup.profile) for backend, setup in prepared.items() if setup.profile is not None}
    for round_index in range(args.rounds):
        order = list(CONFIGS)
        random.Random(round_index).shuffle(order)  # no configuration always runs first in a round
        for name in order:
            changes = CONFIGS[name]
            setup = prepared[changes["latency_backend"]]
            config = setup.config.replace(**changes, steps=args.steps, warmup_steps=args.warmup, progress=False,
                                          latency_target_ms=targets[changes["latency_backend"]], seed=args.seed)
            out = work / f"round{round_index}-{len(runs[name])}-{abs(hash(name)) % 10**6}"
            started = time.perf_counter()
            run_search(config, out, data=setup.data, surrogate=setup.surrogate, measure_final=False)
            wall = time.perf_counter() - started
            warm, search, phases, ready_wait = step_seconds(out)
            runs[name].append({"round": round_index, "weight_only": warm, "search": search, "phases": phases, "wall_s": wall,
                               "worker_ready_wait_s": ready_wait})
            print(f"round {round_index + 1}: {name}: search step {statistics.median(search):.3f} s, "
                  f"warm-up waited {ready_wait:.1f} s for the worker, wall {wall:.1f} s", flush=True)
    rows = []
    for name, entries in runs.items():
        for entry, base in zip(entries, runs[BASELINE], strict=True):
            low, high = bootstrap_ratio(entry["search"], base["search"], seed=entry["round"])
            ratio = statistics.median(entry["search"]) / statistics.median(base["search"])
            entry.update(ratio=ratio, ratio_ci=[low, high])
            rows.append([name, entry["round"] + 1, statistics.median(entry["weight_only"]), statistics.median(entry["search"]),
                         f"{ratio:.3f} [{low:.3f}, {high:.3f}]", entry["worker_ready_wait_s"], entry["wall_s"]])
    return rows, runs


def breakdown(runs: dict[str, list[dict[str, Any]]]) -> list[list[Any]]:
    rows = []
    for name, entries in runs.items():
        phases = [p for entry in entries for p in entry["phases"]]
        steps = [s for entry in entries for s in entry["search"]]
        cells = [statistics.median(p.get(phase, 0.0) for p in phases) for phase in PHASES]
        rows.append([name, *cells, statistics.median(steps) - sum(cells), statistics.median(steps)])
    return rows


def _training_load(setup: Setup, stop: threading.Event) -> None:
    """What the search process does while the worker times: weight steps on the supernet."""
    space = setup.space
    net = space.supernet().train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    batches = iter(seeded_loader(setup.data.train, 32, seed=5, drop_last=True))
    rng = np.random.default_rng(0)
    while not stop.is_set():
        arch = space.sample(rng)
        weights = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in space.one_hot(arch).items()}
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(seeded_loader(setup.data.train, 32, seed=5, drop_last=True))
            batch = next(batches)
        weight_step(net, optimizer, weights, batch)


def retest(setup: Setup, args: argparse.Namespace, backend: str) -> tuple[list[list[Any]], dict[str, Any]]:
    """Test-retest of the search's per-sample timing, in line (before) and in the worker under training (after)."""
    space = setup.space
    rng = np.random.default_rng(args.seed + 11)
    archs = [space.sample(rng) for _ in range(args.retest_networks)]
    conditions = replace(setup.conditions, backend=backend)
    oracle = LatencyOracle(space, conditions, config=SEARCH_MEASURE)
    passes: dict[str, list[list[float]]] = {"in line (before)": [], "worker, training on the other core (after)": []}
    with torch.inference_mode(False):
        for _ in range(2):
            passes["in line (before)"].append([oracle.measure_sample(arch).value_ms for arch in archs])
            worker = LatencyWorker(space, oracle.conditions, oracle.config, "cpu")
            stop = threading.Event()
            load = threading.Thread(target=_training_load, args=(setup, stop), daemon=True)
            try:
                load.start()
                keys = [tuple(a.choices[d.name] for d in space.decisions) + (str(i),) for i, a in enumerate(archs)]
                for key, arch in zip(keys, archs, strict=True):
                    worker.submit(key, dict(arch.choices))
                passes["worker, training on the other core (after)"].append([worker.result(key).latency_ms for key in keys])
            finally:
                stop.set()
                load.join()
                worker.close()
    rows = []
    for name, (first, second) in passes.items():
        rows.append([f"{backend}: {name}", mean_abs_pct_diff(first, second), float(spearmanr(first, second).statistic),
                     shift_removed_pct_diff(first, second), statistics.median(first + second)])
    inline = np.asarray(passes["in line (before)"]).mean(0)
    overlapped = np.asarray(passes["worker, training on the other core (after)"]).mean(0)
    level = float(np.median(overlapped / inline))
    return rows, {"passes": passes, "level_worker_over_inline": level}


def _gradient_variance(result: Any, setup: Setup, tau: float, eta: float, draws: int, seed: int) -> float:
    """Mean per-coordinate variance of REBAR's architecture-gradient estimate at a search's final state."""
    net = result.supernet
    logits = {name: torch.log(torch.tensor(list(p.values()))).requires_grad_(True) for name, p in result.probabilities.items()}
    loader = seeded_loader(setup.data.train, 32, seed=seed, drop_last=True)
    train_batch = next(iter(loader))
    val_batch = next(iter(seeded_loader(setup.data.val, 32, seed=seed, drop_last=True)))
    config = setup.config.replace(estimator="rebar", latency_estimator="none", rebar_eta=eta, tune_variance="none")
    torch.manual_seed(seed)
    estimates = []
    for _ in range(draws):
        term = AccuracyTerm(net, "gen", config.estimator.gen_lambda, train_batch, val_batch)
        ctx = ArchContext(config.estimator, net, logits, term, None, tau, 0.0, train_batch, MovingAverageBaseline())
        surrogate, _ = get_strategy("rebar").surrogate(ctx, ArchitectureDistribution(logits))
        grads = torch.autograd.grad(surrogate, list(logits.values()), allow_unused=True)
        estimates.append(torch.cat([g if g is not None else torch.zeros_like(v) for g, v in zip(grads, logits.values())]))
    return float(torch.stack(estimates).var(0).mean())


def tuning(setup: Setup, args: argparse.Namespace, work: Path, target: float) -> tuple[list[list[Any]], dict[str, Any]]:
    rows, record = [], {}
    base = setup.config.replace(steps=args.tuning_steps, warmup_steps=args.warmup, progress=False, latency_target_ms=target,
                                latency_estimator="expected", seed=args.seed)
    for tuned in ("none", "eta", "tau-eta"):
        out = work / f"tuning-{tuned}"
        result = run_search(base.replace(tune_variance=tuned, tune_variance_lr=args.tune_lr), out, data=setup.data,
                            surrogate=setup.surrogate, measure_final=False)
        metrics = [m for m in read_metrics(out) if m["phase"] == "search"]
        tau, eta = (metrics[-1]["tau"], metrics[-1]["eta"]) if tuned != "none" else (0.4, 1.0)
        fixed = _gradient_variance(result, setup, 0.4, 1.0, args.variance_draws, args.seed + 3)
        at_tuned = _gradient_variance(result, setup, tau, eta, args.variance_draws, args.seed + 3)
        _, search, _, _ = step_seconds(out)
        rows.append([f"--tune-variance {tuned}", f"{tau:.3f}", f"{eta:.3f}", fixed, at_tuned, at_tuned / fixed,
                     statistics.median(search)])
        record[tuned] = {"tau": tau, "eta": eta, "variance_fixed": fixed, "variance_tuned": at_tuned,
                         "search_step_s": statistics.median(search),
                         "trajectory": [[m["tau"], m.get("eta")] for m in metrics]}
    return rows, record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="searches per configuration, interleaved (default 2)")
    parser.add_argument("--steps", type=int, default=30, help="architecture steps per search (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="weight-only steps first (default 5)")
    parser.add_argument("--retest-networks", type=int, default=12, help="networks in the test-retest (default 12)")
    parser.add_argument("--variance-draws", type=int, default=24, help="gradient estimates per variance (default 24)")
    parser.add_argument("--tuning-steps", type=int, default=20, help="architecture steps of each tuning search (default 20)")
    parser.add_argument("--tune-lr", type=float, default=0.05, help="--tune-variance-lr of the tuned search (default 0.05)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["cost", "retest", "tuning"], help="parts to skip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profiles", default="profiles", help="profile root, shared with `hwnas search` (default: profiles)")
    add_result_options(parser, "search_step_cost", "seed<seed>")
    args = parser.parse_args(argv)
    path = json_path(args, "search_step_cost", f"seed{args.seed}")
    if args.report_only:
        return report_only(path)
    torch.set_num_threads(1)
    print(f"{machine()['cpu']}, {machine()['cores']} cores, load average {machine()['load_average_1min']:.2f} at the start",
          flush=True)
    started = time.perf_counter()
    prepared = setups(args.seed, args.profiles)
    document: dict[str, Any] = {"benchmark": "search_step_cost", "provenance": provenance(argv),
                                "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="hwnas-step-cost-") as scratch:
        work = Path(scratch)
        if "cost" not in args.skip:
            rows, runs = step_cost(prepared, args, work)
            table(document, f"search step cost: the default run's space, {args.warmup} warm-up steps and, with a worker, until "
                        f"it reports ready (imports, every ONNX part exported), then {args.steps} architecture steps, all "
                        f"counted; median s per step; ratio = search step / '{BASELINE}' in the same round [95% bootstrap]",
                        ["configuration", "round", "weight-only step s", "search step s", "ratio to no timing",
                         "warm-up's wait for the worker s", "search wall s"], rows)
            table(document, "breakdown of one search step (median s per phase over all rounds; other = step - phases)",
                        ["configuration", *PHASES, "other", "step"], breakdown(runs))
            document["step_cost"] = runs
        if "retest" not in args.skip:
            document["retest"] = {}
            rows = []
            for backend in ("ort", "eager"):
                backend_rows, record = retest(prepared[backend], args, backend)
                rows += backend_rows
                document["retest"][backend] = record
                print(f"{backend}: worker timings / in-line timings (median over networks): "
                      f"{record['level_worker_over_inline']:.3f}", flush=True)
            table(document, f"latency test-retest under search conditions ({args.retest_networks} sampled networks, "
                        f"SEARCH_MEASURE budget {SEARCH_MEASURE.budget_s} s, two passes each)",
                        ["timing", "mean abs % diff", "Spearman", "% diff, common shift removed", "median ms"], rows)
        if "tuning" not in args.skip:
            setup = prepared["ort"]
            rows, record = tuning(setup, args, work, auto_target(setup.profile))
            table(document, "variance of REBAR's architecture gradient at each search's final state "
                        f"({args.variance_draws} fresh samples, same batches)",
                        ["search", "final tau", "final eta", "variance at tau 0.4, eta 1", "variance at final tau, eta",
                         "ratio", "search step s"], rows)
            document["tuning"] = record
    return finish(document, path, started)


if __name__ == "__main__":
    raise SystemExit(main())
