"""The DARTS operations (docs/design.md#61-spaces; Liu et al. 2019, Sec. 3.1 and A.1),
all ReLU-Conv-BN, and the op sets of DARTS, UNAS and Amended-DARTS S2."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from search_spaces.elastic import ElasticSepConv


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise kxk with dilation, pointwise 1x1, BN: once."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class SepConv(nn.Sequential):
    """(ReLU, depthwise kxk, pointwise 1x1, BN) twice; only the first is strided."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1),
            DilConv(c_in, c_out, kernel, 1, padding, 1),
        )


class Zero(nn.Module):
    """`none`: zeros of the output shape (strided like the other ops)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing pixels: two stride-2 1x1 convs, the
    second on the input shifted by one pixel, concatenated, then BN."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


OpFactory = Callable[[int, int], nn.Module]  # (channels, stride) -> module

OPS: dict[str, OpFactory] = {
    "none": lambda c, stride: Zero(stride),
    "avg_pool_3x3": lambda c, stride: nn.AvgPool2d(3, stride, 1, count_include_pad=False),
    "max_pool_3x3": lambda c, stride: nn.MaxPool2d(3, stride, 1),
    "skip_connect": lambda c, stride: nn.Identity() if stride == 1 else FactorizedReduce(c, c),
    "sep_conv_3x3": lambda c, stride: SepConv(c, c, 3, stride, 1),
    "sep_conv_5x5": lambda c, stride: SepConv(c, c, 5, stride, 2),
    "sep_conv_7x7": lambda c, stride: SepConv(c, c, 7, stride, 3),
    "dil_conv_3x3": lambda c, stride: DilConv(c, c, 3, stride, 2, 2),
    "dil_conv_5x5": lambda c, stride: DilConv(c, c, 5, stride, 4, 2),
}

OP_SETS: dict[str, tuple[str, ...]] = {
    # DARTS, GDAS, DARTS-EGS
    "darts": ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
              "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"),
    # Amended-DARTS S1: DARTS without `none` (edges are fixed)
    "darts_no_none": ("max_pool_3x3", "avg_pool_3x3", "skip_connect",
                      "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"),
    # UNAS Sec. 4.1: no `none`, no dil_conv_5x5, adds sep_conv_7x7
    "unas": ("max_pool_3x3", "avg_pool_3x3", "skip_connect",
             "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "dil_conv_3x3"),
    # Amended-DARTS S2
    "s2": ("skip_connect", "sep_conv_3x3"),
}


def make_op(name: str, channels: int, stride: int) -> nn.Module:
    return OPS[name](channels, stride)


SHARED_FAMILIES: dict[str, tuple[int, int]] = {"sep_conv": (2, 1), "dil_conv": (1, 2)}
"""Op families that share one depthwise superkernel in a weight-sharing supernet: (stages, dilation)."""


def shared_blocks(ops: tuple[str, ...], channels: int, stride: int, batchnorm: str) -> list[ElasticSepConv]:
    """One `ElasticSepConv` per family with at least two kernel sizes among `ops`: sep_conv_3x3/5x5/7x7
    share their depthwise superkernels and pointwise convs, dil_conv_3x3/5x5 theirs."""
    blocks = []
    for family, (stages, dilation) in SHARED_FAMILIES.items():
        kernels = {op: int(op.rsplit("_", 1)[1].split("x")[0]) for op in ops if op.startswith(family + "_")}
        if len(kernels) > 1:
            blocks.append(ElasticSepConv(channels, kernels, stride, stages, dilation, batchnorm))
    return blocks
