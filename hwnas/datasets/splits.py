"""What every data set gives the search and training loops, bundled or read from a folder.

Both `hwnas.datasets.bundled.DataSplits` and `hwnas.datasets.FolderSplits`
hold ``train`` (search-train), ``val`` (search-val) and ``test`` datasets and a
``record`` for the run directory; the loops only use the surface defined
here, so the split logic and its checks are written once.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from hwnas.errors import UsageError

SPLITS = ("train", "val", "test")


class SplitsSurface:
    """Mixin for the frozen split dataclasses: their ``record`` knows the shape and the classes."""

    @property
    def num_classes(self) -> int:
        return self.record.num_classes  # type: ignore[attr-defined]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image as the network sees it."""
        return self.record.image_shape  # type: ignore[attr-defined]

    def split(self, name: str) -> Dataset:
        """The dataset of one split by name, or a one-line error naming the valid ones."""
        if name not in SPLITS:
            raise UsageError(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")
        return getattr(self, name)


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Indices of train / val / test with every class in the same proportions.

    Within each class the order is a seeded permutation; the fractions are
    rounded per class, so the split sizes can differ from N*fraction by at
    most the number of classes.
    """
    if not (0.0 < val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise UsageError(
            f"val_fraction {val_fraction} and test_fraction {test_fraction} must be in [0, 1) and sum to less than 1"
        )
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(test_fraction * len(members)))
        n_val = int(round(val_fraction * len(members)))
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test : n_test + n_val])
        parts["train"].append(members[n_test + n_val :])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}
