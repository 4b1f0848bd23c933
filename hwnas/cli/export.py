"""`hwnas export ARCH --out DIR`: a found network as checked ONNX (and TensorRT) files, re-measured.

The command mirrors `hwnas.export.export_network` one-to-one: every flag is
an `ExportOptions` field. Progress lines (checker, parity figures, engine
precision, latency per backend) go to stdout; a request that cannot work is
one line on stderr and exit code 2, with no output folder left behind.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hwnas.cli._options import non_negative_int, positive_float, positive_int, writable_dir
from hwnas.errors import UsageError

DEFAULT_OPSET = 18  # profilers._onnx.OPSET; repeated here so `hwnas --help` does not import torch


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export an architecture to ONNX / TensorRT with a parity check, measured latency and a manifest",
        description=(
            "Build the network of ARCH (a named architecture or an architecture JSON file), load its weights, "
            "export it to ONNX (checked with the ONNX checker, output compared with eager PyTorch through "
            "ONNX Runtime: fp32 max relative error < 1e-3 on the CPU) and optionally to a TensorRT engine, "
            "time every backend, and write DIR/manifest.json with file hashes, versions, I/O specs, parity "
            "figures and latencies. DIR is built beside itself and renamed into place: a failed export leaves nothing."
        ),
    )
    parser.add_argument("arch", metavar="ARCH_JSON_OR_NAME", help="architecture JSON file or named architecture (see `hwnas profile --list-models`)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (must not exist or be empty, unless --force)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument(
        "--weights", type=Path, default=None, metavar="CKPT",
        help="checkpoint of the standalone network (a state_dict, or a dict with it under 'state_dict' or 'model'), "
        "read with torch.load(weights_only=True); default: seeded random weights with calibrated BatchNorm (latency only)",
    )
    weights.add_argument(
        "--inherit-from", type=Path, default=None, metavar="SUPERNET_CKPT",
        help="state_dict of the search supernet of ARCH's space: the network inherits the weights of its selected paths",
    )
    parser.add_argument(
        "--format", default="onnx", metavar="FORMATS",
        help="comma-separated: onnx, tensorrt (the engine is built from the ONNX file, which is kept; default: onnx)",
    )
    parser.add_argument(
        "--precision", choices=("fp32", "fp16"), default="fp32",
        help="fp32, or fp16 = an fp16 ONNX graph (TensorRT builds strongly typed from it); fp16 needs --device cuda:N",
    )
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument("--batch-size", type=positive_int, default=None, metavar="B", help="static batch size (default: 1 on cpu, 32 on cuda)")
    batch.add_argument(
        "--dynamic-batch", default=None, metavar="MIN,OPT,MAX",
        help="symbolic batch axis; parity is checked at MIN and MAX, latency measured at OPT (ONNX only)",
    )
    parser.add_argument(
        "--opset", type=positive_int, default=DEFAULT_OPSET, metavar="N",
        help=f"ONNX opset to write: 13-20 with torchscript, 18-23 with dynamo (default: {DEFAULT_OPSET})",
    )
    parser.add_argument(
        "--exporter", choices=("torchscript", "dynamo"), default="torchscript",
        help="torch.onnx exporter (default: torchscript, the fast one; dynamo needs opset >= 18)",
    )
    parser.add_argument("--device", default="cpu", metavar="DEVICE", help="where parity and latency run: cpu or cuda:N (default: cpu)")
    parser.add_argument("--input-size", type=positive_int, default=None, metavar="PIXELS", help="input height = width in pixels (default: the architecture's resolution)")
    parser.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim if installed (skipped with a note if not)")
    parser.add_argument(
        "--measure", default=None, metavar="BACKENDS",
        help="backends to time, comma-separated from eager, ort, tensorrt, or none "
        "(default: eager, ort, and tensorrt with --format tensorrt)",
    )
    parser.add_argument("--budget", type=positive_float, default=10.0, metavar="SECONDS", help="seconds of timing per backend at most (default: 10)")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N", help="CPU threads for eager and ONNX Runtime (default: torch's)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random inputs and of random weights (default: 0)")
    parser.add_argument("--force", action="store_true", help="replace DIR if it exists and is not empty")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwnas.export import BatchSpec, ExportOptions, export_network  # noqa: PLC0415 - keeps `hwnas --help` fast
    from profilers import MeasureConfig  # noqa: PLC0415

    writable_dir(args.out, "--out")
    if args.dynamic_batch is not None:
        batch = BatchSpec.parse_dynamic(args.dynamic_batch)
    else:
        default = 32 if args.device.startswith("cuda") else 1  # the GPU default is batch 32: docs/design.md#5-measuring-latency
        batch = BatchSpec.static(default if args.batch_size is None else args.batch_size)
    options = ExportOptions(
        formats=_split(args.format),
        precision=args.precision,
        batch=batch,
        opset=args.opset,
        exporter=args.exporter,
        device=args.device,
        input_size=args.input_size,
        weights=args.weights,
        inherit_from=args.inherit_from,
        simplify=args.simplify,
        measure=None if args.measure is None else tuple(b for b in _split(args.measure) if b != "none"),
        measure_config=MeasureConfig(budget_s=args.budget, threads=args.threads, seed=args.seed),
        force=args.force,
        seed=args.seed,
    )
    result = export_network(args.arch, args.out, options, report=print)
    for backend, ms in result.latency_ms.items():
        print(f"{backend}: {ms:.3f} ms (batch {result.manifest['input_shape'][0]}, {options.precision}, {options.device})")
    threads = "" if args.threads is None else f" --threads {args.threads}"
    print(f"re-measure with: hwnas profile --model {result.onnx} --backend ort --device {options.device} "
          f"--batch-size {batch.opt} --precision {options.precision}{threads}")
    return 0


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())
