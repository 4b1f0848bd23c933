"""How many parameters a supernet holds, with shared weights and with one module per candidate (#29).

    python benchmarks/supernet_params.py                 # the default run's spaces (bundled cluttered MNIST)
    python benchmarks/supernet_params.py --report-only --json benchmarks/results/supernet_params/cluttered_mnist.json

For each space, the supernet `hwnas search` builds for `--dataset` with no space options (its default space
configuration, image size and class count) is counted twice, `--weight-sharing shared` and `independent`:
all its parameters, and those of its searchable layers alone (the parameters under a `Choice` module; stem,
head and classifier are the rest). Counted, not timed: the numbers are exact and the same on every machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import add_result_options, finish, json_path, provenance, report_only, table  # noqa: E402

from hwnas.datasets import load_data  # noqa: E402
from hwnas.run import default_space, space_for_data  # noqa: E402
from hwnas.search import SearchConfig  # noqa: E402
from search_spaces.choice import Choice  # noqa: E402


def counts(network: torch.nn.Module) -> tuple[int, int]:
    """(all parameters, parameters under a Choice module), each tensor counted once."""
    searchable = {id(p) for module in network.modules() if isinstance(module, Choice) for p in module.parameters()}
    parameters = list(network.parameters())
    return sum(p.numel() for p in parameters), sum(p.numel() for p in parameters if id(p) in searchable)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cluttered_mnist", help="bundled data set whose default spaces to count")
    add_result_options(parser, "supernet_params", "<dataset>")
    args = parser.parse_args(argv)
    path = json_path(args, "supernet_params", args.dataset)
    if args.report_only:
        return report_only(path)
    started = time.perf_counter()
    document: dict[str, Any] = {"benchmark": "supernet_params", "provenance": provenance(argv), "spaces": {}}
    rows = []
    for name in ("proxyless", "darts"):
        space_config, side = default_space(args.dataset, name)
        config = SearchConfig.from_flat(space=name, dataset=args.dataset, image_size=side, space_config=space_config,
                                        progress=False)
        data = load_data(config.data.dataset, seed=0, val_fraction=config.data.val_fraction,
                         test_fraction=config.data.test_fraction, image_size=config.data.image_size)
        space = space_for_data(config, data)  # what `hwnas search` builds: the data's channels, classes and side
        classes = data.num_classes
        record = {"config": space.config}
        for sharing in ("shared", "independent"):
            total, searchable = counts(space.supernet(weight_sharing=sharing))
            record[sharing] = {"total": total, "searchable": searchable}
        document["spaces"][name] = record
        rows.append([name, f"{record['shared']['total']:,}", f"{record['independent']['total']:,}",
                     f"{record['shared']['searchable']:,}", f"{record['independent']['searchable']:,}"])
    table(document, f"supernet parameters, the default spaces of a search on {args.dataset} ({classes} classes)",
          ["space", "shared, all", "independent, all", "shared, searchable layers", "independent, searchable layers"],
          rows)
    return finish(document, path, started)


if __name__ == "__main__":
    raise SystemExit(main())
