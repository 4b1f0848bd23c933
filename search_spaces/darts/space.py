"""The DARTS cell space in four parameterizations (docs/design.md#61-spaces).

- `edges` (DARTS, GDAS, DARTS-EGS): every node n in 2..5 has an edge from each
  earlier state j < n; each edge chooses an op. Decisions `normal.node3.edge1`.
  A genotype (two (op, input) pairs per node) is the edges architecture whose
  other edges are `none`; derivation keeps the two strongest edges per node.
- `factorized` (UNAS Sec. 4.1): per node two input selectors and two op
  selectors, node = op0(x_input0) + op1(x_input1). Decisions
  `normal.node3.input0` (choices "0".."n-1": 0 and 1 are the cell inputs
  c_{k-2}, c_{k-1}, j >= 2 the node j) and `normal.node3.op0`.
- `s1` (Amended-DARTS): fixed edges, node n takes c_{k-2} and its predecessor
  (n - 1): 8 edges per cell, DARTS ops without `none`.
- `s2` (Amended-DARTS): the `s1` edges in every cell separately (`cell07.node3.edge2`),
  20 cells, ops {skip_connect, sep_conv_3x3}.

Normal cells share decisions (`normal.*`), reduction cells too (`reduce.*`),
except in `s2`. `fixed_reduction` replaces every reduction cell by GDAS's FRC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from search_spaces.architecture import Architecture, Decision, OpItem
from search_spaces.base import Pruning, SearchSpace, check_config_keys, check_config_values
from search_spaces.choice import Choice, check_sharing
from search_spaces.darts.cells import NODES, Cell, Edge, FactorizedSlot, FixedReductionCell, factorized_key, preprocess
from search_spaces.darts.cells import PrunedCell, _FactorizedConv
from search_spaces.darts.network import AuxiliaryHead, CifarStem, DartsNetwork, ImageNetStem
from search_spaces.darts.ops import OP_SETS, make_op, shared_blocks
from search_spaces.errors import ArchitectureError
from search_spaces.memory import layers_refusal
from search_spaces.registry import register_space

PARAMETERIZATIONS = ("edges", "factorized", "s1", "s2")
DEFAULT_OP_SET = {"edges": "darts", "factorized": "unas", "s1": "darts_no_none", "s2": "s2"}
NETWORKS = {"cifar": {"C": 36, "layers": 20, "num_classes": 10, "resolution": 32},
            "imagenet": {"C": 48, "layers": 14, "num_classes": 1000, "resolution": 224}}
NONE = "none"
CELL_BYTES = 32 * 1024
"""Host bytes a built cell takes at the least before any weight (C=1, the first choice of every decision:
35.8 KB measured on the meta device, torch 2.14): the bound `layers_refusal` checks."""
Genotype = Sequence[tuple[str, int]]  # per node two (op, input) pairs, nodes 2..5 in order


@dataclass(frozen=True)
class CellSpec:
    """Where a cell sits: its decision prefix (None: GDAS FRC), channels, and
    the side of its input s1 (s0 has twice that side after a reduction)."""

    index: int
    prefix: str | None
    reduction: bool
    reduction_prev: bool
    c_prev_prev: int
    c_prev: int
    channels: int
    side: int

    def stride(self, source: int) -> int:
        return 2 if self.reduction and source < 2 else 1

    def source_side(self, source: int) -> int:
        return self.side // self.stride(source) if source >= 2 and self.reduction else self.side


@register_space("darts")
class DartsSpace(SearchSpace):
    """Config: parameterization (edges | factorized | s1 | s2), op_set (darts |
    darts_no_none | unas | s2; default by parameterization), network (cifar |
    imagenet), C, layers, num_classes, resolution (defaults by network),
    in_channels, fixed_reduction (GDAS FRC), auxiliary, drop_path_prob."""

    ARCHITECTURE_KEYS = ("parameterization", "op_set", "fixed_reduction")
    DEFAULTS: dict[str, Any] = {
        "parameterization": "edges",
        "op_set": None,
        "network": "cifar",
        "C": None,
        "layers": None,
        "num_classes": None,
        "resolution": None,
        "in_channels": 3,
        "fixed_reduction": False,
        "auxiliary": False,
        "drop_path_prob": 0.0,
    }

    def __init__(self, **config: Any) -> None:
        merged = check_config_keys("darts", config, self.DEFAULTS)
        if merged["parameterization"] not in PARAMETERIZATIONS:
            raise ArchitectureError(
                f"unknown parameterization {merged['parameterization']!r}; allowed: {', '.join(PARAMETERIZATIONS)}"
            )
        if merged["network"] not in NETWORKS:
            raise ArchitectureError(f"unknown network {merged['network']!r}; allowed: {', '.join(NETWORKS)}")
        if merged["op_set"] is None:
            merged["op_set"] = DEFAULT_OP_SET[merged["parameterization"]]
        if merged["op_set"] not in OP_SETS:
            raise ArchitectureError(f"unknown op_set {merged['op_set']!r}; allowed: {', '.join(OP_SETS)}")
        for key, value in NETWORKS[merged["network"]].items():
            if merged[key] is None:
                merged[key] = value
        check_config_values("darts", merged, integers={"C": 1, "layers": 1, "num_classes": 1, "resolution": 4,
                                                       "in_channels": 1},
                            fractions=("drop_path_prob",), flags=("fixed_reduction", "auxiliary"))
        too_deep = layers_refusal("darts", "layers", merged["layers"], CELL_BYTES, unit="cell")
        if too_deep:
            raise ArchitectureError(too_deep)
        _check_auxiliary_fits(merged)
        super().__init__(merged)
        self.ops: tuple[str, ...] = OP_SETS[self.config["op_set"]]
        self.parameterization: str = self.config["parameterization"]
        self.cells = self._cell_specs()

    # ---- structure -----------------------------------------------------------------------
    def _cell_specs(self) -> list[CellSpec]:
        c, layers = int(self.config["C"]), int(self.config["layers"])
        imagenet = self.config["network"] == "imagenet"
        side = int(self.config["resolution"]) // (8 if imagenet else 1)
        if int(self.config["resolution"]) % (32 if imagenet else 4):
            raise ArchitectureError(
                f"resolution {self.config['resolution']} must be a multiple of {32 if imagenet else 4}"
                " (FactorizedReduce needs even sides)"
            )
        c_prev_prev = c_prev = c if imagenet else 3 * c
        reduction_prev, channels, specs = imagenet, c, []
        for index in range(layers):
            reduction = index in (layers // 3, 2 * layers // 3)
            channels *= 2 if reduction else 1
            if self.config["parameterization"] == "s2":
                prefix: str | None = f"cell{index:02d}"
            else:
                prefix = "reduce" if reduction else "normal"
            if reduction and self.config["fixed_reduction"]:
                prefix = None
            specs.append(CellSpec(index, prefix, reduction, reduction_prev, c_prev_prev, c_prev, channels, side))
            c_prev_prev, c_prev, reduction_prev = c_prev, 4 * channels, reduction
            side //= 2 if reduction else 1
        return specs

    def edge_sources(self, node: int) -> tuple[int, ...]:
        """Inputs of a node's edges: all earlier states, or fixed (0, n - 1) in S1/S2."""
        return tuple(range(node)) if self.parameterization == "edges" else (0, node - 1)

    def _prefixes(self) -> list[str]:
        seen: list[str] = []
        for spec in self.cells:
            if spec.prefix is not None and spec.prefix not in seen:
                seen.append(spec.prefix)
        return seen

    def _decisions(self) -> list[Decision]:
        decisions = []
        for prefix in self._prefixes():
            for node in NODES:
                if self.parameterization == "factorized":
                    inputs = tuple(str(j) for j in range(node))
                    decisions += [Decision(f"{prefix}.node{node}.input{s}", inputs) for s in (0, 1)]
                    decisions += [Decision(f"{prefix}.node{node}.op{s}", self.ops) for s in (0, 1)]
                else:
                    decisions += [Decision(f"{prefix}.node{node}.edge{j}", self.ops) for j in self.edge_sources(node)]
        return decisions

    def _node_slots(self, spec: CellSpec, node: int, chosen: Mapping[str, tuple[str, ...]],
                    sharing: tuple[str, str] = ("independent", "choice")) -> dict[str, nn.Module]:
        c, prefix = spec.channels, spec.prefix
        if self.parameterization == "factorized":
            slots: dict[str, nn.Module] = {}
            for s in (0, 1):
                inputs, ops = chosen[f"{prefix}.node{node}.input{s}"], chosen[f"{prefix}.node{node}.op{s}"]
                shared = {int(j): shared_blocks(ops, c, spec.stride(int(j)), sharing[1]) for j in inputs} \
                    if sharing[0] == "shared" else {}
                served = {(j, op) for j, blocks in shared.items() for block in blocks for op in block.choices}
                candidates = {factorized_key(int(j), op): make_op(op, c, spec.stride(int(j)))
                              for j in inputs for op in ops if (int(j), op) not in served}
                slots[f"slot{s}"] = FactorizedSlot(
                    f"{prefix}.node{node}.input{s}", f"{prefix}.node{node}.op{s}", tuple(range(node)), self.ops,
                    candidates, shared,
                )
            return slots
        slots = {}
        for j in self.edge_sources(node):
            name = f"{prefix}.node{node}.edge{j}"
            shared = shared_blocks(chosen[name], c, spec.stride(j), sharing[1]) if sharing[0] == "shared" else []
            served = {op for block in shared for op in block.choices}
            candidates = {op: make_op(op, c, spec.stride(j)) for op in chosen[name] if op not in served}
            slots[f"edge{j}"] = Edge(j, Choice(name, self.ops, candidates, shared))
        standalone = all(len(chosen[f"{prefix}.node{node}.edge{j}"]) == 1 for j in self.edge_sources(node))
        if standalone:
            # A pruned edge computes nothing; keep one `none` only if the node would be empty.
            kept = {k: v for k, v in slots.items() if NONE not in v.choice.candidates}
            slots = kept or dict([next(iter(slots.items()))])
        return slots

    def _cell(self, spec: CellSpec, chosen: Mapping[str, tuple[str, ...]],
              sharing: tuple[str, str] = ("independent", "choice")) -> nn.Module:
        pre0, pre1 = preprocess(spec.c_prev_prev, spec.c_prev, spec.channels, spec.reduction_prev)
        if spec.prefix is None:
            return FixedReductionCell(pre0, pre1, spec.channels)
        return Cell(pre0, pre1, [self._node_slots(spec, node, chosen, sharing) for node in NODES])

    def _stem(self) -> nn.Module:
        c_in, c = int(self.config["in_channels"]), int(self.config["C"])
        return ImageNetStem(c_in, c) if self.config["network"] == "imagenet" else CifarStem(c_in, 3 * c)

    def _network(self, chosen: Mapping[str, tuple[str, ...]], num_classes: int | None, auxiliary: bool,
                 sharing: tuple[str, str] = ("independent", "choice")) -> DartsNetwork:
        classes = int(num_classes if num_classes is not None else self.config["num_classes"])
        cells = [self._cell(spec, chosen, sharing) for spec in self.cells]
        after = 2 * len(self.cells) // 3
        head = None
        if auxiliary:
            head = AuxiliaryHead(4 * self.cells[after].channels, classes, self.config["network"] == "imagenet")
        return DartsNetwork(self._stem(), cells, 4 * self.cells[-1].channels, classes, head, after)

    # ---- the interface -------------------------------------------------------------------
    def build(self, arch: Architecture, num_classes: int | None = None) -> nn.Module:
        self.validate(arch)
        network = self._network({k: (v,) for k, v in arch.choices.items()}, num_classes, bool(self.config["auxiliary"]))
        network.drop_path_prob = float(self.config["drop_path_prob"])
        prune_unused(network)
        return network

    def supernet(self, weight_sharing: str = "independent", batchnorm: str = "choice", **kwargs: Any) -> nn.Module:
        """Every candidate on every decision point (affine BN as in the standalone
        network, so weights carry over); no auxiliary head, no drop-path.
        `weight_sharing="shared"`: on each edge sep_conv_3x3/5x5/7x7 share one depthwise superkernel
        (and pointwise convs), dil_conv_3x3/5x5 another (`search_spaces.elastic.ElasticSepConv`), with a
        BatchNorm per op (`batchnorm="choice"`) or one shared; in UNAS's factorized slots the ops of
        each input share theirs likewise."""
        if kwargs:
            raise ArchitectureError(f"darts supernet has no option {', '.join(kwargs)}; allowed: weight_sharing, batchnorm")
        sharing = (check_sharing("darts", weight_sharing), batchnorm)
        return self._network({d.name: d.choices for d in self.decisions}, None, False, sharing)

    def input_shape(self, batch_size: int) -> tuple[int, int, int, int]:
        side = int(self.config["resolution"])
        return (batch_size, int(self.config["in_channels"]), side, side)

    def derive(self, probabilities: Mapping[str, Sequence[float]]) -> Architecture:
        """Edges: per node the two edges with the strongest non-`none` op keep
        that op, the others become `none` (DARTS Sec. 2.4). Others: argmax."""
        if self.parameterization != "edges":
            return super().derive(probabilities)
        if NONE not in self.ops:
            raise ArchitectureError(f"edge derivation prunes to `none`; op_set {self.config['op_set']!r} has none")
        keep = [i for i, op in enumerate(self.ops) if op != NONE]
        choices = {}
        for prefix in self._prefixes():
            for node in NODES:
                strength = {}
                for j in self.edge_sources(node):
                    name = f"{prefix}.node{node}.edge{j}"
                    p = self._probabilities(probabilities, Decision(name, self.ops))
                    best = keep[int(np.argmax(p[keep]))]
                    strength[name] = (float(p[best]), self.ops[best])
                top = sorted(strength, key=lambda n: -strength[n][0])[:2]
                choices.update({n: strength[n][1] if n in top else NONE for n in strength})
        return self.architecture(choices)

    @property
    def network_draw(self) -> str:
        return "genotype" if self.parameterization == "edges" else "uniform"

    def sample_network(self, rng: np.random.Generator) -> Architecture:
        """Edges: a uniform genotype (per node two of its edges, each with a uniform non-`none` op; the
        rest `none`), which is what `derive` of uniform random scores returns. A uniform draw over every
        edge instead sums 2-5 edges per node: networks no search here returns, 35% slower on the
        cluttered-MNIST task (docs/benchmark-log.md, "DARTS space"), so targets placed among them sat above
        every genotype."""
        if self.parameterization != "edges":
            return super().sample_network(rng)
        return self.derive({d.name: rng.random(len(d.choices)).tolist() for d in self.decisions})

    @property
    def pruning(self) -> Pruning | None:
        """Edges: per node two input edges keep their op, the others become `none` (`derive`)."""
        if self.parameterization != "edges":
            return None
        groups = tuple(tuple(f"{prefix}.node{node}.edge{j}" for j in self.edge_sources(node))
                       for prefix in self._prefixes() for node in NODES)
        return Pruning(groups, keep=2, dropped=NONE)

    def from_genotype(self, normal: Genotype, reduce: Genotype | None = None, **extra: Any) -> Architecture:
        """DARTS genotype (per node two (op, input) pairs) -> edges architecture."""
        if self.parameterization != "edges":
            raise ArchitectureError("genotypes are architectures of the `edges` parameterization")
        choices = {d.name: NONE for d in self.decisions}
        for prefix, genotype in (("normal", normal), ("reduce", reduce)):
            if prefix not in self._prefixes():
                continue
            if genotype is None or len(genotype) != 2 * len(NODES):
                raise ArchitectureError(f"{prefix} genotype needs {2 * len(NODES)} (op, input) pairs")
            for k, (op, source) in enumerate(genotype):
                choices[f"{prefix}.node{NODES[k // 2]}.edge{source}"] = op
        return self.architecture(choices, **extra)

    def describe(self, arch: Architecture) -> list[str]:
        """One line per cell type: node <- op(input) + op(input)."""
        self.validate(arch)
        lines = []
        for prefix in self._prefixes():
            nodes = []
            for node in NODES:
                if self.parameterization == "factorized":
                    terms = [f"{arch.choices[f'{prefix}.node{node}.op{s}']}({arch.choices[f'{prefix}.node{node}.input{s}']})"
                             for s in (0, 1)]
                else:
                    terms = [f"{arch.choices[f'{prefix}.node{node}.edge{j}']}({j})" for j in self.edge_sources(node)
                             if arch.choices[f"{prefix}.node{node}.edge{j}"] != NONE]
                nodes.append(f"n{node}=" + "+".join(terms or ["0"]))
            lines.append(f"{prefix}: " + " ".join(nodes))
        if self.config["fixed_reduction"]:
            lines.append("reduce: GDAS fixed reduction cell")
        return lines

    # ---- per-op latency items ------------------------------------------------------------
    def op_items(self, batch_size: int) -> list[OpItem]:
        """Every edge op of every cell at its exact shape. A shared decision
        (normal/reduce) appears once per cell: its latencies add."""
        if self.parameterization == "factorized":
            raise ArchitectureError(
                "per-op items need fixed edges (edges, s1, s2): a factorized op's stride depends on its chosen input"
            )
        items = []
        for spec in self.cells:
            if spec.prefix is None:
                continue
            for node in NODES:
                for j in self.edge_sources(node):
                    name = f"{spec.prefix}.node{node}.edge{j}"
                    side = spec.source_side(j)
                    shape = (batch_size, spec.channels, side, side)
                    items += [OpItem(name, op, f"cell{spec.index:02d}.node{node}.edge{j}.{op}",
                                     make_op(op, spec.channels, spec.stride(j)), shape) for op in self.ops]
        return items

    def fixed_items(self, batch_size: int) -> list[OpItem]:
        """Stem, each cell's two preprocessing ops, GDAS FRC branches, head."""
        items = [OpItem(None, None, "stem", self._stem(), self.input_shape(batch_size))]
        for spec in self.cells:
            tag = f"cell{spec.index:02d}"
            pre0, pre1 = preprocess(spec.c_prev_prev, spec.c_prev, spec.channels, spec.reduction_prev)
            side0 = spec.side * (2 if spec.reduction_prev else 1)
            items.append(OpItem(None, None, f"{tag}.preprocess0", pre0, (batch_size, spec.c_prev_prev, side0, side0)))
            items.append(OpItem(None, None, f"{tag}.preprocess1", pre1, (batch_size, spec.c_prev, spec.side, spec.side)))
            if spec.prefix is None:
                shape = (batch_size, spec.channels, spec.side, spec.side)
                for k in (0, 1):
                    items.append(OpItem(None, None, f"{tag}.frc.conv{k}", _FactorizedConv(spec.channels), shape))
                    items.append(OpItem(None, None, f"{tag}.frc.pool{k}", nn.MaxPool2d(3, 2, 1), shape))
        last = self.cells[-1]
        side = last.side // (2 if last.reduction else 1)
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(4 * last.channels, int(self.config["num_classes"])))
        items.append(OpItem(None, None, "head", head, (batch_size, 4 * last.channels, side, side)))
        return items


def prune_unused(network: DartsNetwork) -> None:
    """Remove from a standalone network what its forward never reaches (issue #13).

    A cell may read only one of its inputs (a UNAS factorized cell whose input
    selectors never pick it, an edges genotype without edges from it): that
    input's preprocessing is dropped; a cell read by no later cell (nor by the
    classifier or the auxiliary head) is replaced by a `PrunedCell`; the ImageNet
    stem's third conv goes when the first two cells do not read it. Pruning at
    build time, not at counting time, keeps one truth: parameter and MAC counts,
    latency, ONNX files and training all see the same network, and every
    parameter gets a gradient. Outputs are unchanged; module paths stay those of
    the supernet, so weights still copy by path.
    """
    # State k >= 0 is cell k's output; -2 and -1 are the stem's two outputs
    # (cell i reads state i - 2 as input 0 and state i - 1 as input 1).
    needed = {len(network.cells) - 1}
    if network.auxiliary_head is not None:
        needed.add(network.auxiliary_after)
    for index in reversed(range(len(network.cells))):
        cell = network.cells[index]
        if index not in needed:
            network.cells[index] = PrunedCell()
            continue
        reads = cell.inputs_read()
        for k in (0, 1):
            if k in reads:
                needed.add(index - 2 + k)
            else:
                setattr(cell, f"preprocess{k}", None)
    if -1 not in needed and isinstance(network.stem, ImageNetStem):
        network.stem.stem1 = None


def _check_auxiliary_fits(config: Mapping[str, Any]) -> None:
    """Refuse auxiliary=true where the auxiliary head cannot run: it pools a 5x5 window (stride 3 on
    CIFAR, 2 on ImageNet) of the map at 2/3 depth, then a 2x2 convolution, so that map must be 8
    pixels a side (CIFAR network; 7 on ImageNet). Refused when the space is made, so `arch show`,
    `export` and `train` all refuse the same file the same way instead of two of them crashing."""
    if not config["auxiliary"]:
        return
    imagenet = config["network"] == "imagenet"
    stride, side = (2, int(config["resolution"]) // 32) if imagenet else (3, int(config["resolution"]) // 4)
    if side < 5 or (side - 5) // stride + 1 < 2:
        least = 224 if imagenet else 32
        raise ArchitectureError(
            f"auxiliary=true needs resolution {least} or more on the {config['network']} network (the auxiliary head "
            f"pools the {side}x{side} map at 2/3 depth); set auxiliary=false (train: --auxiliary-weight 0) "
            "or a larger resolution"
        )
