"""Architecture phases of several settings from one shared warm-up: whose argmax does the supernet rate above random?

Why: a search-vs-random verdict costs hours here (every network trained from scratch); choosing a setting for
one needs a cheaper signal (issue #26 item 3, docs/cell-space.md). Under a supernet rule that draws its own
paths (`network`, ...), the supernet's weights do not depend on the architecture step at all, so every setting
run from the same warm-up with the same seed ends with the same supernet: their derived networks are scored by
one judge. Per seed, the first setting trains the warm-up (`warmup.pt`); every other setting starts from it
(`--warmup-from`, exact: hwnas.search.warmstart). Each setting's argmax network is scored with inherited weights
(`hwnas.search.inherit.inherited_score`: search-val accuracy, BatchNorm recalibrated on 10 x 64 search-train
images) against `--randoms` uniform networks (`space.sample_network`) whose predicted latency lies within
±5% of the target, drawn with a fixed generator: the same randoms for every setting of a seed. Also recorded:
how far the distribution moved (entropy as a fraction of uniform's, mean largest probability), the argmax's
predicted latency and its count of each op.

What it cannot say: the supernet ranks cell networks with Kendall tau 0.40 against training (BENCHMARKS
`cell-ranking`), so a setting that wins here is a candidate for a verdict (`search_vs_random.py`), not one.

Run (one process; each setting's search is a folder under --work, resumed or re-derived if present):
    nice -n 5 .venv/bin/python benchmarks/arch_phase.py --seeds 100 \\
        --setting gdas:estimator=gdas --setting gdas-lr0.3:estimator=gdas,arch_lr=0.3 \\
        --setting egs:estimator=egs --setting egs-lr0.3:estimator=egs,arch_lr=0.3
    .venv/bin/python benchmarks/arch_phase.py --report-only --json benchmarks/results/arch_phase/cells-seed100.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import TASKS, add_result_options, bench_config, finish, json_path, provenance, report_only, table  # noqa: E402

from hwnas.errors import UsageError  # noqa: E402
from hwnas.run import CHECKPOINT, auto_target, prepare, read_metrics, run_search  # noqa: E402
from hwnas.search.inherit import calibration_batches_up_to, inherited_score  # noqa: E402
from hwnas.search.warmstart import WARMUP_FILE  # noqa: E402

ESTIMATOR_FIELDS = ("estimator", "latency_estimator", "darts_order")
"""Setting fields that pick the strategies: `prepare` needs them (the latency model is made for the config)."""


def parse_setting(text: str) -> tuple[str, dict[str, Any]]:
    """`name:key=value,key=value` (values read as JSON where they parse, else as text)."""
    name, _, spec = text.partition(":")
    if not name or not spec:
        raise argparse.ArgumentTypeError(f"--setting {text!r}: give NAME:key=value[,key=value...]")
    changes: dict[str, Any] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--setting {text!r}: {item!r} is not key=value")
        try:
            changes[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            changes[key.strip()] = value.strip()
    return name, changes


def supernet_digest(net: Any) -> str:
    """A digest of the supernet's parameters (equal: the same judge). Its BatchNorm statistics differ between
    settings (the architecture step runs the supernet in training mode) but every score recalibrates them."""
    digest = hashlib.sha256()
    for key, value in net.named_parameters():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def entropy_fraction(probabilities: dict[str, dict[str, float]]) -> float:
    entropy = -sum(q * math.log(q) for p in probabilities.values() for q in p.values() if q > 0)
    return entropy / sum(math.log(len(p)) for p in probabilities.values())


def run_seed(args: argparse.Namespace, seed: int) -> list[dict[str, Any]]:
    """Every setting's architecture phase from this seed's warm-up; the argmax networks and the randoms scored."""
    rows, warmup, judge = [], None, None
    for name, changes in args.setting:
        strategies = {k: changes[k] for k in ESTIMATOR_FIELDS if k in changes}
        others = {k: v for k, v in changes.items() if k not in ESTIMATOR_FIELDS}
        setup = prepare(bench_config(args.task, args.space, seed=seed, supernet_rule=args.supernet_rule,
                                     warmup_steps=args.warmup_steps, steps=args.steps, latency_timing="inline",
                                     test_renders=args.test_renders, **{"latency_estimator": "expected", **strategies}),
                        profile_root=args.profiles)
        target = auto_target(setup.profile, args.quantile)
        config = setup.config.replace(latency_target_ms=target, **others)
        if warmup is not None:
            config = config.replace(warmup_from=str(warmup))
        out = Path(args.work) / f"seed{seed}" / name
        result = run_search(config, out, data=setup.data, surrogate=setup.surrogate, measure_final=False,
                            resume=(out / CHECKPOINT).is_file())
        seconds = float(read_metrics(out)[-1]["seconds"])  # the search's own time (with its warm-up, if it trained one)
        if warmup is None:
            warmup = (out / WARMUP_FILE).resolve()
            if not warmup.is_file():
                raise UsageError(f"{out} wrote no {WARMUP_FILE}: its supernet rule {config.rule!r} cannot share warm-ups")
        space = setup.space
        batches = calibration_batches_up_to(setup.data, 10, 64, seed=0)

        def score(arch: Any, net: Any = result.supernet) -> float:
            return float(inherited_score(space, net, arch, setup.data, batches=batches, threads=1).accuracy)

        def predicted(arch: Any) -> float:
            return float(setup.surrogate(space.one_hot(arch)))

        weights = supernet_digest(result.supernet)
        if judge is None:  # the randoms, scored once per seed: every setting ends with this supernet (checked below)
            rng, randoms = np.random.default_rng(args.random_seed), []
            while len(randoms) < args.randoms:
                arch = space.sample_network(rng)
                if abs(predicted(arch) / target - 1) < 0.05:
                    randoms.append(score(arch))
            judge = {"scores": randoms, "mean": float(np.mean(randoms)), "std": float(np.std(randoms)), "supernet": weights}
        if weights != judge["supernet"]:
            raise UsageError(f"{out}: its supernet differs from the first setting's, so one set of random scores cannot "
                             f"judge both; use a --supernet-rule that draws its own paths (network, uniform, depth, ...)")
        argmax = score(result.arch)
        counts = {op: list(result.arch.choices.values()).count(op) for op in sorted(set(result.arch.choices.values()))}
        rows.append({"seed": seed, "setting": name, "changes": changes, "target_ms": target, "seconds": seconds,
                     "entropy_fraction": entropy_fraction(result.probabilities),
                     "mean_max_probability": float(np.mean([max(p.values()) for p in result.probabilities.values()])),
                     "argmax": result.arch.choices, "argmax_predicted_ms": predicted(result.arch), "op_counts": counts,
                     "argmax_val_acc": argmax, "randoms": judge,
                     "in_random_std": (argmax - judge["mean"]) / judge["std"] if judge["std"] > 0 else None})
        print(f"seed {seed} {name}: argmax {argmax:.3f} vs randoms {judge['mean']:.3f} ± {judge['std']:.3f} (std), "
              f"entropy {rows[-1]['entropy_fraction']:.2f}, {seconds:.0f} s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", type=parse_setting, action="append", default=[],
                        help="NAME:key=value,... of SearchConfig one-level fields (estimator=gdas,arch_lr=0.3); the first "
                             "setting of each seed trains the shared warm-up; repeat the flag for each setting")
    parser.add_argument("--seeds", type=int, nargs="+", default=[100])
    parser.add_argument("--task", choices=sorted(TASKS), default="cluttered")
    parser.add_argument("--space", default="darts")
    parser.add_argument("--supernet-rule", default="network", help="paths the supernet trains on (default: network)")
    parser.add_argument("--warmup-steps", type=int, default=1500)
    parser.add_argument("--steps", type=int, default=150, help="architecture steps of every setting (default: 150)")
    parser.add_argument("--quantile", type=float, default=0.5, help="latency target: this quantile of the profile")
    parser.add_argument("--randoms", type=int, default=12, help="random networks within ±5%% of the target (default: 12)")
    parser.add_argument("--random-seed", type=int, default=7)
    parser.add_argument("--test-renders", type=int, default=5, help="as search_vs_random.py (default: 5)")
    parser.add_argument("--profiles", default="profiles")
    parser.add_argument("--work", default="runs/arch-phase")
    add_result_options(parser, "arch_phase", "cells-seed<seeds>")
    args = parser.parse_args(argv)
    path = json_path(args, "arch_phase", f"cells-seed{'-'.join(map(str, args.seeds))}")
    if args.report_only:
        return report_only(path)
    if not args.setting:
        parser.error("give at least one --setting")
    started = time.perf_counter()
    document: dict[str, Any] = {"benchmark": "arch_phase", "provenance": provenance(argv)}
    try:
        rows = [row for seed in args.seeds for row in run_seed(args, seed)]
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table(document, f"argmax networks scored by the shared supernet against {args.randoms} random networks within ±5% of "
                    f"the target's predicted latency ({args.space}, {args.task}, {args.supernet_rule} warm-up "
                    f"{args.warmup_steps} steps, {args.steps} architecture steps)",
          ["seed", "setting", "target ms", "entropy / uniform", "mean max p", "argmax predicted ms", "argmax val acc",
           "randoms mean ± std", "in random std", "search s"],
          [[r["seed"], r["setting"], f"{r['target_ms']:.3f}", f"{r['entropy_fraction']:.2f}", f"{r['mean_max_probability']:.2f}",
            f"{r['argmax_predicted_ms']:.3f}", f"{r['argmax_val_acc']:.3f}",
            f"{r['randoms']['mean']:.3f} ± {r['randoms']['std']:.3f}",
            "-" if r["in_random_std"] is None else f"{r['in_random_std']:+.1f}", f"{r['seconds']:.0f}"] for r in rows])
    document["rows"] = rows
    return finish(document, path, started)


if __name__ == "__main__":
    raise SystemExit(main())
