"""Tiny data folders in exactly the real formats, for the folder-data, train and search tests.

CIFAR-10: pickled dicts {b"batch_label", b"data": uint8 (N, 3072), b"labels",
b"filenames"} written with pickle protocol 2, as in the official archive.
ImageFolder: real JPEG and PNG files written by PIL in class folders.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def write_cifar10(root: Path, per_batch: int = 10, *, subfolder: bool = False, seed: int = 0) -> Path:
    """Five training batches and a test batch of `per_batch` images each; class = i % 10.

    Each image is a flat colour plus noise whose red level encodes its class,
    so a network can learn it in a few steps.
    """
    folder = root / "cifar-10-batches-py" if subfolder else root
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [i % 10 for i in range(per_batch)]
        images = rng.integers(0, 40, size=(per_batch, 3, 32, 32)).astype(np.int64)
        images[:, 0] += np.asarray(labels)[:, None, None] * 20
        data = images.clip(0, 255).astype(np.uint8).reshape(per_batch, 3072)
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)]}
        with (folder / name).open("wb") as stream:
            pickle.dump(batch, stream, protocol=2)
    return root


def write_image_folder(root: Path, classes: int = 3, per_class: int = 6, val_per_class: int = 2,
                       side: int = 40, seed: int = 0) -> Path:
    """train/ and val/ with `classes` class folders of JPEG (even) and PNG (odd) files."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("val", val_per_class)):
        for label in range(classes):
            folder = root / split / f"n{label:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 60, size=(side, side + 8, 3))
                pixels[..., label % 3] += 150
                image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
                suffix = "JPEG" if index % 2 == 0 else "png"
                image.save(folder / f"{split}_{label}_{index}.{suffix}")
    return root
