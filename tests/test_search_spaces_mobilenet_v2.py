"""`mobilenet_v2` is torchvision's MobileNetV2, not a look-alike (issue #13).

torchvision.models.mobilenet_v2() is the independent reference: its t,c,n,s
table (1,16,1,1 / 6,24,2,2 / 6,32,3,2 / 6,64,4,2 / 6,96,3,1 / 6,160,3,2 /
6,320,1,1) fixes widths, depths and strides. The named architecture must have
its parameter count, its MACs, its per-block output shapes, and, given the
same weights, its outputs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from search_spaces import count_macs, count_params, get_space, named_architecture, space_for

torchvision = pytest.importorskip("torchvision")

TORCHVISION_PARAMS = 3_504_872  # torchvision's documented count for mobilenet_v2 (IMAGENET1K weights meta)


@pytest.fixture(scope="module")
def pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    arch = named_architecture("mobilenet_v2")
    return space_for(arch).build(arch).eval(), torchvision.models.mobilenet_v2().eval()


def test_parameter_and_mac_counts_equal_torchvision(pair: tuple[nn.Module, nn.Module]) -> None:
    ours, reference = pair
    assert count_params(reference) == TORCHVISION_PARAMS
    assert count_params(ours) == TORCHVISION_PARAMS
    macs = count_macs(ours, (1, 3, 224, 224))
    assert macs == count_macs(reference, (1, 3, 224, 224))
    assert round(macs / 1e6, 1) == 300.8


def test_per_block_output_shapes_and_strides_equal_torchvision(pair: tuple[nn.Module, nn.Module]) -> None:
    ours, reference = pair
    # ours: stem = (conv, first t=1 block), 17 searchable layers, head; torchvision: features[0..18], classifier
    our_blocks = [ours.stem[0], ours.stem[1], *ours.layers, ours.head.feature_mix]
    reference_blocks = list(reference.features)
    assert len(our_blocks) == len(reference_blocks) == 19
    shapes: dict[str, list[tuple[int, ...]]] = {"ours": [], "reference": []}
    handles = [block.register_forward_hook(lambda _m, _i, out, key=key: shapes[key].append(tuple(out.shape)))
               for key, blocks in (("ours", our_blocks), ("reference", reference_blocks)) for block in blocks]
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ours(x), reference(x)
    for handle in handles:
        handle.remove()
    assert shapes["ours"] == shapes["reference"]
    assert [s[1] for s in shapes["ours"]] == [32, 16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96,
                                                160, 160, 160, 320, 1280]
    assert [s[2] for s in shapes["ours"]][::3] == [112, 56, 28, 14, 14, 7, 7]


def test_same_weights_give_the_same_outputs(pair: tuple[nn.Module, nn.Module]) -> None:
    """Parameters and BN buffers line up one to one, in order; with torchvision's
    BN eps set to the space's 1e-3 the two networks compute the same function."""
    ours, reference = pair
    reference = torchvision.models.mobilenet_v2().eval()
    for module in reference.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = 1e-3
    ours_state, reference_state = ours.state_dict(), reference.state_dict()
    assert [tuple(t.shape) for t in ours_state.values()] == [tuple(t.shape) for t in reference_state.values()]
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for (_, a), (_, b) in zip(ours_state.items(), reference_state.items()):
            if a.is_floating_point():
                value = torch.rand(a.shape, generator=generator) * 0.2 + (0.9 if a.dim() == 1 else -0.1)
                a.copy_(value), b.copy_(value)
            else:
                b.copy_(a)
        x = torch.randn(2, 3, 224, 224, generator=generator)
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)


def test_it_is_the_space_at_mobilenet_widths_not_a_preset() -> None:
    arch = named_architecture("mobilenet_v2")
    assert arch.config["widths"] == [32, 16, 24, 32, 64, 96, 160, 320, 1280]
    assert arch.config["depths"] == [2, 3, 4, 3, 3, 1]
    space = get_space("proxyless", **arch.config)
    assert list(space.strides) == [2, 2, 2, 1, 2, 1]
    assert set(arch.choices.values()) == {"k3_e6"}
