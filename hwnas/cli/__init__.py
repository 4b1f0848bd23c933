"""`hwnas` command line: one module per command, each with `register(subparsers)`.

The modules below are the whole command set; a command module adds its parser
and sets `func` to the function that runs it. User mistakes (the exception
types in `hwnas.errors.USER_ERRORS`) print one line and exit 2, and so does a
file-system error on a named path (read-only mount, full disk, a path under
/proc): those are the machine's answer to the user's paths, not bugs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hwnas import __version__
from hwnas.cli._options import check_devices
from hwnas.errors import USER_ERRORS, os_error_line

COMMAND_MODULES: tuple[str, ...] = (
    "hwnas.cli.doctor",
    "hwnas.cli.profile",
    "hwnas.cli.arch",
    "hwnas.cli.lut",
    "hwnas.cli.export",
    "hwnas.cli.train",
    "hwnas.cli.search",
)


class _OneLineArgumentParser(argparse.ArgumentParser):
    """argparse prints the whole usage on error; we print one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineArgumentParser(
        prog="hwnas",
        description=(
            "Hardware-aware NAS: profile real latency on your device and runtime, "
            "fit a linear latency model, search architectures under a latency target, export them."
        ),
    )
    parser.add_argument("--version", action="version", version=f"hwnas {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineArgumentParser)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        check_devices(args)
        return int(args.func(args) or 0)
    except USER_ERRORS as error:
        sys.stderr.write(f"hwnas {args.command}: error: {error}\n")
        return 2
    except OSError as error:
        line = os_error_line(error)
        if line is None:
            raise  # not about a path the user gave: a bug, keep its traceback
        sys.stderr.write(f"hwnas {args.command}: error: {line}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"hwnas {args.command}: interrupted; everything measured so far is kept\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
