"""The network `hwnas train` optimises, and the part of it that is exported.

An architecture is fitted to the data first (`fit_to_data`): the classifier
gets the data's number of classes, user overrides of the space
configuration apply, and the network's input must be the data's image shape
(one-line error otherwise, naming the keys to change). DARTS networks train
with the auxiliary head (2/3 depth) and drop-path when the recipe asks; the
head is training-only, so the exported state_dict (`exportable_state`) is
exactly that of `space_for(arch).build(arch)` — what `hwnas export --weights`
loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from hwnas.datasets import check_network_input
from search_spaces import Architecture, SearchSpace, get_space

AUXILIARY_PREFIX = "auxiliary_head."


def fit_to_data(arch: Architecture, image_shape: tuple[int, int, int], num_classes: int,
                overrides: Mapping[str, Any] | None = None) -> tuple[Architecture, SearchSpace]:
    """`arch` with the data's classes and `overrides` in its config; its space. Refuses another input shape."""
    config = {**arch.config, **(overrides or {})}
    space = get_space(arch.space, **config)
    if "num_classes" in space.config:
        space = get_space(arch.space, **{**config, "num_classes": num_classes})
    check_network_input(space, image_shape)
    fitted = Architecture(arch.space, arch.space_version, dict(space.config), dict(arch.choices), dict(arch.extra))
    space.validate(fitted)
    return fitted, space


def training_network(arch: Architecture, *, auxiliary: bool) -> nn.Module:
    """The standalone network, with the DARTS auxiliary head if asked (drop-path is set per epoch)."""
    if arch.space == "darts" and auxiliary:
        return get_space(arch.space, **{**arch.config, "auxiliary": True}).build(arch)
    return get_space(arch.space, **arch.config).build(arch)


def set_drop_path(model: nn.Module, probability: float) -> None:
    """DARTS: the drop-path probability of this epoch (no-op for networks without drop-path)."""
    if hasattr(model, "drop_path_prob"):
        model.drop_path_prob = probability  # type: ignore[assignment]


def exportable_state(model: nn.Module) -> dict[str, Tensor]:
    """The state_dict without the training-only auxiliary head."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(AUXILIARY_PREFIX)}


def auxiliary_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v for k, v in model.state_dict().items() if k.startswith(AUXILIARY_PREFIX)}
