"""CIFAR-10 from the python version's batch files (no download, no md5 check).

Layout (as unpacked from cifar-10-python.tar.gz): a folder holding
``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` — or its
``cifar-10-batches-py`` subfolder. Each file is a pickled dict with
``b"data"``: uint8 (N, 3072), rows of 1024 red, 1024 green, 1024 blue values
(32x32, row-major) and ``b"labels"``: N ints in 0..9.

torchvision's `CIFAR10` would refuse any copy whose md5 differs from the
official archive (a subset, a re-pack); we read the same format directly.
The unpickler admits only the numpy names an array needs: a batch file is
data, never code.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from hwnas.errors import UsageError

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
SUBFOLDER = "cifar-10-batches-py"
NUM_CLASSES = 10
EXPECTED = "data_batch_1..5 and test_batch of the CIFAR-10 python version (or a cifar-10-batches-py subfolder)"
_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles from Python 3 store bytes
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def cifar_folder(root: Path) -> Path | None:
    """The folder holding the batch files (root or its subfolder), or None if neither has any."""
    for candidate in (root, root / SUBFOLDER):
        if (candidate / TRAIN_FILES[0]).is_file() or (candidate / TEST_FILE).is_file():
            return candidate
    return None


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 32, 32, 3) HWC, labels int64 (N,)) of one batch file."""
    what = f"{path} is not a CIFAR-10 python batch (expected a pickled dict with b'data' uint8 (N, 3072) and b'labels')"
    try:
        with path.open("rb") as stream:
            batch = _ArrayUnpickler(stream, encoding="bytes").load()
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise UsageError(what) from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise UsageError(what)
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise UsageError(f"{path}: labels must be in 0..{NUM_CLASSES - 1}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


@dataclass(frozen=True)
class CifarArrays:
    """The whole training set and the test set as uint8 HWC arrays."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    folder: Path


def read_cifar10(root: Path) -> CifarArrays:
    """Read every batch file; a missing one is named in a one-line `UsageError`."""
    folder = cifar_folder(root)
    if folder is None:
        raise UsageError(f"{root} holds no CIFAR-10 batch files; expected {EXPECTED}")
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (folder / name).is_file()]
    if missing:
        raise UsageError(f"CIFAR-10 folder {folder} lacks {', '.join(missing)}; expected {EXPECTED}")
    train = [read_batch(folder / name) for name in TRAIN_FILES]
    test_images, test_labels = read_batch(folder / TEST_FILE)
    return CifarArrays(np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]),
                       test_images, test_labels, folder)


class CifarDataset(Dataset):
    """uint8 HWC images -> transform(CHW uint8 tensor), label."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: object) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        self.labels = torch.from_numpy(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.transform(self.images[index]), int(self.labels[index])  # type: ignore[operator]
