"""A real full file system for the write-failure tests and the fuzz (issue #30): a small tmpfs,
mounted as root, filled to its last byte. Where mounting is not permitted, `mount_refusal` says why."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def mount_refusal() -> str | None:
    """Why a tmpfs cannot be mounted here (None: it can)."""
    try:
        with tmpfs("64k"):
            return None
    except (OSError, subprocess.CalledProcessError) as error:
        stderr = getattr(error, "stderr", "") or ""
        return (stderr.strip() or str(error))[:120]


@contextlib.contextmanager
def tmpfs(size: str = "1m") -> Iterator[Path]:
    """A fresh tmpfs of `size` mounted on a temporary folder for the block (raises if it cannot be)."""
    folder = Path(tempfile.mkdtemp(prefix="hwnas-full-"))
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True,
                       capture_output=True, text=True)
    except BaseException:
        folder.rmdir()
        raise
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
        folder.rmdir()


def fill(folder: Path) -> None:
    """Write into `folder` until its file system answers ENOSPC."""
    with (folder / "filler").open("wb", buffering=0) as handle:
        for chunk in (4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * chunk)
