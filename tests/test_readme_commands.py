"""Every `hwnas` command line in the README's examples parses with the real CLI (#29): a renamed or removed
flag, a wrong choice or a missing argument in an example fails here, not in a newcomer's shell.

Parsing is what is checked (`build_parser().parse_args`), not running: the examples name data and GPUs this
machine lacks. The bare `hwnas search` of `make run` is parsed like any other.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from hwnas.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands() -> list[str]:
    """The `hwnas ...` command lines of the README's bash blocks (continuations joined, comments and
    `[optional]` brackets dropped, shell variables given a value; `torchrun ... -m hwnas` counts too)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #")[0].strip().rstrip(";").replace("$i", "0").replace("[", "").replace("]", "")
            line = re.sub(r"^for .*; do\s*", "", line).replace("&", "").strip()
            match = re.search(r"(?:^|-m )hwnas (.*)$", line)
            if match:
                commands.append(match.group(1).strip())
    return commands


def test_the_readme_has_examples_of_every_command() -> None:
    used = {shlex.split(command)[0] for command in readme_commands() if command}
    assert {"doctor", "profile", "lut", "arch", "search", "train", "export"} <= used, used


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_example_parses(command: str) -> None:
    try:
        build_parser().parse_args(shlex.split(command))
    except SystemExit as stop:
        pytest.fail(f"`hwnas {command}` does not parse (exit {stop.code})")
