"""The one place that says which exceptions are the user's mistake.

Each lower package owns its own error type (so `profilers` and
`search_spaces` never import `hwnas`); the CLI turns exactly these into a
one-line message and exit code 2. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import errno

from lut.errors import LutError
from profilers.errors import ProfilerError
from search_spaces.errors import ArchitectureError


class UsageError(Exception):
    """A command-line argument that cannot work, with the fix in the message."""


USER_ERRORS: tuple[type[BaseException], ...] = (UsageError, ProfilerError, ArchitectureError, LutError)


WRITE_ERRNOS: frozenset[int] = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                                          errno.EFBIG, errno.EIO, errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR})
"""What the machine answers a write on the user's paths (full disk, quota, read-only mount, no
permission, file too large, a failing disk): the user's to fix, not a bug."""


def os_error_line(error: OSError) -> str | None:
    """One line for an OSError on a path the user gave (None: a bug, which keeps its traceback).

    It names the path (or says none was named), the cause with its errno name, and what was kept:
    every hwnas write replaces its file whole or not at all and leaves no temporary file
    (search_spaces.files), so files written before the failure are intact and complete."""
    if error.filename is None and error.errno not in WRITE_ERRNOS:
        return None
    where = (error.filename if error.filename2 is None else f"{error.filename} -> {error.filename2}") \
        if error.filename is not None else "a file (the system did not say which)"
    code = errno.errorcode.get(error.errno or 0, "")
    cause = f"{error.strerror or error}{f' ({code})' if code else ''}"
    fix = {errno.ENOSPC: "free some space or choose another folder", errno.EDQUOT: "free some of your quota",
           errno.EROFS: "choose a writable folder", errno.EACCES: "check the permissions or choose another folder",
           errno.EPERM: "check the permissions or choose another folder"}.get(error.errno or 0,
                                                                             "check the path and its file system")
    return (f"cannot use {where}: {cause}; files written before are kept whole and no partial or temporary "
            f"file is left; {fix}")
