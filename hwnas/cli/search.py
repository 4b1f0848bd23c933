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
from hwnas.run import PROFILE_SAMPLES, TRAIN_STEPS, SearchStopped, check_run_dir, default_run_dir, run_pipeline
from hwnas.search.config import ConfigError, SearchConfig
from hwnas.search.latency import resolve_cuda_graphs
from hwnas.search.strategies import get_strategy, list_strategies

_DEFAULT = SearchConfig()
"""The one home of the defaults: every config flag's default is read from here."""


def _default(path: str) -> Any:
    return _DEFAULT.get(path)


def _strategy_defaults(attribute: str) -> str:
    """'gdas 10 0.1, snas/egs 1 0.1, ...': one strategy default for --help, read from the registry."""
    groups: dict[str, list[str]] = {}
    for name in list_strategies():
        value = getattr(get_strategy(name), attribute)
        groups.setdefault(" ".join(f"{v:g}" for v in value) if isinstance(value, tuple) else str(value), []).append(name)
    return ", ".join(f"{value} for {'/'.join(names)}" for value, names in groups.items())


def _field(group: argparse._ArgumentGroup, flag: str, path: str, **options: Any) -> None:
    """A flag that sets the config field at `path` (its dest): its default is the config's unless given,
    its metavar the flag's name (--steps STEPS), and a refusal of the field names it (`flag_of`)."""
    options.setdefault("default", _default(path))
    if options.get("action") not in ("store_false", "store_true", "append"):
        options.setdefault("metavar", flag.lstrip("-").upper().replace("-", "_"))
    group.add_argument(flag, dest=path, **options)
    _FLAGS[path] = flag


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search an architecture under a latency target (default: the whole demo run on MNIST, CPU)",
        description=(
            "Bi-level architecture search (weights on search-train, architecture on search-val) with a "
            "gradient estimator per term: REBAR for accuracy + RELAX for measured latency is UNAS."
        ),
    )
    # Config flags: dest is the field's dotted path and the default is the config's (`config_from_args`).
    space = parser.add_argument_group("space and data")
    _field(space, "--space", "data.space", type=str.lower,
           help="search space: proxyless or darts (default: %(default)s)")
    _field(space, "--space-option", "data.space_config", action="append", default=[], metavar="KEY=VALUE",
           help="space configuration, repeatable, JSON values (e.g. parameterization=edges, C=8); "
                "default: a small-input configuration sized for the bundled data")
    _field(space, "--data", "data.dataset",
           help="bundled data set (cluttered_mnist: the 5,000 MNIST digits at random places on a canvas "
                "with clutter; mnist: the same 5,000 images 28x28; digits), or a CIFAR-10 / ImageFolder "
                "folder (default: %(default)s)")
    _field(space, "--image-size", "data.image_size", type=positive_int,
           help="resize images to this side (default: with the default space configuration 36 for "
                "cluttered_mnist, 14 (proxyless) / 16 (darts) for mnist and other data, else as stored)")
    _field(space, "--data-limit", "data.data_limit", type=positive_int, help="use only this many images (quick runs)")
    _field(space, "--test-renders", "data.test_renders", type=positive_int,
           help="draw the test split this many times (generated data such as cluttered_mnist: new "
                "positions and clutter, same digits) for a less noisy test accuracy (default: %(default)s)")

    estimator = parser.add_argument_group("estimators and objective")
    _field(estimator, "--estimator", "estimator.accuracy", type=str.lower,
           help=f"accuracy-term estimator: {', '.join(list_strategies())} (default: %(default)s)")
    _field(estimator, "--darts-order", "estimator.darts_order", type=str.lower,
           help="darts only: first, second or amended (default: %(default)s)")
    _field(estimator, "--amended-eta", "estimator.amended_eta", type=non_negative_float,
           help="Amended-DARTS coefficient eta (default: %(default)s)")
    _field(estimator, "--egs-samples", "estimator.egs_samples", type=positive_int,
           help="egs only: samples M per decision (default: %(default)s)")
    estimator.add_argument("--tau", type=positive_float, nargs=2, default=None, metavar=("START", "END"),
                           help=f"Gumbel temperature, annealed linearly (default: {_strategy_defaults('temperatures')})")
    _field(estimator, "--latency-estimator", "estimator.latency", type=str.lower,
           help="latency-term estimator: relax, reinforce (both time sampled networks), expected "
                "(differentiable LUT expectation) or none (default: %(default)s)")
    _field(estimator, "--objective", "estimator.objective",
           help="accuracy objective: val, gen (UNAS L_gen) or train (default: %(default)s)")
    _field(estimator, "--tune-variance", "estimator.tune_variance",
           help="rebar: tune eta, or tau and eta, online down the gradient of the estimate's variance "
                "(RELAX paper, Sec. 3.3): none, eta or tau-eta (tau costs a second-order backward; "
                "default: %(default)s)")
    _field(estimator, "--tune-variance-lr", "estimator.tune_variance_lr", type=float,
           help="Adam step of that tuning (default: %(default)s)")

    latency = parser.add_argument_group("latency target and conditions")
    _field(latency, "--latency-target", "latency.target_ms", default="auto",
           help="target in ms, or auto: the 30%% quantile of the profile's random networks (default: auto)")
    _field(latency, "--latency-penalty", "latency.penalty", help="hinge, power or abs (default: %(default)s)")
    _field(latency, "--latency-weight", "latency.weight", type=non_negative_float,
           help="lambda_lat (default: %(default)s)")
    _field(latency, "--latency-beta", "latency.beta", type=positive_float,
           help="beta of the power penalty (default: %(default)s)")
    _field(latency, "--latency-device", "latency.conditions.device",
           help="device whose latency counts (default: %(default)s)")
    _field(latency, "--backend", "latency.conditions.backend", type=str.lower,
           help="runtime whose latency counts: eager, ort, tensorrt (default: %(default)s)")
    _field(latency, "--latency-batch-size", "latency.conditions.batch_size", type=positive_int, default=None,
           help="batch of the latency (default: 1 on CPU, 32 on GPU)")
    _field(latency, "--precision", "latency.conditions.precision", help="fp32 or fp16 (default: %(default)s)")
    _field(latency, "--cuda-graphs", "latency.conditions.cuda_graphs", action=argparse.BooleanOptionalAction, default=None,
           help="eager on CUDA: time sampled networks as CUDA-graph replays, the GPU's work without the host's "
                "launches (default: on for eager on CUDA, where plain eager times the host's launch speed; "
                "--no-cuda-graphs times plain eager; refused elsewhere)")
    _field(latency, "--threads", "latency.conditions.threads", type=positive_int,
           help="CPU threads for timing (default: %(default)s, steadier on a shared machine)")
    _field(latency, "--latency-timing", "latency.timing",
           help="where sampled networks are timed: worker (a process on a core or GPU training does not use, "
                "overlapping the next step; the latency gradient applies one step late), inline, or auto "
                "(default: the worker, for every backend, wherever a free CPU core or another GPU "
                "allows it; in line on the device that trains or with no core free)")
    _field(latency, "--lut", "latency.lut",
           help="device profile directory or lut.json to use (default: profile now, or reuse)")
    latency.add_argument("--profile-samples", type=positive_int, default=PROFILE_SAMPLES,
                         help="random networks timed when profiling (default: %(default)s)")
    latency.add_argument("--profile-root", default="profiles", help="where profiles live (default: profiles/)")

    loop = parser.add_argument_group("search loop")
    _field(loop, "--steps", "loop.steps", type=positive_int, help="architecture steps (default: %(default)s)")
    _field(loop, "--warmup-epochs", "loop.warmup_epochs", type=non_negative_float, default=None,
           help="weight-only training first, in passes over search-train "
                f"(default: {_default('loop.warmup_epochs'):g}; --warmup-steps instead counts steps)")
    _field(loop, "--warmup-steps", "loop.warmup_steps", type=non_negative_int,
           help="weight-only steps first (instead of --warmup-epochs)")
    _field(loop, "--batch-size", "loop.batch_size", type=positive_int, help="default: %(default)s")
    _field(loop, "--arch-batch-size", "loop.arch_batch_size", type=positive_int,
           help="images per architecture step's search-train and search-val batches; larger is less noisy "
                "and slower (README: how long to search) (default: --batch-size)")
    _field(loop, "--micro-batch", "loop.micro_batch", type=positive_int,
           help="images per forward/backward where images do not interact: a step's batch runs in pieces of "
                "this size whose gradients accumulate (--batch-size and --arch-batch-size stay the statistical "
                "batches). Refused below the batch for a supernet with BatchNorm (all of hwnas's): a piece would "
                "be normalised by its own statistics. Default: the whole batch when the memory estimate fits, "
                "else the whole batch with the relaxed evaluations recomputed in the backward (exact)")
    _field(loop, "--derive-candidates", "loop.derive_candidates", type=positive_int,
           help="networks the search chooses among at the end: 1 = the most probable (the papers' "
                "derivation); K > 1 = it and K-1 draws from the final distribution, those predicted over "
                "the latency target dropped, the best by accuracy with the supernet's weights on search-val "
                "(BatchNorm recalibrated, as SPOS selects; costs K evaluations, no training) (default: %(default)s)")
    _field(loop, "--warmup-from", "loop.warmup_from",
           help="start from another search's warm-up (the warmup.pt in its run folder) instead of training it "
                "again; refused unless that warm-up trained the same supernet with the same data, seed, steps and "
                "weight settings under a rule other than `sample` (the estimator, latency and architecture "
                "settings may differ) (default: train the warm-up)")
    _field(loop, "--w-lr", "loop.w_lr", type=positive_float, help="supernet SGD learning rate (default: %(default)s)")
    _field(loop, "--arch-lr", "loop.arch_lr", type=positive_float,
           help="architecture Adam learning rate (default: %(default)s)")
    _field(loop, "--device", "loop.device", help="device that trains the supernet (default: %(default)s)")
    supernet = parser.add_argument_group(
        "supernet training", "how the supernet holds its candidates and which paths train it (README: supernet modes)")
    _field(supernet, "--weight-sharing", "supernet.weight_sharing",
           help="shared: the candidates of a layer share one superkernel (k3 = centre of k5 = centre "
                "of k7) and e3 uses the first half of e6's channels (Single-Path NAS / Once-for-All); "
                "DARTS sep_conv / dil_conv kernels likewise. independent: one module per candidate, the "
                "papers' setting (default: %(default)s)")
    _field(supernet, "--supernet-batchnorm", "supernet.batchnorm",
           help="with shared weights: choice (a BatchNorm per choice) or shared (one, sliced; OFA) "
                "(default: %(default)s)")
    _field(supernet, "--supernet-rule", "supernet.rule",
           help="paths trained in each weight step, in the warm-up and the search: sample (the "
                "estimator's own sample, the papers' setting), uniform (SPOS), depth (uniform, but a "
                "skippable block skipped half the time: Once-for-All's uniform depth), network (a uniform draw among the "
                "networks a search returns: in the DARTS edge space a genotype, elsewhere as uniform), network-multi "
                "(network, each kept decision also running each other computing choice with probability 1/2, "
                "averaged), fair (FairNAS: "
                "every choice once per group of steps), sandwich (BigNAS: largest + smallest + one random "
                "path, in-place distillation, 3x cost) (default: "
                f"{_strategy_defaults('supernet_rule')})")
    loop.add_argument("--train-steps", type=non_negative_int, default=TRAIN_STEPS,
                      help="training steps of the found network (default: %(default)s)")
    _field(loop, "--seed", "loop.seed", type=non_negative_int)
    loop.add_argument("--out", default=None, help="run directory (default: runs/search-<UTC time>)")
    _field(loop, "--no-progress", "loop.progress", action="store_false", help="no progress bars")
    checkpoint = parser.add_argument_group("checkpoints")
    _field(checkpoint, "--checkpoint-every", "checkpoint.every", type=positive_int,
           help="steps between checkpoints of the search (default: %(default)s)")
    _field(checkpoint, "--checkpoint-seconds", "checkpoint.seconds", type=positive_float,
           help="also checkpoint when this many seconds passed since the last one, so a hard kill loses "
                f"at most that much (default: {_default('checkpoint.seconds'):g})")
    checkpoint.add_argument("--resume", action="store_true",
                            help="continue the search in --out from its checkpoint.pt exactly (after SIGINT/SIGTERM/pre-emption)")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    """The one place that turns parsed flags into a `SearchConfig`: every flag whose dest is a dotted
    field path goes there as it is, except the few whose value needs reading (below). A refusal names
    the flag (`flag_of`)."""
    values = {dest: value for dest, value in vars(args).items() if "." in dest}
    values["data.space_config"] = parse_options(values["data.space_config"])
    if values["loop.warmup_steps"] is not None and values["loop.warmup_epochs"] is not None:
        raise UsageError("give --warmup-epochs or --warmup-steps, not both")
    if values["loop.warmup_epochs"] is None:
        del values["loop.warmup_epochs"]
    if values["latency.conditions.batch_size"] is None:
        values["latency.conditions.batch_size"] = 32 if values["latency.conditions.device"].startswith("cuda") else 1
    values["latency.conditions.cuda_graphs"] = resolve_cuda_graphs(
        values["latency.conditions.cuda_graphs"], values["latency.conditions.device"], values["latency.conditions.backend"])
    if args.tau is not None:
        values["estimator.tau_start"], values["estimator.tau_end"] = args.tau
    target = values["latency.target_ms"]
    values["latency.target_ms"] = None
    if target != "auto" and get_strategy(values["estimator.latency"], term="latency").active:
        try:
            values["latency.target_ms"] = float(target.removesuffix("ms"))
        except ValueError:
            raise UsageError(f"--latency-target {target!r} must be milliseconds (e.g. 2.5) or auto") from None
    try:
        return SearchConfig.from_paths(values)
    except ConfigError as error:
        raise UsageError(error.render(flag_of)) from None


def flag_of(path: str) -> str:
    """The flag that sets a config field (`loop.steps` -> `--steps`); the path itself when no flag does."""
    return _FLAGS.get(path, path)


_FLAGS: dict[str, str] = {"estimator.tau_start": "--tau", "estimator.tau_end": "--tau"}
"""Field path -> flag, filled by `_field` as the parser is built (`register`)."""


def run(args: argparse.Namespace) -> int:
    from hwnas import distributed  # noqa: PLC0415
    from search_spaces.files import run_lock  # noqa: PLC0415

    config = config_from_args(args)
    if args.resume and not args.out:
        raise UsageError("--resume needs --out: the run directory to continue")
    out = writable_dir(args.out, "--out") if args.out else default_run_dir()
    if config.uses_latency and config.latency.lut is None:
        writable_dir(args.profile_root, "--profile-root")
    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun rank 0 alone writes the run folder
    finished = check_run_dir(out, resume=args.resume) if main_rank else args.resume and (out / "summary.json").exists()
    if finished:  # every rank sees summary.json, so every rank stops here together
        if main_rank:
            print(f"{out} holds a finished search (summary.json); nothing to resume. Results: {out / 'report.md'}, "
                  f"{out / 'arch.json'}")
        return 0
    target = "auto" if config.latency.target_ms is None else str(config.latency.target_ms)
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
