"""Only regular files are read (issue #30, group 3).

A FIFO where a command expects lut.json, samples.jsonl, profile.json, a
checkpoint or a model used to block the reader until killed. Each case puts a
real FIFO (os.mkfifo), a real Unix socket or a device there and expects the
one-line refusal. A watchdog opens the FIFO for writing after a while, which
releases a reader stuck in open(2): a regression fails the test instead of
hanging the suite.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_contract import refused  # noqa: E402
from lut.profile import planned_arch  # noqa: E402
from search_spaces import get_space  # noqa: E402
from test_cli_lut import TINY  # noqa: E402

WATCHDOG_S = 20.0


@contextlib.contextmanager
def fifo_at(path: Path) -> Iterator[list[bool]]:
    """A FIFO at `path`; yields a flag list that holds True if the watchdog had to release a reader."""
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    released: list[bool] = []

    def release() -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return  # nobody is blocked on it: the command did not open it
        released.append(True)
        os.close(fd)

    timer = threading.Timer(WATCHDOG_S, release)
    timer.start()
    try:
        yield released
    finally:
        timer.cancel()


@pytest.mark.parametrize(("name", "argv"), [
    ("lut.json", ["lut", "show", "{prof}"]),
    ("lut.json", ["lut", "predict", "{prof}", "{arch}"]),
    ("samples.jsonl", ["lut", "fit", "{prof}"]),
    ("samples.jsonl", ["lut", "eval", "{prof}"]),
    ("profile.json", ["lut", "fit", "{prof}"]),
])
def test_a_fifo_in_a_profile_is_refused(profile: Path, tmp_path: Path, name: str, argv: list[str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    arch = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 3).save(tmp_path / "arch.json")
    with fifo_at(profile / name) as released:
        line = refused([part.format(prof=profile, arch=arch) for part in argv], capsys)
    assert not released, "the command blocked on the FIFO"
    assert "FIFO" in line and name in line, line


@pytest.mark.parametrize(("name", "argv"), [
    ("other.jsonl", ["lut", "eval", "{prof}", "--samples", "{file}"]),
    ("w.pt", ["export", "{arch}", "--weights", "{file}", "--out", "{tmp}/out", "--measure", "none"]),
    ("arch.json", ["arch", "show", "{file}"]),
    ("model.onnx", ["profile", "--model", "{file}", "--backend", "ort", "--budget", "0.05"]),
])
def test_a_fifo_given_by_name_is_refused(profile: Path, tmp_path: Path, name: str, argv: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    arch = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 3).save(tmp_path / "valid.json")
    file = tmp_path / name
    with fifo_at(file) as released:
        line = refused([part.format(prof=profile, arch=arch, file=file, tmp=tmp_path) for part in argv], capsys,
                       absent=[tmp_path / "out"])
    assert not released, "the command blocked on the FIFO"
    assert "FIFO" in line or "regular file" in line, line


def test_a_socket_is_refused(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (profile / "lut.json").unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(profile / "lut.json"))
        line = refused(["lut", "show", str(profile)], capsys)
    finally:
        server.close()
    assert "socket" in line, line


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_is_refused(profile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """/dev/zero never ends: read whole, it would fill the memory."""
    arch = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 3).save(tmp_path / "arch.json")
    line = refused(["lut", "eval", str(profile), "--samples", "/dev/zero"], capsys)
    assert "device" in line, line
    line = refused(["export", str(arch), "--weights", "/dev/zero", "--out", str(tmp_path / "out")], capsys,
                   absent=[tmp_path / "out"])
    assert "device" in line, line
