"""Weight sharing across the candidates of one decision (Single-Path NAS, Once-for-All).

In the papers' supernet (ProxylessNAS, GDAS, UNAS) every candidate of a
decision has its own weights: a path drawn uniformly trains each candidate
1/7 of the time, always after a different, equally undertrained, upstream
path, and in the small default space such a supernet stays at chance for
thousands of steps (docs/benchmark-log.md, "Supernet training").  Here the
candidates of one family share one set of weights instead:

- kernel (Single-Path NAS superkernel, OFA elastic kernel): the k3 kernel is
  the centre of the k5 kernel, which is the centre of the k7 kernel;
- expansion (OFA elastic width): e3 uses the first half of e6's hidden
  channels (expand rows, depthwise channels, project columns).

BatchNorm is either one per choice (`bn="choice"`: every (kernel, expansion)
keeps its own statistics and affine, as a standalone network of that choice
would) or one shared, sliced to the channels in use (`bn="shared"`, OFA).

A block serves several choice names; `forward(x, choice)` runs one of them
with the cropped / sliced weights, and `copy_into(choice, module)` writes
them into the standalone module of that choice, which is how a standalone
network inherits shared weights (`search_spaces.choice.copy_weights`).
Gradients reach only the weights in use: the crop of the superkernel, the
slice of the channels; the rest of each tensor gets exactly zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BN_MODES = ("choice", "shared")
"""`choice`: a BatchNorm per choice; `shared`: one BatchNorm sliced to the channels in use (OFA)."""


def crop_kernel(weight: Tensor, kernel: int) -> Tensor:
    """The centre kernel x kernel window of a (out, in, K, K) weight (Single-Path NAS superkernel)."""
    full = weight.shape[-1]
    start = (full - kernel) // 2
    return weight[..., start:start + kernel, start:start + kernel]


def _batch_norm(x: Tensor, norm: nn.BatchNorm2d, channels: int, training: bool) -> Tensor:
    """`norm` applied to the first `channels` channels (its statistics updated in place there)."""
    if norm.num_features == channels:
        return norm(x)
    momentum = 0.0 if norm.momentum is None else norm.momentum
    if training and norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)  # as nn.BatchNorm2d counts; momentum None = cumulative average
        if norm.momentum is None:
            momentum = 1.0 / float(norm.num_batches_tracked)
    use_batch = training or norm.running_mean is None
    return F.batch_norm(
        x,
        None if norm.running_mean is None else norm.running_mean[:channels],
        None if norm.running_var is None else norm.running_var[:channels],
        None if norm.weight is None else norm.weight[:channels],
        None if norm.bias is None else norm.bias[:channels],
        use_batch, momentum, norm.eps,
    )


@torch.no_grad()
def _copy_norm(source: nn.BatchNorm2d, target: nn.BatchNorm2d) -> None:
    channels = target.num_features
    for name in ("weight", "bias", "running_mean", "running_var"):
        value = getattr(source, name)
        if value is not None:
            getattr(target, name).copy_(value[:channels])
    if source.num_batches_tracked is not None and target.num_batches_tracked is not None:
        target.num_batches_tracked.copy_(source.num_batches_tracked)


class ElasticBlock(nn.Module):
    """A family of candidates sharing weights: the choices it serves, and how to run and extract each."""

    choices: tuple[str, ...]

    def forward(self, x: Tensor, choice: str) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def forward_choices(self, x: Tensor, choices: Sequence[str]) -> list[Tensor]:
        """The outputs of several of its choices on one input (a relaxed or multi-hot supernet
        evaluation). A block overrides it where the choices share work (`ElasticMBConv`)."""
        return [self(x, choice) for choice in choices]

    def copy_into(self, choice: str, module: nn.Module) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class _Norms(nn.Module):
    """The BatchNorms of one position in a block: one per choice, or one shared and sliced."""

    def __init__(self, choices: Sequence[str], widths: Mapping[str, int], eps: float, mode: str) -> None:
        super().__init__()
        if mode not in BN_MODES:
            raise ValueError(f"unknown BatchNorm mode {mode!r}; allowed: {', '.join(BN_MODES)}")
        self.mode, self.widths = mode, dict(widths)
        if mode == "shared":
            self.shared = nn.BatchNorm2d(max(widths.values()), eps=eps)
        else:
            self.per_choice = nn.ModuleDict({c: nn.BatchNorm2d(widths[c], eps=eps) for c in choices})

    def norm(self, choice: str) -> nn.BatchNorm2d:
        return self.shared if self.mode == "shared" else self.per_choice[choice]

    def forward(self, x: Tensor, choice: str) -> Tensor:
        return _batch_norm(x, self.norm(choice), self.widths[choice], self.training)

    def copy_into(self, choice: str, target: nn.BatchNorm2d) -> None:
        _copy_norm(self.norm(choice), target)


class ElasticMBConv(ElasticBlock):
    """The MBConv candidates of one layer (kernel x expansion) with one set of weights.

    Weights are stored at the largest kernel and expansion; initialised as
    nn.Conv2d initialises that largest layer. The layout (1x1 expand, BN,
    ReLU6, depthwise kxk, BN, ReLU6, 1x1 project, BN, residual when the shape
    is kept) is `search_spaces.proxyless.MBConv`'s, so `copy_into` fills one.
    """

    def __init__(self, c_in: int, c_out: int, options: Mapping[str, tuple[int, int]], stride: int,
                 eps: float, bn: str = "choice") -> None:
        super().__init__()
        self.choices = tuple(options)
        self.options = dict(options)
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.widths = {c: round(c_in * e) for c, (_, e) in options.items()}
        mid, kernel = max(self.widths.values()), max(k for k, _ in options.values())
        if any(e == 1 for _, e in options.values()):
            raise ValueError("elastic MBConv shares the expand conv; expansion 1 has none")
        self.expand = nn.Conv2d(c_in, mid, 1, bias=False)
        self.depthwise = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self.project = nn.Conv2d(mid, c_out, 1, bias=False)
        self.expand_bn = _Norms(self.choices, self.widths, eps, bn)
        self.depthwise_bn = _Norms(self.choices, self.widths, eps, bn)
        self.project_bn = _Norms(self.choices, dict.fromkeys(self.choices, c_out), eps, bn)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor, choice: str) -> Tensor:
        return self._after_expand(x, F.conv2d(x, self.expand.weight[:self.widths[choice]]), choice)

    def forward_choices(self, x: Tensor, choices: Sequence[str]) -> list[Tensor]:
        """Every choice's 1x1 expand output is a channel slice of the widest one's (same weight rows), so
        a relaxed evaluation of the layer runs the expand conv once instead of once per choice."""
        if len(choices) < 2:
            return [self(x, choice) for choice in choices]
        widest = F.conv2d(x, self.expand.weight[:max(self.widths[c] for c in choices)])
        return [self._after_expand(x, widest[:, :self.widths[choice]], choice) for choice in choices]

    def _after_expand(self, x: Tensor, expanded: Tensor, choice: str) -> Tensor:
        kernel, mid = self.options[choice][0], self.widths[choice]
        out = F.relu6(self.expand_bn(expanded, choice))
        weight = crop_kernel(self.depthwise.weight[:mid], kernel)
        out = F.relu6(self.depthwise_bn(F.conv2d(out, weight, None, self.stride, kernel // 2, 1, mid), choice))
        out = self.project_bn(F.conv2d(out, self.project.weight[:, :mid]), choice)
        return x + out if self.residual else out

    @torch.no_grad()
    def copy_into(self, choice: str, module: nn.Module) -> None:
        kernel, mid = self.options[choice][0], self.widths[choice]
        expand, depthwise, project = module.expand, module.depthwise, module.project  # type: ignore[union-attr]
        expand[0].weight.copy_(self.expand.weight[:mid])
        self.expand_bn.copy_into(choice, expand[1])
        depthwise[0].weight.copy_(crop_kernel(self.depthwise.weight[:mid], kernel))
        self.depthwise_bn.copy_into(choice, depthwise[1])
        project[0].weight.copy_(self.project.weight[:, :mid])
        self.project_bn.copy_into(choice, project[1])


class ElasticSepConv(ElasticBlock):
    """DARTS separable (dilation 1, applied twice) or dilated (once) convolutions of
    several kernel sizes sharing their depthwise superkernels and pointwise convs.

    Layout of `search_spaces.darts.ops.DilConv` per stage: ReLU, depthwise kxk
    (stride on the first stage only, padding dilation * (k // 2)), pointwise
    1x1, BN. sep_conv_3x3/5x5/7x7 are one block with two stages; dil_conv_3x3/5x5
    another with one stage at dilation 2.
    """

    def __init__(self, channels: int, kernels: Mapping[str, int], stride: int, stages: int, dilation: int,
                 bn: str = "choice") -> None:
        super().__init__()
        self.choices = tuple(kernels)
        self.kernels, self.stride, self.dilation = dict(kernels), stride, dilation
        kernel = max(kernels.values())
        self.depthwise = nn.ModuleList(
            nn.Conv2d(channels, channels, kernel, stride if s == 0 else 1, groups=channels, bias=False) for s in range(stages)
        )
        self.pointwise = nn.ModuleList(nn.Conv2d(channels, channels, 1, bias=False) for _ in range(stages))
        widths = dict.fromkeys(self.choices, channels)
        self.norms = nn.ModuleList(_Norms(self.choices, widths, 1e-5, bn) for _ in range(stages))

    def forward(self, x: Tensor, choice: str) -> Tensor:
        kernel = self.kernels[choice]
        for s, (depthwise, pointwise, norm) in enumerate(zip(self.depthwise, self.pointwise, self.norms, strict=True)):
            x = F.conv2d(F.relu(x), crop_kernel(depthwise.weight, kernel), None, self.stride if s == 0 else 1,
                         self.dilation * (kernel // 2), self.dilation, depthwise.groups)
            x = norm(F.conv2d(x, pointwise.weight), choice)
        return x

    @torch.no_grad()
    def copy_into(self, choice: str, module: nn.Module) -> None:
        stages = list(module) if len(self.depthwise) > 1 else [module]  # SepConv holds two DilConv stages
        kernel = self.kernels[choice]
        for s, stage in enumerate(stages):
            _, depthwise, pointwise, norm = stage
            depthwise.weight.copy_(crop_kernel(self.depthwise[s].weight, kernel))
            pointwise.weight.copy_(self.pointwise[s].weight)
            self.norms[s].copy_into(choice, norm)

