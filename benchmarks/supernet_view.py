"""Does a search pick what its own supernet prefers? (issue #12: why a setting ties with or loses to random.)

When `search_vs_random.py` finds searched networks no better than random ones of equal measured latency, two
failures look alike there:

- the supernet misranks the networks: it does prefer the searched networks, training does not;
- the estimator does not follow the supernet: the supernet would rank the searched networks no higher than the
  random ones of the same latency, and the architecture distribution went where the latency term, the
  estimator's bias or its noise took it.

This script tells them apart. For every finished search in the state files (`t*.json`) under `--results`, its
final supernet (`checkpoint.pt` in the search's folder) scores the searched network and each random network
matched to it, with inherited weights (`hwnas.search.inherit.inherited_score`: search-val accuracy and loss,
BatchNorm recalibrated on the same 10 batches of 64 for every network). Per search: the searched network minus
the mean of its matched randoms, and its percentile among them, by the supernet and (from the state file) after
training. Per target: those gaps as mean +- SE over searches.

With `--verdict FILE` (a committed search_vs_random result file) the judge is not each search's own supernet
but one trained afresh (`--supernet-steps`, `--supernet-option KEY=VALUE`, `--supernet-seed`; the verdict's
search configuration otherwise), scoring the same networks against the accuracies the file records. That
screens a supernet-training lever on networks a search already chose by exploiting a supernet's errors: a
supernet that still rates them above their matched randoms shares the misranking; one that ranks them as
training does would not have been fooled. It also asks whether the misranking is systematic (a fresh supernet
of the same recipe repeats it) or one supernet's noise (it does not). Beside the per-search gaps: Kendall tau
of the supernet's accuracy against the trained accuracy over all networks of each target.

Run (after search_vs_random has trained its random networks; seconds per network on this machine):
    nice -n 5 .venv/bin/python benchmarks/supernet_view.py --results runs/bench-svr-gdas-depth/gdas-relax-cluttered
    nice -n 5 .venv/bin/python benchmarks/supernet_view.py --verdict benchmarks/results/search_vs_random/gdas-cell-cluttered.json \
        --supernet-steps 1500 --supernet-seed 900
    .venv/bin/python benchmarks/supernet_view.py --report-only --json benchmarks/results/supernet_view/<results folder name>.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    add_result_options, final_supernet, finish, json_path, provenance, read_result, report_only, search_setup, table,
)
from supernet_ranking import train_supernet  # noqa: E402
from scipy import stats  # noqa: E402

from hwnas.cli._options import parse_options  # noqa: E402
from hwnas.errors import UsageError  # noqa: E402

from hwnas.report.compare import mean_se, percentile_among  # noqa: E402
from hwnas.run import CHECKPOINT, prepare, space_for_data  # noqa: E402
from hwnas.search import SearchConfig  # noqa: E402
from hwnas.search.inherit import calibration_batches, finetuned_score, inherited_score  # noqa: E402
from search_spaces import Architecture  # noqa: E402


@dataclass(frozen=True)
class SearchView:
    """One search: its network and its matched random networks, as its supernet and as training see them."""

    target_ms: float
    seed: int
    supernet_searched: float
    supernet_randoms: list[float]
    supernet_loss_searched: float
    supernet_loss_randoms: list[float]
    trained_searched: float
    trained_randoms: list[float]

    @property
    def supernet_gap(self) -> float:
        return self.supernet_searched - float(np.mean(self.supernet_randoms))

    @property
    def supernet_loss_gap(self) -> float:
        return self.supernet_loss_searched - float(np.mean(self.supernet_loss_randoms))

    @property
    def trained_gap(self) -> float:
        return self.trained_searched - float(np.mean(self.trained_randoms))

    @property
    def supernet_percentile(self) -> float:
        return percentile_among(self.supernet_searched, self.supernet_randoms)

    @property
    def trained_percentile(self) -> float:
        return percentile_among(self.trained_searched, self.trained_randoms)


def summarize(views: list[SearchView]) -> dict[str, Any]:
    """Mean +- SE over searches of each gap, and the mean percentiles (searches without a matched random are left out)."""
    views = [v for v in views if v.supernet_randoms]
    gaps = {name: mean_se([getattr(v, name) for v in views]) for name in ("supernet_gap", "supernet_loss_gap", "trained_gap")}
    return {"searches": len(views), **{name: asdict(value) for name, value in gaps.items()},
            "supernet_percentile": float(np.mean([v.supernet_percentile for v in views])) if views else None,
            "trained_percentile": float(np.mean([v.trained_percentile for v in views])) if views else None}


def finished_searches(results: Path) -> list[tuple[float, dict[str, Any], list[dict[str, Any]]]]:
    """(target ms, search record, its trained matched randoms) for every trained search whose folder holds its supernet."""
    found = []
    for path in sorted(results.glob("t*.json")):
        state = json.loads(path.read_text(encoding="utf-8"))
        for search in state["searches"].values():
            randoms = [c for c in state["candidates"] if search["seed"] in c["matches"] and c.get("accuracy") is not None]
            if search.get("accuracy") is not None and randoms and (Path(search["run_dir"]) / CHECKPOINT).is_file():
                found.append((state["identity"]["target_ms"], search, randoms))
    return found


def verdict_searches(document: dict[str, Any]) -> list[tuple[float, dict[str, Any], list[dict[str, Any]]]]:
    """`finished_searches` of a committed search_vs_random result file: (target ms, search record with its `arch`
    choices, its trained matched randoms) for every trained search with at least one trained match."""
    found = []
    for target in document["targets"]:
        for search in target["per_search"]:
            randoms = [n for n in target["random_networks"] if search["seed"] in n["matches"] and n.get("accuracy") is not None]
            if search.get("accuracy") is not None and randoms:
                found.append((target["target_ms"], {**search, "arch": search["choices"]}, randoms))
    return found


def fresh_supernet_config(document: dict[str, Any], args: argparse.Namespace) -> SearchConfig:
    """The verdict's search configuration, as a weight-only supernet training of `--supernet-steps` (no latency
    term, one architecture step, `--supernet-seed`), then the `--supernet-option` fields."""
    saved = SearchConfig.from_dict(document["search_config"])
    changes: dict[str, Any] = {"warmup_steps": args.supernet_steps, "steps": 1, "latency_estimator": "none", "lut": None,
                               "seed": args.supernet_seed, "progress": False}
    return saved.replace(**{**changes, **args.options})


def fresh_label(config: SearchConfig, options: dict[str, Any]) -> str:
    """Names one freshly trained judge: its steps, seed, sharing, rule, BN and any other option."""
    named = {"supernet_rule", "weight_sharing", "supernet_batchnorm", "warmup_steps", "seed"}
    parts = [f"steps{config.loop.warmup_steps}", f"seed{config.loop.seed}", config.supernet.weight_sharing, config.rule,
             f"bn-{config.supernet.batchnorm}", *(f"{k}={options[k]}" for k in sorted(options) if k not in named)]
    return "-".join(str(part) for part in parts)


def rank_agreement(views: list[SearchView], document: dict[str, Any]) -> None:
    """Kendall tau of supernet against trained accuracy over the distinct networks of each target (a random network
    matched to several searches counts once)."""
    rows, record = [], {}
    for target in sorted({v.target_ms for v in views}):
        pairs: dict[tuple[float, float], None] = {}
        for v in (v for v in views if v.target_ms == target):
            pairs[(v.supernet_searched, v.trained_searched)] = None
            pairs.update({pair: None for pair in zip(v.supernet_randoms, v.trained_randoms, strict=True)})
        supernet, trained = zip(*pairs, strict=True)
        tau = stats.kendalltau(supernet, trained)
        record[f"{target:.6g}"] = {"networks": len(pairs), "kendall_tau": float(tau.statistic), "kendall_p": float(tau.pvalue)}
        rows.append([f"{target:.3f}", len(pairs), f"{tau.statistic:+.3f}", f"{tau.pvalue:.3f}"])
    table(document, "per target: Kendall tau, supernet accuracy vs trained accuracy (searched and matched random networks)",
          ["target ms", "networks", "tau", "p"], rows)
    document["rank_agreement"] = record


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path,
                        help="a search_vs_random result folder (holding t*.json), e.g. runs/bench-svr-depth-verdict/unas-cluttered")
    parser.add_argument("--verdict", type=Path,
                        help="instead of --results: a committed search_vs_random result file, judged by a supernet "
                             "trained afresh (see the options below)")
    parser.add_argument("--supernet-steps", type=int, default=1500,
                        help="with --verdict: warm-up steps of the fresh supernet (default: 1500)")
    parser.add_argument("--supernet-seed", type=int, default=900,
                        help="with --verdict: seed of the fresh supernet (default: 900, not a search seed of any verdict)")
    parser.add_argument("--supernet-option", action="append", default=[], metavar="KEY=VALUE",
                        help="with --verdict: a SearchConfig field of the fresh supernet (repeatable), e.g. supernet_batchnorm=shared")
    parser.add_argument("--finetune-steps", type=int, default=0,
                        help="with --verdict: train each inherited network this many steps of the standalone recipe on "
                             "search-train before scoring it on search-val (default: 0, inherited weights and BN recalibrated)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-supernet-view"),
                        help="with --verdict: the fresh supernets' weights go under WORK/<label> (default: runs/bench-supernet-view)")
    parser.add_argument("--seeds", type=int, nargs="+", help="only these search seeds (default: every finished search)")
    parser.add_argument("--profiles", default="profiles", help="profile root (default: profiles)")
    add_result_options(parser, "supernet_view", "<name of the --results folder>")
    args = parser.parse_args(argv)
    if args.report_only:
        if args.json is None:
            parser.error("--report-only needs --json FILE")
        return args
    if args.verdict is not None:
        if args.results is not None:
            parser.error("give --results or --verdict, not both")
        try:
            document = read_result(args.verdict)
            args.options = parse_options(args.supernet_option, "--supernet-option")
            label = fresh_label(fresh_supernet_config(document, args), args.options)
            found = verdict_searches(document)
        except (UsageError, TypeError, ValueError, KeyError) as error:
            parser.error(f"--verdict {args.verdict} is not a search_vs_random result file with its search "
                         f"configuration ({type(error).__name__}: {error})")
        if not found:
            parser.error(f"{args.verdict} holds no trained search with a trained matched random network")
        if args.finetune_steps < 0:
            parser.error(f"--finetune-steps must be >= 0, got {args.finetune_steps}")
        args.label = label
        judged = f"-finetune{args.finetune_steps}" if args.finetune_steps else ""
        args.json = json_path(args, "supernet_view", f"{args.verdict.stem}-fresh-{label}{judged}")
        return args
    if args.results is None:
        parser.error("give --results FOLDER or --verdict FILE (or --report-only --json FILE)")
    args.json = json_path(args, "supernet_view", args.results.name)
    if not finished_searches(args.results):
        parser.error(f"{args.results} holds no finished search with trained matched random networks and its "
                     f"{CHECKPOINT} (run benchmarks/search_vs_random.py there first)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report_only:
        return report_only(args.json)
    started = time.perf_counter()
    if args.verdict is not None:
        document = read_result(args.verdict)
        config = fresh_supernet_config(document, args)
        found = verdict_searches(document)
        setup = prepare(config, profile_root=args.profiles)
        clock = time.perf_counter()
        fresh = train_supernet(space_for_data(config, setup.data), config, args.work / args.label, setup.data).eval()
        print(f"fresh supernet {args.label}: {time.perf_counter() - clock:.0f} s", flush=True)
    else:
        found = finished_searches(args.results)
        setup = search_setup(Path(found[0][1]["run_dir"]), args.profiles)
    found = [f for f in found if args.seeds is None or int(f[1]["seed"]) in args.seeds]
    batches = calibration_batches(setup.data, 10, 64, seed=0)
    views = []
    scored: dict[tuple[str, str], Any] = {}

    def judge(net: Any, owner: str, arch: Architecture) -> Any:
        """One network's score by supernet `owner`, once per supernet and network (a random network matched to
        several searches is scored once by the fresh supernet)."""
        key = (owner, json.dumps(arch.choices, sort_keys=True))
        if key not in scored:
            scored[key] = (finetuned_score(setup.space, net, arch, setup.data, steps=args.finetune_steps)
                           if args.verdict is not None and args.finetune_steps
                           else inherited_score(setup.space, net, arch, setup.data, batches=batches))
        return scored[key]

    for target_ms, search, randoms in found:
        net = fresh if args.verdict is not None else final_supernet(setup, Path(search["run_dir"]))
        archs = [setup.space.architecture(n["arch"]) if args.verdict is not None else Architecture.from_dict(n["arch"])
                 for n in [search, *randoms]]  # a result file records choices, a state file whole architectures
        owner = "fresh" if args.verdict is not None else str(search["run_dir"])
        scores = [judge(net, owner, arch) for arch in archs]
        views.append(SearchView(target_ms, int(search["seed"]), scores[0].accuracy, [s.accuracy for s in scores[1:]],
                                scores[0].loss, [s.loss for s in scores[1:]], search["accuracy"], [c["accuracy"] for c in randoms]))
        print(f"  target {target_ms:.3f} ms, seed {search['seed']}: {len(scores)} networks scored", flush=True)

    document = {"benchmark": "supernet_view", "provenance": provenance(argv)}
    table(document, "per search: searched network minus the mean of its matched randoms (accuracy points; loss in nats)",
                ["target ms", "seed", "randoms", "supernet acc gap", "supernet loss gap", "percentile (supernet)",
                 "trained acc gap", "percentile (trained)"],
                [[f"{v.target_ms:.3f}", v.seed, len(v.supernet_randoms), f"{v.supernet_gap * 100:+.2f}",
                  f"{v.supernet_loss_gap:+.4f}", f"{v.supernet_percentile:.0f}", f"{v.trained_gap * 100:+.2f}",
                  f"{v.trained_percentile:.0f}"] for v in views])
    targets = sorted({v.target_ms for v in views})
    summaries = {f"{t:.6g}": summarize([v for v in views if v.target_ms == t]) for t in targets}

    def points(record: dict[str, Any], scale: float = 100.0) -> str:
        gap = record["mean"] * scale, record["se"] * scale
        return f"{gap[0]:+.2f} ± {gap[1]:.2f} ({gap[0] / gap[1]:+.1f} SE)" if gap[1] > 0 else f"{gap[0]:+.2f}"

    table(document, "per target: mean ± SE over searches",
                ["target ms", "searches", "supernet acc gap (points)", "supernet loss gap (nats x 100)",
                 "mean percentile (supernet)", "trained acc gap (points)", "mean percentile (trained)"],
                [[f"{t:.3f}", s["searches"], points(s["supernet_gap"]), points(s["supernet_loss_gap"]),
                  f"{s['supernet_percentile']:.0f}", points(s["trained_gap"]), f"{s['trained_percentile']:.0f}"]
                 for t, s in zip(targets, summaries.values())])
    rank_agreement(views, document)
    document |= {"args": {k: str(v) for k, v in vars(args).items()},
                "per_search": [{**asdict(v), "supernet_gap": v.supernet_gap, "trained_gap": v.trained_gap} for v in views],
                "per_target": summaries}
    return finish(document, args.json, started)


if __name__ == "__main__":
    raise SystemExit(main())
