"""The standard augmentations of the CIFAR-10 and ImageNet recipes (torchvision v2).

CIFAR-10 (DARTS / GDAS / UNAS training code): random crop 32 with 4 pixels of
zero padding, horizontal flip, per-channel normalisation, optional cutout
(DeVries & Taylor 2017, 16 px in DARTS). ImageNet: RandomResizedCrop 224,
horizontal flip, optional colour jitter (ProxylessNAS / DARTS-ImageNet use
0.4 / 0.4 / 0.4 / 0.1 in some recipes); evaluation resizes the short side to
256 and centre-crops 224 (scaled alike for other sizes).

Every transform takes a uint8 image (a CHW tensor or a PIL image) and
returns float32 CHW, normalised. Randomness comes from torch's global
generator, which `hwnas.datasets.sampling` seeds per sample.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.transforms import v2

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Cutout(nn.Module):
    """Zero one `length` x `length` square whose centre is uniform over the image.

    Why not `v2.RandomErasing`: it keeps the box inside the image, while
    cutout as published (and as DARTS / GDAS train with it) clips the box at
    the border, so corners are erased less often; we keep the published form.
    """

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = int(length)

    def forward(self, image: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        cy = int(torch.randint(height, ()))
        cx = int(torch.randint(width, ()))
        half = self.length // 2
        y0, y1 = max(cy - half, 0), min(cy + half, height)
        x0, x1 = max(cx - half, 0), min(cx + half, width)
        out = image.clone()
        out[..., y0:y1, x0:x1] = 0
        return out


def _to_float(mean: tuple[float, ...], std: tuple[float, ...]) -> list[nn.Module]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]


def cifar_train(cutout: int = 0, size: int = 32) -> v2.Compose:
    """Crop with padding 4, flip, normalise, then cutout of `cutout` px (0 = off)."""
    steps: list[nn.Module] = [v2.ToImage(), v2.RandomCrop(size, padding=4), v2.RandomHorizontalFlip()]
    steps += _to_float(CIFAR_MEAN, CIFAR_STD)
    if cutout > 0:
        steps.append(Cutout(cutout))
    return v2.Compose(steps)


def cifar_eval() -> v2.Compose:
    return v2.Compose([v2.ToImage(), *_to_float(CIFAR_MEAN, CIFAR_STD)])


def imagenet_train(size: int = 224, color_jitter: float = 0.0) -> v2.Compose:
    """RandomResizedCrop to `size` px, flip, optional ColorJitter(j, j, j, j/4), normalise."""
    steps: list[nn.Module] = [v2.ToImage(), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]
    if color_jitter > 0:
        steps.append(v2.ColorJitter(color_jitter, color_jitter, color_jitter, color_jitter / 4))
    steps += _to_float(IMAGENET_MEAN, IMAGENET_STD)
    return v2.Compose(steps)


def imagenet_eval(size: int = 224) -> v2.Compose:
    """Resize the short side to 256/224 x `size`, centre-crop `size` (256 -> 224 at the default)."""
    steps: list[nn.Module] = [v2.ToImage(), v2.Resize(round(size * 256 / 224), antialias=True), v2.CenterCrop(size)]
    return v2.Compose(steps + _to_float(IMAGENET_MEAN, IMAGENET_STD))
