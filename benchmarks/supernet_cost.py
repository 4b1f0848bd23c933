"""What a single-path supernet step costs next to the standalone network it samples.

For each space: one architecture is sampled; three training steps (forward,
cross-entropy, backward, SGD) are timed on the same batch:

- standalone: the sampled network alone (weights copied from the supernet),
- single-path: the supernet driven by that architecture's one-hot weights
  (weights require grad, as a GDAS / REBAR search step does),
- soft (all paths): the supernet with softmax weights, every choice runs
  (DARTS / Gumbel-softmax cost), for scale.

Memory per step: bytes of tensors autograd saves for backward (unique
storages, via saved_tensors_hooks), which is the activation memory that grows
with the number of executed paths; on CUDA also torch.cuda.max_memory_allocated
around the step. Prints a table and the ratios single-path / standalone and
soft / standalone. Run: `.venv/bin/python benchmarks/supernet_cost.py` (writes
benchmarks/results/supernet_cost/<device>-b<batch>.json; `--report-only --json FILE` prints the table again).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_result_options, finish, json_path, provenance, report_only, table  # noqa: E402

from search_spaces import get_space  # noqa: E402

SPACES = {
    # name -> (space, config): the search-time networks, sized for a CPU run
    "proxyless": ("proxyless", {"widths": "search", "resolution": 64, "num_classes": 10}),
    "darts-edges": ("darts", {"parameterization": "edges", "C": 16, "layers": 8, "resolution": 32}),
    "darts-factorized": ("darts", {"parameterization": "factorized", "C": 16, "layers": 8, "resolution": 32}),
}


@dataclass(frozen=True)
class StepCost:
    variant: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    saved_mb: float
    cuda_peak_mb: float | None


def saved_bytes(step: Callable[[], None]) -> int:
    """Bytes autograd saves for backward during one step (unique storages)."""
    seen: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(seen.values())


def measure(steps_by_variant: dict[str, Callable[[], None]], device: torch.device, warmup: int, steps: int) -> list[StepCost]:
    """Time the variants round-robin (one step each in turn), so that a shared,
    noisy machine slows them alike; the median of each variant's steps."""
    times: dict[str, list[float]] = {variant: [] for variant in steps_by_variant}
    for round_index in range(warmup + steps):
        for variant, step in steps_by_variant.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if round_index >= warmup:
                times[variant].append((time.perf_counter() - start) * 1e3)
    costs = []
    for variant, step in steps_by_variant.items():
        cuda_peak = None
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            step()
            cuda_peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        q = np.percentile(times[variant], [10, 90])
        costs.append(StepCost(variant, statistics.median(times[variant]), float(q[0]), float(q[1]),
                              saved_bytes(step) / 2**20, cuda_peak))
    return costs


def make_step(model: nn.Module, x: Tensor, y: Tensor, weights: Callable[[], dict[str, Tensor]] | None) -> Callable[[], None]:
    optimizer = torch.optim.SGD([p for p in model.parameters()], lr=1e-3, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        logits = model(x) if weights is None else model(x, weights())
        nn.functional.cross_entropy(logits, y).backward()
        optimizer.step()

    return step


def run_space(key: str, batch_size: int, device: torch.device, warmup: int, steps: int, seed: int,
              resolution: int | None = None) -> list[StepCost]:
    """The three variants of `key`'s space (`resolution`: another input side than `SPACES`', e.g. 224 on a GPU)."""
    name, config = SPACES[key]
    space = get_space(name, **{**config, **({} if resolution is None else {"resolution": resolution})})
    torch.manual_seed(seed)
    supernet = space.supernet().to(device).train()
    arch = space.sample(np.random.default_rng(seed))
    standalone = space.extract_subnet(supernet, arch).to(device).train()
    x = torch.randn(*space.input_shape(batch_size), device=device)
    y = torch.randint(0, int(space.config["num_classes"]), (batch_size,), device=device)
    one_hot = {k: v.to(device).requires_grad_() for k, v in space.one_hot(arch).items()}
    logits = {d.name: torch.zeros(len(d.choices), device=device, requires_grad=True) for d in space.decisions}
    return measure({
        "standalone": make_step(standalone, x, y, None),
        "single-path": make_step(supernet, x, y, lambda: one_hot),
        "soft (all paths)": make_step(supernet, x, y, lambda: {k: torch.softmax(v, 0) for k, v in logits.items()}),
    }, device, warmup, steps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", default=",".join(SPACES), help=f"comma list of {', '.join(SPACES)}")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    add_result_options(parser, "supernet_cost", "<device>-b<batch-size>")
    args = parser.parse_args(argv)
    path = json_path(args, "supernet_cost", f"{args.device.replace(':', '')}-b{args.batch_size}")
    if args.report_only:
        return report_only(path)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    document: dict[str, Any] = {"benchmark": "supernet_cost", "provenance": provenance(argv)}
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    columns = ["space", "step", "median ms", "p10-p90 ms", "saved for backward MB",
               *(["CUDA peak MB"] if device.type == "cuda" else []), "time x", "memory x"]
    rows = []
    for key in args.spaces.split(","):
        costs = run_space(key, args.batch_size, device, args.warmup, args.steps, args.seed)
        base = costs[0]
        for cost in costs:
            memory_ratio = (cost.cuda_peak_mb / base.cuda_peak_mb) if cost.cuda_peak_mb else cost.saved_mb / base.saved_mb
            cuda = [f"{cost.cuda_peak_mb:.1f}"] if cost.cuda_peak_mb is not None else []
            rows.append([key, cost.variant, f"{cost.median_ms:.1f}", f"{cost.p10_ms:.1f}-{cost.p90_ms:.1f}",
                         f"{cost.saved_mb:.1f}", *cuda, f"{cost.median_ms / base.median_ms:.2f}", f"{memory_ratio:.2f}"])
    table(document, f"supernet cost on {device} ({where}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch_size}, {args.steps} timed steps", columns, rows)
    return finish(document, path, started)


if __name__ == "__main__":
    raise SystemExit(main())
