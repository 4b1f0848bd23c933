"""Errors a profiler raises for a request it cannot serve (bad model, missing backend...)."""


class ProfilerError(Exception):
    """The message names what is wrong and how to fix it, in one line."""
