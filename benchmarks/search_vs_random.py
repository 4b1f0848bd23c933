"""Searched architecture vs random architectures of equal measured latency, same short training.

On the bundled MNIST subset, in the default small-input proxyless space and
latency conditions (ONNX Runtime, CPU, batch 1, fp32, 1 thread), for each
seed: one REBAR + RELAX search (the default run's target: the 30% quantile
of the profile's random networks); then random architectures whose latency
matches the searched one's: candidates are drawn uniformly, ranked by how
close the fitted linear model puts them to the searched network's predicted
latency, and timed with the full protocol until `--randoms` of them measure
within +-`--tolerance` of the searched network's measured latency. Every
network (searched and random) is then trained from scratch with the same
budget and seed and evaluated on the test split. Prints per-seed rows and
mean +- std over seeds (searched) and over all random networks; writes JSON.

Run: `.venv/bin/python benchmarks/search_vs_random.py` (`--seeds 0 1 2`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, print_table, write_json  # noqa: E402

from hwnas.search import SearchConfig  # noqa: E402
from hwnas.search.latency import FINAL_MEASURE, LatencyOracle  # noqa: E402
from hwnas.search.loop import run_search  # noqa: E402
from hwnas.search.pipeline import Setup, auto_target, prepare  # noqa: E402
from hwnas.search.train import train_network  # noqa: E402
from search_spaces import Architecture  # noqa: E402


def matched_randoms(setup: Setup, oracle: LatencyOracle, reference_ms: float, predicted_ms: float, count: int,
                    tolerance: float, seed: int, max_measured: int = 12) -> list[tuple[Architecture, float]]:
    """Random architectures measuring within +-tolerance of `reference_ms` (closest predictions first)."""
    assert setup.surrogate is not None
    rng = np.random.default_rng(10_000 + seed)
    candidates = [setup.space.sample(rng) for _ in range(3000)]
    ranked = sorted(candidates, key=lambda a: abs(float(setup.surrogate(setup.space.one_hot(a))) - predicted_ms))
    chosen: list[tuple[Architecture, float]] = []
    for arch in ranked[:max_measured]:
        measured = oracle.measure(arch, FINAL_MEASURE, name="random").value_ms
        if abs(measured / reference_ms - 1.0) <= tolerance:
            chosen.append((arch, measured))
        if len(chosen) == count:
            break
    return chosen


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--randoms", type=int, default=2, help="random networks per seed (default: 2)")
    parser.add_argument("--tolerance", type=float, default=0.10, help="latency match, relative (default: 0.10)")
    parser.add_argument("--steps", type=int, default=50, help="search steps (default: 50, as the default run)")
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--train-steps", type=int, default=150, help="training steps of every network (default: 150)")
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--profiles", default="profiles", help="profile root, shared with `hwnas search` (default: profiles)")
    parser.add_argument("--work", default="runs/bench-search-vs-random")
    parser.add_argument("--json", default="runs/bench-search-vs-random/result.json")
    args = parser.parse_args()

    setup = prepare(SearchConfig(progress=False), profile_root=args.profiles)
    assert setup.profile is not None
    target = auto_target(setup.profile)
    oracle = LatencyOracle(setup.space, setup.conditions)
    rows, records = [], []
    searched_acc, random_acc, searched_ms, random_ms = [], [], [], []
    for seed in args.seeds:
        started = time.perf_counter()
        config = setup.config.replace(seed=seed, latency_target_ms=target, steps=args.steps,
                                      warmup_steps=args.warmup_steps, progress=False)
        result = run_search(config, Path(args.work) / f"search-seed{seed}", data=setup.data, surrogate=setup.surrogate)
        assert result.final_latency is not None and result.predicted_latency_ms is not None
        reference = result.final_latency.value_ms
        randoms = matched_randoms(setup, oracle, reference, result.predicted_latency_ms, args.randoms, args.tolerance, seed)

        def accuracy(arch: Architecture) -> float:
            report = train_network(setup.space.build(arch), setup.data, steps=args.train_steps,
                                   batch_size=args.train_batch, seed=seed)
            return report.test_accuracy

        mine = accuracy(result.arch)
        theirs = [accuracy(arch) for arch, _ in randoms]
        searched_acc.append(mine)
        searched_ms.append(reference)
        random_acc += theirs
        random_ms += [ms for _, ms in randoms]
        rows.append([seed, f"{reference:.3f}", f"{mine:.4f}", ", ".join(f"{ms:.3f}" for _, ms in randoms) or "none matched",
                     mean_std(theirs), f"{time.perf_counter() - started:.0f}"])
        records.append({"seed": seed, "searched": {"arch": result.arch.to_dict(), "latency_ms": reference, "test_accuracy": mine},
                        "random": [{"arch": a.to_dict(), "latency_ms": ms, "test_accuracy": acc}
                                   for (a, ms), acc in zip(randoms, theirs, strict=True)]})
    print_table(
        f"searched vs random at equal measured latency (target {target:.3f} ms, {setup.conditions.backend} on "
        f"{setup.conditions.device}; {args.train_steps} training steps x batch {args.train_batch} each)",
        ["seed", "searched ms", "searched acc", "random ms", "random acc", "seconds"], rows,
    )
    print_table("summary (mean ± std)", ["", "latency ms", "test accuracy", "networks"], [
        ["searched", mean_std(searched_ms), mean_std(searched_acc), len(searched_acc)],
        ["random, equal latency", mean_std(random_ms), mean_std(random_acc), len(random_acc)],
    ])
    write_json(args.json, {"machine": machine(), "target_ms": target, "profile": str(setup.profile), "args": vars(args),
                           "runs": records})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
