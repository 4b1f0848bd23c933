"""Errors for latency tables and profiles that cannot be used as asked."""


class LutError(Exception):
    """A LUT that is missing, corrupt, or measured for other conditions; the
    message names the field that differs."""
