"""Properties of the weight-sharing supernet that the bit-exact equivalence tests do not reach (issue #31).

- A BatchNorm sliced to the channels in use (`bn="shared"`, OFA) behaves as torch's own BatchNorm2d of that
  width would: in eval mode it changes nothing, and with `momentum=None` it keeps a cumulative average, also
  when it tracks no statistics or has no affine parameters.
- A candidate's view (`Choice.candidate`) computes what the supernet computes under that one-hot weight.
- A relaxed MBConv evaluation reads its input with the expand conv once, however many choices are active.
- A shared DARTS block holds exactly the parameters of its largest candidate, as the MBConv block does.
- A supernet called without weights and an elastic MBConv with expansion 1 are refused.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from search_spaces import get_space
from search_spaces.choice import Choice
from search_spaces.darts.ops import make_op
from search_spaces.elastic import ElasticMBConv, ElasticSepConv, _batch_norm
from search_spaces.errors import ArchitectureError

PROXYLESS = {"widths": [8, 8, 8, 16, 16, 16, 16, 16, 32], "depths": [2, 1, 1, 2, 1, 1], "resolution": 12,
             "small_input": True, "num_classes": 10, "in_channels": 1}


def _narrow_reference(wide: nn.BatchNorm2d, channels: int) -> nn.BatchNorm2d:
    """torch's BatchNorm2d of `channels` features holding the first `channels` of `wide`'s state."""
    narrow = nn.BatchNorm2d(channels, eps=wide.eps, momentum=wide.momentum, affine=wide.affine,
                            track_running_stats=wide.track_running_stats)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(wide, name) is not None:
                getattr(narrow, name).copy_(getattr(wide, name)[:channels])
        if wide.num_batches_tracked is not None:
            narrow.num_batches_tracked.copy_(wide.num_batches_tracked)
    return narrow


def _state(norm: nn.BatchNorm2d) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in norm.state_dict().items()}


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("track", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_sliced_batch_norm_is_torchs_batch_norm_of_the_channels_in_use(momentum, track, affine) -> None:  # noqa: ANN001
    """Three training batches, then eval, against torch's BatchNorm2d of the narrow width holding the same state
    (momentum None: torch's cumulative average, factor 1/n with n the batches counted, here 5, 6, 7): the outputs and
    the first channels' statistics are torch's, the other channels' statistics never move, and eval moves nothing,
    not even the batch counter."""
    torch.manual_seed(0)
    channels = 5
    wide = nn.BatchNorm2d(12, momentum=momentum, affine=affine, track_running_stats=track)
    with torch.no_grad():
        if affine:
            wide.weight.uniform_(0.5, 1.5)
            wide.bias.uniform_(-0.5, 0.5)
        if track:
            wide.running_mean.uniform_(-1.0, 1.0)
            wide.running_var.uniform_(0.5, 2.0)
            wide.num_batches_tracked.fill_(4)
    narrow = _narrow_reference(wide, channels)
    rest = {name: tensor[channels:].clone() for name, tensor in _state(wide).items() if tensor.dim() == 1}
    batches = [torch.randn(6, channels, 4, 4) * (1 + i) + i for i in range(3)]
    for x in batches:
        torch.testing.assert_close(_batch_norm(x, wide, channels, training=True), narrow.train()(x), rtol=0, atol=1e-6)
    if track:
        torch.testing.assert_close(wide.running_mean[:channels], narrow.running_mean, rtol=0, atol=1e-6)
        torch.testing.assert_close(wide.running_var[:channels], narrow.running_var, rtol=0, atol=1e-6)
        assert int(wide.num_batches_tracked) == int(narrow.num_batches_tracked) == 7
    for name, tensor in _state(wide).items():
        if name in rest:
            torch.testing.assert_close(tensor[channels:], rest[name], rtol=0, atol=0)
    before = _state(wide)
    x = torch.randn(6, channels, 4, 4)
    torch.testing.assert_close(_batch_norm(x, wide, channels, training=False), narrow.eval()(x), rtol=0, atol=1e-6)
    for name, tensor in _state(wide).items():
        torch.testing.assert_close(tensor, before[name], rtol=0, atol=0, msg=f"eval changed {name}")


def test_cumulative_average_closed_form() -> None:
    """momentum=None from a fresh BatchNorm: after n batches the running mean is the mean of the n batch means and
    the running variance the mean of the n unbiased batch variances (torch's documented cumulative average)."""
    torch.manual_seed(1)
    channels = 3
    wide = nn.BatchNorm2d(8, momentum=None)
    batches = [torch.randn(5, channels, 3, 3) * (1 + i) + 2 * i for i in range(4)]
    for x in batches:
        _batch_norm(x, wide, channels, training=True)
    means = torch.stack([x.mean(dim=(0, 2, 3)) for x in batches])
    variances = torch.stack([x.transpose(0, 1).reshape(channels, -1).var(dim=1, unbiased=True) for x in batches])
    torch.testing.assert_close(wide.running_mean[:channels], means.mean(dim=0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(wide.running_var[:channels], variances.mean(dim=0), rtol=1e-5, atol=1e-6)
    assert int(wide.num_batches_tracked) == len(batches)


@pytest.mark.parametrize("sharing", ["shared", "independent"])
def test_a_candidates_view_computes_the_supernet_under_its_one_hot_weight(sharing: str) -> None:
    torch.manual_seed(3)
    space = get_space("proxyless", **PROXYLESS)
    supernet = space.supernet(weight_sharing=sharing).eval()
    checked = 0
    for layer in supernet.layers:
        _, c_in, _, _, _ = next(spec for spec in space.layer_specs() if spec[0] == layer.decision)
        x = torch.randn(2, c_in, 6, 6)
        for index, name in enumerate(layer.choices):
            weight = torch.zeros(len(layer.choices))
            weight[index] = 1.0
            with torch.no_grad():
                torch.testing.assert_close(layer.candidate(name)(x), layer(x, {layer.decision: weight}),
                                           rtol=0, atol=0, msg=f"{layer.decision} {name}")
            checked += 1
    assert checked > 6 * len(supernet.layers)  # every candidate of every layer (7, or 6 where no zero op fits)


def test_a_supernet_decision_needs_weights() -> None:
    supernet = get_space("proxyless", **PROXYLESS).supernet(weight_sharing="independent")
    choice = next(m for m in supernet.modules() if isinstance(m, Choice) and len(m.candidates) > 1)
    assert not len(choice.shared)
    with pytest.raises(ArchitectureError, match="needs weights"):
        choice(torch.randn(1, 8, 6, 6))


class _ExpandReads(TorchFunctionMode):
    """Counts the conv2d calls whose input is one given tensor (the block's input: the expand convs)."""

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        self.x, self.reads, self.convs = x, 0, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if func in (F.conv2d, torch.conv2d):
            self.convs += 1
            self.reads += args[0] is self.x
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("active", [1, 2, 3, 4])
def test_relaxed_mbconv_runs_the_expand_conv_once_for_any_number_of_choices(active: int) -> None:
    options = {"k3_e3": (3, 3), "k5_e3": (5, 3), "k7_e6": (7, 6), "k3_e6": (3, 6)}
    block = ElasticMBConv(8, 8, options, 1, 1e-3, "choice").eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad(), _ExpandReads(x) as counter:
        outputs = block.forward_choices(x, list(options)[:active])
    assert len(outputs) == active
    assert counter.reads == 1, f"{active} choices read the input with {counter.reads} expand convs"
    assert counter.convs == 1 + 2 * active  # and one depthwise and one project conv per choice


@pytest.mark.parametrize("family, kernels, stages, dilation", [
    ("sep_conv", {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "sep_conv_7x7": 7}, 2, 1),
    ("dil_conv", {"dil_conv_3x3": 3, "dil_conv_5x5": 5}, 1, 2),
])
@pytest.mark.parametrize("stride", [1, 2])
def test_shared_darts_block_holds_exactly_its_largest_candidates_parameters(family, kernels, stages, dilation,
                                                                            stride) -> None:  # noqa: ANN001
    block = ElasticSepConv(6, kernels, stride, stages, dilation, "shared")
    largest = make_op(max(kernels, key=kernels.get), 6, stride)
    assert sorted(p.numel() for p in block.parameters()) == sorted(p.numel() for p in largest.parameters()), family


def test_elastic_mbconv_refuses_expansion_one() -> None:
    with pytest.raises(ValueError, match="expansion 1"):
        ElasticMBConv(8, 8, {"k3_e1": (3, 1), "k3_e3": (3, 3)}, 1, 1e-3)
    assert ElasticMBConv(8, 8, {"k3_e2": (3, 2), "k5_e4": (5, 4)}, 1, 1e-3).widths == {"k3_e2": 16, "k5_e4": 32}
