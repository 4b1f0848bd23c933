"""CIFAR-10 batch files and ImageFolder trees: reading, seeded search split, augmentation, layout errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from folder_fixtures import write_cifar10, write_image_folder

from hwnas.datasets import DataSplits, FolderSplits, endless_from, load_data, load_folder
from hwnas.errors import UsageError


def test_cifar_folder_reads_the_python_batches_and_halves_the_training_set(tmp_path: Path) -> None:
    data = load_folder(write_cifar10(tmp_path, per_batch=20), seed=3, num_workers=0)
    assert data.record.dataset == "cifar10"
    assert data.record.sizes == {"train": 50, "val": 50, "test": 20}
    assert data.num_classes == 10 and data.image_shape == (3, 32, 32)
    images, labels = next(iter(data.loader("train", 8, seed=0)))
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32 and labels.dtype == torch.int64
    # stratified: every class appears in both halves
    halves = [sorted(int(data.train.dataset.labels[i]) for i in split.indices) for split in (data.train, data.val)]  # type: ignore[attr-defined]
    assert set(halves[0]) == set(halves[1]) == set(range(10))


def test_the_search_split_is_seeded_and_recorded(tmp_path: Path) -> None:
    root = write_cifar10(tmp_path, per_batch=10)
    a, b, c = (load_folder(root, seed=s, num_workers=0) for s in (0, 0, 1))
    assert a.record.indices_sha256 == b.record.indices_sha256 != c.record.indices_sha256
    assert set(a.record.to_dict()) >= {"seed", "val_fraction", "sizes", "indices_sha256", "mean", "std"}


def test_the_cifar_subfolder_is_accepted(tmp_path: Path) -> None:
    data = load_folder(write_cifar10(tmp_path, per_batch=10, subfolder=True), num_workers=0)
    assert data.record.source.endswith("cifar-10-batches-py")


def test_loader_order_and_augmentation_repeat_and_every_pass_is_a_new_epoch(tmp_path: Path) -> None:
    data = load_folder(write_cifar10(tmp_path, per_batch=10), cutout=8, num_workers=0)
    first = data.loader("train", 25, seed=5)
    epoch0, epoch1 = next(iter(first))[0], next(iter(first))[0]
    again = next(iter(data.loader("train", 25, seed=5)))[0]
    assert torch.equal(epoch0, again)
    assert not torch.equal(epoch0, epoch1)


def test_resuming_mid_epoch_gives_the_same_batches(tmp_path: Path) -> None:
    data = load_folder(write_cifar10(tmp_path, per_batch=10), cutout=8, num_workers=0)
    whole = [batch[0] for batch in data.loader("train", 5, seed=1)]
    resumed = data.loader("train", 5, seed=1)
    resumed.sampler.set_position(0, skip=10)  # type: ignore[attr-defined]
    assert all(torch.equal(x, y) for x, y in zip(whole[2:], [b[0] for b in resumed], strict=True))


def test_workers_do_not_change_the_augmentation(tmp_path: Path) -> None:
    root = write_cifar10(tmp_path, per_batch=10)
    serial = next(iter(load_folder(root, cutout=8, num_workers=0).loader("train", 25, seed=2)))[0]
    parallel = next(iter(load_folder(root, cutout=8, num_workers=2).loader("train", 25, seed=2)))[0]
    assert torch.equal(serial, parallel)


def test_image_folder_reads_jpeg_and_png_with_train_and_eval_transforms(tmp_path: Path) -> None:
    data = load_folder(write_image_folder(tmp_path), image_size=32, color_jitter=0.4, num_workers=0)
    assert data.record.dataset == "imagefolder" and data.num_classes == 3
    assert data.record.sizes == {"train": 9, "val": 9, "test": 6}
    assert data.record.classes == ("n00000000", "n00000001", "n00000002")
    images, labels = next(iter(data.loader("train", 4)))
    assert images.shape == (4, 3, 32, 32)
    test_images, _ = next(iter(data.loader("test", 6, shuffle=False)))
    assert test_images.shape == (6, 3, 32, 32)


def test_ddp_shards_are_disjoint_and_cover_the_split(tmp_path: Path) -> None:
    data = load_folder(write_cifar10(tmp_path, per_batch=8), num_workers=0)
    seen = [[i for i, _ in data.loader("train", 4, seed=0, rank=r, world_size=2).sampler] for r in (0, 1)]
    assert not set(seen[0]) & set(seen[1]) and len(seen[0]) + len(seen[1]) == len(data.train)  # type: ignore[arg-type]


def test_load_data_takes_a_bundled_name_or_a_folder(tmp_path: Path) -> None:
    assert isinstance(load_data("digits", limit=200), DataSplits)
    assert isinstance(load_data(str(write_cifar10(tmp_path)), num_workers=0), FolderSplits)


def _one_line(error: pytest.ExceptionInfo[UsageError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("empty", "neither a CIFAR-10 folder"),
        ("missing_batch", "lacks data_batch_3, test_batch"),
        ("corrupt_batch", "is not a CIFAR-10 python batch"),
        ("code_in_batch", "is not a CIFAR-10 python batch"),
        ("no_val", "has no val/ folder"),
        ("no_classes", "has no class folders"),
        ("class_mismatch", "must hold the same class folders"),
        ("not_a_folder", "neither a bundled data set"),
    ],
)
def test_wrong_layouts_give_one_line_errors_naming_what_was_expected(tmp_path: Path, layout: str, expected: str) -> None:
    root = tmp_path / "data"
    root.mkdir()
    if layout in ("missing_batch", "corrupt_batch", "code_in_batch"):
        write_cifar10(root)
        if layout == "missing_batch":
            for name in ("data_batch_3", "test_batch"):
                (root / name).unlink()
        elif layout == "corrupt_batch":
            (root / "data_batch_2").write_bytes(pickle.dumps({b"data": [1, 2, 3]}))
        else:
            (root / "data_batch_2").write_bytes(pickle.dumps({b"data": Path("x")}))
    elif layout in ("no_val", "no_classes", "class_mismatch"):
        write_image_folder(root)
        if layout == "no_val":
            for f in (root / "val").rglob("*.*"):
                f.unlink()
            for d in sorted((root / "val").iterdir()):
                d.rmdir()
            (root / "val").rmdir()
        elif layout == "no_classes":
            (root / "train2").mkdir()
            (root / "val").rename(root / "val_old")
            (root / "val").mkdir()
        else:
            (root / "val" / "n00000002").rename(root / "val" / "extra")
    with pytest.raises(UsageError) as error:
        load_data(str(root / "missing") if layout == "not_a_folder" else str(root), num_workers=0)
    assert expected in _one_line(error)


def test_endless_from_continues_a_step_counted_stream(tmp_path: Path) -> None:
    data = load_folder(write_cifar10(tmp_path, per_batch=10), cutout=8, num_workers=0)
    stream = endless_from(data.loader("train", 7, seed=3))
    whole = [next(stream)[0] for _ in range(12)]  # 30 images: 5 batches per epoch, the last one of 2
    resumed = endless_from(data.loader("train", 7, seed=3), consumed=6)
    assert all(torch.equal(next(resumed)[0], expected) for expected in whole[6:])
