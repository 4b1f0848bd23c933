"""`hwnas profile --device DEV` without `--model`: profile a device for a search space.

`hwnas.cli.profile` (which owns `--model`, `--device`, `--backend`,
`--batch-size`, `--precision`, `--input-size`, `--json`) calls
`add_arguments(parser)` while building its parser and `run(args)` when no
`--model` is given. This module adds only the flags that device profiling
needs and fills in the per-device defaults (GPU: batch 32, fp32 eager, fp16
for TensorRT; CPU: batch 1, 64 px, 300 samples).
The fp16-on-a-CPU warning (`precision_note`) lives here too: model
timing shows it as well, and this module must not import its caller.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from hwnas.cli._options import fraction, non_negative_int, parse_options, positive_float, positive_int, writable_dir
from hwnas.errors import UsageError

if TYPE_CHECKING:
    from lut.profile import ProfileSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the device-profiling flags to `hwnas profile`'s parser."""
    group = parser.add_argument_group("device profiling (no --model)")
    group.add_argument("--space", type=str.lower, default="proxyless", help="search space to profile (default: proxyless)")
    group.add_argument(
        "--space-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="search-space configuration, repeatable (e.g. widths=gpu, small_input=true); "
        "--input-size sets the resolution",
    )
    group.add_argument(
        "--samples",
        type=positive_int,
        default=None,
        help="whole networks to sample and time (default: 300 on CPU, 2000 on GPU)",
    )
    group.add_argument(
        "--out",
        default=None,
        help="profile directory (default: profiles/SPACE-DEVICE-BACKEND-bBATCH-PRECISION, -graphs added with "
        "--cuda-graphs); "
        "re-running with the same directory resumes",
    )
    group.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="measure only shard I of N of the samples (0-based), into samples-I-of-N.jsonl; "
        "run the N shards in separate processes or GPUs, then `hwnas lut fit DIR`",
    )
    group.add_argument(
        "--retest",
        type=non_negative_int,
        default=None,
        help="nets measured a second time, in a later pass, for the test-retest noise floor "
        "(default: 10%% of --samples, at most 50)",
    )
    group.add_argument(
        "--block-size",
        type=positive_int,
        default=None,
        help="nets timed round-robin together, so drift hits all alike (default: 8 on CPU, 16 on GPU)",
    )
    group.add_argument("--threads", type=positive_int, default=None, help="CPU threads for timing (default: 1 for --device cpu profiles, repeatable on a shared machine)")
    group.add_argument(
        "--time-per-net",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="timing budget per whole network; rounds stop earlier once every median is known to ±1%% "
        "(default: 0.8 on CPU, 3 on GPU)",
    )
    group.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sampled architectures (default: 0)")
    group.add_argument(
        "--test-fraction",
        type=fraction,
        default=0.2,
        help="share of the samples held out to evaluate the fit (default: 0.2)",
    )
    group.add_argument("--skip-ops", action="store_true", help="skip the per-op LUT (whole networks only; no LUT-sum baselines)")


def precision_note(device: str, precision: str) -> str | None:
    """A warning for fp16 timed on a CPU: no native fp16 kernels there, so it measures an emulation
    (861 ms against 14 ms in fp32 for one network here), not what a deployment would run."""
    if precision == "fp16" and not str(device).startswith("cuda"):
        return ("note: fp16 on a CPU runs emulated kernels, often tens of times slower than fp32; "
                "time fp32 on the CPU, or fp16 on a GPU (hwnas export refuses fp16 on the CPU for this reason)")
    return None


def run(args: argparse.Namespace) -> int:
    """Profile, fit and report; print the fit table. Returns the exit code."""
    from lut.profile import check_settings, profile_device  # noqa: PLC0415 - keeps `hwnas --help` fast

    settings = settings_from_args(args)
    writable_dir(settings.out, "--out")
    space = check_settings(settings)
    for warning in (precision_note(settings.device, settings.precision), collapse_warning(space)):
        if warning:
            sys.stderr.write(f"warning: {warning.removeprefix('note: ')}\n")
    outcome = profile_device(settings)
    print(outcome.summary())
    return 0


def collapse_warning(space: Any) -> str | None:
    """Say when the input is so small that feature maps are 1x1 long before the head: the later
    stride-2 layers then do no spatial work, and the profile says little about a real input size."""
    specs = getattr(space, "layer_specs", None)
    if specs is None:
        return None
    collapsed = [name for name, _, _, stride, side in specs() if stride > 1 and side <= 1]
    if collapsed:
        resolution = space.config.get("resolution")
        return (f"with input size {resolution} the feature maps are already 1x1 where {collapsed[0]} should halve them "
                f"({len(collapsed)} stride-2 layers see a 1x1 map); use a larger --input-size for a representative "
                "profile (e.g. 32 with small_input=true, 64 otherwise)")
    return None


TIMING_ONLY = {"--channels-last": "drop it", "--ort-provider": "drop it", "--json": "drop it",
               "--budget": "its timing per network is --time-per-net"}
"""`hwnas profile` flags of the --model group that a device profile would silently ignore (they are not in
its conditions: its ORT provider is the device's default, its layout contiguous, its output profile.json),
with what to do instead."""


def settings_from_args(args: argparse.Namespace) -> ProfileSettings:
    """The parsed flags (ours and hwnas.cli.profile's) as ProfileSettings with device defaults."""
    from lut.profile import resolve_settings  # noqa: PLC0415

    for flag, instead in TIMING_ONLY.items():
        if getattr(args, flag.removeprefix("--").replace("-", "_")) not in (None, False):
            raise UsageError(f"{flag} applies to timing --model networks; a device profile does not use it: {instead}")
    backends = [b for b in str(args.backend).split(",") if b]
    if len(backends) != 1:
        raise UsageError(f"--backend {args.backend!r}: a device profile is for one backend; run once per backend")
    devices = [d for d in str(args.device).split(",") if d]
    if len(devices) != 1:
        raise UsageError(f"--device {args.device!r}: a device profile is for one device; use --shard to split work")
    return resolve_settings(
        space=args.space,
        space_options=parse_options(args.space_option),
        device=devices[0],
        backend=backends[0],
        batch_size=args.batch_size,
        precision=args.precision,
        input_size=args.input_size,
        samples=args.samples,
        out=args.out,
        shard=args.shard,
        retest=args.retest,
        block_size=args.block_size,
        threads=args.threads,
        statistic=getattr(args, "statistic", "median"),
        time_per_net=args.time_per_net,
        seed=args.seed,
        test_fraction=args.test_fraction,
        skip_ops=args.skip_ops,
        cuda_graphs=args.cuda_graphs,
    )
