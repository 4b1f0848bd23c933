"""Does the supernet learn? The remedies of issue #12 item 1, measured with the same seeds.

Each variant trains one supernet with weight steps only (what a search's warm-up does), on the
same batches for every variant of a seed, SGD lr 0.05 momentum 0.9 weight decay 3e-4 (the
search's settings; constant learning rate, so the variants differ only in what the table names):

- weight sharing: `independent` (one module per candidate, the papers' supernet) or `shared`
  (superkernel + elastic expansion, `search_spaces.elastic`), BatchNorm per choice or shared;
- the rule choosing the paths of each step (`hwnas.search.paths`): uniform, network, fair, sandwich;
- for the independent supernet, momentum 0 and a smaller learning rate (is it the optimiser?).

At fixed step counts it records the training loss (mean of the last 50 steps, nats; chance is
ln 10 = 2.303) and the search-val accuracy of `--eval-archs` fixed random architectures (the same
for every variant) evaluated as the search's architecture step sees them: one-hot weights,
BatchNorm in training mode, batches of 32. At the end, "agreement": the mean cosine similarity
between the outputs of two different candidates of one layer on the same input (averaged over
layers and pairs), which says whether a layer's candidates compute related features, so that
the next layer can learn from whichever ran. Where the networks a search returns are not what a
uniform draw gives (the DARTS edge space: genotypes, two inputs per node), "net acc" is the same
accuracy on `--eval-archs` of those (`SearchSpace.sample_network`): what the derivation and an
inherited-weight comparison with random networks read off the supernet.

Mean ± standard deviation over seeds; the last column is the final accuracy's difference from
the first variant (the papers' setting) with its standard error. Results are saved after every
(variant, seed) to `--json`; the same command continues a stopped run.

Run:
    nice -n 5 .venv/bin/python benchmarks/supernet_training.py                      # default run's task
    nice -n 5 .venv/bin/python benchmarks/supernet_training.py --task cluttered --variants shared-uniform,shared-fair
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import TASKS, ResultsFile, bench_config, machine, print_table  # noqa: E402

from hwnas.datasets import endless_from, load_data, seeded_loader  # noqa: E402
from hwnas.objectives import accuracy  # noqa: E402
from hwnas.search.loop import space_for_data  # noqa: E402
from hwnas.search.paths import PathRule  # noqa: E402
from hwnas.search.steps import weight_step  # noqa: E402
from search_spaces import SearchSpace  # noqa: E402
from search_spaces.choice import Choice  # noqa: E402


@dataclass(frozen=True)
class Variant:
    """One supernet-training setting: how the supernet holds its candidates, which paths train it."""

    name: str
    sharing: str = "independent"
    batchnorm: str = "choice"
    rule: str = "uniform"
    lr: float = 0.05
    momentum: float = 0.9


VARIANTS = {v.name: v for v in [
    Variant("independent-uniform"),
    Variant("independent-uniform-momentum0", momentum=0.0),
    Variant("independent-uniform-lr0.01", lr=0.01),
    Variant("independent-fair", rule="fair"),
    Variant("independent-sandwich", rule="sandwich"),
    Variant("shared-uniform", sharing="shared"),
    Variant("shared-bnshared-uniform", sharing="shared", batchnorm="shared"),
    Variant("shared-fair", sharing="shared", rule="fair"),
    Variant("independent-network", rule="network"),
    Variant("shared-network", sharing="shared", rule="network"),
    Variant("shared-sandwich", sharing="shared", rule="sandwich"),
]}


def _eval_batches(data: Any, count: int, batch_size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader = seeded_loader(data.val, batch_size, seed=123, drop_last=True)
    return list(itertools.islice(iter(loader), count))


def path_accuracy(net: nn.Module, space: SearchSpace, archs: list[Any], batches: list[Any]) -> float:
    """Mean accuracy of the supernet at one-hot weights, BatchNorm in training mode (as the search's
    architecture step evaluates it), over the fixed architectures and search-val batches."""
    net.train()
    values = []
    with torch.no_grad():
        for arch in archs:
            weights = space.one_hot(arch)
            values += [accuracy(net(images, weights), labels) for images, labels in batches]
    return float(np.mean(values))


WEIGHTLESS = ("zero", "none", "skip_connect", "max_pool_3x3", "avg_pool_3x3")


def candidate_agreement(net: nn.Module, space: SearchSpace, images: torch.Tensor, seed: int) -> float:
    """Mean cosine similarity between the outputs of two different non-identity candidates of the same
    layer on the same input (the input reaching that layer along one random path); for a residual
    candidate, of its branch (output minus input)."""
    arch = space.sample(np.random.default_rng(seed))
    weights = space.one_hot(arch)
    similarities = []
    inputs: dict[int, torch.Tensor] = {}  # by module: DARTS cells of one type share their decision names
    hooks = [m.register_forward_pre_hook(lambda m, a: inputs.__setitem__(id(m), a[0].detach()))
             for m in net.modules() if isinstance(m, Choice)]
    net.train()
    with torch.no_grad():
        net(images, weights)
        for hook in hooks:
            hook.remove()
        for module in net.modules():
            if not isinstance(module, Choice):
                continue
            x = inputs[id(module)]
            outs = [module.candidate(c)(x) for c in module.choices if c not in WEIGHTLESS]
            # a proxyless candidate that keeps the shape adds its input (residual): compare the branches
            outs = [(out - x if space.name == "proxyless" and out.shape == x.shape else out).flatten(1) for out in outs]
            for a, b in itertools.combinations(outs, 2):
                similarities.append(float(nn.functional.cosine_similarity(a, b, dim=1).mean()))
    return float(np.mean(similarities))


def run_one(variant: Variant, seed: int, args: argparse.Namespace, data: Any, space: SearchSpace) -> dict[str, Any]:
    torch.manual_seed(seed)
    net = space.supernet(weight_sharing=variant.sharing, batchnorm=variant.batchnorm).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=variant.lr, momentum=variant.momentum, weight_decay=3e-4)
    rule = PathRule(space, variant.rule, seed)
    batches = endless_from(seeded_loader(data.train, 32, seed=seed, drop_last=True), 0)
    archs = [space.sample(np.random.default_rng(1000 + i)) for i in range(args.eval_archs)]
    networks = [space.sample_network(np.random.default_rng(2000 + i)) for i in range(args.eval_archs)] \
        if space.network_draw != "uniform" else None
    val = _eval_batches(data, args.eval_batches)
    losses: list[float] = []
    curve: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        loss, _ = weight_step(net, optimizer, rule(step - 1, dict), next(batches))
        losses.append(loss)
        if step in args.checkpoints:
            curve[str(step)] = {"loss": float(np.mean(losses[-50:])), "acc": path_accuracy(net, space, archs, val)}
            if networks is not None:
                curve[str(step)]["net_acc"] = path_accuracy(net, space, networks, val)
            print(f"  {variant.name} seed {seed} step {step}: loss {curve[str(step)]['loss']:.3f} "
                  f"acc {curve[str(step)]['acc']:.3f}", flush=True)
    seconds = time.perf_counter() - started
    agreement = candidate_agreement(net, space, val[0][0], seed)
    return {"curve": curve, "agreement": agreement, "seconds_per_step": seconds / args.steps}


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def report(results: ResultsFile, args: argparse.Namespace, variants: list[str]) -> None:
    rows = []
    last = str(args.checkpoints[-1])
    base = {s: results.get("runs", variants[0], str(s), "curve", last, "acc") for s in args.seeds}
    stored = [r for name in variants for s in args.seeds if (r := results.get("runs", name, str(s))) is not None]
    with_networks = any("net_acc" in r["curve"][last] for r in stored)  # recorded where a search returns genotypes
    for name in variants:
        runs = [results.get("runs", name, str(s)) for s in args.seeds]
        runs = [r for r in runs if r is not None]
        row: list[Any] = [name, len(runs)]
        for step in args.checkpoints:
            row.append(_mean_sd([r["curve"][str(step)]["loss"] for r in runs]))
        for step in args.checkpoints:
            row.append(_mean_sd([r["curve"][str(step)]["acc"] for r in runs]))
        if with_networks:
            for step in args.checkpoints:
                row.append(_mean_sd([r["curve"][str(step)]["net_acc"] for r in runs if "net_acc" in r["curve"][str(step)]]))
        row.append(_mean_sd([r["agreement"] for r in runs]))
        row.append(f"{statistics.mean(r['seconds_per_step'] for r in runs):.3f}" if runs else "-")
        paired = [results.get("runs", name, str(s), "curve", last, "acc") - base[s] for s in args.seeds
                  if base[s] is not None and results.get("runs", name, str(s)) is not None]
        if len(paired) > 1:
            row.append(f"{statistics.mean(paired):+.3f} ± {statistics.stdev(paired) / len(paired) ** 0.5:.3f}")
        else:
            row.append("-")
        rows.append(row)
    columns = (["variant", "seeds"] + [f"loss@{s}" for s in args.checkpoints] + [f"acc@{s}" for s in args.checkpoints]
               + ([f"net acc@{s}" for s in args.checkpoints] if with_networks else [])
               + ["agreement", "s/step", f"Δacc@{last} vs {variants[0]} (± SE)"])
    print_table(f"supernet training, task {args.task}, space {args.space} (mean ± sd over seeds {args.seeds})",
                columns, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist14", choices=sorted(TASKS))
    parser.add_argument("--space", default="proxyless", choices=("proxyless", "darts"))
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[100, 200, 400, 600])
    parser.add_argument("--eval-archs", type=int, default=8)
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--json", default=None, help="results file (default: runs/bench-supernet-training/TASK-SPACE.json)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        print(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    args.checkpoints = sorted(c for c in args.checkpoints if c <= args.steps)
    path = args.json or f"runs/bench-supernet-training/{args.task}-{args.space}.json"
    identity = {"task": args.task, "space": args.space, "steps": args.steps, "checkpoints": args.checkpoints,
                "eval_archs": args.eval_archs, "eval_batches": args.eval_batches}
    results = ResultsFile(path, identity)
    torch.set_num_threads(1)
    if not args.report_only:
        config = bench_config(args.task, args.space)
        data = load_data(config.data.dataset, seed=0, val_fraction=config.data.val_fraction, test_fraction=config.data.test_fraction,
                         image_size=config.data.image_size)
        space = space_for_data(config, data)
        results.put(machine(), "machines", time.strftime("%Y-%m-%dT%H:%M:%S"))
        for seed in args.seeds:
            for name in variants:
                if results.get("runs", name, str(seed)) is not None:
                    continue
                results.put(run_one(VARIANTS[name], seed, args, data, space), "runs", name, str(seed))
    report(results, args, variants)
    return 0


if __name__ == "__main__":
    sys.exit(main())
