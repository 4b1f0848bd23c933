"""The ProxylessNAS MBConv space (docs/design.md#61-spaces; Cai et al. 2019, UNAS Sec. 4.2).

Stem conv 3x3/2, a fixed MBConv (expand 1, kernel 3), six stages of 4,4,4,4,4,1
searchable layers with strides 2,2,2,1,2,1, a 1x1 feature-mix conv, global
pooling and a linear classifier. Each layer chooses a kernel in {3,5,7} and an
expansion in {3,6}; wherever the layer keeps its shape it may also be `zero`
(skipped: the layer is the identity). Reads top to bottom: block, network,
space.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from torch import Tensor, nn

from search_spaces.architecture import Architecture, Decision, OpItem
from search_spaces.base import ChainPart, SearchSpace, check_config_keys, check_config_values
from search_spaces.choice import Choice, check_sharing
from search_spaces.elastic import ElasticMBConv
from search_spaces.errors import ArchitectureError
from search_spaces.memory import layers_refusal
from search_spaces.registry import register_space

BN_EPS = 1e-3
KERNELS = (3, 5, 7)
EXPANSIONS = (3, 6)
MBCONV_CHOICES = tuple(f"k{k}_e{e}" for k in KERNELS for e in EXPANSIONS)
ZERO = "zero"

# [stem, first block, stage 1..6, head]
WIDTHS = {
    "search": (32, 16, 24, 40, 80, 96, 192, 320, 1280),
    "gpu": (40, 24, 32, 56, 112, 128, 256, 432, 1728),
}
DEPTHS = (4, 4, 4, 4, 4, 1)
STRIDES = (2, 2, 2, 1, 2, 1)
SMALL_INPUT_STRIDES = (1, 2, 2, 1, 2, 1)
LAYER_BYTES = 8 * 1024
"""Host bytes a built searchable layer takes at the least before any weight (its `Choice` and a `zero`
candidate at width 1: 9.0 KB measured on the meta device, torch 2.14): the bound `layers_refusal` checks."""


def _ints(values: Any, count: int, minimum: int) -> bool:
    """`values` is a list of `count` integers, each >= `minimum`."""
    return (isinstance(values, list | tuple) and len(values) == count
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values))


def parse_choice(choice: str) -> tuple[int, int]:
    """'k5_e3' -> (5, 3)."""
    kernel, expand = choice.split("_")
    return int(kernel[1:]), int(expand[1:])


def conv_bn_relu6(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(c_out, eps=BN_EPS),
        nn.ReLU6(inplace=True),
    )


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand (absent at expand 1), depthwise kxk,
    1x1 project; BN after each conv, ReLU6 after the first two; residual when
    the shape is kept. The residual is part of the block so that a candidate
    is a whole layer and `zero` is simply the identity."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expand: int, stride: int) -> None:
        super().__init__()
        mid = round(c_in * expand)
        self.expand = conv_bn_relu6(c_in, mid, 1, 1) if expand != 1 else nn.Identity()
        self.depthwise = nn.Sequential(
            nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
            nn.BatchNorm2d(mid, eps=BN_EPS),
            nn.ReLU6(inplace=True),
        )
        self.project = nn.Sequential(nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out, eps=BN_EPS))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


class Head(nn.Module):
    """Feature-mix 1x1 conv, global average pooling, dropout, classifier."""

    def __init__(self, c_in: int, c_head: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.feature_mix = conv_bn_relu6(c_in, c_head, 1, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_head, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.pool(self.feature_mix(x)).flatten(1)))


class ProxylessNetwork(nn.Module):
    """Stem, fixed first block, one `Choice` per searchable layer, head.

    The same class is the supernet (every candidate in each Choice; call with
    weights) and the standalone network (one candidate each; call with x only).
    """

    def __init__(self, stem: nn.Module, layers: list[Choice], head: Head) -> None:
        super().__init__()
        self.stem = stem
        self.layers = nn.ModuleList(layers)
        self.head = head

    def forward(self, x: Tensor, weights: Mapping[str, Tensor] | None = None) -> Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, weights)
        return self.head(x)


@register_space("proxyless")
class ProxylessSpace(SearchSpace):
    """Config: widths ("search" | "gpu" | 9 ints: stem, first block, stages 1-6,
    head), depths (6 ints), resolution, num_classes, in_channels, small_input
    (stem and stage 1 at stride 1, for 28x28/32x32 data), dropout."""

    ARCHITECTURE_KEYS = ("widths", "depths")
    DEFAULTS: dict[str, Any] = {
        "widths": "search",
        "depths": list(DEPTHS),
        "resolution": 224,
        "num_classes": 1000,
        "in_channels": 3,
        "small_input": False,
        "dropout": 0.0,
    }

    def __init__(self, **config: Any) -> None:
        super().__init__(check_config_keys("proxyless", config, self.DEFAULTS))
        widths = self.config["widths"]
        if isinstance(widths, str):
            if widths not in WIDTHS:
                raise ArchitectureError(f"unknown widths preset {widths!r}; allowed: {', '.join(WIDTHS)} or 9 ints")
            widths = WIDTHS[widths]
        depths = self.config["depths"]
        if not _ints(widths, 9, 1) or not _ints(depths, 6, 1):
            raise ArchitectureError(f"proxyless needs 9 widths >= 1 (stem, first, 6 stages, head) and 6 depths >= 1, "
                                    f"got widths {widths!r} and depths {depths!r}")
        check_config_values("proxyless", self.config, integers={"resolution": 1, "num_classes": 1, "in_channels": 1},
                            fractions=("dropout",), flags=("small_input",))
        too_deep = layers_refusal("proxyless", "depths", sum(depths), LAYER_BYTES)
        if too_deep:
            raise ArchitectureError(too_deep)
        self.widths = tuple(int(w) for w in widths)
        self.depths = tuple(int(d) for d in self.config["depths"])
        # Store what is built (issue #13): a preset name becomes its integers, so an
        # architecture records its widths and the signature follows a changed preset.
        self.config["widths"], self.config["depths"] = list(self.widths), list(self.depths)
        self.strides = SMALL_INPUT_STRIDES if self.config["small_input"] else STRIDES

    # ---- structure -----------------------------------------------------------------------
    def layer_specs(self) -> list[tuple[str, int, int, int, int]]:
        """(decision, c_in, c_out, stride, input side) of every searchable layer."""
        side = self._stem_side()
        c_in = self.widths[1]
        specs = []
        for stage, (depth, stride) in enumerate(zip(self.depths, self.strides)):
            c_out = self.widths[2 + stage]
            for index in range(depth):
                s = stride if index == 0 else 1
                specs.append((f"stage{stage + 1}.layer{index + 1}", c_in, c_out, s, side))
                side = -(-side // s)
                c_in = c_out
        return specs

    def _stem_side(self) -> int:
        return -(-int(self.config["resolution"]) // (1 if self.config["small_input"] else 2))

    def _decisions(self) -> list[Decision]:
        return [
            Decision(name, MBCONV_CHOICES + ((ZERO,) if stride == 1 and c_in == c_out else ()))
            for name, c_in, c_out, stride, _ in self.layer_specs()
        ]

    @staticmethod
    def candidate(choice: str, c_in: int, c_out: int, stride: int) -> nn.Module:
        if choice == ZERO:
            return nn.Identity()
        kernel, expand = parse_choice(choice)
        return MBConv(c_in, c_out, kernel, expand, stride)

    def _stem(self) -> nn.Sequential:
        stride = 1 if self.config["small_input"] else 2
        return nn.Sequential(
            conv_bn_relu6(int(self.config["in_channels"]), self.widths[0], 3, stride),
            MBConv(self.widths[0], self.widths[1], 3, 1, 1),
        )

    def _head(self, num_classes: int | None) -> Head:
        classes = int(num_classes if num_classes is not None else self.config["num_classes"])
        return Head(self.widths[7], self.widths[8], classes, float(self.config["dropout"]))

    def _network(self, chosen: Mapping[str, tuple[str, ...]], num_classes: int | None,
                 sharing: str = "independent", batchnorm: str = "choice") -> ProxylessNetwork:
        layers = []
        for decision, (name, c_in, c_out, stride, _) in zip(self.decisions, self.layer_specs()):
            mbconv = [c for c in chosen[name] if c != ZERO]
            shared = []
            if sharing == "shared" and len(mbconv) > 1:
                options = {c: parse_choice(c) for c in mbconv}
                shared = [ElasticMBConv(c_in, c_out, options, stride, BN_EPS, batchnorm)]
            own = [c for c in chosen[name] if not shared or c not in mbconv]
            candidates = {c: self.candidate(c, c_in, c_out, stride) for c in own}
            layers.append(Choice(name, decision.choices, candidates, shared))
        return ProxylessNetwork(self._stem(), layers, self._head(num_classes))

    # ---- the interface -------------------------------------------------------------------
    def build(self, arch: Architecture, num_classes: int | None = None) -> nn.Module:
        self.validate(arch)
        return self._network({name: (choice,) for name, choice in arch.choices.items()}, num_classes)

    def supernet(self, weight_sharing: str = "independent", batchnorm: str = "choice", **kwargs: Any) -> nn.Module:
        """Every candidate of every layer. `weight_sharing="independent"`: one MBConv per choice (the
        papers' supernet); `"shared"`: one `ElasticMBConv` per layer whose k3/k5 kernels are centre crops
        of the k7 superkernel and whose e3 is the first half of e6's channels (Single-Path NAS / OFA),
        with a BatchNorm per choice (`batchnorm="choice"`) or one sliced (`"shared"`)."""
        if kwargs:
            raise ArchitectureError(f"proxyless supernet has no option {', '.join(kwargs)}; allowed: weight_sharing, batchnorm")
        sharing = check_sharing("proxyless", weight_sharing)
        return self._network({d.name: d.choices for d in self.decisions}, None, sharing, batchnorm)

    def input_shape(self, batch_size: int) -> tuple[int, int, int, int]:
        side = int(self.config["resolution"])
        return (batch_size, int(self.config["in_channels"]), side, side)

    def op_items(self, batch_size: int) -> list[OpItem]:
        """Every (layer, choice) as its own module at its exact input shape."""
        return [
            OpItem(name, choice, f"{name}.{choice}", self.candidate(choice, c_in, c_out, stride),
                   (batch_size, c_in, side, side))
            for decision, (name, c_in, c_out, stride, side) in zip(self.decisions, self.layer_specs())
            for choice in decision.choices
        ]

    def fixed_items(self, batch_size: int) -> list[OpItem]:
        return [
            OpItem(None, None, "stem", self._stem(), self.input_shape(batch_size)),
            OpItem(None, None, "head", self._head(None), self._head_input(batch_size)),
        ]

    def _head_input(self, batch_size: int) -> tuple[int, int, int, int]:
        specs = self.layer_specs()
        last_side = -(-specs[-1][4] // specs[-1][3]) if specs else self._stem_side()
        return (batch_size, self.widths[7], last_side, last_side)

    def chain(self, arch: Architecture, batch_size: int) -> list[ChainPart]:
        """Stem, each layer's chosen MBConv (a `zero` layer is the identity: no part), head; named as
        `op_items` / `fixed_items` name them."""
        self.validate(arch)
        parts = [ChainPart("stem", self.input_shape(batch_size), self._stem)]
        for name, c_in, c_out, stride, side in self.layer_specs():
            choice = arch.choices[name]
            if choice != ZERO:
                parts.append(ChainPart(f"{name}.{choice}", (batch_size, c_in, side, side),
                                       partial(self.candidate, choice, c_in, c_out, stride)))
        parts.append(ChainPart("head", self._head_input(batch_size), partial(self._head, None)))
        return parts

    def block_strings(self, arch: Architecture) -> list[list[str]]:
        """timm notation per stage (first block first, zero layers left out),
        e.g. [['ds_r1_k3_s1_c24'], ['ir_r1_k5_s2_e3_c32'], ...]."""
        self.validate(arch)
        stages: list[list[str]] = [[f"ds_r1_k3_s1_c{self.widths[1]}"]] + [[] for _ in self.depths]
        for name, _, c_out, stride, _ in self.layer_specs():
            choice = arch.choices[name]
            if choice != ZERO:
                kernel, expand = parse_choice(choice)
                stage = int(name.split(".")[0].removeprefix("stage"))
                stages[stage].append(f"ir_r1_k{kernel}_s{stride}_e{expand}_c{c_out}")
        return stages

    def describe(self, arch: Architecture) -> list[str]:
        names = ["first block"] + [f"stage {i}" for i in range(1, len(self.depths) + 1)]
        return [f"{n}: " + " ".join(b or ["(all zero)"]) for n, b in zip(names, self.block_strings(arch))]
