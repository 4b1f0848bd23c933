"""The one place that says which exceptions are the user's mistake.

Each lower package owns its own error type (so `profilers` and
`search_spaces` never import `hwnas`); the CLI turns exactly these into a
one-line message and exit code 2. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

from lut.errors import LutError
from profilers.errors import ProfilerError
from search_spaces.errors import ArchitectureError


class UsageError(Exception):
    """A command-line argument that cannot work, with the fix in the message."""


USER_ERRORS: tuple[type[BaseException], ...] = (UsageError, ProfilerError, ArchitectureError, LutError)
