"""`hwnas lut show|fit|eval DIR` and `hwnas lut predict DIR arch.json`: use a device profile.

The command mirrors the `lut` package one-to-one: `show` prints lut.json,
`fit` refits the linear model from every samples file in DIR (after more
samples or shards were measured), `eval` scores the stored model without
refitting, `predict` prints an architecture's predicted latency (ms).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hwnas.cli._options import fraction
from hwnas.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lut",
        help="show, refit, evaluate a device profile; predict latency from it",
        description="Work with a profile directory written by `hwnas profile --device`.",
    )
    actions = parser.add_subparsers(dest="lut_command", metavar="ACTION", parser_class=type(parser))
    show = actions.add_parser("show", help="conditions, per-op table and fitted model of DIR")
    show.add_argument("dir", type=Path)
    show.add_argument("--ops", action="store_true", help="also list every per-op entry")
    show.add_argument("--json", action="store_true", help="print lut.json as is")
    fit = actions.add_parser("fit", help="refit the linear model from every samples file in DIR; rewrite the report")
    fit.add_argument("dir", type=Path)
    fit.add_argument("--test-fraction", type=fraction, default=None, help="held-out share (default: the profile's)")
    evaluate = actions.add_parser("eval", help="score the stored model and the LUT sum without refitting")
    evaluate.add_argument("dir", type=Path)
    evaluate.add_argument(
        "--samples",
        type=Path,
        action="append",
        default=None,
        help="samples JSONL file(s) to score on, every line (default: DIR's held-out nets)",
    )
    predict = actions.add_parser("predict", help="predicted latency (ms) of an architecture")
    predict.add_argument("dir", type=Path)
    predict.add_argument("arch", help="architecture JSON file or named architecture")
    predict.add_argument(
        "--ignore-config",
        action="store_true",
        help="predict from the choices alone even if the architecture's space configuration differs from the LUT's",
    )
    predict.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "lut_command", None)
    if action is None:
        raise UsageError("hwnas lut needs an action: show, fit, eval or predict (see 'hwnas lut --help')")
    return {"show": _show, "fit": _fit, "eval": _eval, "predict": _predict}[action](args)


MAX_WARNINGS = 5
"""Problem lines printed before the rest are counted: a bad file must not flood the terminal."""


def _warn(problems: tuple[str, ...] | list[str]) -> None:
    for problem in problems[:MAX_WARNINGS]:
        sys.stderr.write(f"warning: {problem}\n")
    if len(problems) > MAX_WARNINGS:
        sys.stderr.write(f"warning: ... and {len(problems) - MAX_WARNINGS} more problems like these\n")


def _show(args: argparse.Namespace) -> int:
    from lut.report import stored_fit_table  # noqa: PLC0415
    from lut.table import load  # noqa: PLC0415

    table = load(args.dir)
    if args.json:
        print(json.dumps(table.to_dict(), indent=1))
        return 0
    c = table.conditions
    print(f"space {table.space} v{table.space_version} (signature {table.space_signature}) config {dict(table.space_config)}")
    print(f"device {c.device} ({c.device_name}), backend {c.backend}, batch {c.batch_size}, precision {c.precision}, "
          f"input {list(c.input_shape)}")
    print(f"per-op LUT: {len(table.ops)} entries; fixed: " + ", ".join(f"{e.name} {e.median_ms:.4f} ms" for e in table.fixed))
    if args.ops:
        for e in table.ops:
            print(f"  {e.decision:24s} {e.choice:8s} {e.median_ms:9.4f} ms  cv {e.cv:.3f}  input {list(e.input_shape)}")
    if table.model is None:
        print("no fitted model yet: `hwnas lut fit DIR` once samples are measured")
        return 0
    m = table.model
    print(f"stored model: {m.name}, linear: bias {m.bias_ms:.4f} ms, {len(m.coefficients)} coefficients, "
          f"alpha {m.alpha:g}, trained on {m.n_train} nets; target: {m.target}")
    print(stored_fit_table(m.metrics, m.name))
    return 0


def _fit(args: argparse.Namespace) -> int:
    from lut.errors import LutError  # noqa: PLC0415
    from lut.profile import fit_directory  # noqa: PLC0415
    from lut.report import fit_table  # noqa: PLC0415
    from lut.table import load  # noqa: PLC0415

    fraction = args.test_fraction
    if fraction is None:
        try:
            old = load(args.dir).model
        except LutError:  # a damaged model is what the fit replaces; anything else fit_directory refuses below
            old = None
        fraction = float(old.metrics.get("test_fraction", 0.2)) if old is not None else 0.2
    _, report, read = fit_directory(args.dir, fraction)
    _warn(read.problems)
    print(fit_table(report))
    print(f"\nwrote {args.dir / 'lut.json'} and {args.dir / 'report.md'}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from lut.fit import check_records_match, evaluate_stored  # noqa: PLC0415
    from lut.report import markdown, metrics_rows  # noqa: PLC0415
    from lut.samples import read_directory, read_samples  # noqa: PLC0415
    from lut.table import load  # noqa: PLC0415

    table = load(args.dir)
    if table.model is None:
        raise UsageError(f"{args.dir} has no fitted model to evaluate; run `hwnas lut fit {args.dir}` first")
    if args.samples:
        read, fraction = read_samples(args.samples), None
        check_records_match(table, read.records, ", ".join(map(str, args.samples)))
    else:
        read = read_directory(args.dir)
        check_records_match(table, read.records, f"samples in {args.dir}")
        fraction = float(table.model.metrics.get("test_fraction", 0.2)) if table.model is not None else 0.2
    _warn(read.problems)
    print(markdown(*metrics_rows(evaluate_stored(table, read.records, fraction))))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from lut.table import load  # noqa: PLC0415
    from lut.errors import LutError  # noqa: PLC0415
    from search_spaces import get_space, load_architecture  # noqa: PLC0415

    table = load(args.dir)
    arch = load_architecture(args.arch)
    if arch.space != table.space:
        raise LutError(f"space differs: the architecture is from {arch.space!r}, the LUT from {table.space!r}")
    if arch.space_version != table.space_version:
        raise LutError(f"space_version differs: the architecture has {arch.space_version}, the LUT "
                       f"{table.space_version}; profile the space again with this hwnas or use a matching architecture")
    space = get_space(table.space, **table.space_config)
    differing = sorted(k for k in set(arch.config) | set(table.space_config) if arch.config.get(k) != table.space_config.get(k))
    if differing and not args.ignore_config:
        key = differing[0]
        raise LutError(
            f"space config differs: {key}={arch.config.get(key)!r} in the architecture, {table.space_config.get(key)!r} "
            "in the LUT; profile that configuration, or pass --ignore-config to predict from the choices alone"
        )
    space.validate(space.architecture(arch.choices))
    predicted = table.predict(arch.choices)
    lut_sum = table.lut_sum(arch.choices) if table.ops else None
    c = table.conditions
    if args.json:
        print(json.dumps({"predicted_ms": predicted, "lut_sum_ms": lut_sum, "model": table.model.name,
                          "conditions": c.to_dict()}))
        return 0
    where = f"{c.device} {c.backend} batch {c.batch_size} {c.precision}"
    print(f"{predicted:.3f} ms predicted ({table.model.name}, {where})"
          + ("" if lut_sum is None else f"; per-op LUT sum {lut_sum:.3f} ms"))
    return 0
