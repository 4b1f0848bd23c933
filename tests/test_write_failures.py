"""A failed write is the user's error, said in one line (issue #30, group 2).

A full disk, a quota, a read-only mount or a missing permission used to
reach the user as a traceback (an OSError without a file name), and
`profile --json` left its temporary file behind. Now every such failure is one
line naming the path, the cause (with its errno name) and what was kept, and
no temporary or half-written file stays.

Three ways to fail a write, all real:
- a small tmpfs filled to the last byte (mounted here, as root; skipped with
  the reason where mounting is not permitted);
- the kernel's file-size limit (RLIMIT_FSIZE) cutting writes at a chosen
  byte, in a child process (EFBIG);
- os.fsync / os.replace failing at a chosen call of an atomic write, with
  ENOSPC, EDQUOT, EROFS and EACCES.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_contract import refused, run_cli  # noqa: E402
from full_disk import fill, mount_refusal, tmpfs  # noqa: E402
from lut.profile import fit_directory, planned_arch  # noqa: E402
from search_spaces import get_space  # noqa: E402
from test_cli_lut import TINY, _profile_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def full_tmpfs(size: str = "1m") -> Iterator[Path]:
    """A real tmpfs of `size` for the block; the test is skipped, with the reason, where mounting is
    not permitted (not root, no CAP_SYS_ADMIN, a container without mount rights)."""
    reason = mount_refusal()
    if reason is not None:
        pytest.skip(f"cannot mount a tmpfs here ({reason}): the full-disk test needs root")
    with tmpfs(size) as folder:
        yield folder


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    profile = _profile_dir(tmp_path_factory.mktemp("writes") / "prof", samples=30)
    fit_directory(profile)
    for plot in profile.glob("*.png"):
        plot.unlink()
    return profile


@pytest.fixture(scope="module")
def arch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 3).save(
        tmp_path_factory.mktemp("arch") / "arch.json")


@pytest.mark.parametrize(("name", "argv"), [
    ("arch sample", ["arch", "sample", "--space", "proxyless", "--out", "{disk}/arch.json"]),
    ("profile --json", ["profile", "--model", "{arch}", "--budget", "0.05", "--threads", "1", "--json", "{disk}/p.json"]),
    ("export", ["export", "{arch}", "--out", "{disk}/export", "--measure", "none"]),
    ("train", ["train", "{arch}", "--data", "digits", "--steps", "1", "--no-latency", "--space-option",
               "in_channels=1", "--space-option", "resolution=8", "--out", "{disk}/train"]),
    ("lut fit", ["lut", "fit", "{disk}/prof"]),
])
def test_a_full_disk_is_one_line_naming_the_path(fitted: Path, arch: Path, name: str, argv: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with full_tmpfs() as disk:
        if name == "lut fit":
            shutil.copytree(fitted, disk / "prof")
        fill(disk)
        before = {p: p.read_bytes() for p in disk.rglob("*") if p.is_file() and p.name != "filler"}
        if name == "profile --json":  # the table of what was measured is shown first, then the one error line
            code, out, err = run_cli([part.format(disk=disk, arch=arch) for part in argv], capsys)
            lines = [line for line in (out + err).splitlines() if line.strip()]
            assert code == 2 and not any("Traceback" in line for line in lines), lines
            assert len(err.strip().splitlines()) == 1, err
            line = err.strip()
        else:
            line = refused([part.format(disk=disk, arch=arch) for part in argv], capsys)
        assert "No space left on device (ENOSPC)" in line and str(disk) in line, line
        assert "kept" in line
        assert leftovers(disk) == [], leftovers(disk)
        for path, data in before.items():
            assert path.read_bytes() == data, f"{path} changed"


def _child(argv: list[str], limit: int) -> subprocess.CompletedProcess[str]:
    """`hwnas ARGV` in a child whose files cannot grow past `limit` bytes (the kernel answers EFBIG)."""
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "hwnas", *argv], capture_output=True, text=True, check=False,
                          preexec_fn=limited, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


@pytest.mark.parametrize("limit", [100, 700])  # 0 also fails joblib's import-time probe (a warning line)
def test_a_write_cut_by_the_kernel_at_a_chosen_byte(tmp_path: Path, limit: int) -> None:
    out = tmp_path / "arch.json"
    done = _child(["arch", "sample", "--space", "proxyless", "--out", str(out)], limit)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, lines
    assert "File too large (EFBIG)" in lines[0] and str(out) in lines[0], lines
    assert list(tmp_path.iterdir()) == []  # neither arch.json nor a temporary file


def test_a_samples_append_cut_short_keeps_the_complete_lines(fitted: Path, tmp_path: Path) -> None:
    """append_jsonl on a full disk: the file goes back to its complete lines, the error names it."""
    from search_spaces.files import append_jsonl  # noqa: PLC0415

    path = tmp_path / "log.jsonl"
    append_jsonl(path, [{"a": 1}])
    before = path.read_bytes()
    limit = len(before) + 5

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from search_spaces.files import append_jsonl\n"
            f"try:\n    append_jsonl({str(path)!r}, [{{'b': 'x' * 100}}])\n"
            "except OSError as e:\n    print(e.errno, e.filename)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=limited,
                          check=False, timeout=120)
    assert done.stdout.split() == [str(errno.EFBIG), str(path)], done.stdout + done.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES])
@pytest.mark.parametrize(("call", "at"), [("fsync", 1), ("fsync", 3), ("replace", 1), ("replace", 2)])  # fsync 2: the folder, best effort
def test_lut_fit_failing_at_a_chosen_call(fitted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], code: int, call: str, at: int) -> None:
    profile = Path(shutil.copytree(fitted, tmp_path / "prof"))
    real = getattr(os, call)
    calls = [0]

    def failing(*args: object) -> object:
        calls[0] += 1
        if calls[0] == at:
            raise OSError(code, os.strerror(code))
        return real(*args)

    monkeypatch.setattr(os, call, failing)
    line = refused(["lut", "fit", str(profile)], capsys)
    monkeypatch.undo()
    assert os.strerror(code) in line and errno.errorcode[code] in line and str(profile) in line, line
    assert leftovers(profile) == []
    json.loads((profile / "lut.json").read_text())  # whole: the old table or the new one, never half
