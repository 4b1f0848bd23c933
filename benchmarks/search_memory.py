"""Peak memory of one 224x224 proxyless search step, whole batch against recomputed or micro-batches (#30 group 8).

    nice -n 5 python benchmarks/search_memory.py --batch 8 --micro 8 --batch 32 --micro 32 --recompute \
        --json benchmarks/results/search_memory/cpu-224-recompute.json

`--recompute`: every run recomputes the relaxed decision points in the backward (search_spaces.recompute:
exact, the whole batch). A micro-batch below the batch is the older (ghost-batch) measurement of
cpu-224.json: the search now refuses it for these BatchNorm supernets, so the script can no longer run it.

Each (batch, micro-batch) runs in its own process (ru_maxrss is a process's maximum): a
proxyless supernet for 224x224 RGB, 4 classes (the issue's ImageFolder), the search's defaults
(REBAR, L_gen, "reuse", shared weights, BatchNorm per choice), one weight step on a single path
(the largest, e6_k7 everywhere) and one architecture step (REBAR's relaxed evaluation of every
candidate on a search-train and a search-val batch; no latency term: it runs no supernet),
random images, one torch thread. Recorded: the peak resident set (ru_maxrss) before the supernet
is built, after it, and after the step, and `hwnas.search.memory`'s estimate of the same run.
`--cap-gib` sets RLIMIT_AS in the child so that a whole-batch step that would not fit fails in
that child (recorded as exceeding the cap) instead of pushing a shared machine into the OOM killer.
Result: benchmarks/results/search_memory/cpu-224.json (`--report-only` prints it again).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import add_result_options, finish, json_path, provenance, report_only, table  # noqa: E402


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def child(batch: int, micro: int, recompute: bool, cap_gib: float) -> dict:
    resource.setrlimit(resource.RLIMIT_AS, (int(cap_gib * 2**30), int(cap_gib * 2**30)))
    import torch

    from hwnas.estimators import ArchitectureDistribution, MovingAverageBaseline
    from hwnas.search.config import SearchConfig
    from hwnas.search.memory import MemoryPlan, estimate_search
    from hwnas.search.steps import ArchContext, arch_step, weight_step
    from hwnas.search.terms import AccuracyTerm
    from search_spaces import get_space
    from search_spaces.recompute import set_recompute

    torch.set_num_threads(1)
    torch.manual_seed(0)
    record: dict = {"batch": batch, "micro_batch": micro, "recompute": recompute, "rss_start": _rss()}
    space = get_space("proxyless", in_channels=3, num_classes=4, resolution=224)
    config = SearchConfig.from_flat(batch_size=batch, latency_estimator="none")
    plan = MemoryPlan(None if micro >= batch else micro, recompute)
    started = time.perf_counter()
    estimate = estimate_search(space, weight_sharing="shared", batchnorm="choice", batch_size=batch, arch_batch=batch,
                               trains_mixture=False, relaxed_graphs=2)  # L_gen: train and val
    record.update({"estimate_bytes": estimate.peak(plan), "estimate_seconds": time.perf_counter() - started})
    net = space.supernet(weight_sharing="shared", batchnorm="choice").train()
    set_recompute(net, recompute)
    logits = {d.name: torch.zeros(len(d.choices), requires_grad=True) for d in space.decisions}
    w_opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(list(logits.values()), lr=0.05, betas=(0.5, 0.999))
    record["rss_built"] = _rss()

    def batch_of() -> tuple:
        return torch.randn(batch, 3, 224, 224), torch.randint(0, 4, (batch,))

    largest = {d.name: torch.nn.functional.one_hot(torch.tensor(len(d.choices) - 1), len(d.choices)).float()
               for d in space.decisions}
    started = time.perf_counter()
    try:
        weight_step(net, w_opt, largest, batch_of(), micro_batch=plan.micro_batch)
        record["rss_weight_step"] = _rss()
        term = AccuracyTerm(net, "gen", 0.5, batch_of(), batch_of(), plan.micro_batch)
        ctx = ArchContext(config.estimator, net, logits, term, None, 0.4, 0.05, term.train_batch, MovingAverageBaseline(0.9))
        arch_step(ctx, a_opt)
        record["rss_arch_step"] = _rss()
        record["status"] = "ok"
    except (MemoryError, RuntimeError) as error:
        record["status"] = f"exceeded the {cap_gib:g} GiB cap: {str(error).splitlines()[0][:160]}"
    record["step_seconds"] = time.perf_counter() - started
    record["rss_peak"] = _rss()
    return record


def tables(document: dict) -> None:
    """The report of the recorded runs (what `--report-only` prints again)."""
    gb = lambda value: "-" if value is None else f"{value / 1e9:.2f} GB"  # noqa: E731
    rows = []
    for run in document["runs"]:
        grown = run.get("rss_arch_step")
        rows.append([run["batch"], f"{run['micro_batch']}{' recomputed' if run.get('recompute') else ''}", gb(run.get("rss_peak")),
                     gb(None if grown is None else grown - run["rss_built"]), gb(run.get("estimate_bytes")),
                     f"{run['step_seconds']:.0f}" if "step_seconds" in run else "-", run.get("status", "?")[:60]])
    table(document, "peak memory of one 224x224 proxyless search step (weight + architecture step), ru_maxrss",
          ["batch", "micro-batch", "peak RSS", "above the built supernet", "estimate", "step s", "status"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--micro", type=int, nargs="+", action="append", help="micro-batches of the --batch before it")
    parser.add_argument("--cap-gib", type=float, default=11.0)
    parser.add_argument("--recompute", action="store_true", help="recompute the relaxed decision points in the backward")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    add_result_options(parser, "search_memory", "cpu-224")
    args = parser.parse_args(argv)
    if args.child:
        batch, micro, recompute = args.child
        print(json.dumps(child(batch, micro, bool(recompute), args.cap_gib)))
        return 0
    path = json_path(args, "search_memory", "cpu-224")
    if args.report_only:
        return report_only(path)
    if not args.batch or not args.micro or len(args.batch) != len(args.micro):
        parser.error("give --batch N --micro M [M ...] pairs")
    started = time.perf_counter()
    document: dict = {"benchmark": "search_memory", "provenance": provenance(argv), "runs": []}
    for batch, micros in zip(args.batch, args.micro, strict=True):
        for micro in micros:
            command = [sys.executable, __file__, "--cap-gib", str(args.cap_gib), "--child", str(batch), str(micro),
                       str(int(args.recompute))]
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                  check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            run = json.loads(lines[-1]) if lines else {"batch": batch, "micro_batch": micro,
                                                       "status": f"child exit {done.returncode}: {done.stderr[-300:]}"}
            print(json.dumps(run), flush=True)
            document["runs"].append(run)
    tables(document)
    return finish(document, path, started)


if __name__ == "__main__":
    raise SystemExit(main())
