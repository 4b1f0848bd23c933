"""Three latency targets -> three searched architectures, measured latencies ordered like the targets.

On the bundled MNIST subset, in the default small-input proxyless space, with
the default latency conditions (ONNX Runtime, CPU, batch 1, fp32, 1 thread):
the device profile is made (or reused), and the targets are placed at 20%,
50% and 80% of the way between the fastest and the slowest network the
fitted linear model predicts. Each target gets its own REBAR + RELAX search
with the two-sided `abs` penalty (|L/T - 1|: "as close to T as possible" --
the hinge would be satisfied by any network under a generous target, so it
says nothing about ordering); the derived network is timed with the full
protocol. Pass: the three measured latencies are strictly ordered like the
targets. Prints a table and writes JSON.

Run: `.venv/bin/python benchmarks/latency_targets.py` (about 3 searches of
the default run's length; `--steps` shortens them);
`--report-only --json benchmarks/results/latency_targets/seed0.json` prints the table again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_result_options, finish, json_path, provenance, report_only, table  # noqa: E402

from hwnas.run import Setup, prepare, run_search  # noqa: E402
from hwnas.search import SearchConfig  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.2, 0.5, 0.8],
                        help="targets as fractions of the way from the fastest to the slowest predicted network")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--penalty", default="abs", help="latency penalty of every search (default: abs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profiles", default="profiles", help="profile root, shared with `hwnas search` (default: profiles)")
    parser.add_argument("--work", default="runs/bench-latency-targets", help="run directories go here")
    add_result_options(parser, "latency_targets", "seed<seed>")
    args = parser.parse_args(argv)
    path = json_path(args, "latency_targets", f"seed{args.seed}")
    if args.report_only:
        return report_only(path)
    started = time.perf_counter()
    document = {"benchmark": "latency_targets", "provenance": provenance(argv)}

    setup: Setup = prepare(SearchConfig.from_flat(seed=args.seed, progress=False), profile_root=args.profiles)
    fastest, slowest = setup.predicted_range()
    rows, records = [], []
    for fraction in sorted(args.fractions):
        target = fastest + fraction * (slowest - fastest)
        config = setup.config.replace(latency_target_ms=target, latency_penalty=args.penalty, steps=args.steps,
                                      warmup_steps=args.warmup_steps, progress=False)
        started = time.perf_counter()
        result = run_search(config, Path(args.work) / f"target-{fraction:.2f}", data=setup.data, surrogate=setup.surrogate)
        assert result.final_latency is not None
        measured = result.final_latency.value_ms
        seconds = time.perf_counter() - started
        rows.append([f"{target:.3f}", f"{measured:.3f}", f"{100 * (measured / target - 1):+.1f}%",
                     f"{result.predicted_latency_ms:.3f}", f"{seconds:.0f}"])
        records.append({"fraction": fraction, "target_ms": target, "measured_ms": measured,
                        "predicted_ms": result.predicted_latency_ms, "arch": result.arch.to_dict(), "seconds": seconds,
                        "measurement": result.final_latency.to_dict()})
    measured = [r["measured_ms"] for r in records]
    ordered = all(a < b for a, b in zip(measured, measured[1:]))
    table(
        document,
        f"latency targets ({setup.conditions.backend} on {setup.conditions.device}, batch {setup.conditions.batch_size}, "
        f"{args.penalty} penalty, {args.steps} steps; predicted range {fastest:.3f}-{slowest:.3f} ms)",
        ["target ms", "measured ms", "vs target", "predicted ms", "search s"], rows,
    )
    document["notes"] = [f"measured latencies ordered like the targets: {'yes' if ordered else 'NO'}"]
    print(f"\n{document['notes'][0]}")
    document.update({"profile": str(setup.profile), "ordered": ordered, "predicted_range_ms": [fastest, slowest],
                     "runs": records})
    finish(document, path, started)
    return 0 if ordered else 1


if __name__ == "__main__":
    raise SystemExit(main())
