"""A sampled network's ONNX graph joined from parts against a whole export: cost per network, and same latency? (#15)

    .venv/bin/python benchmarks/onnx_parts_cost.py                  # the default run's space, CPU, batch 1
    .venv/bin/python benchmarks/onnx_parts_cost.py --device cuda:0 --batch-size 32    # ORT's CUDA EP

1. Preparing a new sampled network for ONNX Runtime, median seconds over
   `--networks` sampled networks: before (#15), build + `torch.onnx.export`
   of the whole network + InferenceSession; after, the chain + joining the
   cached parts + serialising + InferenceSession. Beside it, the one-time
   export of every part (`LatencyOracle.prepare_parts`, done by the latency
   worker during the warm-up).
2. Do both time the same network? Per sampled network, the whole export and
   the joined graph *with the same weights*, timed round-robin
   (`measure_interleaved`: drift hits both alike), twice. The joined / whole
   ratio per network (median and range over networks), against the noise
   floor: the same whole file's pass-to-pass ratio.

Prints tables; writes JSON (--json, default benchmarks/results/onnx_parts_cost/<device>-b<batch>.json);
`--report-only` prints the tables again from it. No timing is asserted anywhere: this is
measurement for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_result_options, finish, json_path, machine, provenance, report_only, table  # noqa: E402

from hwnas.run import default_space  # noqa: E402
from hwnas.search.latency import SEARCH_MEASURE, LatencyConditions, LatencyOracle  # noqa: E402
from profilers import MeasureConfig, measure_interleaved  # noqa: E402
from profilers._onnx import export_onnx  # noqa: E402
from profilers.backends.base import PRECISIONS, import_optional, random_input  # noqa: E402
from profilers.onnx_parts import OnnxParts, copy_chain_weights  # noqa: E402
from search_spaces import get_space  # noqa: E402

TIMING = MeasureConfig(warmup_runs=10, warmup_s=0.2, min_runs=30, max_runs=2000, budget_s=1.0, remeasure=0,
                       verify_outputs=False, host_runs=0)
"""Longer than the search's per-sample budget: the question is whether the two graphs differ, not the search's noise."""


def _space(args: argparse.Namespace) -> Any:
    config, side = default_space("cluttered_mnist", "proxyless")
    return get_space("proxyless", **{"in_channels": 1, "num_classes": 10, "resolution": side, **config})


def _session(path: Path, device: torch.device, threads: int) -> Any:
    ort = import_optional("onnxruntime", "pip install onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    providers = ["CPUExecutionProvider"] if device.type == "cpu" else ["CUDAExecutionProvider"]
    return ort.InferenceSession(str(path), options, providers=providers)


def preparation_cost(space: Any, args: argparse.Namespace, work: Path) -> tuple[list[list[Any]], dict[str, Any]]:
    """Seconds to make a new sampled network runnable in ORT, whole export against joined parts."""
    device = torch.device(args.device)
    oracle = LatencyOracle(space, LatencyConditions(device=args.device, backend="ort", batch_size=args.batch_size,
                                                    precision=args.precision, threads=1), config=SEARCH_MEASURE)
    assert oracle.parts is not None
    started = time.perf_counter()
    parts = oracle.prepare_parts()
    prepare_s = time.perf_counter() - started
    rng = np.random.default_rng(args.seed)
    example = random_input(space.input_shape(args.batch_size), PRECISIONS[args.precision], device, 0)
    whole: dict[str, list[float]] = {"build + export": [], "session": []}
    joined: dict[str, list[float]] = {"chain + join + serialise": [], "session": []}
    for index in range(args.networks):
        arch = space.sample(rng)
        path = work / f"whole-{index}.onnx"
        started = time.perf_counter()
        network = space.build(arch).eval().to(device=device, dtype=PRECISIONS[args.precision])
        export_onnx(network, example, path, "torchscript")
        whole["build + export"].append(time.perf_counter() - started)
        started = time.perf_counter()
        _session(path, device, 1)
        whole["session"].append(time.perf_counter() - started)
        path = work / f"joined-{index}.onnx"
        started = time.perf_counter()
        chain = space.chain(arch, args.batch_size)
        path.write_bytes(oracle.parts.model([(p.name, p.input_shape, p.build) for p in chain]).SerializeToString())
        joined["chain + join + serialise"].append(time.perf_counter() - started)
        started = time.perf_counter()
        _session(path, device, 1)
        joined["session"].append(time.perf_counter() - started)
    median = statistics.median
    before = [a + b for a, b in zip(*whole.values(), strict=True)]
    after = [a + b for a, b in zip(*joined.values(), strict=True)]
    rows = [
        ["before: whole export", median(whole["build + export"]), median(whole["session"]), median(before), ""],
        ["after: joined parts", median(joined["chain + join + serialise"]), median(joined["session"]), median(after),
         f"{parts} parts exported once in {prepare_s:.2f} s"],
        ["ratio after / before", "", "", median(after) / median(before), ""],
    ]
    return rows, {"whole_s": whole, "joined_s": joined, "parts": parts, "prepare_parts_s": prepare_s}


def same_latency(space: Any, args: argparse.Namespace, work: Path) -> tuple[list[list[Any]], dict[str, Any]]:
    """Per network, the whole export and the joined graph with the same weights, timed round-robin, twice."""
    rng = np.random.default_rng(args.seed + 1)
    device = torch.device(args.device)
    example = random_input(space.input_shape(args.batch_size), PRECISIONS[args.precision], device, 0)
    files: list[Path] = []
    for index in range(args.networks):
        arch = space.sample(rng)
        chain = space.chain(arch, args.batch_size)
        modules = [part.build().eval() for part in chain]
        network = copy_chain_weights(modules, space.build(arch).eval())
        export_onnx(network.to(device=device, dtype=PRECISIONS[args.precision]), example,
                    work / f"same-whole-{index}.onnx", "torchscript")
        parts = OnnxParts(args.device, args.precision)  # fresh: these parts carry this network's weights
        graph = parts.model([(p.name, p.input_shape, lambda m=m: m) for p, m in zip(chain, modules, strict=True)])
        (work / f"same-joined-{index}.onnx").write_bytes(graph.SerializeToString())
        files += [work / f"same-whole-{index}.onnx", work / f"same-joined-{index}.onnx"]
    config = replace(TIMING, threads=1)
    passes = [[r.value_ms for r in measure_interleaved(files, backend="ort", device=args.device,
                                                       input_shapes=space.input_shape(args.batch_size),
                                                       precision=args.precision, config=config)]
              for _ in range(2)]
    whole = np.array([[p[2 * i] for i in range(args.networks)] for p in passes])
    joined = np.array([[p[2 * i + 1] for i in range(args.networks)] for p in passes])
    ratio = (joined / whole).mean(0)  # per network, both passes
    retest = whole[1] / whole[0]  # the same file, pass 2 over pass 1: the noise floor
    rows = [
        ["joined / whole export (same weights)", float(np.median(ratio)), float(ratio.min()), float(ratio.max()),
         float(np.mean(np.abs(ratio - 1)) * 100)],
        ["whole export, pass 2 / pass 1 (noise floor)", float(np.median(retest)), float(retest.min()), float(retest.max()),
         float(np.mean(np.abs(retest - 1)) * 100)],
    ]
    return rows, {"whole_ms": whole.tolist(), "joined_ms": joined.tolist(), "median_ms": float(np.median(whole))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=12, help="sampled networks (default 12)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda:N (ORT's CPU or CUDA provider; default cpu)")
    parser.add_argument("--batch-size", type=int, default=1, help="latency batch size (default 1, the CPU search's)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16"])
    parser.add_argument("--skip", nargs="*", default=[], choices=["cost", "latency"], help="parts to skip")
    parser.add_argument("--seed", type=int, default=0)
    add_result_options(parser, "onnx_parts_cost", "<device>-b<batch-size>")
    args = parser.parse_args(argv)
    path = json_path(args, "onnx_parts_cost", f"{args.device.replace(':', '')}-b{args.batch_size}")
    if args.report_only:
        return report_only(path)
    torch.set_num_threads(1)
    print(f"{machine()['cpu']}, {machine()['cores']} cores, load average {machine()['load_average_1min']:.2f} at the start",
          flush=True)
    space = _space(args)
    document: dict[str, Any] = {"benchmark": "onnx_parts_cost", "provenance": provenance(argv),
                                "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                                "space": space.config}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hwnas-onnx-parts-") as scratch:
        work = Path(scratch)
        if "cost" not in args.skip:
            rows, document["cost"] = preparation_cost(space, args, work)
            table(document, f"preparing a new sampled network for ORT ({args.device}, batch {args.batch_size}, {args.precision}; "
                        f"median s over {args.networks} networks)",
                        ["", "export or join s", "session s", "total s", "note"], rows)
        if "latency" not in args.skip:
            rows, document["latency"] = same_latency(space, args, work)
            table(document, f"do both time the same network? ({args.networks} networks, same weights, round-robin, 2 passes, "
                        f"budget {TIMING.budget_s} s each; median whole export "
                        f"{document['latency']['median_ms']:.4f} ms)",
                        ["ratio", "median", "min", "max", "mean abs % from 1"], rows)
    return finish(document, path, started)


if __name__ == "__main__":
    raise SystemExit(main())
