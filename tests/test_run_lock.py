"""One process per run folder (issue #13, item 12): profile, search and train refuse a second
process on the same folder in one line naming the first one's pid; a killed holder never
blocks a later run; profile shards lock their own samples file and run side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_contract import refused, snapshot
from lut.errors import LutError
from search_spaces.files import run_lock
from test_cli_lut import TINY
from test_search_cli import TINY as SEARCH

HOLD = (
    "import sys, time\n"
    "from search_spaces.files import run_lock\n"
    "with run_lock(sys.argv[1], RuntimeError, name=sys.argv[2]):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(120)\n"
)


def _hold(folder: Path, name: str = ".lock") -> subprocess.Popen[str]:
    """Another process holding the lock of `folder`, as a running hwnas command does."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), name], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = _hold(tmp_path / "run")
    yield process
    process.kill()
    process.wait()


def test_second_search_is_refused_naming_the_pid(holder: subprocess.Popen[str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    line = refused(["search", *SEARCH, "--out", str(run)], capsys, keep=[run])
    assert f"in use by another hwnas process (pid {holder.pid})" in line
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # the refused run wrote nothing


def test_second_train_is_refused_naming_the_pid(holder: subprocess.Popen[str], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    line = refused(["train", "proxyless_gpu", "--data", "digits", "--space-option", "small_input=true",
                    "--space-option", "in_channels=1", "--space-option", "resolution=8", "--out", str(run)],
                   capsys, keep=[run])
    assert f"pid {holder.pid}" in line


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    process = _hold(tmp_path / "run")
    with pytest.raises(LutError, match=f"pid {process.pid}"):
        with run_lock(tmp_path / "run", LutError):
            pass
    process.send_signal(signal.SIGKILL)
    process.wait()
    with run_lock(tmp_path / "run", LutError) as folder:  # the kernel dropped the lock with the process
        assert (folder / ".lock").read_text().strip() == str(os.getpid())


def test_locks_of_other_names_do_not_conflict_and_a_fresh_folder_is_cleaned(tmp_path: Path) -> None:
    with run_lock(tmp_path, LutError, name=".samples-0-of-2.jsonl.lock"):
        with run_lock(tmp_path, LutError, name=".samples-1-of-2.jsonl.lock"):
            pass
    with run_lock(tmp_path / "p", LutError):
        pass
    assert not (tmp_path / "p").exists()  # created by the lock and left empty (a refused run): removed again
    with run_lock(tmp_path / "q", LutError) as folder:
        (folder / "metrics.jsonl").write_text("{}\n")
    assert (tmp_path / "q" / "metrics.jsonl").exists()


HOLD_BRIEFLY = (
    "import pathlib, sys, time\n"
    "from search_spaces.files import run_lock\n"
    "with run_lock(sys.argv[1], RuntimeError, name='.results.json.lock'):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(0.5)\n"
    "    pathlib.Path(sys.argv[1], 'released').write_text('')\n"
)


def test_a_waiting_lock_takes_its_turn_after_the_holder(tmp_path: Path) -> None:
    """`wait=True` (a benchmark's shared results file): no refusal, the lock once the holder leaves."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_BRIEFLY, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LutError, match=f"pid {holder.pid}"):
            with run_lock(tmp_path, LutError, name=".results.json.lock"):
                pass
        with run_lock(tmp_path, LutError, name=".results.json.lock", wait=True):
            assert (tmp_path / "released").exists()  # the holder had left its block
    finally:
        holder.kill()
        holder.wait()


def _profile_argv(out: Path, samples: int) -> list[str]:
    argv = ["profile", "--device", "cpu", "--input-size", "28", "--samples", str(samples), "--skip-ops",
            "--block-size", "2", "--time-per-net", "0.05", "--out", str(out)]
    for key, value in TINY.items():
        argv += ["--space-option", f"{key}={json.dumps(value)}"]
    return argv


def test_second_profile_on_one_folder_is_refused_and_measures_nothing(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prof"
    first = subprocess.Popen([sys.executable, "-m", "hwnas", *_profile_argv(out, 400)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "samples.jsonl").exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert (out / "samples.jsonl").exists(), "the first profile never started measuring"
        before = len(snapshot(out))
        line = refused(_profile_argv(out, 400), capsys)
        assert f"profile directory {out} is in use by another hwnas process (pid {first.pid})" in line
        assert len(snapshot(out)) == before
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()


def test_a_search_waits_for_a_profile_another_process_is_making(tmp_path: Path) -> None:
    """Two searches started together on one default profile: the second waits for the first's
    profile lock and then goes on (it is not refused), and returns as soon as the lock is free."""
    from search_spaces.files import wait_while_locked  # noqa: PLC0415

    holder = _hold(tmp_path / "profile", ".samples.jsonl.lock")
    waited: list[str] = []
    started = time.monotonic()
    killer = subprocess.Popen([sys.executable, "-c", f"import os, signal, time; time.sleep(1.5); os.kill({holder.pid}, signal.SIGTERM)"])
    wait_while_locked(tmp_path / "profile", name=".samples.jsonl.lock", on_wait=waited.append)
    assert time.monotonic() - started >= 1.0 and waited == [str(holder.pid)]  # it waited for the holder, naming it
    holder.wait()
    killer.wait()
    waited.clear()
    wait_while_locked(tmp_path / "profile", name=".samples.jsonl.lock", on_wait=waited.append)  # free: no wait
    wait_while_locked(tmp_path / "missing", on_wait=waited.append)
    assert waited == []


def test_a_refusal_names_its_holder_for_callers_that_may_wait(holder: subprocess.Popen[str], tmp_path: Path) -> None:
    """`hwnas.run.prepare.ensure_profile` waits again (rather than fail) when another search takes the profile's
    lock between its wait and its profile_device: it tells that refusal from other errors by `locked_by`."""
    with pytest.raises(LutError) as refused_here:
        with run_lock(tmp_path / "run", LutError):
            pass
    assert refused_here.value.locked_by == str(holder.pid)  # type: ignore[attr-defined]
