"""The DARTS evaluation networks (Liu et al. 2019, Sec. A.2): the CIFAR network
(3x3 conv stem with 3C channels) and the ImageNet mobile network (two stride-2
conv stem plus one more stride-2 conv), cells stacked with reductions at 1/3
and 2/3 depth, global pooling and a linear classifier; auxiliary head at 2/3
depth and drop-path as options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from search_spaces.darts.cells import PrunedCell


class CifarStem(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = self.conv(x)
        return y, y


class ImageNetStem(nn.Module):
    """Two outputs at 1/4 and 1/8 resolution, both C channels."""

    def __init__(self, c_in: int, channels: int) -> None:
        super().__init__()
        self.stem0 = nn.Sequential(
            nn.Conv2d(c_in, channels // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // 2, channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        s0 = self.stem0(x)
        # stem1 is None in a standalone network whose first cells never read it.
        return s0, None if self.stem1 is None else self.stem1(s0)


class AuxiliaryHead(nn.Sequential):
    """DARTS auxiliary classifier at 2/3 depth (8x8 on CIFAR, 7x7 on ImageNet).
    Training only; left out of parameter and MAC counts as the papers do."""

    def __init__(self, channels: int, num_classes: int, imagenet: bool) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=2 if imagenet else 3, padding=0, count_include_pad=False),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            *([] if imagenet else [nn.BatchNorm2d(768)]),
            nn.ReLU(inplace=True),
            nn.Flatten(1),
            nn.Linear(768, num_classes),
        )


class DartsNetwork(nn.Module):
    """Stem, cells, pooling, classifier. The supernet is this class with every
    candidate present (call with weights); the standalone network holds one
    candidate per decision point (call with x only). In training mode with an
    auxiliary head, forward returns (logits, auxiliary logits)."""

    def __init__(
        self,
        stem: nn.Module,
        cells: Sequence[nn.Module],
        c_final: int,
        num_classes: int,
        auxiliary_head: nn.Module | None = None,
        auxiliary_after: int = -1,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.cells = nn.ModuleList(cells)
        self.auxiliary_head = auxiliary_head
        self.auxiliary_after = auxiliary_after
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_final, num_classes)
        self.drop_path_prob = 0.0

    def forward(self, x: Tensor, weights: Mapping[str, Tensor] | None = None) -> Tensor | tuple[Tensor, Tensor]:
        s0, s1 = self.stem(x)
        auxiliary = None
        for index, cell in enumerate(self.cells):
            # A pruned cell (read by nothing downstream) is not run at all.
            s0, s1 = s1, None if isinstance(cell, PrunedCell) else cell(s0, s1, weights, self.drop_path_prob)
            if index == self.auxiliary_after and self.auxiliary_head is not None and self.training:
                auxiliary = self.auxiliary_head(s1)
        logits = self.classifier(self.pool(s1).flatten(1))
        return logits if auxiliary is None else (logits, auxiliary)
