"""DARTS cell spaces (filled in next)."""
