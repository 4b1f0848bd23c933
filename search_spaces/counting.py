"""Parameters and multiply-accumulates, counted the way the NAS papers count.

MACs are those of convolutions and fully connected layers only (BN, ReLU,
pooling and additions are free), for one image; auxiliary heads are left out
of both counts, as DARTS and GDAS report their networks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

AUXILIARY = "auxiliary_head"


def _excluded(name: str, exclude: Iterable[str]) -> bool:
    return any(part in exclude for part in name.split("."))


def count_params(module: nn.Module, exclude: Iterable[str] = (AUXILIARY,)) -> int:
    """Trainable-or-not parameter count, modules named in `exclude` left out."""
    exclude = tuple(exclude)
    return sum(p.numel() for name, p in module.named_parameters() if not _excluded(name, exclude))


def _layer_macs(layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> int:
    per_image = output.numel() // output.shape[0]
    if isinstance(layer, nn.Conv2d):
        kh, kw = layer.kernel_size
        return per_image * (layer.in_channels // layer.groups) * kh * kw
    if isinstance(layer, nn.Linear):
        return per_image * layer.in_features
    return 0


def macs_by_module(
    module: nn.Module,
    input_shape: tuple[int, ...],
    forward: Callable[[nn.Module, Tensor], Any] | None = None,
    exclude: Iterable[str] = (AUXILIARY,),
) -> dict[str, int]:
    """MACs per image of every conv/linear layer, keyed by its module path."""
    exclude = tuple(exclude)
    counts: dict[str, int] = {}
    handles = []
    for name, layer in module.named_modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and not _excluded(name, exclude):

            def hook(layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor, name: str = name) -> None:
                counts[name] = counts.get(name, 0) + _layer_macs(layer, inputs, output)

            handles.append(layer.register_forward_hook(hook))
    was_training = module.training
    module.eval()
    try:
        parameter = next(module.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        x = torch.randn(*input_shape, device=device)
        with torch.no_grad():
            (forward or (lambda m, t: m(t)))(module, x)
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return counts


def count_macs(
    module: nn.Module,
    input_shape: tuple[int, ...],
    forward: Callable[[nn.Module, Tensor], Any] | None = None,
    exclude: Iterable[str] = (AUXILIARY,),
) -> int:
    """MACs per image of one forward pass at `input_shape` (eval mode)."""
    return sum(macs_by_module(module, input_shape, forward, exclude).values())
