"""Fuzzing every reading command with malformed files (issue #13, acceptance).

From valid files (an architecture JSON, a fitted lut.json, a samples.jsonl)
it makes malformed ones: truncations, byte flips, NaN / Infinity in place of
numbers, type swaps of every field, and every field removed. Each one is given
to every command that reads that kind of file. A case passes when the command
either works (exit 0: the damage was harmless, e.g. a skipped sample line) or
refuses with exit 2 in at most 3 lines with no traceback, and when every file
that existed before is unchanged (a successful `lut fit` may rewrite lut.json
and its report: that is its job).

CI runs a seeded subset (`SUBSET` cases). The whole set, by hand:

    .venv/bin/python tests/test_fuzz_inputs.py            # prints "N cases, N passed" and every failure
    .venv/bin/python tests/test_fuzz_inputs.py --limit 50 --seed 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # as a script: the helpers beside this file

from cli_contract import MAX_LINES, snapshot  # noqa: E402
from hwnas.cli import main  # noqa: E402
from lut.profile import fit_directory, planned_arch  # noqa: E402
from search_spaces import get_space  # noqa: E402
from test_cli_lut import TINY, _profile_dir  # noqa: E402
from test_search_cli import TINY as SEARCH  # noqa: E402

SUBSET = 36
"""Cases CI runs (seeded); the full set is a few hundred."""

COMMANDS: dict[str, list[list[str]]] = {
    # {file} is the malformed file, {prof} a profile directory, {arch} a valid architecture, {tmp} a scratch folder
    "arch": [
        ["arch", "show", "{file}"],
        ["arch", "show", "{file}", "--json"],
        ["profile", "--model", "{file}", "--budget", "0.05", "--threads", "1"],
        ["export", "{file}", "--out", "{tmp}/export", "--measure", "none"],
        ["train", "{file}", "--data", "digits", "--steps", "1", "--no-latency", "--out", "{tmp}/train"],
        ["lut", "predict", "{prof}", "{file}"],
    ],
    "lut": [
        ["lut", "show", "{prof}", "--ops"],
        ["lut", "predict", "{prof}", "{arch}"],
        ["lut", "eval", "{prof}"],
        ["lut", "fit", "{prof}"],
        ["search", *SEARCH, "--out", "{tmp}/run"],  # with --lut {prof} put in below
    ],
    "samples": [
        ["lut", "fit", "{prof}"],
        ["lut", "eval", "{prof}"],
        ["lut", "eval", "{prof}", "--samples", "{file}"],
    ],
}
WRITERS = {("lut", "fit")}
"""Commands whose success rewrites files of the profile (lut.json, report.md, plots)."""


@dataclass(frozen=True)
class Case:
    kind: str
    mutation: str
    data: bytes
    command: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.kind} [{self.mutation}] {' '.join(self.command[:3])}"


@dataclass(frozen=True)
class Outcome:
    case: Case
    passed: bool
    code: int | None
    detail: str


# ---- valid sources --------------------------------------------------------------------------------

def make_sources(root: Path) -> dict[str, Any]:
    """A fitted profile directory and the three valid files the mutations start from."""
    profile = _profile_dir(root / "prof", samples=30)
    fit_directory(profile)
    arch = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 3).save(root / "arch.json")
    lines = (profile / "samples.jsonl").read_bytes().splitlines(keepends=True)
    return {
        "profile": profile,
        "arch_path": arch,
        "arch": arch.read_bytes(),
        "lut": (profile / "lut.json").read_bytes(),
        "samples": b"".join(lines),
    }


# ---- mutations --------------------------------------------------------------------------------

def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key / index path of a JSON value (lists: their first two items only)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:2]):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index))


def _get(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def _set(document: Any, path: tuple[Any, ...], value: Any, *, remove: bool = False) -> Any:
    copy = json.loads(json.dumps(document))
    parent = _get(copy, path[:-1])
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copy


SWAPS: tuple[Any, ...] = ("text", -1, 0, 1e308, True, None, [], {})


def json_mutations(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Malformed versions of one JSON document: every field removed, every field's type swapped
    (one swap each, chosen by `rng`), NaN and Infinity for every number, truncations, byte flips."""
    document = json.loads(data)
    dump = lambda value: json.dumps(value, indent=1).encode()  # noqa: E731 - NaN/Infinity tokens allowed
    for path in _paths(document):
        label = "/".join(map(str, path))
        yield f"remove {label}", dump(_set(document, path, None, remove=True))
        value = _get(document, path)
        yield f"swap {label}", dump(_set(document, path, rng.choice([s for s in SWAPS if type(s) is not type(value)])))
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield f"nan {label}", dump(_set(document, path, float("nan")))
            yield f"inf {label}", dump(_set(document, path, float("-inf") if rng.random() < 0.5 else float("inf")))
    yield from _raw_mutations(data, rng)


def _raw_mutations(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    for fraction in (0.0, 0.1, 0.5, 0.9, 0.999):
        cut = int(len(data) * fraction)
        yield f"truncate at {cut}", data[:cut]
    for _ in range(6):
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        yield "byte flips", bytes(flipped)
    yield "binary", bytes(rng.randrange(256) for _ in range(512))
    yield "empty", b""


def samples_mutations(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Malformed samples files: the first line mutated as a JSON document (every field), a torn last
    line, the whole file truncated, flipped or binary."""
    first, rest = data.split(b"\n", 1)
    for label, line in json_mutations(first, rng):
        if not label.startswith(("truncate", "byte", "binary", "empty")):
            yield f"line 1: {label}", line.replace(b"\n", b"") + b"\n" + rest
    yield "torn last line", data + first[: len(first) // 2]
    yield from _raw_mutations(data, rng)


def all_cases(sources: dict[str, Any], seed: int = 0) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    for kind, mutate in (("arch", json_mutations), ("lut", json_mutations), ("samples", samples_mutations)):
        for mutation, data in mutate(sources[kind], rng):
            for command in COMMANDS[kind]:
                cases.append(Case(kind, mutation, data, tuple(command)))
    return cases


# ---- running ------------------------------------------------------------------------------------

def _argv(case: Case, work: Path, profile: Path, arch: Path, file: Path) -> list[str]:
    argv = [part.format(file=file, prof=profile, arch=arch, tmp=work) for part in case.command]
    if argv[0] == "search":
        argv[argv.index("--lut") + 1] = str(profile)
    return argv


def run_case(case: Case, sources: dict[str, Any], scratch: Path) -> Outcome:
    """Run one command on one malformed file in a fresh copy of the profile; judge the contract."""
    work = Path(tempfile.mkdtemp(dir=scratch))
    profile = Path(shutil.copytree(sources["profile"], work / "prof"))
    arch = Path(shutil.copy(sources["arch_path"], work / "arch.json"))
    file = {"arch": work / "malformed.json", "lut": profile / "lut.json", "samples": profile / "samples.jsonl"}[case.kind]
    file.write_bytes(case.data)
    argv = _argv(case, work, profile, arch, file)
    if case.kind == "samples" and "--samples" in argv:  # the file given by name; the profile's own stays valid
        shutil.copy(sources["profile"] / "samples.jsonl", profile / "samples.jsonl")
        file = work / "other.jsonl"
        file.write_bytes(case.data)
        argv = _argv(case, work, profile, arch, file)
    before = snapshot(work)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code: int | None = main(argv)
            except SystemExit as exit_:
                code = int(exit_.code or 0)
    except Exception as error:  # noqa: BLE001 - an escaped exception is exactly what the fuzz looks for
        shutil.rmtree(work, ignore_errors=True)
        return Outcome(case, False, None, f"{type(error).__name__}: {str(error)[:200]}")
    lines = [line for line in (out.getvalue() + err.getvalue()).splitlines() if line.strip()]
    after = snapshot(work)
    shutil.rmtree(work, ignore_errors=True)
    if any("Traceback" in line for line in lines):
        return Outcome(case, False, code, "traceback printed")
    if code == 2:
        if len(lines) > MAX_LINES:
            return Outcome(case, False, code, f"{len(lines)} lines: {lines[:4]}")
        changed = sorted(path for path, digest in before.items() if after.get(path) != digest)
        if changed:
            return Outcome(case, False, code, f"refused but changed {changed[:2]}")
        return Outcome(case, True, code, lines[-1][:160] if lines else "")
    if code == 0:
        changed = sorted(path for path, digest in before.items() if after.get(path) != digest)
        if changed and tuple(argv[:2]) not in WRITERS:
            return Outcome(case, False, code, f"changed {changed[:2]}")
        return Outcome(case, True, code, "accepted")
    return Outcome(case, False, code, f"exit {code}: {lines[-1:] if lines else ''}")


def subset(cases: list[Case], count: int, seed: int) -> list[Case]:
    """`count` cases drawn without replacement, every kind and command represented."""
    rng = random.Random(seed)
    by_command: dict[tuple[str, tuple[str, ...]], list[Case]] = {}
    for case in cases:
        by_command.setdefault((case.kind, case.command), []).append(case)
    chosen = [rng.choice(group) for group in by_command.values()]
    rest = [case for case in cases if case not in chosen]
    return chosen + rng.sample(rest, max(0, min(count - len(chosen), len(rest))))


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_sources(tmp_path_factory.mktemp("fuzz-sources"))


def test_mutations_cover_every_field_and_every_kind(sources: dict[str, Any]) -> None:
    cases = all_cases(sources)
    arch_fields = {"/".join(map(str, p)) for p in _paths(json.loads(sources["arch"]))}
    removed = {c.mutation.removeprefix("remove ") for c in cases if c.kind == "arch" and c.mutation.startswith("remove")}
    assert removed == arch_fields and len(cases) > 500
    assert {c.kind for c in cases} == {"arch", "lut", "samples"}
    assert any(c.mutation.startswith("nan model/bias_ms") for c in cases)


def test_a_seeded_subset_keeps_the_contract(sources: dict[str, Any], tmp_path: Path) -> None:
    outcomes = [run_case(case, sources, tmp_path) for case in subset(all_cases(sources), SUBSET, seed=0)]
    failed = [f"{o.case.name}: {o.detail}" for o in outcomes if not o.passed]
    assert not failed, failed
    assert sum(o.code == 2 for o in outcomes) > len(outcomes) // 2  # most malformed files are refused, not used


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fuzz every reading command with malformed files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="run a seeded subset of this many cases")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        sources = make_sources(Path(root))
        cases = all_cases(sources, args.seed)
        if args.limit is not None:
            cases = subset(cases, args.limit, args.seed)
        started = time.perf_counter()
        outcomes = []
        for number, case in enumerate(cases, 1):
            outcomes.append(run_case(case, sources, Path(root)))
            if not outcomes[-1].passed:
                print(f"FAIL {case.name}: {outcomes[-1].detail}", flush=True)
            if number % 50 == 0:
                print(f"... {number}/{len(cases)}", file=sys.stderr, flush=True)
    passed = sum(o.passed for o in outcomes)
    refused = sum(o.code == 2 for o in outcomes)
    print(f"{len(outcomes)} cases, {passed} passed ({refused} refused in one line, {passed - refused} accepted), "
          f"{time.perf_counter() - started:.0f} s")
    return 0 if passed == len(outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(_main())
