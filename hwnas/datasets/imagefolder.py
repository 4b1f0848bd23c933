"""ImageNet (or any classification set) as an ImageFolder tree.

Layout: ``ROOT/train/<class>/<image>`` and ``ROOT/val/<class>/<image>`` with
the same class folders in both (the usual ILSVRC-2012 preparation, where
the validation images were moved into class folders). Any image file
`torchvision.datasets.ImageFolder` accepts (JPEG, PNG, ...).
"""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets import ImageFolder

from hwnas.errors import UsageError

EXPECTED = "train/ and val/ folders with one subfolder of images per class (ImageFolder layout)"


def is_image_folder(root: Path) -> bool:
    return (root / "train").is_dir() or (root / "val").is_dir()


def _classes(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def read_image_folders(root: Path, train_transform: object, eval_transform: object) -> tuple[ImageFolder, ImageFolder]:
    """(train set with `train_transform`, val set with `eval_transform`), same class indices.

    Wrong layouts become one-line `UsageError`s naming what was expected.
    """
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise UsageError(f"image folder {root} has no {split}/ folder; expected {EXPECTED}")
        if not _classes(root / split):
            raise UsageError(f"{root / split} has no class folders; expected {EXPECTED}")
    train_classes, val_classes = _classes(root / "train"), _classes(root / "val")
    if train_classes != val_classes:
        only = sorted(set(train_classes) ^ set(val_classes))
        raise UsageError(f"{root}: train/ and val/ must hold the same class folders; they differ in {', '.join(only[:3])}"
                         f"{' ...' if len(only) > 3 else ''}")
    try:
        train = ImageFolder(str(root / "train"), transform=train_transform)
        val = ImageFolder(str(root / "val"), transform=eval_transform)
    except FileNotFoundError as error:
        raise UsageError(f"{root}: {str(error).splitlines()[0]}; expected {EXPECTED}") from None
    return train, val
