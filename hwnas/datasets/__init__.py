"""Every data set of hwnas: bundled (MNIST, cluttered MNIST, digits) and folders (CIFAR-10, ImageNet).

`load_data(name_or_dir)` is the one entry point: a bundled name
(``mnist``, ``cluttered_mnist``, ``digits``) goes to `hwnas.datasets.bundled.load_dataset`; a folder is read
as CIFAR-10 (python batch files) or as an ImageFolder tree (``train/``,
``val/``). Either way the result has the same surface: ``train`` / ``val`` /
``test`` datasets, ``loader(split, batch_size, shuffle=True, seed=0)``,
``num_classes``, ``image_shape`` and a ``record`` for the run directory.

Splits follow DARTS: the search halves the *training* set (seeded,
class-stratified; ``val_fraction`` 0.5) into search-train and search-val,
both with training augmentation; ``test`` is the held-out set (CIFAR
``test_batch``, ImageNet ``val/``) with evaluation transforms, touched only
to report. Retraining uses search-train + search-val, i.e. the whole
training set.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset, Subset

from hwnas.datasets import cifar, imagefolder, transforms
from hwnas.datasets.bundled import DataSplits, list_datasets, load_dataset
from hwnas.datasets.sampling import (SeededDataset, SeededSampler, endless_from, sample_seed, seeded_loader,
                                     usable_cores)
from hwnas.datasets.splits import SPLITS, SplitsSurface, stratified_split
from hwnas.errors import UsageError

def check_network_input(space: Any, image_shape: tuple[int, int, int], *, channels_only: bool = False) -> None:
    """Refuse a space whose network takes another (channels, height, width) than the data gives,
    before a step runs (a channel mismatch used to surface deep inside the first convolution).
    The one check `train` (fit_to_data) and `search` (space_for_data) share; the search compares
    channels only, since its supernets pool globally and a given resolution= is the user's choice."""
    expected = tuple(int(v) for v in space.input_shape(1)[1:])
    if expected[: 1 if channels_only else 3] != tuple(image_shape)[: 1 if channels_only else 3]:
        raise UsageError(
            f"the {space.name} network takes input {expected} (channels, height, width) but the data gives "
            f"{tuple(image_shape)}; set --space-option in_channels=... resolution=... (proxyless: small_input=true "
            "for 32 px), or leave them out to take the data's"
        )


@dataclass(frozen=True)
class FolderSplitRecord:
    """What a run directory stores about a folder data set (mean/std per channel)."""

    dataset: str
    root: str
    seed: int
    val_fraction: float
    sizes: dict[str, int]
    indices_sha256: str
    image_shape: tuple[int, int, int]
    num_classes: int
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augmentation: dict[str, object]
    source: str

    def to_dict(self) -> dict[str, object]:
        record = asdict(self)
        for key in ("image_shape", "classes", "mean", "std"):
            record[key] = list(record[key])
        return record


@dataclass(frozen=True)
class FolderSplits(SplitsSurface):
    """search-train / search-val / test of a folder data set; the same surface as `DataSplits`."""

    train: Dataset
    val: Dataset
    test: Dataset
    record: FolderSplitRecord
    num_workers: int = 0

    def loader(self, split: str, batch_size: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0,
               world_size: int = 1, drop_last: bool = False) -> DataLoader:
        """A loader over one split with `num_workers` workers; order and augmentation seeded
        (every pass over it is the next epoch), sharded by rank when `world_size` > 1."""
        return seeded_loader(self.split(split), batch_size, seed=seed, shuffle=shuffle, rank=rank, world_size=world_size,
                             drop_last=drop_last, num_workers=self.num_workers)


def default_workers() -> int:
    """DataLoader worker processes: one per CPU core this process may use, at most 8."""
    return min(8, usable_cores())


def _digest(indices: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for split in ("train", "val"):
        digest.update(split.encode())
        digest.update(indices[split].astype(np.int64).tobytes())
    return digest.hexdigest()


def _split_training_set(labels: np.ndarray, seed: int, val_fraction: float, limit: int | None) -> dict[str, np.ndarray]:
    """Seeded, stratified halves of the training set (optionally of a seeded subset of `limit` images)."""
    pool = np.arange(len(labels))
    if limit is not None and limit < len(labels):
        pool = np.sort(np.random.default_rng(seed).permutation(len(labels))[:limit])
    parts = stratified_split(labels[pool], val_fraction, 0.0, seed)
    return {split: pool[parts[split]] for split in ("train", "val")}


def load_folder(
    root: str | Path,
    *,
    seed: int = 0,
    val_fraction: float = 0.5,
    image_size: int | None = None,
    cutout: int = 0,
    color_jitter: float = 0.0,
    limit: int | None = None,
    num_workers: int | None = None,
) -> FolderSplits:
    """Read a CIFAR-10 or ImageFolder folder and split its training set for search.

    `image_size` is the training/eval crop (ImageNet default 224; CIFAR stays
    32); `cutout` is the cutout side in px (CIFAR; 0 = off); `color_jitter`
    the ImageNet jitter strength (0 = off); `limit` keeps a seeded subset of
    the training set for quick runs.
    """
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UsageError(f"data folder {path} does not exist")
    workers = default_workers() if num_workers is None else num_workers
    if cifar.cifar_folder(path) is not None:
        arrays = cifar.read_cifar10(path)
        size = 32
        train_set: Dataset = cifar.CifarDataset(arrays.train_images, arrays.train_labels, transforms.cifar_train(cutout, size))
        test_set: Dataset = cifar.CifarDataset(arrays.test_images, arrays.test_labels, transforms.cifar_eval())
        labels, classes = arrays.train_labels, tuple(str(c) for c in range(cifar.NUM_CLASSES))
        name, source = "cifar10", str(arrays.folder)
        mean, std = transforms.CIFAR_MEAN, transforms.CIFAR_STD
        augmentation: dict[str, object] = {"train": "RandomCrop(32, padding=4), HorizontalFlip", "cutout": cutout}
    elif imagefolder.is_image_folder(path):
        size = image_size or 224
        train_folder, test_set = imagefolder.read_image_folders(
            path, transforms.imagenet_train(size, color_jitter), transforms.imagenet_eval(size))
        train_set, labels, classes = train_folder, np.asarray(train_folder.targets), tuple(train_folder.classes)
        name, source = "imagefolder", str(path)
        mean, std = transforms.IMAGENET_MEAN, transforms.IMAGENET_STD
        augmentation = {"train": f"RandomResizedCrop({size}), HorizontalFlip", "color_jitter": color_jitter,
                        "eval": f"Resize({round(size * 256 / 224)}), CenterCrop({size})"}
    else:
        raise UsageError(f"{path} is neither a CIFAR-10 folder ({cifar.EXPECTED}) nor an image folder ({imagefolder.EXPECTED})")
    indices = _split_training_set(labels, seed, val_fraction, limit)
    record = FolderSplitRecord(
        dataset=name, root=str(path), seed=seed, val_fraction=val_fraction,
        sizes={"train": len(indices["train"]), "val": len(indices["val"]), "test": len(test_set)},  # type: ignore[arg-type]
        indices_sha256=_digest(indices), image_shape=(3, size, size), num_classes=len(classes), classes=classes,
        mean=mean, std=std, augmentation=augmentation, source=source,
    )
    return FolderSplits(Subset(train_set, indices["train"].tolist()), Subset(train_set, indices["val"].tolist()),
                        test_set, record, workers)


def data_kind(name_or_dir: str) -> str:
    """"bundled", "cifar10" or "imagefolder", from the name or the folder's layout, before reading anything."""
    if name_or_dir in list_datasets():
        return "bundled"
    path = Path(name_or_dir).expanduser()
    if path.is_dir() and cifar.cifar_folder(path) is not None:
        return "cifar10"
    return "imagefolder"


def load_data(
    name_or_dir: str,
    *,
    seed: int = 0,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    image_size: int | None = None,
    limit: int | None = None,
    test_renders: int = 1,
    **folder_options: object,
) -> DataSplits | FolderSplits:
    """A bundled data set by name (`hwnas.datasets.bundled.load_dataset`), or a CIFAR-10 / ImageFolder folder.

    `val_fraction` defaults to each loader's own (bundled 0.25; folders 0.5,
    DARTS); `test_fraction` applies to bundled data only (folders have their
    test set); `test_renders` draws the test split several times (generated bundled data
    only, `load_dataset`); `folder_options` (cutout, color_jitter, num_workers) go to `load_folder`.
    """
    if name_or_dir in list_datasets():
        given = {"val_fraction": val_fraction, "test_fraction": test_fraction, "image_size": image_size, "limit": limit,
                 "test_renders": test_renders}
        return load_dataset(name_or_dir, seed=seed, **{k: v for k, v in given.items() if v is not None})  # type: ignore[arg-type]
    if test_renders != 1:
        raise UsageError(f"--test-renders {test_renders}: a data folder has its own test set; use --test-renders 1")
    if not Path(name_or_dir).expanduser().is_dir():
        raise UsageError(f"--data {name_or_dir!r} is neither a bundled data set ({', '.join(list_datasets())}) nor a folder")
    split = {} if val_fraction is None else {"val_fraction": val_fraction}
    return load_folder(name_or_dir, seed=seed, image_size=image_size, limit=limit, **split, **folder_options)  # type: ignore[arg-type]


__all__ = ["SPLITS", "DataSplits", "FolderSplitRecord", "FolderSplits", "SeededDataset", "SeededSampler", "SplitsSurface",
           "data_kind", "default_workers", "endless_from", "list_datasets", "load_data", "load_dataset", "load_folder",
           "sample_seed", "seeded_loader", "stratified_split"]
