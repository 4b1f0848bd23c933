"""Build an output folder beside its destination and rename it into place.

A failed or interrupted export leaves nothing half-written: the files are
made in a hidden temporary folder in the destination's parent (same file
system, so the final rename is atomic) and that folder is deleted on any
failure. An existing destination is refused unless it is empty or `force`
is given; with `force` the old folder is moved aside first and deleted only
after the new one is in place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hwnas.errors import UsageError


def check_destination(out: Path, force: bool) -> None:
    """Refuse an output path that cannot be (re)placed, before any work."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"--out {out} exists and is not empty; choose another folder or pass --force to replace it")


@contextlib.contextmanager
def staged_folder(out: Path, force: bool) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it becomes `out`, on failure it is removed."""
    check_destination(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
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
        os.replace(staging, out)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, aside / out.name)
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(aside / out.name, out)  # put the old folder back
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)
