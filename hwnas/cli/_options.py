"""The one parser of repeatable KEY=VALUE flags (`--space-option`, `--set`), shared by commands."""

from __future__ import annotations

import json
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
    return options
