"""The bundled data sets load, split disjointly and reproducibly, and standardise on train only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.datasets import stratified_split
from hwnas.datasets.bundled import endless, list_datasets, load_dataset
from hwnas.errors import UsageError


def test_registry_lists_bundled_sets() -> None:
    assert {"mnist", "digits"} <= set(list_datasets())


def test_mnist_splits_are_disjoint_stratified_and_recorded() -> None:
    splits = load_dataset("mnist", seed=3, val_fraction=0.25, test_fraction=0.2)
    sizes = splits.record.sizes
    assert sum(sizes.values()) == 5000
    assert sizes == {"train": 2750, "val": 1250, "test": 1000}
    assert splits.image_shape == (1, 28, 28)
    for dataset in (splits.train, splits.val, splits.test):
        counts = torch.bincount(dataset.tensors[1], minlength=10)
        assert counts.min() == counts.max()  # 500 per class split in equal shares
    train_images = splits.train.tensors[0]
    assert abs(float(train_images.mean())) < 1e-4
    assert abs(float(train_images.std()) - 1.0) < 1e-3


def test_split_is_seeded() -> None:
    first = load_dataset("digits", seed=1)
    again = load_dataset("digits", seed=1)
    other = load_dataset("digits", seed=2)
    assert first.record.indices_sha256 == again.record.indices_sha256
    assert first.record.indices_sha256 != other.record.indices_sha256
    assert torch.equal(first.val.tensors[0], again.val.tensors[0])


def test_stratified_split_partitions_every_index() -> None:
    labels = np.repeat(np.arange(4), 25)
    parts = stratified_split(labels, 0.2, 0.2, seed=0)
    joined = np.concatenate(list(parts.values()))
    assert sorted(joined.tolist()) == list(range(100))


def test_digits_upsampled_and_limited() -> None:
    splits = load_dataset("digits", image_size=16, limit=400, seed=0)
    assert splits.image_shape == (1, 16, 16)
    assert sum(splits.record.sizes.values()) == 400
    images, labels = next(endless(splits.loader("train", 32, seed=0)))
    assert images.shape == (32, 1, 16, 16) and labels.dtype == torch.int64


def test_mistakes_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown data set"):
        load_dataset("imagenet-typo")
    with pytest.raises(UsageError, match="sum to less than 1"):
        load_dataset("digits", val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(UsageError, match="unknown split"):
        load_dataset("digits").loader("holdout", 8)


@pytest.fixture(scope="module")
def cluttered() -> object:
    from hwnas.datasets.bundled import _cluttered_mnist_pool  # noqa: PLC0415

    return _cluttered_mnist_pool(36)


def test_cluttered_mnist_places_each_whole_digit_on_the_canvas_among_clutter(cluttered) -> None:  # noqa: ANN001
    from hwnas.datasets.bundled import _mnist_pool  # noqa: PLC0415

    digits = _mnist_pool()
    assert cluttered.images.shape == (5000, 1, 36, 36) and torch.equal(cluttered.labels, digits.labels)
    for index in (0, 1234, 4999):  # the whole digit lies under the canvas at some offset (max-compositing)
        canvas, digit = cluttered.images[index, 0], digits.images[index, 0]
        windows = canvas.unfold(0, 28, 1).unfold(1, 28, 1)  # (9, 9, 28, 28)
        covers = (windows >= digit).flatten(2).all(-1)
        assert covers.any(), f"digit {index} is not on its canvas"
        assert float(canvas.sum()) > float(digit.sum())  # clutter adds ink
    placed = [tuple(torch.nonzero(cluttered.images[i, 0] > 0).float().mean(0).round().tolist()) for i in range(50)]
    assert len(set(placed)) > 25  # positions vary from image to image


def test_cluttered_mnist_is_one_fixed_data_set(cluttered) -> None:  # noqa: ANN001
    from hwnas.datasets.bundled import _cluttered_mnist_pool  # noqa: PLC0415

    assert torch.equal(_cluttered_mnist_pool(36).images, cluttered.images)  # rebuilt: the same pixels
    splits = load_dataset("cluttered_mnist", image_size=36, seed=0)
    assert splits.image_shape == (1, 36, 36) and splits.num_classes == 10
    assert "36x36" in splits.record.source and "seed" in splits.record.source
    images = torch.cat([s.tensors[0] for s in (splits.train, splits.val, splits.test)])
    ink = sorted((images * splits.record.std + splits.record.mean).flatten(1).sum(1).tolist())
    assert np.allclose(ink, sorted(cluttered.images.flatten(1).sum(1).tolist()), atol=1e-2)  # split, not altered


def test_cluttered_mnist_refuses_a_canvas_smaller_than_a_digit() -> None:
    with pytest.raises(UsageError, match="use 28 to 96"):
        load_dataset("cluttered_mnist", image_size=20)


CLUTTERED_36_SHA256 = "4607a6e7f9ba2c515cd16d22d8504e491e0fe73fa66aebb21c0a1548e92e6550"
"""The 36x36 canvases every #12 benchmark in BENCHMARKS.md trained and tested on (2026-11-27)."""


def test_cluttered_mnist_pixels_are_those_the_benchmarks_used(cluttered) -> None:  # noqa: ANN001
    import hashlib  # noqa: PLC0415

    assert hashlib.sha256(cluttered.images.numpy().tobytes()).hexdigest() == CLUTTERED_36_SHA256


def test_test_renders_draw_the_same_test_digits_again() -> None:
    once = load_dataset("cluttered_mnist", image_size=36, seed=0, limit=400)
    thrice = load_dataset("cluttered_mnist", image_size=36, seed=0, limit=400, test_renders=3)
    n = len(once.test)
    assert len(thrice.test) == 3 * n and thrice.record.sizes["test"] == 3 * n and thrice.record.test_renders == 3
    for split in ("train", "val"):  # only the test split changes
        assert torch.equal(once.split(split).tensors[0], thrice.split(split).tensors[0])
    images, labels = thrice.test.tensors
    assert torch.equal(images[:n], once.test.tensors[0])  # the first draw is the data set's own test images
    assert torch.equal(labels, once.test.tensors[1].repeat(3))
    pixels = images * thrice.record.std + thrice.record.mean
    second, third = pixels[n:2 * n], pixels[2 * n:]
    assert not torch.allclose(second, pixels[:n]) and not torch.allclose(second, third)  # new positions and clutter
    # each new canvas holds its whole digit (all of the digit's ink) somewhere: the 28x28 window with the most ink
    # holds at least the digit's own ink
    from hwnas.datasets.bundled import _mnist_pool  # noqa: PLC0415

    pool_ids = np.sort(np.random.default_rng(0).permutation(5000)[:400])
    from hwnas.datasets.splits import stratified_split  # noqa: PLC0415

    test_ids = pool_ids[stratified_split(np.asarray(_mnist_pool().labels)[pool_ids], 0.25, 0.2, 0)["test"]]
    digit_ink = _mnist_pool().images[test_ids, 0].flatten(1).sum(1)
    windows = torch.nn.functional.avg_pool2d(second, 28, stride=1).flatten(1).amax(1) * 28 * 28
    assert bool((windows >= digit_ink - 1e-2).all())
    assert load_dataset("cluttered_mnist", image_size=36, seed=0, limit=400, test_renders=3).record == thrice.record


def test_test_renders_need_a_generated_data_set() -> None:
    with pytest.raises(UsageError, match="cannot draw more"):
        load_dataset("digits", test_renders=2)
    with pytest.raises(UsageError, match="at least 1"):
        load_dataset("cluttered_mnist", image_size=36, test_renders=0)
