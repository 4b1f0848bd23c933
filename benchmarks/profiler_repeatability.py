"""Test-retest of hwnas's profiler against a naive median, at an equal time budget, and against
torch.utils.benchmark, on small random MBConv networks (64x64, batch 1, CPU eager).

    python benchmarks/profiler_repeatability.py            # 40 networks, <= 8 min
    python benchmarks/profiler_repeatability.py --quick    # 12 networks, ~2 min
    python benchmarks/profiler_repeatability.py --report-only --json benchmarks/results/profiler_repeatability/quick.json

Two passes over the same networks with each method:
- naive, 25 runs: one network at a time, 5 warm-up runs, median of 25 timed runs (what most scripts do;
  about 0.2 s per network, far less time than hwnas takes);
- naive, equal budget: the same, but timed runs go on until the network has had as many seconds
  (warm-up included) as hwnas spent per network in that pass, so the comparison is of method, not of budget;
- hwnas: `profilers.measure_interleaved` (all networks round-robin,
  adaptive repetition, noisy results re-measured).
Reported: mean absolute % difference between the passes, Spearman rank
correlation between the passes, each method's seconds per network, and the ratio of each
difference to the equal-budget naive method's. Then hwnas's eager median
against `torch.utils.benchmark.Timer.blocked_autorange` on the same model and
thread count, measured in A-B-B-A order so linear drift cancels.
"""

from __future__ import annotations

import argparse
from typing import Any
import os
import random
import statistics
import sys
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr
from torch import nn
from torch.utils import benchmark as torch_benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import add_result_options, finish, json_path, provenance, report_only, table  # noqa: E402

from profilers import MeasureConfig, measure, measure_interleaved  # noqa: E402

RESOLUTION = 64
NAIVE_WARMUP = 5
NAIVE_RUNS = 25


class MBConv(nn.Module):
    """1x1 expand, depthwise kxk, 1x1 project, with a residual when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, expand: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def random_network(seed: int) -> nn.Module:
    """A ProxylessNAS-like stack: 4 stages of 1-4 MBConv blocks with random kernel/expand."""
    rng = random.Random(seed)
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(inplace=True)]
    channels = 16
    for width, stride in ((24, 2), (40, 2), (80, 2), (96, 1)):
        for index in range(rng.randint(1, 4)):
            layers.append(MBConv(channels, width, rng.choice((3, 5, 7)), rng.choice((3, 6)), stride if index == 0 else 1))
            channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)]
    torch.manual_seed(seed)
    return nn.Sequential(*layers).eval()


def naive_pass(networks: list[nn.Module], x: torch.Tensor, budget_s: float | None = None) -> list[float]:
    """What most scripts do: one network at a time, a few warm-ups, then the median of 25 timed runs, or,
    with `budget_s`, of as many as fit in `budget_s` seconds per network (warm-up included; at least 25)."""
    medians = []
    with torch.inference_mode():
        for network in networks:
            began = time.perf_counter()
            for _ in range(NAIVE_WARMUP):
                network(x)
            samples: list[float] = []
            while len(samples) < NAIVE_RUNS or (budget_s is not None and time.perf_counter() - began < budget_s):
                start = time.perf_counter()
                network(x)
                samples.append((time.perf_counter() - start) * 1000.0)
            medians.append(statistics.median(samples))
    return medians


def timed(work: Any) -> tuple[Any, float]:
    """`work()` and the seconds it took."""
    start = time.perf_counter()
    return work(), time.perf_counter() - start


def mean_abs_pct_diff(first: list[float], second: list[float]) -> float:
    return 100.0 * statistics.fmean(abs(a - b) / ((a + b) / 2.0) for a, b in zip(first, second, strict=True))


def shift_removed_pct_diff(first: list[float], second: list[float]) -> float:
    """Mean abs % difference after dividing out the median pass-2/pass-1 ratio: what is left
    when the whole machine got uniformly faster or slower between the passes (what a
    comparison of networks, a LUT or a search, actually depends on)."""
    shift = statistics.median(b / a for a, b in zip(first, second, strict=True))
    return mean_abs_pct_diff(first, [b / shift for b in second])


def torch_timer_ms(network: nn.Module, x: torch.Tensor, threads: int, min_run_time: float) -> float:
    timer = torch_benchmark.Timer(stmt="network(x)", globals={"network": network, "x": x}, num_threads=threads)
    with torch.inference_mode():  # grad mode is thread-local: Timer's loop runs under it like hwnas's
        return timer.blocked_autorange(min_run_time=min_run_time).median * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 networks, shorter budgets")
    parser.add_argument("--networks", type=int, default=None, help="number of networks (default 40, quick 12)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for every method (default 1)")
    parser.add_argument("--budget", type=float, default=None, help="hwnas seconds per network per pass (default 1.5, quick 0.5)")
    parser.add_argument("--timer-networks", type=int, default=None, help="networks compared with torch.utils.benchmark (default 10, quick 4)")
    add_result_options(parser, "profiler_repeatability", "{default,quick}")
    args = parser.parse_args(argv)
    path = json_path(args, "profiler_repeatability", "quick" if args.quick else "default")
    if args.report_only:
        return report_only(path)
    count = args.networks or (12 if args.quick else 40)
    budget = args.budget or (0.5 if args.quick else 1.5)
    timer_count = min(count, args.timer_networks or (4 if args.quick else 10))
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    document: dict[str, Any] = {"benchmark": "profiler_repeatability", "provenance": provenance(argv),
                                "settings": {"networks": count, "threads": args.threads, "budget_s": budget,
                                             "resolution": RESOLUTION, "naive_runs": NAIVE_RUNS, "naive_warmup": NAIVE_WARMUP}}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start", flush=True)

    networks = [random_network(seed) for seed in range(count)]
    x = torch.randn(1, 3, RESOLUTION, RESOLUTION)
    config = MeasureConfig(budget_s=budget, threads=args.threads)
    shape = (1, 3, RESOLUTION, RESOLUTION)
    names = [f"net{seed:02d}" for seed in range(count)]

    labels = ("naive, median of 25", "naive, equal budget (median of all runs)", "hwnas median (interleaved, adaptive)",
              "hwnas p10 (same runs)")
    passes: dict[str, list[list[float]]] = {label: [] for label in labels}
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    for pass_index in range(2):
        medians, spent = timed(lambda: naive_pass(networks, x))
        passes[labels[0]].append(medians)
        seconds[labels[0]].append(spent / count)
        results, spent = timed(lambda: measure_interleaved(networks, backend="eager", input_shapes=shape, config=config,
                                                           names=names))
        for label, values in ((labels[2], [r.median_ms for r in results]), (labels[3], [r.p10_ms for r in results])):
            passes[label].append(values)
            seconds[label].append(spent / count)
        # The naive method gets the seconds per network hwnas just took (warm-up, re-measurement, all).
        medians, spent = timed(lambda: naive_pass(networks, x, budget_s=seconds[labels[2]][-1]))
        passes[labels[1]].append(medians)
        seconds[labels[1]].append(spent / count)
        noisy = sum(r.noisy for r in results)
        print(f"pass {pass_index + 1}: done after {time.perf_counter() - started:.0f} s; hwnas runs/net "
              f"{statistics.median(r.runs for r in results):.0f}, noisy {noisy}/{count}", flush=True)

    rows = []
    equal_budget = mean_abs_pct_diff(*passes[labels[1]])
    for label in labels:
        diff = mean_abs_pct_diff(*passes[label])
        rho = spearmanr(passes[label][0], passes[label][1]).statistic
        rows.append([label, statistics.fmean(seconds[label]), diff, float(rho), diff / equal_budget,
                     shift_removed_pct_diff(*passes[label])])
    table(document,
          f"test-retest, {count} random MBConv nets, {RESOLUTION}x{RESOLUTION}, batch 1, {args.threads} thread(s), CPU eager",
          ["method", "s per network per pass", "mean abs % diff", "Spearman", "ratio to naive at equal budget",
           "% diff, common shift removed"], rows)
    document["passes"] = passes
    document["seconds_per_network"] = seconds

    comparison = []
    half = MeasureConfig(budget_s=budget / 2, threads=args.threads)
    for network, name in zip(networks[:timer_count], names, strict=False):
        # A-B-B-A order: a linear drift of the machine cancels out of the comparison.
        ours_first = measure(network, backend="eager", input_shape=shape, config=half, name=name).median_ms
        theirs = [torch_timer_ms(network, x, args.threads, min_run_time=budget / 2) for _ in range(2)]
        ours_second = measure(network, backend="eager", input_shape=shape, config=half, name=name).median_ms
        ours, reference = (ours_first + ours_second) / 2, statistics.fmean(theirs)
        comparison.append([name, ours, reference, 100.0 * (ours / reference - 1.0)])
    table(document, "hwnas eager median vs torch.utils.benchmark blocked_autorange (same model, threads)",
          ["network", "hwnas ms", "torch.utils.benchmark ms", "difference %"], comparison)
    worst = max(abs(row[3]) for row in comparison)
    mean_abs = statistics.fmean(abs(row[3]) for row in comparison)
    document["notes"] = [f"mean |difference| to torch.utils.benchmark {mean_abs:.1f}%, worst {worst:.1f}%"]
    print(document["notes"][0])
    return finish(document, path, started)


if __name__ == "__main__":
    raise SystemExit(main())
