"""What every command checks the same way before it does any work: the one parser of repeatable
KEY=VALUE flags (`--space-option`, `--set`), the argparse number types (no nan, no inf, no negative
sizes), the devices named by --device / --latency-device, and the writability of output paths (so a
run never computes for minutes and then fails on its write)."""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from hwnas.errors import UsageError


def parse_options(items: list[str], flag: str = "--space-option") -> dict[str, Any]:
    """KEY=VALUE pairs; a value is read as JSON when it parses (numbers, lists, true), else kept as text."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item!r} must be KEY=VALUE, e.g. {flag} widths=gpu")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
        except ValueError:  # an integer of more digits than Python converts
            raise UsageError(f"{flag} {key}=: the value is a number of {len(value)} digits; give a real size") from None
    return options


def _number(text: str, kind: type, minimum: float | None, strict: bool) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond float range
        raise argparse.ArgumentTypeError(f"a {len(text)}-digit number is far too large") from None
    if not finite:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise argparse.ArgumentTypeError(f"{text} must be {'>' if strict else '>='} {minimum:g}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (batch sizes, steps, pixels); argparse turns a refusal into one line, exit 2."""
    return _number(text, int, 1, strict=False)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds, counts that may be zero)."""
    return _number(text, int, 0, strict=False)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (seconds, learning rates, temperatures)."""
    return _number(text, float, 0, strict=True)


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (weights, smoothing)."""
    return _number(text, float, 0, strict=False)


def fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1 (held-out shares)."""
    value = _number(text, float, 0, strict=True)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"{text} must be < 1")
    return value


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_can_create_in(folder: Path, flag: str, value: str) -> None:
    """Create and delete one temporary file in `folder`: the only sure test of writability
    (permissions, read-only mounts, /proc, quotas) that leaves nothing behind."""
    if not folder.is_dir():
        raise UsageError(f"{flag} {value}: {folder} is a file, so nothing can be created under it; choose another path")
    try:
        handle, probe = tempfile.mkstemp(prefix=".hwnas-write-test-", dir=folder)
    except OSError as error:
        raise UsageError(f"{flag} {value}: cannot write in {folder} ({error.strerror or error}); "
                         "choose a writable location") from None
    os.close(handle)
    os.unlink(probe)


def writable_file(value: str, flag: str) -> Path:
    """An output file path that can be written, checked before any work: not a folder (nor
    written as one, with a trailing slash), in an existing, writable folder."""
    path = Path(value)
    if value.endswith(("/", os.sep)) or path.is_dir():
        raise UsageError(f"{flag} {value} names a folder; give a file name such as {path / 'results.json'}")
    if not path.parent.exists():
        raise UsageError(f"{flag} {value}: folder {path.parent} does not exist; create it or choose another path")
    _check_can_create_in(path.parent, flag, value)
    return path


def writable_dir(value: str | Path, flag: str) -> Path:
    """An output folder that exists and is writable, or can be created: not a file, and its
    nearest existing ancestor is a writable folder. Creates nothing."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {value} is a file; give a folder")
    _check_can_create_in(_nearest_existing(path), flag, str(value))
    return path


DEVICE_FLAGS = {"device": "--device", "latency_device": "--latency-device", "loop.device": "--device",
                "latency.conditions.device": "--latency-device"}
"""The argparse destinations that name a torch device, in every command that has them (search's
flags set nested config fields by their path), and the flag each comes from."""


def check_devices(args: argparse.Namespace) -> None:
    """Refuse, before a command writes or computes anything, a device flag that cannot work here
    (mps, meta, cuda:7 on a one-GPU machine, a CPU-only torch): the same `parse_device` that
    `profile` and `export` time with, so every command accepts and refuses the same names."""
    from profilers._device import parse_device  # noqa: PLC0415 - torch is loaded by every command that has a device
    from profilers.errors import ProfilerError  # noqa: PLC0415

    for name, flag in DEVICE_FLAGS.items():
        value = getattr(args, name, None)
        if isinstance(value, str):
            try:
                parse_device(value)
            except ProfilerError as error:
                raise UsageError(f"{flag} {value}: {error}") from None
