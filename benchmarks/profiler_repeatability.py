"""Test-retest of hwnas's profiler against a naive median of 25 runs, and against
torch.utils.benchmark, on small random MBConv networks (64x64, batch 1, CPU eager).

    python benchmarks/profiler_repeatability.py            # 40 networks, <= 6 min
    python benchmarks/profiler_repeatability.py --quick    # 12 networks, ~1 min

Two passes over the same networks with each method:
- naive: one network at a time, 5 warm-up runs, median of 25 timed runs;
- hwnas: `profilers.measure_interleaved` (all networks round-robin,
  adaptive repetition, noisy results re-measured).
Reported: mean absolute % difference between the passes, Spearman rank
correlation between the passes, and hwnas/naive. Then hwnas's eager median
against `torch.utils.benchmark.Timer.blocked_autorange` on the same model and
thread count, measured in A-B-B-A order so linear drift cancels.
"""

from __future__ import annotations

import argparse
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

from _common import machine, print_table, write_json  # noqa: E402

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


def naive_pass(networks: list[nn.Module], x: torch.Tensor) -> list[float]:
    """What most scripts do: one network at a time, a few warm-ups, median of 25."""
    medians = []
    with torch.inference_mode():
        for network in networks:
            for _ in range(NAIVE_WARMUP):
                network(x)
            samples = []
            for _ in range(NAIVE_RUNS):
                start = time.perf_counter()
                network(x)
                samples.append((time.perf_counter() - start) * 1000.0)
            medians.append(statistics.median(samples))
    return medians


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 networks, shorter budgets")
    parser.add_argument("--networks", type=int, default=None, help="number of networks (default 40, quick 12)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for every method (default 1)")
    parser.add_argument("--budget", type=float, default=None, help="hwnas seconds per network per pass (default 1.5, quick 0.5)")
    parser.add_argument("--timer-networks", type=int, default=None, help="networks compared with torch.utils.benchmark (default 10, quick 4)")
    parser.add_argument("--json", default=None, help="write all numbers to this file")
    args = parser.parse_args()
    count = args.networks or (12 if args.quick else 40)
    budget = args.budget or (0.5 if args.quick else 1.5)
    timer_count = min(count, args.timer_networks or (4 if args.quick else 10))
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start", flush=True)

    networks = [random_network(seed) for seed in range(count)]
    x = torch.randn(1, 3, RESOLUTION, RESOLUTION)
    config = MeasureConfig(budget_s=budget, threads=args.threads)
    shape = (1, 3, RESOLUTION, RESOLUTION)
    names = [f"net{seed:02d}" for seed in range(count)]

    naive, hwnas_median, hwnas_p10 = [], [], []
    for pass_index in range(2):
        naive.append(naive_pass(networks, x))
        results = measure_interleaved(networks, backend="eager", input_shapes=shape, config=config, names=names)
        hwnas_median.append([r.median_ms for r in results])
        hwnas_p10.append([r.p10_ms for r in results])
        noisy = sum(r.noisy for r in results)
        print(f"pass {pass_index + 1}: done after {time.perf_counter() - started:.0f} s; hwnas runs/net "
              f"{statistics.median(r.runs for r in results):.0f}, noisy {noisy}/{count}", flush=True)

    rows = []
    naive_diff = mean_abs_pct_diff(*naive)
    for label, passes in (("naive median of 25", naive), ("hwnas median (interleaved, adaptive)", hwnas_median),
                          ("hwnas p10 (same runs)", hwnas_p10)):
        diff = mean_abs_pct_diff(*passes)
        rho = spearmanr(passes[0], passes[1]).statistic
        rows.append([label, diff, float(rho), diff / naive_diff, shift_removed_pct_diff(*passes)])
    print_table(
        f"test-retest, {count} random MBConv nets, {RESOLUTION}x{RESOLUTION}, batch 1, {args.threads} thread(s), CPU eager",
        ["method", "mean abs % diff", "Spearman", "ratio to naive", "% diff, common shift removed"],
        rows,
    )

    comparison = []
    half = MeasureConfig(budget_s=budget / 2, threads=args.threads)
    for network, name in zip(networks[:timer_count], names, strict=False):
        # A-B-B-A order: a linear drift of the machine cancels out of the comparison.
        ours_first = measure(network, backend="eager", input_shape=shape, config=half, name=name).median_ms
        theirs = [torch_timer_ms(network, x, args.threads, min_run_time=budget / 2) for _ in range(2)]
        ours_second = measure(network, backend="eager", input_shape=shape, config=half, name=name).median_ms
        ours, reference = (ours_first + ours_second) / 2, statistics.fmean(theirs)
        comparison.append([name, ours, reference, 100.0 * (ours / reference - 1.0)])
    print_table("hwnas eager median vs torch.utils.benchmark blocked_autorange (same model, threads)",
                ["network", "hwnas ms", "torch.utils.benchmark ms", "difference %"], comparison)
    worst = max(abs(row[3]) for row in comparison)
    mean_abs = statistics.fmean(abs(row[3]) for row in comparison)
    print(f"\nmean |difference| {mean_abs:.1f}%, worst {worst:.1f}%; total time {time.perf_counter() - started:.0f} s")

    if args.json:
        write_json(args.json, {
            "benchmark": "profiler_repeatability",
            "machine": machine(),
            "settings": {"networks": count, "threads": args.threads, "budget_s": budget, "resolution": RESOLUTION},
            "test_retest": [dict(zip(["method", "mean_abs_pct_diff", "spearman", "ratio_to_naive", "shift_removed_pct_diff"], row, strict=True)) for row in rows],
            "passes": {"naive": naive, "hwnas_median": hwnas_median, "hwnas_p10": hwnas_p10},
            "vs_torch_benchmark": [dict(zip(["network", "hwnas_ms", "torch_ms", "difference_pct"], row, strict=True)) for row in comparison],
        })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
