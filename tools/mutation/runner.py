"""Run one target's tests against each of its mutants, in a forked child of a warm parent.

Why fork: importing torch, ONNX Runtime and scikit-learn costs ~8 s on this
machine, more than most targets' tests take; a subprocess per mutant would
spend most of an hour importing. The parent imports those libraries once
(never hwnas itself) and forks one child per mutant; the child puts a copy of
the repository first on sys.path, so it imports the mutated file fresh, and
runs pytest on the target's own test files. The copy is made from the files
git knows, like a fresh clone, and the mutated file is restored after each run.

A mutant is *killed* when the tests fail or run past the time limit (3x the
clean run + 30 s), *survived* when they pass. Lines the clean run never
executes (traced in the baseline child) are reported as survived without a
run: no test can catch an edit there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.mutation.operators import Mutant


@dataclass(frozen=True)
class Outcome:
    status: str  # "killed", "timeout", "survived", "uncovered"
    seconds: float
    killed_by: str | None = None  # the first failing test's node id (tests run with -x)


def first_failure(log: Path) -> str | None:
    """The node id of pytest's first FAILED/ERROR summary line in `log`, if any."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" ", 2)[1]
    return None


@contextmanager
def workspace(root: Path) -> Iterator[Path]:
    """A temporary copy of the files git tracks (or would track) under `root`."""
    if (root / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                                check=True, capture_output=True).stdout.decode().split("\0")
    else:  # an exported tree (git archive): every file in it
        listed = [str(path.relative_to(root)) for path in root.rglob("*") if "__pycache__" not in path.parts]
    with tempfile.TemporaryDirectory(prefix="hwnas-mutation-") as folder:
        copy = Path(folder)
        for name in filter(None, listed):
            source = root / name
            if source.is_file():
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, copy / name)
        yield copy


def _line_tracer(files: set[str], hits: set[tuple[str, int]]):  # noqa: ANN202 - sys.settrace's protocol
    def local(frame, event, arg):  # noqa: ANN001, ANN202
        if event == "line":
            hits.add((frame.f_code.co_filename, frame.f_lineno))
        return local

    def global_(frame, event, arg):  # noqa: ANN001, ANN202
        if frame.f_code.co_filename in files:
            hits.add((frame.f_code.co_filename, frame.f_lineno))
            return local
        return None

    return global_


def _child(copy: Path, tests: Sequence[str], log: Path, traced: set[str] | None, coverage_out: Path | None) -> None:
    """In the forked child: import from `copy`, run pytest, exit with its status (never returns)."""
    code = 3
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(copy)
        here = {"", ".", str(Path.cwd()), os.getcwd()}
        sys.path[:] = [str(copy), *(p for p in sys.path if p not in here and not p.startswith(str(Path(__file__).parents[2])))]
        os.environ["PYTHONPATH"] = str(copy)
        sys.dont_write_bytecode = True
        import pytest  # noqa: PLC0415 - imported by the parent already

        hits: set[tuple[str, int]] = set()
        if traced is not None:
            tracer = _line_tracer(traced, hits)
            threading.settrace(tracer)
            sys.settrace(tracer)
        code = int(pytest.main([*tests, "-x", "-q", "-p", "no:cacheprovider", "-W", "ignore"]))
        sys.settrace(None)
        import hwnas  # noqa: PLC0415

        if not str(Path(hwnas.__file__).resolve()).startswith(str(copy.resolve())):
            print(f"mutation: hwnas was imported from {hwnas.__file__}, not the copy", file=sys.stderr)
            code = 4
        if coverage_out is not None:
            coverage_out.write_text(json.dumps(sorted(hits)))
    except BaseException as error:  # noqa: BLE001 - the child must exit, whatever happened
        print(f"mutation child: {error!r}", file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_tests(copy: Path, tests: Sequence[str], log: Path, limit_s: float | None,
              traced: set[str] | None = None, coverage_out: Path | None = None) -> tuple[int, float]:
    """Fork, run `tests` in the child; (exit status, or -9 when past `limit_s`; seconds)."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        _child(copy, tests, log, traced, coverage_out)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), time.monotonic() - start
        if limit_s is not None and time.monotonic() - start > limit_s:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -9, time.monotonic() - start
        time.sleep(0.05)


def baseline(copy: Path, modules: Sequence[str], tests: Sequence[str], log: Path) -> tuple[float, set[tuple[str, int]]]:
    """The clean run: its seconds and the (module, line) pairs it executes; raises if it fails."""
    traced = {str(copy / module) for module in modules}
    coverage_out = log.with_suffix(".lines.json")
    code, seconds = run_tests(copy, tests, log, None, traced, coverage_out)
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the clean tests fail (exit {code}); fix them before mutating:\n{tail}")
    hits = {(str(Path(name).relative_to(copy)), line) for name, line in json.loads(coverage_out.read_text())}
    return seconds, hits


def run_mutant(copy: Path, mutant: Mutant, tests: Sequence[str], limit_s: float, log: Path,
               covered: set[tuple[str, int]]) -> Outcome:
    """Apply `mutant` to the copy, run the tests, restore the file."""
    if not any((mutant.path, line) in covered for line in range(min(mutant.statement_line, mutant.line), mutant.end_line + 1)):
        return Outcome("uncovered", 0.0)
    target = copy / mutant.path
    original = target.read_text()
    try:
        target.write_text(mutant.apply(original))
        code, seconds = run_tests(copy, tests, log, limit_s)
    finally:
        target.write_text(original)
    if code == -9:
        return Outcome("timeout", seconds)
    if code == 0:
        return Outcome("survived", seconds)
    return Outcome("killed", seconds, first_failure(log))
