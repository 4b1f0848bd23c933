"""Fuzzing every reading command with malformed files (issue #13, acceptance).

From valid files (an architecture JSON, a fitted lut.json, a samples.jsonl)
it makes malformed ones: truncations, byte flips, NaN / Infinity in place of
numbers, type swaps of every field, and every field removed. Each one is given
to every command that reads that kind of file. A case passes when the command
either works (exit 0: the damage was harmless, e.g. a skipped sample line) or
refuses with exit 2 in at most 3 lines with no traceback, and when every file
that existed before is unchanged (a successful `lut fit` may rewrite lut.json
and its report: that is its job).

Issue #30 added kinds beyond malformed bytes:
- special files: the file replaced by a FIFO (a watchdog opens it for writing
  after `WATCHDOG_S`, so a reader stuck on it fails the case instead of
  hanging the fuzz), a Unix socket, or a symlink to /dev/zero;
- big integers: every number replaced by an integer of 5,000 digits, by
  10**30, or given as 1e300 (overflow);
- sizes: widths, resolution, classes and shapes far beyond memory;
- silent wrong results: changes that leave valid JSON but a wrong answer
  (a zero or negative latency, a missing coefficient, samples of another
  resolution or batch, a key given twice). These cases pass only if refused:
  exit 0 is a wrong answer printed as a right one;
- full disk: commands writing into a real tmpfs filled to the last byte
  (mounted here as root; those cases are left out, with the reason printed,
  where mounting is not permitted). They pass only with one error line
  naming the disk and no temporary file left.

CI runs a seeded subset (`SUBSET` cases). The whole set, by hand:

    .venv/bin/python tests/test_fuzz_inputs.py            # prints "N cases, N passed" and every failure
    .venv/bin/python tests/test_fuzz_inputs.py --limit 50 --seed 3
    .venv/bin/python tests/test_fuzz_inputs.py --kind new   # only the kinds issue #30 added

The run caps its own address space (`--memory-cap-gib`, 8 by default), so a case that allocates for
real fails with a MemoryError instead of taking the machine down.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # as a script: the helpers beside this file

from cli_contract import MAX_LINES, snapshot  # noqa: E402
from full_disk import fill, mount_refusal, tmpfs  # noqa: E402
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


MEMORY_CAP_GIB = 8.0
"""Address space the whole run may take (RLIMIT_AS, set by `_main`): the cases run in this process, so a
case that allocates for real (depths of 10**30 once listed layers until the kernel killed the run at
20.6 GB) ends in a MemoryError that the case reports as its failure, and the run goes on."""

WATCHDOG_S = 20.0
"""Seconds before the watchdog releases a reader blocked on a FIFO (the case then fails)."""

SPECIAL = ("fifo", "socket", "device")
"""Special files put where a command reads its file (issue #30)."""


@dataclass(frozen=True)
class Case:
    kind: str
    mutation: str
    data: bytes
    command: tuple[str, ...]
    special: str = ""  # "", one of SPECIAL, or "full disk"
    must_refuse: bool = False  # a silent-wrong-result case: exit 0 is a failure

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


BIG = "9" * 5000
"""An integer Python refuses to parse (more than 4,300 digits)."""


def _numbers_replaced(data: bytes, token: str) -> Iterator[tuple[str, bytes]]:
    """`data` with each number field in turn given as the raw JSON `token` (text no json.dumps makes)."""
    document = json.loads(data)
    for path in _paths(document):
        value = _get(document, path)
        if isinstance(value, int | float) and not isinstance(value, bool):
            marker = "__HWNAS_NUMBER__"
            text = json.dumps(_set(document, path, marker), indent=1).replace(f'"{marker}"', token)
            yield "/".join(map(str, path)), text.encode()


def number_mutations(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Big integers (5,000 digits, 10**30) and overflowing floats (1e300, -1e300): each number field
    gets one of them (drawn by `rng`, like the type swaps), the first field all four."""
    tokens = (("5000-digit int", BIG), ("int 10**30", str(10**30)), ("1e300", "1e300"), ("-1e300", "-1e300"))
    for number, (field, _) in enumerate(_numbers_replaced(data, "0")):
        for label, token in tokens if number == 0 else [rng.choice(tokens)]:
            text = dict(_numbers_replaced(data, token))[field]
            yield f"{label} {field}", text


def size_mutations(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """An architecture whose network would not fit in any memory."""
    document = json.loads(data)
    for key, value in (("widths", [100000] * 9), ("widths", [10**9] * 9), ("resolution", 100000),
                       ("resolution", 10**7), ("num_classes", 10**12), ("num_classes", 1e12),
                       ("widths", [10**30] * 9), ("depths", [10**30, 1, 1, 1, 1, 1]), ("depths", [10**6] * 6)):
        yield f"size config/{key}={json.dumps(value)[:20]}", json.dumps(_set(document, ("config", key), value)).encode()


def silent_lut_mutations(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Valid JSON whose use would print a wrong latency: must be refused."""
    document = json.loads(data)
    for index in (0, len(document["ops"]) // 2, len(document["ops"]) - 1):
        for value in (0.0, -3.5, -1e-9):
            yield f"silent ops/{index}/median_ms={value}", json.dumps(_set(document, ("ops", index, "median_ms"), value)).encode()
    yield "silent fixed/0/median_ms=-1", json.dumps(_set(document, ("fixed", 0, "median_ms"), -1.0)).encode()
    yield "silent conditions/batch_size=0", json.dumps(_set(document, ("conditions", "batch_size"), 0)).encode()
    for index in (0, 7, -1):
        coefficients = list(document["model"]["coefficients"])
        del coefficients[index]
        yield f"silent coefficient {index} missing", json.dumps(_set(document, ("model", "coefficients"), coefficients)).encode()
    yield "silent no coefficients", json.dumps(_set(document, ("model", "coefficients"), [])).encode()
    text = json.dumps(document)
    yield "silent duplicate key space", text.replace('"space":', '"space": "darts", "space":', 1).encode()


def silent_samples_mutations(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Samples measured otherwise than the profile, or all overflowing: must be refused."""
    lines = [json.loads(line) for line in data.splitlines()]

    def every(change: Any, step: int) -> bytes:
        out = []
        for number, record in enumerate(lines):
            record = json.loads(json.dumps(record))
            if number % step == 0:
                change(record)
            out.append(json.dumps(record))
        return ("\n".join(out) + "\n").encode()

    for step in (1, 3, 10):
        yield f"silent resolution 32 every {step}", every(lambda r: r["arch"]["config"].update(resolution=32), step)
        yield f"silent num_classes 100 every {step}", every(lambda r: r["arch"]["config"].update(num_classes=100), step)
        yield f"silent batch 8 every {step}", every(lambda r: r["result"].update(batch_size=8), step)
        yield f"silent fp16 every {step}", every(lambda r: r["result"].update(precision="fp16"), step)
    yield "silent every latency 1e300", every(lambda r: r.update(latency_ms=1e300), 1)
    yield "silent every index 10**30", every(lambda r: r.update(index=10**30 + r["index"]), 1)


NEW = ("5000-digit int", "int 10**30", "1e300", "-1e300", "size ")
"""Mutation labels issue #30 added (with the special-file, silent and full-disk cases: `--kind new`)."""

SILENT_COMMANDS: dict[str, list[list[str]]] = {
    "lut": [["lut", "show", "{prof}", "--ops"], ["lut", "predict", "{prof}", "{arch}"], ["lut", "eval", "{prof}"]],
    "samples": [["lut", "fit", "{prof}"], ["lut", "eval", "{prof}"], ["lut", "eval", "{prof}", "--samples", "{file}"]],
}
FULL_DISK_COMMANDS: list[list[str]] = [
    ["arch", "sample", "--space", "proxyless", "--out", "{disk}/arch.json"],
    ["arch", "sample", "--space", "darts", "--out", "{disk}/darts.json"],  # (a missing folder is refused first)
    ["profile", "--model", "{arch}", "--budget", "0.05", "--threads", "1", "--json", "{disk}/p.json"],
    ["export", "{arch}", "--out", "{disk}/export", "--measure", "none"],
    ["lut", "fit", "{disk}/prof"],
    ["train", "{arch}", "--data", "digits", "--steps", "1", "--no-latency", "--space-option", "in_channels=1",
     "--space-option", "resolution=8", "--out", "{disk}/train"],
]


def all_cases(sources: dict[str, Any], seed: int = 0) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    for kind, mutate in (("arch", json_mutations), ("lut", json_mutations), ("samples", samples_mutations),
                         ("arch", number_mutations), ("lut", number_mutations), ("arch", size_mutations)):
        for mutation, data in mutate(sources[kind], rng):
            for command in COMMANDS[kind]:
                cases.append(Case(kind, mutation, data, tuple(command)))
    for kind, mutate in (("lut", silent_lut_mutations), ("samples", silent_samples_mutations)):
        for mutation, data in mutate(sources[kind], rng):
            for command in SILENT_COMMANDS[kind]:
                cases.append(Case(kind, mutation, data, tuple(command), must_refuse=True))
    for kind in ("arch", "lut", "samples"):
        for special in SPECIAL:
            for command in COMMANDS[kind]:
                cases.append(Case(kind, special, b"", tuple(command), special=special, must_refuse=True))
    for command in FULL_DISK_COMMANDS:
        cases.append(Case("disk", "full disk", b"", tuple(command), special="full disk", must_refuse=True))
    return cases


# ---- running ------------------------------------------------------------------------------------

def snapshot_regular(root: Path) -> dict[str, str]:
    """`snapshot` of the regular files only: a FIFO or a socket cannot be read (that is the point)."""
    return {path: digest for path, digest in snapshot(*[p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]).items()}


def _argv(case: Case, work: Path, profile: Path, arch: Path, file: Path) -> list[str]:
    argv = [part.format(file=file, prof=profile, arch=arch, tmp=work) for part in case.command]
    if argv[0] == "search":
        argv[argv.index("--lut") + 1] = str(profile)
    return argv


@contextlib.contextmanager
def _special_file(path: Path, special: str) -> Iterator[list[bool]]:
    """`path` made a FIFO, a socket or a link to /dev/zero for the block; yields a list that holds
    True if the watchdog had to release a reader blocked on the FIFO."""
    path.unlink(missing_ok=True)
    released: list[bool] = []
    server = None
    timer = None
    if special == "fifo":
        os.mkfifo(path)

        def release() -> None:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                return
            released.append(True)
            os.close(fd)

        timer = threading.Timer(WATCHDOG_S, release)
        timer.start()
    elif special == "socket":
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
    else:
        path.symlink_to("/dev/zero")
    try:
        yield released
    finally:
        if timer is not None:
            timer.cancel()
        if server is not None:
            server.close()


def _run_main(argv: list[str]) -> tuple[int | None, list[str], str]:
    """(exit code, printed lines, escaped exception or '') of `hwnas ARGV` in this process."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code: int | None = main(argv)
            except SystemExit as exit_:
                code = int(exit_.code or 0)
    except Exception as error:  # noqa: BLE001 - an escaped exception is exactly what the fuzz looks for
        return None, [], f"{type(error).__name__}: {str(error)[:200]}"
    return code, [line for line in (out.getvalue() + err.getvalue()).splitlines() if line.strip()], ""


def _run_full_disk(case: Case, sources: dict[str, Any], scratch: Path) -> Outcome:
    with tmpfs() as disk:
        if "{disk}/prof" in case.command:
            shutil.copytree(sources["profile"], disk / "prof", ignore=shutil.ignore_patterns("*.png"))
        fill(disk)
        before = snapshot(disk)
        argv = [part.format(disk=disk, arch=sources["arch_path"]) for part in case.command]
        code, lines, escaped = _run_main(argv)
        left = [p.name for p in disk.rglob("*") if ".tmp" in p.name]
        after = snapshot(disk)
        changed = sorted(p for p, digest in before.items() if not p.endswith("filler") and after.get(p) != digest)
    if escaped:
        return Outcome(case, False, None, escaped)
    error = [line for line in lines if "error:" in line]
    if code != 2 or not error or any("Traceback" in line for line in lines):
        return Outcome(case, False, code, f"exit {code}: {lines[-2:]}")
    if "ENOSPC" not in error[-1] or str(disk) not in error[-1]:
        return Outcome(case, False, code, f"error line does not name the disk and the cause: {error[-1][:160]}")
    if left or changed:
        return Outcome(case, False, code, f"left {left[:2]} changed {changed[:2]}")
    return Outcome(case, True, code, error[-1][:160])


def run_case(case: Case, sources: dict[str, Any], scratch: Path) -> Outcome:
    """Run one command on one malformed file in a fresh copy of the profile; judge the contract."""
    if case.special == "full disk":
        return _run_full_disk(case, sources, scratch)
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
    released: list[bool] = []
    with contextlib.ExitStack() as stack:
        if case.special:
            released = stack.enter_context(_special_file(file, case.special))
        before = snapshot_regular(work)
        code, lines, escaped = _run_main(argv)
        after = snapshot_regular(work)
    shutil.rmtree(work, ignore_errors=True)
    if escaped:
        return Outcome(case, False, None, escaped)
    if released:
        return Outcome(case, False, code, "blocked on a FIFO until the watchdog released it")
    if case.must_refuse and code == 0:
        return Outcome(case, False, code, "accepted: a wrong answer printed as a right one")
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
    by_command: dict[tuple[Any, ...], list[Case]] = {}
    for case in cases:  # every command of the malformed files; every special file, silent and disk kind
        key = (case.kind, case.special, case.must_refuse) if case.special or case.must_refuse else (case.kind, case.command)
        by_command.setdefault(key, []).append(case)
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
    assert {c.kind for c in cases} == {"arch", "lut", "samples", "disk"}
    assert any(c.mutation.startswith("nan model/bias_ms") for c in cases)
    assert {c.special for c in cases} == {"", *SPECIAL, "full disk"}
    for label in ("5000-digit int", "int 10**30", "1e300", "size config/widths", "silent coefficient",
                  "silent resolution 32", "silent duplicate key", "silent every latency 1e300"):
        assert any(c.mutation.startswith(label) for c in cases), label


def test_a_seeded_subset_keeps_the_contract(sources: dict[str, Any], tmp_path: Path) -> None:
    cases = all_cases(sources)
    if mount_refusal() is not None:
        cases = [case for case in cases if case.special != "full disk"]
    outcomes = [run_case(case, sources, tmp_path) for case in subset(cases, SUBSET, seed=0)]
    failed = [f"{o.case.name}: {o.detail}" for o in outcomes if not o.passed]
    assert not failed, failed
    assert sum(o.code == 2 for o in outcomes) > len(outcomes) // 2  # most malformed files are refused, not used


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fuzz every reading command with malformed files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="run a seeded subset of this many cases")
    parser.add_argument("--memory-cap-gib", type=float, default=MEMORY_CAP_GIB,
                        help="address-space limit of this process (0: none); a case that allocates past it fails "
                             "with its MemoryError instead of calling the OOM killer on the machine")
    parser.add_argument("--kind", default=None, help="only these cases: arch, lut, samples, fifo, socket, device, "
                                                     "'full disk', silent, or new (every kind issue #30 added)")
    args = parser.parse_args(argv)
    if args.memory_cap_gib > 0:
        cap = int(args.memory_cap_gib * 2**30)
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    with tempfile.TemporaryDirectory() as root:
        sources = make_sources(Path(root))
        cases = all_cases(sources, args.seed)
        reason = mount_refusal()
        if reason is not None:
            print(f"full-disk cases left out: cannot mount a tmpfs here ({reason})", flush=True)
            cases = [case for case in cases if case.special != "full disk"]
        if args.kind:
            cases = [case for case in cases if args.kind in (case.kind, case.special) or
                     (args.kind == "silent" and case.must_refuse and not case.special) or
                     (args.kind == "new" and (case.special or case.must_refuse or case.mutation.startswith(NEW)))]
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
