"""Build an output folder beside its destination and rename it into place.

A failed or interrupted export leaves nothing half-written: the files are
made in a hidden temporary folder in the destination's parent (same file
system, so the final rename is atomic) and that folder is deleted on any
failure. An existing destination is refused unless it is empty or `force`
is given; with `force` the old folder is moved aside first and deleted only
after the new one is in place. The hidden folders carry the exporting
process's pid, so what a kill -9 leaves is recognised and removed by the
next export to the same destination.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hwnas.errors import UsageError
from search_spaces.files import atomic_rename


def check_destination(out: Path, force: bool) -> None:
    """Refuse an output path that cannot be (re)placed, before any work."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"--out {out} exists and is not empty; choose another folder or pass --force to replace it")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def remove_stale(out: Path) -> list[Path]:
    """Delete the hidden `.NAME.partial-PID-*` / `.NAME.old-PID-*` folders beside `out` that a killed
    export left (kill -9 runs no cleanup); a folder whose process still runs is left alone."""
    removed = []
    if not out.parent.is_dir():
        return removed
    for kind in ("partial", "old"):
        for folder in out.parent.glob(f".{out.name}.{kind}-*"):
            pid = folder.name.removeprefix(f".{out.name}.{kind}-").split("-")[0]
            if folder.is_dir() and not (pid.isdigit() and _alive(int(pid))):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


@contextlib.contextmanager
def staged_folder(out: Path, force: bool) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it becomes `out`, on failure it is removed.
    Leftovers of exports to `out` that were killed are removed first."""
    check_destination(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{os.getpid()}-", dir=out.parent))
    try:
        yield staging
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _ordinary_permissions(folder: Path) -> None:
    """mkdtemp/mkstemp make private folders and files; an export folder is ordinary (umask applies)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


def _move_into_place(staging: Path, out: Path) -> None:
    _ordinary_permissions(staging)
    if not out.exists():
        atomic_rename(staging, out)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
    atomic_rename(out, aside / out.name)
    try:
        atomic_rename(staging, out)
    except BaseException:
        atomic_rename(aside / out.name, out)  # put the old folder back
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)
