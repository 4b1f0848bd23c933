"""`hwnas train ARCH --data DIR_OR_NAME`: retrain a found network from scratch and report accuracy and latency.

Mirrors `hwnas.train` one-to-one: the recipe for the space and data kind
(`hwnas.train.recipe`) gives every default, each flag overrides one
`TrainConfig` field. Run under `torchrun` for data-parallel training; only
rank 0 writes. SIGINT / SIGTERM checkpoint at the next step and exit
128 + signal number; `--resume` continues exactly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from hwnas.cli._options import (
    non_negative_float,
    non_negative_int,
    parse_options,
    positive_float,
    positive_int,
    writable_dir,
)
from hwnas.errors import UsageError

DEFAULT_OUT = "runs/train"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="retrain an architecture from scratch (SGD, warm-up + cosine, label smoothing; resumable, torchrun-ready)",
        description=(
            "Train the standalone network of ARCH on the training set of --data (search-train + search-val), "
            "evaluate it on the held-out set every epoch, checkpoint every N steps and on SIGINT/SIGTERM, then "
            "measure its latency. Defaults come from the standard recipe of the space and data kind "
            "(CIFAR-10: DARTS's 600 epochs, cutout, auxiliary head and drop-path for DARTS networks; ImageNet: "
            "warm-up + cosine with label smoothing; bundled data: 10 quick epochs). Writes DIR/checkpoint.pt "
            "(loadable by `hwnas export --weights`), DIR/arch.json, DIR/metrics.jsonl and DIR/summary.json."
        ),
    )
    parser.add_argument("arch", metavar="ARCH_JSON_OR_NAME", help="architecture JSON file (e.g. a search's arch.json) or named architecture")
    parser.add_argument("--data", required=True, metavar="DIR_OR_NAME",
                        help="bundled data set (mnist, digits), a CIFAR-10 python folder (data_batch_1..5, test_batch) "
                             "or an ImageFolder tree (train/, val/)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"run directory (default: {DEFAULT_OUT})")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint.pt exactly")
    parser.add_argument("--space-option", action="append", default=[], metavar="KEY=VALUE",
                        help="override the architecture's space configuration, repeatable, JSON values "
                             "(e.g. in_channels=1 resolution=28 small_input=true)")
    recipe = parser.add_argument_group("recipe (defaults: the standard recipe of the space and data kind)")
    recipe.add_argument("--epochs", type=positive_int, default=None)
    recipe.add_argument("--steps", type=positive_int, default=None, help="stop after this many steps in all (quick runs)")
    recipe.add_argument("--batch-size", type=positive_int, default=None, help="per process")
    recipe.add_argument("--lr", type=positive_float, default=None, help="peak learning rate after warm-up")
    recipe.add_argument("--weight-decay", type=non_negative_float, default=None)
    recipe.add_argument("--warmup-epochs", type=non_negative_float, default=None, help="linear warm-up length (epochs)")
    recipe.add_argument("--label-smoothing", type=non_negative_float, default=None)
    recipe.add_argument("--auxiliary-weight", type=non_negative_float, default=None, help="DARTS auxiliary head loss weight (0 = no head)")
    recipe.add_argument("--drop-path", type=non_negative_float, default=None, help="DARTS final drop-path probability (ramped by epoch)")
    recipe.add_argument("--cutout", type=non_negative_int, default=None, help="CIFAR cutout side in pixels (0 = off)")
    recipe.add_argument("--color-jitter", type=non_negative_float, default=None, help="ImageFolder colour jitter strength (0 = off)")
    recipe.add_argument("--seed", type=non_negative_int, default=None, help="seed of initialisation, data order and augmentation (default: 0)")
    run_group = parser.add_argument_group("execution")
    run_group.add_argument("--device", default="cpu", help="cpu or cuda (under torchrun each rank takes cuda:LOCAL_RANK)")
    run_group.add_argument("--workers", type=non_negative_int, default=None, help="DataLoader workers per process (default: CPU cores, at most 8; 0 for bundled data)")
    run_group.add_argument("--limit", type=positive_int, default=None, help="train on a seeded subset of this many training images")
    run_group.add_argument("--checkpoint-every", type=positive_int, default=None, help="steps between checkpoints (default: 500)")
    run_group.add_argument("--log-every", type=positive_int, default=None, help="steps between metrics lines (default: 20)")
    run_group.add_argument("--latency-device", default=None, help="device to time the trained network on (default: --device)")
    run_group.add_argument("--latency-backend", default=None, help="eager, ort or tensorrt (default: eager)")
    run_group.add_argument("--latency-batch-size", type=positive_int, default=None, help="batch size of the latency measurement (default: 1)")
    run_group.add_argument("--no-latency", action="store_true", help="skip the final latency measurement")
    run_group.add_argument("--json", action="store_true", help="print summary.json instead of the text summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwnas import distributed  # noqa: PLC0415 - keep `hwnas --help` light
    from hwnas.datasets import data_kind, load_data  # noqa: PLC0415
    from hwnas.train import fit_to_data, recipe, train  # noqa: PLC0415
    from search_spaces import load_architecture  # noqa: PLC0415
    from search_spaces.files import run_lock  # noqa: PLC0415

    writable_dir(args.out, "--out")
    arch = load_architecture(args.arch)
    overrides = parse_options(args.space_option)
    resolution = overrides.get("resolution", arch.config.get("resolution"))
    info = distributed.init_from_env(args.device)
    completed = False
    try:
        seed = 0 if args.seed is None else args.seed
        config = recipe(
            arch.space, data_kind(args.data), epochs=args.epochs, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
            weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
            auxiliary_weight=args.auxiliary_weight, drop_path_prob=args.drop_path, cutout=args.cutout,
            color_jitter=args.color_jitter, seed=seed, device=info.device, num_workers=args.workers,
            checkpoint_every=args.checkpoint_every, log_every=args.log_every, measure_latency=not args.no_latency,
            latency_device=args.latency_device, latency_backend=args.latency_backend,
            latency_batch_size=args.latency_batch_size,
        )
        data = load_data(args.data, seed=seed, image_size=resolution, cutout=config.cutout,
                         color_jitter=config.color_jitter, limit=args.limit, num_workers=args.workers)
        fitted, _ = fit_to_data(arch, data.image_shape, data.num_classes, overrides)
        lock = run_lock(args.out, UsageError, what="training run folder") if info.is_main else contextlib.nullcontext()
        with lock:
            result = train(fitted, data, config, args.out, resume=args.resume, info=info)
        completed = True
    finally:
        distributed.shutdown(wait_for_peers=completed)
    if not info.is_main:
        return 0 if result.complete else 2
    if result.stopped_by is not None:
        print(f"stopped by {result.stopped_by} after step {result.step}/{result.total_steps}; checkpoint {Path(args.out) / 'checkpoint.pt'}; "
              f"continue with the same command and --resume")
        return 143 if result.stopped_by == "SIGTERM" else 130
    summary = Path(args.out) / "summary.json"
    if args.json:
        print(summary.read_text(encoding="utf-8") if summary.exists() else json.dumps({"step": result.step}))
        return 0
    accuracy = "n/a" if result.test_accuracy is None else f"{100 * result.test_accuracy:.2f} %"
    latency = "" if result.latency is None else (
        f", latency {result.latency.value_ms:.3f} ms ({result.latency.context.backend}, {result.latency.context.device}, "
        f"batch {result.latency.context.batch_size})")
    print(f"trained {result.step} steps in {result.seconds:.1f} s: test accuracy {accuracy}{latency}")
    print(f"  weights  {Path(args.out) / 'checkpoint.pt'}  (hwnas export {Path(args.out) / 'arch.json'} --weights ...)")
    print(f"  metrics  {Path(args.out) / 'metrics.jsonl'}, summary {summary}")
    return 0
