"""DARTS cell spaces: DARTS edges, UNAS factorized cells, Amended-DARTS S1/S2,
GDAS fixed reduction cell. Importing registers the space `darts`."""

from __future__ import annotations

from search_spaces.darts.space import DartsSpace

__all__ = ["DartsSpace"]
