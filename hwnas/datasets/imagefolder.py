"""ImageNet (or any classification set) as an ImageFolder tree.

Layout: ``ROOT/train/<class>/<image>`` and ``ROOT/val/<class>/<image>`` with
the same class folders in both (the usual ILSVRC-2012 preparation, where
the validation images were moved into class folders). Any image file
`torchvision.datasets.ImageFolder` accepts (JPEG, PNG, ...).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from hwnas.errors import UsageError
from search_spaces.files import open_regular

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
    skipped: list[str] = []
    check = functools.partial(_is_image, skipped=skipped)
    try:
        train = ImageFolder(str(root / "train"), transform=train_transform, is_valid_file=check)
        val = ImageFolder(str(root / "val"), transform=eval_transform, is_valid_file=check)
    except FileNotFoundError as error:
        raise UsageError(f"{root}: {str(error).splitlines()[0]}; expected {EXPECTED}") from None
    if skipped:
        print(f"note: skipped {len(skipped)} file(s) under {root} that are not images despite their names "
              f"(e.g. {skipped[0]})", file=sys.stderr)
    return train, val


_MAGIC: tuple[bytes, ...] = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*",
                             b"P1", b"P2", b"P3", b"P4", b"P5", b"P6")


def _is_image(path: str, skipped: list[str]) -> bool:
    """An image ImageFolder can load, told by its name and its first bytes (one 12-byte read per
    file when the folder is opened): a text file named .jpg used to crash the evaluation after the
    whole training. A file that is not one is skipped and counted."""
    if not path.lower().endswith(IMG_EXTENSIONS):
        return False
    try:
        with open_regular(path, OSError) as handle:  # a FIFO named .jpg must not block the scan
            head = handle.read(12)
    except OSError:
        head = b""
    if head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return True
    skipped.append(path)
    return False
