"""`hwnas arch`: list, sample and inspect architectures of the search spaces.

`arch show` prints what a network is (the genotype or timm block strings), its
layers with output shapes, parameters and MACs (conv + linear multiply-adds
per image, auxiliary heads left out, as the papers count), and with --json the
same as one JSON object with integer `params` and `macs`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hwnas.cli._options import non_negative_int, parse_options, positive_int, writable_file

DATASETS = {
    # dataset -> config overrides per space
    "cifar10": {"darts": {"network": "cifar", "num_classes": 10, "resolution": 32},
                "proxyless": {"resolution": 32, "small_input": True, "num_classes": 10}},
    "imagenet": {"darts": {"network": "imagenet", "num_classes": 1000, "resolution": 224},
                 "proxyless": {"resolution": 224, "small_input": False, "num_classes": 1000}},
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("arch", help="list, sample and inspect search-space architectures")
    commands = parser.add_subparsers(dest="arch_command", metavar="ARCH_COMMAND")
    parser.set_defaults(func=_missing_command(parser))

    listing = commands.add_parser("list", help="search spaces and named (published) architectures")
    listing.set_defaults(func=run)

    sample = commands.add_parser(
        "sample", help="draw one network uniformly among those a search of the space can return",
        description="Draw one network uniformly among those a search of the space can return: in the DARTS "
                    "edge space a genotype (two inputs per node, one op each, the other edges `none`); "
                    "elsewhere one uniform choice per decision. Device profiles time the same draw.")
    sample.add_argument("--space", type=str.lower, required=True, help="search space name (see `hwnas arch list`)")
    sample.add_argument("--seed", type=non_negative_int, default=0, help="random seed of the draw (default: 0)")
    sample.add_argument("--set", dest="config", action="append", default=[], metavar="KEY=VALUE",
                        help="space configuration, value as JSON (e.g. --set parameterization='\"factorized\"' --set C=16)")
    sample.add_argument("--out", help="write the architecture JSON here instead of printing it")
    sample.set_defaults(func=run)

    show = commands.add_parser("show", help="layers, parameters and MACs of a named architecture or JSON file")
    show.add_argument("architecture", metavar="NAME_OR_FILE")
    show.add_argument("--dataset", choices=sorted(DATASETS), help="build the network for this dataset")
    show.add_argument("--channels", type=positive_int, help="DARTS initial channels C")
    show.add_argument("--layers", type=positive_int, help="DARTS number of cells")
    show.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    show.set_defaults(func=run)


def _missing_command(parser: argparse.ArgumentParser) -> Any:
    def explain(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return explain


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "sample": _sample, "show": _show}[args.arch_command](args)


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console  # noqa: PLC0415 - keeps `hwnas --help` fast
    from rich.table import Table  # noqa: PLC0415

    import search_spaces as ss  # noqa: PLC0415

    console = Console()
    spaces = Table(title="search spaces")
    for column in ("space", "version", "decisions", "architectures", "default configuration"):
        spaces.add_column(column)
    for name in ss.list_spaces():
        space = ss.get_space(name)
        size = 1
        for decision in space.decisions:
            size *= len(decision.choices)
        spaces.add_row(name, str(space.version), str(len(space.decisions)), f"{float(size):.2e}", json.dumps(space.config))
    console.print(spaces)
    named = Table(title="named architectures")
    for column in ("name", "space", "source"):
        named.add_column(column)
    for name in ss.list_named_architectures():
        arch = ss.named_architecture(name)
        named.add_row(name, arch.space, str(arch.extra.get("source", "")))
    console.print(named)
    return 0


def _sample(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    import search_spaces as ss  # noqa: PLC0415

    out = None if args.out is None else writable_file(args.out, "--out")
    space = ss.get_space(args.space, **parse_options(args.config, "--set"))
    arch = space.sample_network(np.random.default_rng(args.seed))
    if out is not None:
        path = arch.save(out)
        sys.stderr.write(f"wrote {path} ({len(arch.choices)} decisions, space {space.name}, signature {space.signature()})\n")
    else:
        print(json.dumps(arch.to_dict(), indent=2))
    return 0


def _show_space(arch: Any, args: argparse.Namespace) -> Any:
    from hwnas.errors import UsageError  # noqa: PLC0415
    import search_spaces as ss  # noqa: PLC0415

    config = dict(arch.config)
    if args.dataset:
        config.update(DATASETS[args.dataset].get(arch.space, {}))
    for option, key in (("channels", "C"), ("layers", "layers")):
        value = getattr(args, option)
        if value is not None:
            if arch.space != "darts":
                raise UsageError(f"--{option} applies to DARTS networks; {arch.space!r} sets widths in its config")
            config[key] = value
    return ss.get_space(arch.space, **config)


def layer_rows(space: Any, network: Any) -> list[dict[str, Any]]:
    """One row per stem / searchable layer or cell / head, with output shape,
    parameters and MACs."""
    from torch import nn  # noqa: PLC0415

    from search_spaces.counting import count_params, macs_by_module  # noqa: PLC0415

    rows: list[tuple[str, nn.Module]] = []
    for name, child in network.named_children():
        if name == "auxiliary_head":
            continue
        if isinstance(child, nn.ModuleList):
            rows += [(f"{name}.{index}", module) for index, module in enumerate(child)]
        else:
            rows.append((name, child))
    shapes: dict[str, list[int]] = {}
    handles = []
    for name, module in rows:
        def hook(_m: nn.Module, _i: Any, output: Any, name: str = name) -> None:
            tensor = output[-1] if isinstance(output, tuple) else output
            shapes[name] = list(tensor.shape[1:])
        handles.append(module.register_forward_hook(hook))
    try:
        macs = macs_by_module(network, space.input_shape(1))
    finally:
        for handle in handles:
            handle.remove()
    result = []
    for name, module in rows:
        layer_macs = sum(v for k, v in macs.items() if k == name or k.startswith(name + "."))
        what = type(module).__name__
        if hasattr(module, "decision"):
            what = f"{module.decision} = {next(iter(module.candidates))}"
        result.append({"layer": name, "type": what, "output_shape": shapes.get(name, []),
                       "params": count_params(module), "macs": int(layer_macs)})
    return result


def _show(args: argparse.Namespace) -> int:
    import torch  # noqa: PLC0415

    import search_spaces as ss  # noqa: PLC0415

    arch = ss.load_architecture(args.architecture)
    space = _show_space(arch, args)
    network = space.build(arch).eval()
    with torch.no_grad():
        rows = layer_rows(space, network)
    report: dict[str, Any] = {
        "architecture": arch.extra.get("name", args.architecture),
        "space": space.name,
        "space_version": space.version,
        "config": space.config,
        "signature": space.signature(),
        "input_shape": list(space.input_shape(1)),
        "params": int(ss.count_params(network)),
        "macs": int(sum(row["macs"] for row in rows)),
        "description": space.describe(arch),
        "layers": rows,
    }
    if hasattr(space, "block_strings"):
        report["block_strings"] = space.block_strings(arch)
    if "source" in arch.extra:
        report["source"] = arch.extra["source"]
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    _print_report(report)
    return 0


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    console = Console()
    console.print(f"[bold]{escape(str(report['architecture']))}[/] (space {report['space']} v{report['space_version']},"
                  f" input {tuple(report['input_shape'])}, signature {report['signature']})")
    if "source" in report:
        console.print(f"source: {escape(report['source'])}")
    for line in report["description"]:
        console.print("  " + escape(line))
    table = Table(title="layers")
    for column, justify in (("layer", "left"), ("what", "left"), ("output", "left"), ("params", "right"), ("MACs", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in report["layers"]:
        table.add_row(row["layer"], escape(row["type"]), "x".join(map(str, row["output_shape"])),
                      f"{row['params']:,}", f"{row['macs']:,}")
    table.add_row("total", "", "", f"{report['params']:,}", f"{report['macs']:,}", style="bold")
    console.print(table)
    console.print(f"{report['params'] / 1e6:.2f}M parameters, {report['macs'] / 1e6:.1f}M MACs"
                  " (conv + linear multiply-adds per image; auxiliary head excluded)")
