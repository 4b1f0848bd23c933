"""Errors for architectures and spaces that do not fit together."""


class ArchitectureError(ValueError):
    """An architecture that does not belong to its space; the message names the
    decision and lists the allowed choices."""
