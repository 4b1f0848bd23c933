"""`hwnas search`: latency-constrained architecture search with true latency in the loop.

With no arguments it runs the whole pipeline on the bundled cluttered MNIST
canvas (36x36) on the CPU: profile the small proxyless space under ONNX Runtime
(unless a profile exists), fit the linear latency model, place the target inside the
measured range, search with REBAR + RELAX, derive, train the network
briefly, export it to ONNX, time it, and print where everything went.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Any

from hwnas.cli._options import (
    non_negative_float,
    non_negative_int,
    parse_options,
    positive_float,
    positive_int,
    writable_dir,
)
from hwnas.errors import UsageError
from hwnas.search.strategies import get_strategy, list_strategies

DEFAULTS: dict[str, Any] = {"steps": 50, "warmup_epochs": 6.0, "batch_size": 32, "arch_lr": 0.05,
                            "train_steps": 150, "profile_samples": 30, "checkpoint_every": 50,
                            "checkpoint_seconds": 120.0}
"""Sized so the default run takes minutes on 2 CPU cores; `SearchConfig` has the same defaults (tested)."""


def _strategy_defaults(attribute: str) -> str:
    """'gdas 10 0.1, snas/egs 1 0.1, ...': one strategy default for --help, read from the registry."""
    groups: dict[str, list[str]] = {}
    for name in list_strategies():
        value = getattr(get_strategy(name), attribute)
        groups.setdefault(" ".join(f"{v:g}" for v in value) if isinstance(value, tuple) else str(value), []).append(name)
    return ", ".join(f"{value} for {'/'.join(names)}" for value, names in groups.items())


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search an architecture under a latency target (default: the whole demo run on MNIST, CPU)",
        description=(
            "Bi-level architecture search (weights on search-train, architecture on search-val) with a "
            "gradient estimator per term: REBAR for accuracy + RELAX for measured latency is UNAS."
        ),
    )
    space = parser.add_argument_group("space and data")
    space.add_argument("--space", type=str.lower, default="proxyless", help="search space: proxyless or darts (default: proxyless)")
    space.add_argument("--space-option", action="append", default=[], metavar="KEY=VALUE",
                       help="space configuration, repeatable, JSON values (e.g. parameterization=edges, C=8); "
                            "default: a small-input configuration sized for the bundled data")
    space.add_argument("--data", default="cluttered_mnist",
                       help="bundled data set (cluttered_mnist: the 5,000 MNIST digits at random places on a canvas "
                            "with clutter; mnist: the same 5,000 images 28x28; digits), or a CIFAR-10 / ImageFolder "
                            "folder (default: cluttered_mnist)")
    space.add_argument("--image-size", type=positive_int, default=None,
                       help="resize images to this side (default: with the default space configuration 36 for "
                            "cluttered_mnist, 14 (proxyless) / 16 (darts) for mnist and other data, else as stored)")
    space.add_argument("--data-limit", type=positive_int, default=None, help="use only this many images (quick runs)")
    space.add_argument("--test-renders", type=positive_int, default=1,
                       help="draw the test split this many times (generated data such as cluttered_mnist: new "
                            "positions and clutter, same digits) for a less noisy test accuracy (default: 1)")

    estimator = parser.add_argument_group("estimators and objective")
    estimator.add_argument("--estimator", type=str.lower, default="rebar",
                           help=f"accuracy-term estimator: {', '.join(list_strategies())} (default: rebar)")
    estimator.add_argument("--darts-order", type=str.lower, default="first", help="darts only: first, second or amended (default: first)")
    estimator.add_argument("--amended-eta", type=non_negative_float, default=0.1, help="Amended-DARTS coefficient eta (default: 0.1)")
    estimator.add_argument("--egs-samples", type=positive_int, default=4, help="egs only: samples M per decision (default: 4)")
    estimator.add_argument("--tau", type=positive_float, nargs=2, default=None, metavar=("START", "END"),
                           help=f"Gumbel temperature, annealed linearly (default: {_strategy_defaults('temperatures')})")
    estimator.add_argument("--latency-estimator", type=str.lower, default="relax",
                           help="latency-term estimator: relax, reinforce (both time sampled networks), expected "
                                "(differentiable LUT expectation) or none (default: relax)")
    estimator.add_argument("--objective", default="gen", help="accuracy objective: val, gen (UNAS L_gen) or train (default: gen)")
    estimator.add_argument("--tune-variance", default="none",
                           help="rebar: tune eta, or tau and eta, online down the gradient of the estimate's variance "
                                "(RELAX paper, Sec. 3.3): none, eta or tau-eta (tau costs a second-order backward; default: none)")
    estimator.add_argument("--tune-variance-lr", type=float, default=0.02, help="Adam step of that tuning (default: 0.02)")

    latency = parser.add_argument_group("latency target and conditions")
    latency.add_argument("--latency-target", default="auto",
                         help="target in ms, or auto: the 30%% quantile of the profile's random networks (default: auto)")
    latency.add_argument("--latency-penalty", default="hinge", help="hinge, power or abs (default: hinge)")
    latency.add_argument("--latency-weight", type=non_negative_float, default=1.0, help="lambda_lat (default: 1.0)")
    latency.add_argument("--latency-beta", type=positive_float, default=1.0, help="beta of the power penalty (default: 1.0)")
    latency.add_argument("--latency-device", default="cpu", help="device whose latency counts (default: cpu)")
    latency.add_argument("--backend", type=str.lower, default="ort", help="runtime whose latency counts: eager, ort, tensorrt (default: ort)")
    latency.add_argument("--latency-batch-size", type=positive_int, default=None, help="batch of the latency (default: 1 on CPU, 32 on GPU)")
    latency.add_argument("--precision", default="fp32", help="fp32 or fp16 (default: fp32)")
    latency.add_argument("--threads", type=positive_int, default=1, help="CPU threads for timing (default: 1, steadier on a shared machine)")
    latency.add_argument("--latency-timing", default="auto",
                         help="where sampled networks are timed: worker (a process on a core or GPU training does not use, "
                              "overlapping the next step; the latency gradient applies one step late), inline, or auto "
                              "(default: the worker, for every backend, wherever a free CPU core or another GPU "
                              "allows it; in line on the device that trains or with no core free)")
    latency.add_argument("--lut", default=None, help="device profile directory or lut.json to use (default: profile now, or reuse)")
    latency.add_argument("--profile-samples", type=positive_int, default=DEFAULTS["profile_samples"],
                         help=f"random networks timed when profiling (default: {DEFAULTS['profile_samples']})")
    latency.add_argument("--profile-root", default="profiles", help="where profiles live (default: profiles/)")

    loop = parser.add_argument_group("search loop")
    loop.add_argument("--steps", type=positive_int, default=DEFAULTS["steps"], help=f"architecture steps (default: {DEFAULTS['steps']})")
    loop.add_argument("--warmup-epochs", type=non_negative_float, default=None,
                      help="weight-only training first, in passes over search-train "
                           f"(default: {DEFAULTS['warmup_epochs']:g}; --warmup-steps instead counts steps)")
    loop.add_argument("--warmup-steps", type=non_negative_int, default=None,
                      help="weight-only steps first (instead of --warmup-epochs)")
    loop.add_argument("--batch-size", type=positive_int, default=DEFAULTS["batch_size"], help=f"default: {DEFAULTS['batch_size']}")
    loop.add_argument("--arch-batch-size", type=positive_int, default=None,
                      help="images per architecture step's search-train and search-val batches; larger is less noisy "
                           "and slower (README: how long to search) (default: --batch-size)")
    loop.add_argument("--derive-candidates", type=positive_int, default=1,
                      help="networks the search chooses among at the end: 1 = the most probable (the papers' "
                           "derivation); K > 1 = it and K-1 draws from the final distribution, those predicted over "
                           "the latency target dropped, the best by accuracy with the supernet's weights on search-val "
                           "(BatchNorm recalibrated, as SPOS selects; costs K evaluations, no training) (default: 1)")
    loop.add_argument("--w-lr", type=positive_float, default=0.05, help="supernet SGD learning rate (default: 0.05)")
    loop.add_argument("--arch-lr", type=positive_float, default=DEFAULTS["arch_lr"],
                      help=f"architecture Adam learning rate (default: {DEFAULTS['arch_lr']})")
    loop.add_argument("--device", default="cpu", help="device that trains the supernet (default: cpu)")
    supernet = parser.add_argument_group(
        "supernet training", "how the supernet holds its candidates and which paths train it (README: supernet modes)")
    supernet.add_argument("--weight-sharing", default="shared",
                          help="shared: the candidates of a layer share one superkernel (k3 = centre of k5 = centre "
                               "of k7) and e3 uses the first half of e6's channels (Single-Path NAS / Once-for-All); "
                               "DARTS sep_conv / dil_conv kernels likewise. independent: one module per candidate, the "
                               "papers' setting (default: shared)")
    supernet.add_argument("--supernet-batchnorm", default="choice",
                          help="with shared weights: choice (a BatchNorm per choice) or shared (one, sliced; OFA) "
                               "(default: choice)")
    supernet.add_argument("--supernet-rule", default=None,
                          help="paths trained in each weight step, in the warm-up and the search: sample (the "
                               "estimator's own sample, the papers' setting), uniform (SPOS), depth (uniform, but a "
                               "skippable block skipped half the time: Once-for-All's uniform depth), network (a uniform draw among the "
                               "networks a search returns: in the DARTS edge space a genotype, elsewhere as uniform), fair (FairNAS: "
                               "every choice once per group of steps), sandwich (BigNAS: largest + smallest + one random "
                               "path, in-place distillation, 3x cost) (default: "
                               f"{_strategy_defaults('supernet_rule')})")
    loop.add_argument("--train-steps", type=non_negative_int, default=DEFAULTS["train_steps"],
                      help=f"training steps of the found network (default: {DEFAULTS['train_steps']})")
    loop.add_argument("--seed", type=non_negative_int, default=0)
    loop.add_argument("--out", default=None, help="run directory (default: runs/search-<UTC time>)")
    loop.add_argument("--no-progress", action="store_true", help="no progress bars")
    loop.add_argument("--checkpoint-every", type=positive_int, default=DEFAULTS["checkpoint_every"],
                      help=f"steps between checkpoints of the search (default: {DEFAULTS['checkpoint_every']})")
    loop.add_argument("--checkpoint-seconds", type=positive_float, default=DEFAULTS["checkpoint_seconds"],
                      help="also checkpoint when this many seconds passed since the last one, so a hard kill loses "
                           f"at most that much (default: {DEFAULTS['checkpoint_seconds']:g})")
    loop.add_argument("--resume", action="store_true",
                      help="continue the search in --out from its checkpoint.pt exactly (after SIGINT/SIGTERM/pre-emption)")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> Any:
    from hwnas.search import SearchConfig  # noqa: PLC0415 - keeps `hwnas --help` fast

    gpu = args.latency_device.startswith("cuda")
    tau = {} if args.tau is None else {"tau_start": args.tau[0], "tau_end": args.tau[1]}
    target = None
    if args.latency_estimator != "none" and args.latency_target != "auto":
        try:
            target = float(args.latency_target.removesuffix("ms"))
        except ValueError:
            raise UsageError(f"--latency-target {args.latency_target!r} must be milliseconds (e.g. 2.5) or auto") from None
    return SearchConfig(
        space=args.space, space_config=parse_options(args.space_option), dataset=args.data, image_size=args.image_size,
        data_limit=args.data_limit, test_renders=args.test_renders, estimator=args.estimator, darts_order=args.darts_order, amended_eta=args.amended_eta,
        egs_samples=args.egs_samples, objective=args.objective, latency_estimator=args.latency_estimator,
        latency_target_ms=target,
        latency_penalty=args.latency_penalty, latency_weight=args.latency_weight, latency_beta=args.latency_beta,
        steps=args.steps, **_warmup(args), derive_candidates=args.derive_candidates, batch_size=args.batch_size, arch_batch_size=args.arch_batch_size, w_lr=args.w_lr, arch_lr=args.arch_lr,
        device=args.device, latency_device=args.latency_device, latency_backend=args.backend,
        latency_batch_size=args.latency_batch_size or (32 if gpu else 1), latency_precision=args.precision,
        latency_threads=args.threads, lut=args.lut, seed=args.seed, progress=not args.no_progress,
        latency_timing=args.latency_timing, tune_variance=args.tune_variance, tune_variance_lr=args.tune_variance_lr,
        checkpoint_every=args.checkpoint_every, checkpoint_seconds=args.checkpoint_seconds,
        weight_sharing=args.weight_sharing, supernet_batchnorm=args.supernet_batchnorm, supernet_rule=args.supernet_rule,
        **tau,
    )


def _warmup(args: argparse.Namespace) -> dict[str, Any]:
    """--warmup-steps or --warmup-epochs (not both); neither: the default in epochs."""
    if args.warmup_steps is not None and args.warmup_epochs is not None:
        raise UsageError("give --warmup-epochs or --warmup-steps, not both")
    if args.warmup_steps is not None:
        return {"warmup_steps": args.warmup_steps}
    return {"warmup_epochs": DEFAULTS["warmup_epochs"] if args.warmup_epochs is None else args.warmup_epochs}


def run(args: argparse.Namespace) -> int:
    from hwnas import distributed  # noqa: PLC0415
    from hwnas.search.loop import SearchStopped  # noqa: PLC0415
    from hwnas.search.pipeline import run_pipeline  # noqa: PLC0415
    from hwnas.search.rundir import check_run_dir, default_run_dir  # noqa: PLC0415
    from search_spaces.files import run_lock  # noqa: PLC0415

    config = config_from_args(args)
    if args.resume and not args.out:
        raise UsageError("--resume needs --out: the run directory to continue")
    out = writable_dir(args.out, "--out") if args.out else default_run_dir()
    if config.uses_latency and config.lut is None:
        writable_dir(args.profile_root, "--profile-root")
    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun rank 0 alone writes the run folder
    finished = check_run_dir(out, resume=args.resume) if main_rank else args.resume and (out / "summary.json").exists()
    if finished:  # every rank sees summary.json, so every rank stops here together
        if main_rank:
            print(f"{out} holds a finished search (summary.json); nothing to resume. Results: {out / 'report.md'}, "
                  f"{out / 'arch.json'}")
        return 0
    target = "auto" if config.latency_target_ms is None else str(config.latency_target_ms)
    lock = run_lock(out, UsageError, what="search run folder") if main_rank else contextlib.nullcontext()
    completed = False
    try:
        with lock:
            result = run_pipeline(config, out=out, target=target, profile_root=args.profile_root,
                                  profile_samples=args.profile_samples, train_steps=args.train_steps, resume=args.resume)
        completed = True
    except SearchStopped as stopped:
        print(stopped)
        return 143 if stopped.signal_name == "SIGTERM" else 130
    finally:
        distributed.shutdown(wait_for_peers=completed)
    if result is not None:
        print("\n".join(result.lines()))
    return 0
