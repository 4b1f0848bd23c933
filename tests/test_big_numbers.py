"""Integers Python will not convert, and indices numpy cannot hold (issue #30, group 6).

Python refuses to parse a decimal integer of more than 4,300 digits
(ValueError, not JSONDecodeError) and to turn a huge int into a float
(OverflowError); numpy refuses an index of 10**30 in an int64 array. Each
used to escape as a traceback; each is now one line naming the file or flag.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_contract import refused, run_cli  # noqa: E402
from lut.profile import planned_arch  # noqa: E402
from search_spaces import get_space  # noqa: E402
from test_cli_lut import TINY  # noqa: E402

HUGE = "9" * 5000
"""Beyond Python's 4,300-digit limit for int('...')."""


def _replace_number(path: Path, key: str, number: str) -> None:
    """Put `number` (raw JSON text) as the value of the first `"key":` in the file."""
    text = path.read_text()
    start = text.index(f'"{key}":') + len(f'"{key}":')
    end = start
    while text[end] in " -+.0123456789eE":
        end += 1
    path.write_text(text[:start] + number + text[end:])


@pytest.mark.parametrize(("name", "key", "argv"), [
    ("lut.json", "batch_size", ["lut", "show", "{prof}"]),
    ("lut.json", "median_ms", ["lut", "predict", "{prof}", "{arch}"]),
    ("profile.json", "seed", ["lut", "fit", "{prof}"]),
    ("arch.json", "resolution", ["arch", "show", "{arch}"]),
    ("arch.json", "num_classes", ["export", "{arch}", "--out", "{tmp}/out", "--measure", "none"]),
])
def test_a_huge_integer_in_a_file_is_one_line(profile: Path, tmp_path: Path, name: str, key: str, argv: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    arch = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 3).save(tmp_path / "arch.json")
    _replace_number(arch if name == "arch.json" else profile / name, key, HUGE)
    line = refused([part.format(prof=profile, arch=arch, tmp=tmp_path) for part in argv], capsys,
                   keep=[profile], absent=[tmp_path / "out"])
    assert "digits" in line, line


def test_huge_numbers_in_samples_are_skipped_lines(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = (profile / "samples.jsonl").read_text().splitlines()
    first, second = json.loads(lines[0]), json.loads(lines[1])
    lines[0] = json.dumps(first).replace(f'"latency_ms": {json.dumps(first["latency_ms"])}', f'"latency_ms": {HUGE}')
    second["index"] = 10**30  # lut/fit.py made an int64 array of the indices: OverflowError
    lines[1] = json.dumps(second)
    (profile / "samples.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(["lut", "fit", str(profile)], capsys)
    assert code == 0, err
    assert "line 1:" in err and "line 2:" in err and "index" in err, err
    assert "Traceback" not in err


def test_samples_that_are_all_huge_are_refused(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [json.loads(line) for line in (profile / "samples.jsonl").read_text().splitlines()]
    (profile / "samples.jsonl").write_text("".join(json.dumps({**r, "index": 10**30 + i}) + "\n"
                                                   for i, r in enumerate(records)))
    line = refused(["lut", "eval", str(profile), "--samples", str(profile / "samples.jsonl")], capsys)
    assert "index" in line, line


@pytest.mark.parametrize("argv", [
    ["arch", "sample", "--space", "proxyless", "--space-option", f"resolution={HUGE}"],
    ["arch", "sample", "--space", "proxyless", "--seed", "1" + "0" * 400],
    ["profile", "--model", "resnet18", "--batch-size", "1" + "0" * 400],
])
def test_a_huge_integer_on_the_command_line_is_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    refused(argv, capsys)
