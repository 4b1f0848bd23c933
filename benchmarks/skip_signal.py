"""Does the supernet see what training sees about skipping a layer? (issue #12: why the search misses at its
highest latency target.)

In the proxyless space every block after the first of a stage may be `zero` (skipped). Two estimates of what
skipping decision d is worth, all else fixed:

- **trained** (the ground truth of `search_vs_random.py`): every random network that benchmark trained (the state
  files `t*.json` under `--trained`, one entry per architecture), least squares of test accuracy on
  [1, measured latency in us, one indicator per skippable decision]. Skipping d is worth its indicator's
  coefficient (at equal latency) plus the latency slope times the latency the profile's linear model says skipping
  d saves (mean over the pairs below). SE from the least-squares covariance (the saved latency taken as known).
- **supernet** (what a search's accuracy term sees): for each finished search under `--supernets` (folders with
  `checkpoint.pt` and `config.json`), `--pairs` uniform random architectures whose decision d is a block, each
  scored with inherited weights and again with d set to `zero` (`hwnas.search.inherit.inherited_score`: search-val
  accuracy, BatchNorm recalibrated on the same 10 batches of 64 for every network). Mean paired difference +- SE
  over all pairs of all supernets.

The table gives both per decision, their difference (the supernet's blind spot) and how far apart that is in SE.
Run (after search_vs_random has trained its random networks):
    nice -n 5 .venv/bin/python benchmarks/skip_signal.py --trained runs/bench-svr-seeds10/unas-cluttered \\
        --supernets runs/bench-svr-s500/unas-cluttered/t*/search-seed*
    .venv/bin/python benchmarks/skip_signal.py --report-only --json benchmarks/results/skip_signal/<run>.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_result_options, final_supernet, finish, json_path, provenance, report_only, search_setup, table  # noqa: E402

from hwnas.run import CHECKPOINT, Setup  # noqa: E402
from hwnas.search.inherit import calibration_batches, inherited_score  # noqa: E402
from search_spaces import Architecture  # noqa: E402
from search_spaces.proxyless import ZERO as SKIP  # noqa: E402


def trained_networks(folders: list[Path]) -> list[dict[str, Any]]:
    """Every trained random network of the given search_vs_random result folders, one per architecture."""
    networks: dict[str, dict[str, Any]] = {}
    for folder in folders:
        for path in sorted(folder.glob("t*.json")):
            for candidate in json.loads(path.read_text(encoding="utf-8"))["candidates"]:
                if candidate.get("accuracy") is not None:
                    networks.setdefault(candidate["key"], candidate)
    return list(networks.values())


def trained_effects(networks: list[dict[str, Any]], decisions: list[str]) -> tuple[dict[str, tuple[float, float]], tuple[float, float]]:
    """Least squares: accuracy ~ 1 + latency (us) + [decision skipped]; (coefficient, SE) per decision and for the slope."""
    accuracy = np.array([n["accuracy"] for n in networks])
    latency_us = np.array([n["measured_ms"] * 1000 for n in networks])
    skipped = np.array([[n["arch"]["choices"][d] == SKIP for d in decisions] for n in networks], dtype=float)
    design = np.column_stack([np.ones(len(networks)), latency_us, skipped])
    coefficients, *_ = np.linalg.lstsq(design, accuracy, rcond=None)
    residual = accuracy - design @ coefficients
    variance = residual @ residual / (len(networks) - design.shape[1])
    se = np.sqrt(np.diag(variance * np.linalg.inv(design.T @ design)))
    return ({d: (coefficients[2 + i], se[2 + i]) for i, d in enumerate(decisions)}, (coefficients[1], se[1]))


def random_with_block(setup: Setup, decision: str, rng: np.random.Generator) -> Architecture:
    while True:
        arch = setup.space.derive({d.name: rng.random(len(d.choices)).tolist() for d in setup.space.decisions})
        if arch.choices[decision] != SKIP:
            return arch


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trained", type=Path, nargs="+", default=[],
                        help="search_vs_random result folders (holding t*.json) whose random networks were trained")
    parser.add_argument("--supernets", type=Path, nargs="+", default=[],
                        help="finished search folders (checkpoint.pt, config.json) of the same task and space")
    parser.add_argument("--pairs", type=int, default=8, help="architecture pairs per supernet and decision (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairs' draws (default: 0)")
    parser.add_argument("--profiles", default="profiles", help="profile root (default: profiles)")
    add_result_options(parser, "skip_signal", "seed<seed>")
    args = parser.parse_args(argv)
    args.json = json_path(args, "skip_signal", f"seed{args.seed}")
    if args.report_only:
        return args
    if not args.trained or not args.supernets:
        parser.error("give --trained and --supernets (or --report-only to print a result file's tables)")
    missing = [str(f) for f in args.supernets if not (f / CHECKPOINT).is_file() or not (f / "config.json").is_file()]
    if missing:
        parser.error(f"no finished search (checkpoint.pt + config.json) in {', '.join(missing[:3])}")
    if not trained_networks(args.trained):
        parser.error("--trained holds no trained random network (run benchmarks/search_vs_random.py there first)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report_only:
        return report_only(args.json)
    started = time.perf_counter()
    setup = search_setup(args.supernets[0], args.profiles)
    assert setup.surrogate is not None
    decisions = [d.name for d in setup.space.decisions if SKIP in d.choices]
    networks = trained_networks(args.trained)
    effects, (slope, slope_se) = trained_effects(networks, decisions)
    print(f"trained: {len(networks)} random networks; accuracy per us of latency {slope * 100:+.3f} ± {slope_se * 100:.3f} points")

    batches = calibration_batches(setup.data, 10, 64, seed=0)
    rng = np.random.default_rng(args.seed)
    differences: dict[str, list[float]] = {d: [] for d in decisions}
    saved_us: dict[str, list[float]] = {d: [] for d in decisions}
    for folder in args.supernets:
        net = final_supernet(setup, folder)
        for decision in decisions:
            for _ in range(args.pairs):
                arch = random_with_block(setup, decision, rng)
                skipped = dataclasses.replace(arch, choices={**arch.choices, decision: SKIP})
                score = [inherited_score(setup.space, net, a, setup.data, batches=batches).accuracy for a in (arch, skipped)]
                differences[decision].append(score[1] - score[0])
                saved_us[decision].append(1000 * float(setup.surrogate(setup.space.one_hot(arch))
                                                       - setup.surrogate(setup.space.one_hot(skipped))))
        print(f"  {folder}: {len(decisions)} decisions x {args.pairs} pairs scored", flush=True)

    rows, records = [], []
    for decision in decisions:
        coefficient, coefficient_se = effects[decision]
        saved = float(np.mean(saved_us[decision]))
        trained = coefficient - slope * saved  # skipping saves latency, which costs `slope` per us
        trained_se = float(np.hypot(coefficient_se, slope_se * saved))
        seen = np.array(differences[decision])
        seen_mean, seen_se = float(seen.mean()), float(seen.std(ddof=1) / np.sqrt(seen.size))
        gap, gap_se = seen_mean - trained, float(np.hypot(seen_se, trained_se))
        records.append({"decision": decision, "latency_saved_us": saved, "trained_equal_latency": coefficient,
                        "trained_equal_latency_se": coefficient_se, "trained": trained, "trained_se": trained_se,
                        "supernet": seen_mean, "supernet_se": seen_se, "pairs": int(seen.size), "gap": gap, "gap_se": gap_se})
        rows.append([decision, f"{saved:.1f}", f"{coefficient * 100:+.2f} ± {coefficient_se * 100:.2f}",
                     f"{trained * 100:+.2f} ± {trained_se * 100:.2f}", f"{seen_mean * 100:+.2f} ± {seen_se * 100:.2f} (n={seen.size})",
                     f"{gap * 100:+.2f} ± {gap_se * 100:.2f} ({gap / gap_se:+.1f} SE)"])
    document = {"benchmark": "skip_signal", "provenance": provenance(argv)}
    table(document, "what skipping a decision is worth, in accuracy points (mean ± SE)",
                ["decision", "latency saved (us)", "trained, at equal latency", "trained, all else fixed",
                 "supernet (inherited), all else fixed", "supernet - trained"], rows)
    document |= {"args": {k: [str(v) for v in val] if isinstance(val, list) else str(val)
                                                for k, val in vars(args).items()},
                "trained_networks": len(networks), "slope_per_us": slope, "slope_per_us_se": slope_se, "decisions": records}
    return finish(document, args.json, started)


if __name__ == "__main__":
    raise SystemExit(main())
