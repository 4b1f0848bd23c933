"""Searched networks against random networks of equal measured latency (issue #12, item 4).

Why and how: docs/design.md#82-search-against-random-at-equal-measured-latency.

The search runs exactly as a user runs it (`prepare` + `run_search` with the
`SearchConfig` defaults, on the #12 benchmarks' task `--task`, default the
bundled cluttered MNIST, `_common.TASKS`; one setting's estimator pair on
top). Protocol:

1. Three latency targets across the measured range: quantiles (`--quantiles`,
   default 0.15, 0.5, 0.85) of the measured latencies of the device profile's
   random networks. Under the default hinge penalty a loose target costs nothing, so the
   searched networks of every target landed in the lower half of the range (0.034-0.058 ms
   for targets of 0.054-0.068 ms); the loosest target therefore searches with
   `--loosest-penalty` (default abs: two-sided, pulls the network to the target), so the
   searched networks span the range. Each search's landing is reported: its measured
   latency against its target and its percentile among the profile's random networks.
2. At each target, one search per seed (`--seeds`, default 0..4; the tables show
   those searches only, so a run extended by more seeds can still be read seed set by seed set), derived as
   `--derive-candidates` says (default argmax). Each derived network's latency is
   measured with the full protocol. `--reuse-searches WORK` copies finished
   searches of another run and only derives them again.
3. Random networks of the same space, per target, shared by its searches:
   rejection sampling with the profile's linear latency model, seeded by the
   pool seed (`--pool-seed`; by default a fresh one for every new target state file, recorded in it
   and in the results, so two runs draw different pools). A uniform
   draw among the networks a search can return (`space.sample_network`: for
   proxyless a uniform architecture, for the DARTS cell space a uniform
   genotype - two inputs per node, one op each) is kept when
   its predicted latency lies within +-`--tolerance` of the prediction for a
   searched network that still lacks `--randoms` matches. Kept draws are then
   timed round-robin together with every searched network of the target
   (`measure_interleaved`, so machine drift hits both alike); a random network
   matches a searched one when its measured latency is within +-tolerance of
   that searched network's, measured in the same session. A timed batch can
   give a search more matches than it needs; in draw order, a matched network
   is trained only while one of its searches has fewer than `--randoms` trained.
4. Every network, searched or random, is trained from scratch with one recipe
   (`hwnas.search.train.train_network`, `--train-steps` x `--train-batch`,
   training seeds `--train-seeds`, the accuracy their mean) and evaluated on the test split.
5. Per target: searched mean +- standard error (over seeds) against the
   mean +- SE of the random networks matched to any of its searches, the
   difference with its SE, and each searched network's percentile among its
   own matches. Goal (issue #12): the difference exceeds 2 SE at every target.
   Also recorded per search (the measured reasons when the goal fails): the
   supernet's search-val accuracy averaged over the last 20% of architecture
   steps, and how far the architecture distribution moved (final entropy as a
   fraction of uniform's, mean largest choice probability).

The work goes to `<work>/<setting>-<task>/`: one resumable state file per target
(`t<i>.json`: re-running the same command continues where it stopped, a
search stopped by SIGINT/SIGTERM from its checkpoint) and `results.png`
(accuracy against measured latency: random networks, their Pareto front,
searched networks). The summary (per search, per target, every matched random network's latency,
accuracy and choices) is written after every target to `--json`, by default
`benchmarks/results/search_vs_random/<setting>-<task>.json`; `--report-only` prints its tables
again from that file alone.

Run (one target per process lets two cores work in parallel; start the second once the
first has profiled the device, and tabulate all targets at the end with --report-only):
    nice -n 5 .venv/bin/python benchmarks/search_vs_random.py --setting unas --targets 0 2
    nice -n 5 .venv/bin/python benchmarks/search_vs_random.py --setting unas --targets 1
    .venv/bin/python benchmarks/search_vs_random.py --setting unas --report-only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import secrets
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    TASKS, ResultsFile, add_result_options, bench_config, document_or_error, json_path, print_provenance, print_table,
    provenance, write_json,
)

from hwnas.errors import UsageError  # noqa: E402
from hwnas.objectives import LATENCY_PENALTIES  # noqa: E402
from hwnas.report.compare import Difference, difference, mean_se, percentile_among, within  # noqa: E402
from hwnas.report.plots import among_random  # noqa: E402
from hwnas.report.runfiles import search_val_accuracy, tail_mean  # noqa: E402
from hwnas.run import (CHECKPOINT, DERIVATION_FILE, SearchStopped, Setup, auto_target, prepare, profile_latencies,  # noqa: E402
                       read_metrics, run_search)
from hwnas.search.config import SUPERNET_RULES  # noqa: E402
from hwnas.search.latency import FINAL_MEASURE  # noqa: E402
from hwnas.search.train import train_network  # noqa: E402
from hwnas.search.warmstart import WARMUP_FILE, warmup_identity, why_not_shared  # noqa: E402
from hwnas.distributed import DistInfo  # noqa: E402
from profilers import measure_interleaved  # noqa: E402
from search_spaces import Architecture, files  # noqa: E402

SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "unas": ("proxyless", {"estimator": "rebar", "latency_estimator": "relax"}),
    "gdas-relax": ("proxyless", {"estimator": "gdas", "latency_estimator": "relax"}),
    "darts": ("darts", {"estimator": "darts", "darts_order": "first", "latency_estimator": "expected"}),
    "gdas-cell": ("darts", {"estimator": "gdas", "latency_estimator": "expected"}),
    "egs-cell": ("darts", {"estimator": "egs", "latency_estimator": "expected"}),
    "amended-cell": ("darts", {"estimator": "darts", "darts_order": "amended", "latency_estimator": "expected"}),
    "darts2-cell": ("darts", {"estimator": "darts", "darts_order": "second", "latency_estimator": "expected"}),
}
"""UNAS (REBAR + RELAX), GDAS + RELAX (both proxyless); on the DARTS cell space first-order DARTS and GDAS, both
with the expected-LUT latency, and so EGS, Amended-DARTS and second-order DARTS there (DARTS trains a softmax mixture, so no single sampled network can be timed for
RELAX; GDAS could be, but an eager CPU timing of a cell network per step is too slow and noisy for the 2-core
machine, and the shared latency term keeps the two cell-space settings comparable: they differ in the accuracy
estimator only)."""

IGNORED_FOR_RESUME = ("seed", "lut", "progress", "checkpoint_every", "checkpoint_seconds")
"""SearchConfig fields that may change between a run and its resumption (they do not change what is searched)."""

DEFAULT_SEEDS = [0, 1, 2, 3, 4]
"""Search seeds per target (issue #12: at least 5)."""

ADDED_LATER = {"derive_candidates": 1}
"""SearchConfig fields added after state files were written: left out of the identity at these defaults
(what every older file used), so the older results stay readable."""


def predicted_ms(setup: Setup, arch: Architecture) -> float:
    assert setup.surrogate is not None
    return float(setup.surrogate(setup.space.one_hot(arch)))


def key_of(setup: Setup, arch: Architecture) -> str:
    return "|".join(arch.choices[d.name] for d in setup.space.decisions)


class TargetState(ResultsFile):
    """One target's record (searches, timed random candidates, accuracies), saved atomically after every step;
    a file made with other settings is refused in one line."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        try:
            super().__init__(path, identity)
        except UsageError as error:  # this script's folder option is --work, not --json
            raise UsageError(str(error).replace("give another --json path", "give another --work folder")) from None
        for key, empty in (("searches", {}), ("candidates", []), ("draws", 0)):
            self.doc.setdefault(key, empty)

    @property
    def searches(self) -> dict[str, dict[str, Any]]:
        return self.doc["searches"]

    @property
    def candidates(self) -> list[dict[str, Any]]:
        return self.doc["candidates"]

    def pool_seed(self, given: int | None) -> int:
        """The seed of this target's random draws: recorded in the file when it is new (`given`, else a fresh
        one, so a new run draws a new pool), the recorded one when it is resumed."""
        if "pool_seed" not in self.doc:
            self.doc["pool_seed"] = given if given is not None else secrets.randbits(31)
            self.save()
        elif given is not None and given != self.doc["pool_seed"]:
            raise UsageError(f"{self.path} was drawn with --pool-seed {self.doc['pool_seed']}; give that seed, none, "
                             "or another --work folder")
        return int(self.doc["pool_seed"])


def distribution_at_end(run_dir: Path) -> dict[str, float | None]:
    """How far the architecture distribution moved: its entropy at the last architecture step as a fraction
    of the uniform distribution's, and the mean over decisions of the largest choice probability."""
    last = next((r for r in reversed(read_metrics(run_dir)) if r.get("probabilities")), None)
    if last is None:
        return {"entropy_fraction": None, "mean_max_probability": None}
    probabilities = [list(p.values()) for p in last["probabilities"].values()]
    entropy = -sum(q * math.log(q) for p in probabilities for q in p if q > 0)
    return {"entropy_fraction": entropy / sum(math.log(len(p)) for p in probabilities),
            "mean_max_probability": float(np.mean([max(p) for p in probabilities]))}


def supernet_val_acc(run_dir: Path) -> float | None:
    """Mean search-val accuracy of the supernet over the last 20% of the architecture steps."""
    return tail_mean(search_val_accuracy(read_metrics(run_dir)))


def search(setup: Setup, state: TargetState, target_ms: float, penalty: str, seed: int, work: Path,
           reuse: Path | None, warmups: Path | None) -> None:
    run_dir = work / f"search-seed{seed}"
    reuse_search(None if reuse is None else reuse / work.name / run_dir.name, run_dir)
    config = setup.config.replace(seed=seed, latency_target_ms=target_ms, latency_penalty=penalty, progress=False)
    resume = (run_dir / CHECKPOINT).is_file()  # a search stopped by a signal continues its own trajectory
    shared = None if warmups is None or resume else shared_warmup(setup, config, warmups)
    if shared is not None and shared.is_file():
        config = config.replace(warmup_from=str(shared))
    result = run_search(config, run_dir, data=setup.data, surrogate=setup.surrogate, resume=resume)
    assert result.final_latency is not None and result.predicted_latency_ms is not None
    warmup_seconds = keep_warmup(run_dir, shared) if shared is not None else None
    state.searches[str(seed)] = {
        "seed": seed, "arch": result.arch.to_dict(), "predicted_ms": result.predicted_latency_ms,
        "measured_ms": result.final_latency.value_ms, "search_seconds": result.seconds,
        "warmup_from": config.loop.warmup_from, "warmup_seconds": warmup_seconds,
        "supernet_val_acc_last": supernet_val_acc(run_dir), "run_dir": str(run_dir), "session_ms": [],
        "derivation": derivation_summary(run_dir),
    }
    state.save()


def shared_warmup(setup: Setup, config: Any, warmups: Path) -> Path | None:
    """Where `--warmups` keeps the warm-up this search would train (named by `warmup_identity` and the data
    split), or None when its warm-up cannot be shared (`why_not_shared`)."""
    if why_not_shared(config, DistInfo()) is not None:
        return None
    identity = warmup_identity(config, config.warmup_steps_for(len(setup.data.train)))
    key = hashlib.sha256(json.dumps([identity, setup.data.record.indices_sha256], sort_keys=True).encode()).hexdigest()
    return warmups / f"warmup-{key[:16]}.pt"


def keep_warmup(run_dir: Path, shared: Path) -> float | None:
    """After a search that trained its own warm-up: put its warm-up file where `--warmups` keeps it (atomically; a
    warm-up another process kept meanwhile is replaced by the same one). Returns the seconds its
    warm-up took (from the search's own metrics), also written beside the file; for a search that started from
    a kept warm-up, the seconds recorded there."""
    seconds_file = shared.with_suffix(".json")
    if not (run_dir / WARMUP_FILE).is_file():
        return json.loads(seconds_file.read_text(encoding="utf-8"))["seconds"] if seconds_file.is_file() else None
    rows = [r for r in read_metrics(run_dir) if r.get("phase") == "warm-up"]
    seconds = float(rows[-1]["seconds"]) if rows else None
    if not shared.is_file():
        files.atomic_write(shared, (run_dir / WARMUP_FILE).read_bytes())
        files.write_json(seconds_file, {"seconds": seconds, "trained_by": str(run_dir)})
    return seconds


def derivation_summary(run_dir: Path) -> dict[str, Any] | None:
    """With --derive-candidates > 1: how many were scored, and the inherited search-val accuracy of the argmax
    network against the chosen one (the selection's own view of what it gained)."""
    path = run_dir / DERIVATION_FILE
    if not path.is_file():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    candidates, chosen = document["candidates"], document["chosen"]
    return {"candidates": len(candidates), "scored": sum(1 for c in candidates if c["accuracy"] is not None),
            "chosen": candidates[chosen]["proposed_by"], "chosen_val_acc": candidates[chosen]["accuracy"],
            "argmax_val_acc": candidates[0]["accuracy"]}


def reuse_search(source: Path | None, run_dir: Path) -> None:
    """Copy a finished search of another work folder (same setting, task and search config but for the
    derivation): `run_search` then resumes its final checkpoint and only derives again. `load_search`
    refuses, in one line, a checkpoint made with another search config."""
    if source is None or run_dir.exists():
        return
    if not (source / CHECKPOINT).is_file():
        raise UsageError(f"--reuse-searches: {source} holds no {CHECKPOINT}; run the searches there first or drop the flag")
    shutil.copytree(source, run_dir, ignore=shutil.ignore_patterns(DERIVATION_FILE, "arch.json", "derived_latency.json"))


def confirm(setup: Setup, state: TargetState, batch: list[Architecture], budget_s: float) -> None:
    """Time `batch` round-robin with every searched network of the target; record who matches whom."""
    searched = list(state.searches.values())
    archs = [Architecture.from_dict(s["arch"]) for s in searched] + batch
    config = replace(FINAL_MEASURE, budget_s=budget_s, threads=setup.conditions.threads, verify_outputs=False)
    results = measure_interleaved(
        [setup.space.build(a).eval() for a in archs], backend=setup.conditions.backend, device=setup.conditions.device,
        input_shapes=tuple(setup.space.input_shape(setup.conditions.batch_size)), precision=setup.conditions.precision,
        config=config, names=[f"searched-{s['seed']}" for s in searched] + [f"random-{i}" for i in range(len(batch))])
    session = {s["seed"]: r.value_ms for s, r in zip(searched, results, strict=False)}
    for s in searched:
        s["session_ms"].append(session[s["seed"]])
    for arch, result in zip(batch, results[len(searched):], strict=True):
        ms = result.value_ms
        state.candidates.append({
            "arch": arch.to_dict(), "key": key_of(setup, arch), "predicted_ms": predicted_ms(setup, arch),
            "measured_ms": ms, "cv": result.cv, "session_searched_ms": {str(k): v for k, v in session.items()},
            "matches": [seed for seed, ref in session.items() if within(ms, ref, state.doc["identity"]["tolerance"])],
            "accuracy": None,
        })
    state.save()


def matches_per_search(state: TargetState) -> dict[int, int]:
    counts = {int(seed): 0 for seed in state.searches}
    for c in state.candidates:
        for seed in c["matches"]:
            counts[seed] += 1
    return counts


def find_randoms(setup: Setup, state: TargetState, args: argparse.Namespace, target_index: int) -> None:
    """Rejection-sample and confirm until every search has `--randoms` matches (or the caps are reached)."""
    tolerance = args.tolerance
    predictions = {int(s["seed"]): s["predicted_ms"] for s in state.searches.values()}
    seen = {c["key"] for c in state.candidates} | {key_of(setup, Architecture.from_dict(s["arch"])) for s in state.searches.values()}
    rng = np.random.default_rng([state.pool_seed(args.pool_seed), target_index, len(state.candidates), state.doc["draws"]])
    while True:
        counts = matches_per_search(state)
        short = [seed for seed, count in counts.items() if count < args.randoms]
        if not short or len(state.candidates) >= args.max_timed:
            return
        batch: list[Architecture] = []
        while len(batch) < args.confirm_batch and state.doc["draws"] < args.max_draws:
            arch = setup.space.sample_network(rng)
            state.doc["draws"] += 1
            key = key_of(setup, arch)
            if key in seen:
                continue
            if any(within(predicted_ms(setup, arch), predictions[seed], tolerance) for seed in short):
                batch.append(arch)
                seen.add(key)
        if not batch:
            print(f"  target {target_index}: no draw within ±{tolerance:.0%} of the prediction in {state.doc['draws']} draws")
            return
        confirm(setup, state, batch, args.confirm_budget)
        matched = sum(1 for c in state.candidates[-len(batch):] if c["matches"])
        print(f"  target {target_index}: timed {len(batch)} random networks, {matched} matched; per search now "
              f"{matches_per_search(state)} (draws so far {state.doc['draws']})", flush=True)


def train(setup: Setup, arch: Architecture, args: argparse.Namespace) -> dict[str, Any]:
    """Test accuracy after the one recipe: the mean over `--train-seeds` (each seed's in `accuracies`)."""
    reports = [train_network(setup.space.build(arch), setup.data, steps=args.train_steps, batch_size=args.train_batch,
                             seed=seed, threads=setup.config.loop.torch_threads) for seed in args.train_seeds]
    return {"accuracy": float(np.mean([r.test_accuracy for r in reports])), "accuracies": [r.test_accuracy for r in reports],
            "train_loss": float(np.mean([r.train_loss for r in reports])), "train_seconds": sum(r.seconds for r in reports)}


def target_identity(identity: dict[str, Any], target_ms: float, penalty: str) -> dict[str, Any]:
    """A target state file's identity: the run's, its target, and its latency penalty where it is not the run's."""
    if penalty == identity["search"]["latency_penalty"]:
        return {**identity, "target_ms": target_ms}
    return {**identity, "target_ms": target_ms, "search": {**identity["search"], "latency_penalty": penalty}}


def run_target(setup: Setup, args: argparse.Namespace, identity: dict[str, Any], index: int, target_ms: float,
               penalty: str, root: Path) -> TargetState:
    state = TargetState(root / f"t{index}.json", target_identity(identity, target_ms, penalty))
    reuse = None if args.reuse_searches is None else Path(args.reuse_searches) / root.name
    warmups = None if args.warmups is None else Path(args.warmups)
    for seed in args.seeds:
        if str(seed) not in state.searches:
            started = time.perf_counter()
            search(setup, state, target_ms, penalty, seed, root / f"t{index}", reuse, warmups)
            s = state.searches[str(seed)]
            print(f"target {index} ({target_ms:.3f} ms) seed {seed}: {s['measured_ms']:.3f} ms measured, supernet "
                  f"search-val acc (last 20%) {s['supernet_val_acc_last']}, {time.perf_counter() - started:.0f} s", flush=True)
        if state.searches[str(seed)].get("accuracy") is None:
            state.searches[str(seed)].update(train(setup, Architecture.from_dict(state.searches[str(seed)]["arch"]), args))
            state.save()
    find_randoms(setup, state, args, index)
    trained = {int(seed): 0 for seed in state.searches}
    for candidate in state.candidates:  # in draw order: which ones are trained does not depend on accuracy
        if candidate["accuracy"] is None and any(trained[seed] < args.randoms for seed in candidate["matches"]):
            candidate.update(train(setup, Architecture.from_dict(candidate["arch"]), args))
            state.save()
            print(f"  target {index}: random network trained, accuracy {candidate['accuracy']:.4f}", flush=True)
        if candidate["accuracy"] is not None:
            for seed in candidate["matches"]:
                trained[seed] += 1
    return state


def summarize(state: TargetState, index: int, seeds: list[int] | None = None,
              pool_latencies: list[float] | None = None) -> dict[str, Any]:
    """Mean +- SE per group, the difference, and each search's percentile among its own matches;
    with `seeds`, only those searches and the random networks matched to one of them. With `pool_latencies`
    (the profile's random networks, ms), where each searched network lands in their measured range."""
    searches = [s for s in state.searches.values()
                if s.get("accuracy") is not None and (seeds is None or int(s["seed"]) in seeds)]
    chosen = {int(s["seed"]) for s in searches}
    matched = [c for c in state.candidates if chosen.intersection(c["matches"]) and c.get("accuracy") is not None]
    rows = []
    for s in searches:
        own = [c["accuracy"] for c in matched if s["seed"] in c["matches"]]
        session = s["session_ms"]
        moved = distribution_at_end(Path(s["run_dir"])) if Path(s["run_dir"], "metrics.jsonl").is_file() else {}
        landing = None if not pool_latencies else 100.0 * float(np.mean(np.asarray(pool_latencies) <= s["measured_ms"]))
        rows.append({"seed": s["seed"], "measured_ms": s["measured_ms"], **moved, "pool_percentile": landing,
                     "choices": (s.get("arch") or {}).get("choices"),
                     "session_ms": float(np.median(session)) if session else None, "accuracy": s["accuracy"],
                     "supernet_val_acc_last": s["supernet_val_acc_last"], "randoms": len(own),
                     "derivation": s.get("derivation"),
                     "random_mean": float(np.mean(own)) if own else None, "percentile": percentile_among(s["accuracy"], own)})
    searched, random = mean_se([s["accuracy"] for s in searches]), mean_se([c["accuracy"] for c in matched])
    diff: Difference = difference(searched, random)
    first = difference(mean_se([first_seed(s) for s in searches]), mean_se([first_seed(c) for c in matched]))
    identity = state.doc["identity"]
    return {"target_index": index, "target_ms": identity["target_ms"], "pool_seed": state.doc.get("pool_seed"),
            "latency_penalty": identity.get("search", {}).get("latency_penalty"), "searched": searched.__dict__,
            "random": random.__dict__, "difference": diff.value, "difference_se": diff.se, "z": diff.z,
            "first_seed_difference": first.value, "first_seed_difference_se": first.se, "first_seed_z": first.z,
            "goal_met": bool(random.n >= 2 and searched.n >= 2 and diff.z > 2.0), "per_search": rows,
            "random_timed": len(state.candidates), "random_draws": state.doc["draws"],
            "random_networks": [{"measured_ms": c["measured_ms"], "accuracy": c["accuracy"], "matches": c["matches"],
                                 "arch": c["arch"]["choices"]} for c in matched]}


def first_seed(record: dict[str, Any]) -> float:
    """The accuracy after the first training seed alone (older files hold one seed, in `accuracy`)."""
    return record.get("accuracies", [record["accuracy"]])[0]


def derivation_cell(derivation: dict[str, Any] | None) -> str:
    if derivation is None:
        return "argmax"
    return f"{derivation['chosen']} of {derivation['scored']}: {derivation['chosen_val_acc']:.3f} vs {derivation['argmax_val_acc']:.3f}"


def report(summaries: list[dict[str, Any]], root: Path, setup: Setup, args: argparse.Namespace, path: Path,
           argv: list[str] | None) -> None:
    """Plot, write the summary file, and print its tables."""
    random_points = [(c["measured_ms"], c["accuracy"]) for s in summaries for c in s["random_networks"]]
    found = {f"searched, target {s['target_ms']:.3f} ms": [(r["session_ms"] or r["measured_ms"], r["accuracy"]) for r in s["per_search"]]
             for s in summaries}
    plot = among_random(random_points, found, root / "results.png", ylabel="test accuracy (one training recipe)",
                        title=f"{args.setting}: searched and random networks", targets=[s["target_ms"] for s in summaries])
    pool = [] if setup.profile is None else profile_latencies(setup.profile).tolist()
    document = {"benchmark": "search_vs_random", "provenance": provenance(argv), "setting": args.setting,
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "search_config": setup.config.flat(), "profile": str(setup.profile),
                "profile_range_ms": [min(pool), max(pool)] if pool else None,
                "data": setup.data.record.to_dict(), "targets": summaries, "plot": None if plot is None else str(plot)}
    write_json(path, document)
    tables(document)


def tables(document: dict[str, Any]) -> None:
    """Every table of a summary file (the live run prints these too)."""
    summaries, args = document["targets"], document["args"]
    print_table("per search (accuracy on the test split after the one recipe; percentile among its own matched randoms)",
                ["target", "seed", "searched ms", "ms beside its randoms", "acc", "supernet val acc", "entropy / uniform", "mean max p",
                 "derived (inherited val acc: chosen vs argmax)", "randoms", "their mean", "percentile"],
                [[f"{s['target_ms']:.3f}", r["seed"], f"{r['measured_ms']:.3f}",
                  "-" if r["session_ms"] is None else f"{r['session_ms']:.3f}", f"{r['accuracy']:.4f}",
                  "-" if r["supernet_val_acc_last"] is None else f"{r['supernet_val_acc_last']:.3f}",
                  "-" if r.get("entropy_fraction") is None else f"{r['entropy_fraction']:.2f}",
                  "-" if r.get("mean_max_probability") is None else f"{r['mean_max_probability']:.2f}",
                  derivation_cell(r.get("derivation")), r["randoms"],
                  "-" if r["random_mean"] is None else f"{r['random_mean']:.4f}",
                  "-" if r["percentile"] is None or math.isnan(r["percentile"]) else f"{r['percentile']:.0f}"]
                 for s in summaries for r in s["per_search"]])
    low, high = document.get("profile_range_ms") or (None, None)
    print_table("where each searched network lands: its measured latency against its target, and its percentile "
                "among the profile's random networks' measured latencies"
                + ("" if low is None else f" ({low:.3f}-{high:.3f} ms)"),
                ["target ms", "penalty", "pool seed", "seed", "measured ms", "vs target", "percentile of the range"],
                [[f"{s['target_ms']:.3f}", s.get("latency_penalty") or "-", s.get("pool_seed", "-"), r["seed"],
                  f"{r['measured_ms']:.3f}", f"{100 * (r['measured_ms'] / s['target_ms'] - 1):+.1f}%",
                  "-" if r.get("pool_percentile") is None else f"{r['pool_percentile']:.0f}"]
                 for s in summaries for r in s["per_search"]])
    print_table("per target: how the searches agree (pairwise over seeds, the share of decisions whose derived choice is "
                "the same) and whether the supernet's search-val accuracy follows the searched networks' accuracy",
                ["target ms", "searches", "agreement", "Spearman (supernet val acc, acc)"],
                [[f"{s['target_ms']:.3f}", len(s["per_search"]), agreement_cell(s["per_search"]),
                  spearman_cell(s["per_search"])] for s in summaries])
    print_table(f"{document['setting']}: searched vs random at equal measured latency (±{args['tolerance']:.0%}), mean ± SE",
                ["target ms", "searched", "random", "difference (SE)", "goal (> 2 SE)",
                 f"difference, training seed {args['train_seeds'][0]} alone"],
                [[f"{s['target_ms']:.3f}", str(mean_se_of(s["searched"])), str(mean_se_of(s["random"])),
                  str(Difference(s["difference"], s["difference_se"])), "met" if s["goal_met"] else "NOT met",
                  str(Difference(s["first_seed_difference"], s["first_seed_difference_se"]))]
                 for s in summaries])


def agreement_cell(rows: list[dict[str, Any]]) -> str:
    """Mean over pairs of searches of the share of decisions derived alike ("-" under two searches with choices)."""
    choices = [r["choices"] for r in rows if r.get("choices")]
    pairs = [(a, b) for i, a in enumerate(choices) for b in choices[i + 1:]]
    if not pairs:
        return "-"
    return f"{100 * float(np.mean([np.mean([a[k] == b.get(k) for k in a]) for a, b in pairs])):.0f}%"


def spearman_cell(rows: list[dict[str, Any]]) -> str:
    from scipy.stats import spearmanr  # noqa: PLC0415

    pairs = [(r["supernet_val_acc_last"], r["accuracy"]) for r in rows if r.get("supernet_val_acc_last") is not None]
    if len(pairs) < 3:
        return "-"
    result = spearmanr(*zip(*pairs, strict=True))
    return f"{result.statistic:+.2f} (p = {result.pvalue:.2f}, n = {len(pairs)})"


def mean_se_of(record: dict[str, Any]) -> str:
    if record["n"] == 0:
        return "-"
    return f"{record['mean']:.4f} ± {record['se']:.4f} (n={record['n']})"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="unas")
    parser.add_argument("--task", choices=sorted(TASKS), default="cluttered",
                        help="data and space size shared by the #12 benchmarks (_common.TASKS; default: cluttered)")
    parser.add_argument("--latency-backend", help="backend of the latency conditions (default: SearchConfig's)")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="search seeds (default: 0 1 2 3 4); the tables then show only these searches and the random "
                             "networks matched to them")
    parser.add_argument("--quantiles", type=float, nargs="+", default=[0.15, 0.5, 0.85],
                        help="latency targets: quantiles of the profile's random networks (default: 0.15 0.5 0.85)")
    parser.add_argument("--targets", type=int, nargs="+", help="run only these target indices (others are reported if done)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="latency match, relative (default: 0.05)")
    parser.add_argument("--randoms", type=int, default=5, help="matched random networks wanted per search (default: 5)")
    parser.add_argument("--max-timed", type=int, default=60, help="random networks timed per target at most (default: 60)")
    parser.add_argument("--max-draws", type=int, default=200_000, help="rejection-sampling draws per target at most")
    parser.add_argument("--confirm-batch", type=int, default=4, help="random networks timed per session (default: 4)")
    parser.add_argument("--confirm-budget", type=float, default=1.0, help="timing seconds per network per session")
    parser.add_argument("--pool-seed", type=int,
                        help="seed of the random networks' draws (default: a fresh one for each new target state file, "
                             "recorded in it and in the results; a resumed file keeps its own)")
    parser.add_argument("--loosest-penalty", choices=[*LATENCY_PENALTIES, "same"], default="abs",
                        help="latency penalty of the loosest (largest) target's searches (default: abs, so its searched "
                             "networks are pulled up to the target and the searched networks span the measured range; "
                             "same: the --latency-penalty of the other targets)")
    parser.add_argument("--steps", type=int, help="architecture steps (default: SearchConfig's)")
    parser.add_argument("--arch-batch-size", type=int,
                        help="images per architecture step (default: SearchConfig's, the weight batch); 4x the batch "
                             "gave 2.4x the gradient's SNR per step, benchmarks/arch_gradient_snr.py")
    parser.add_argument("--warmup-steps", type=int, help="weight-only warm-up steps (default: from --warmup-epochs)")
    parser.add_argument("--warmup-epochs", type=float, help="weight-only warm-up in passes over search-train (default: SearchConfig's)")
    parser.add_argument("--latency-timing", choices=["auto", "inline", "worker"],
                        help="when the search times its samples (default: SearchConfig's; inline when several of these "
                             "processes share a small machine, so their workers do not share its last core)")
    parser.add_argument("--test-renders", type=int, default=5,
                        help="test split drawn this many times (cluttered MNIST: new positions and clutter of the same "
                             "1,000 test digits; default 5, i.e. 5,000 test canvases; the runs before 2026-11-27 17:00 used 1)")
    parser.add_argument("--train-steps", type=int, default=400,
                        help="training steps of every network (default: 400, the recipe of task_separation / supernet_ranking)")
    parser.add_argument("--train-batch", type=int, default=32, help="training batch of every network (default: 32)")
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0],
                        help="training seeds of every network; its accuracy is their mean (default: 0; one network's "
                             "seed-to-seed noise is ~2 points at 400 steps, benchmarks/supernet_ranking.py)")
    parser.add_argument("--latency-penalty", choices=LATENCY_PENALTIES,
                        help="shape of the latency term (default: SearchConfig's, hinge: only latency over the target "
                             "costs; abs: two-sided, pulls the distribution to the target)")
    parser.add_argument("--supernet-rule", choices=SUPERNET_RULES,
                        help="paths the supernet's weights train on (default: SearchConfig's, depth for UNAS; "
                             "hwnas.search.paths)")
    parser.add_argument("--derive-candidates", type=int,
                        help="networks each search's derivation chooses among (default: SearchConfig's, 1 = argmax; "
                             "hwnas.search.derive)")
    parser.add_argument("--reuse-searches", metavar="WORK",
                        help="another --work folder whose finished searches (same setting, task and search config "
                             "but --derive-candidates) are copied here and only derived again")
    parser.add_argument("--warmups", metavar="DIR",
                        help="keep each search's weight warm-up here and start every later search that would train the "
                             "same one (another target or estimator, same seed) from it: exact, hwnas.search.warmstart; "
                             "needs a --supernet-rule other than sample (default: every search trains its own)")
    parser.add_argument("--profiles", default="profiles", help="profile root, shared with `hwnas search` (default: profiles)")
    parser.add_argument("--work", default="runs/bench-search-vs-random", help="searches and state files go here")
    add_result_options(parser, "search_vs_random", "<setting>-<task>")
    args = parser.parse_args(argv)
    if not 0 < args.tolerance < 1 or any(not 0 < q < 1 for q in args.quantiles) or args.randoms < 1:
        parser.error("--tolerance and --quantiles must lie in (0, 1) and --randoms be >= 1")
    if args.targets and any(not 0 <= t < len(args.quantiles) for t in args.targets):
        parser.error(f"--targets are indices into --quantiles: 0..{len(args.quantiles) - 1}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    path = json_path(args, "search_vs_random", f"{args.setting}-{args.task}")
    if args.report_only:
        document = document_or_error(path)
        if document is None:
            return 2
        print_provenance(document)
        tables(document)
        return 0
    overrides = {k: v for k, v in (("steps", args.steps), ("arch_batch_size", args.arch_batch_size),
                                   ("warmup_steps", args.warmup_steps), ("warmup_epochs", args.warmup_epochs),
                                   ("latency_backend", args.latency_backend), ("latency_timing", args.latency_timing),
                                   ("test_renders", args.test_renders), ("derive_candidates", args.derive_candidates),
                                   ("latency_penalty", args.latency_penalty), ("supernet_rule", args.supernet_rule))
                 if v is not None}
    space, estimators = SETTINGS[args.setting]
    try:
        setup = prepare(bench_config(args.task, space, **estimators, **overrides), profile_root=args.profiles)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    assert setup.profile is not None and setup.surrogate is not None
    root = Path(args.work) / f"{args.setting}-{args.task}"
    searched_with = {k: v for k, v in setup.config.flat().items()
                     if k not in IGNORED_FOR_RESUME and not (k in ADDED_LATER and v == ADDED_LATER[k])}
    seeds = args.train_seeds[0] if len(args.train_seeds) == 1 else args.train_seeds  # one seed: as older files say it
    identity = {"setting": args.setting, "task": args.task, "search": searched_with,
                "data": setup.data.record.indices_sha256, "tolerance": args.tolerance,
                "train": [args.train_steps, args.train_batch, seeds]}
    targets = [auto_target(setup.profile, q) for q in args.quantiles]
    penalties = [setup.config.latency.penalty] * len(targets)
    if args.loosest_penalty != "same":
        penalties[int(np.argmax(targets))] = args.loosest_penalty
    shown_seeds = args.seeds if args.seeds is not None else DEFAULT_SEEDS
    args.seeds = args.seeds or DEFAULT_SEEDS
    pool = profile_latencies(setup.profile).tolist()
    print(f"{args.setting}: targets {', '.join(f'{t:.3f}' for t in targets)} ms (quantiles {args.quantiles} of {setup.profile})")
    def report_all() -> None:
        """Every target's state as it is on disk now (another process may have extended it)."""
        summaries = [summarize(TargetState(root / f"t{index}.json", target_identity(identity, target, penalty)), index,
                               shown_seeds, pool)
                     for index, (target, penalty) in enumerate(zip(targets, penalties, strict=True))
                     if (root / f"t{index}.json").is_file()]
        if summaries:
            report(summaries, root, setup, args, path, argv)

    try:
        for index, (target, penalty) in enumerate(zip(targets, penalties, strict=True)):
            if args.targets is None or index in args.targets:
                run_target(setup, args, identity, index, target, penalty, root)
                report_all()
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SearchStopped as stopped:  # SIGINT / SIGTERM: everything done so far is saved; rerun to continue
        print(f"stopped by {stopped.signal_name} after step {stopped.step} of a search; rerun the same command to continue",
              file=sys.stderr)
        return 130 if stopped.signal_name == "SIGINT" else 143
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
