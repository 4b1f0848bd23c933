"""DARTS cells: two preprocessed inputs, four intermediate nodes, output the
concatenation of the four nodes. A node sums its slots; a slot is one edge
(fixed input, op chosen) or one UNAS factorized selector pair (input chosen,
op chosen). GDAS's fixed reduction cell is here too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from search_spaces.choice import Choice, active, candidate, check_weight
from search_spaces.darts.ops import FactorizedReduce, ReLUConvBN
from search_spaces.elastic import ElasticBlock
from search_spaces.errors import ArchitectureError
from search_spaces.recompute import Recomputable

Weights = Mapping[str, Tensor] | None

NODES = (2, 3, 4, 5)


def drop_path(x: Tensor, drop_prob: float) -> Tensor:
    """Zero whole samples with probability drop_prob, rescale the rest (DARTS)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


def _maybe_drop(out: Tensor, module: nn.Module, drop_prob: float, training: bool) -> Tensor:
    if training and drop_prob > 0 and not isinstance(module, nn.Identity):
        return drop_path(out, drop_prob)
    return out


class Edge(nn.Module):
    """A slot with a fixed input: the op is the decision (DARTS edges, S1, S2)."""

    def __init__(self, source: int, choice: Choice) -> None:
        super().__init__()
        self.source = source
        self.choice = choice

    def forward(self, states: Sequence[Tensor], weights: Weights, drop_prob: float) -> Tensor:
        out = self.choice(states[self.source], weights)
        if weights is None:
            only = next(iter(self.choice.candidates.values()))
            out = _maybe_drop(out, only, drop_prob, self.training)
        return out


def factorized_key(source: int, op: str) -> str:
    return f"in{source}_{op}"


class FactorizedSlot(nn.Module, Recomputable):
    """UNAS factorized selector pair: input decision x op decision.

    Candidates are keyed `in<j>_<op>` (an op's stride depends on its input in
    reduction cells); the supernet runs every pair whose product weight
    w_input[j] * w_op[o] is non-zero. In a weight-sharing supernet the ops of
    one input j may be views of `shared[j]` blocks (sep_conv kernels of one
    input share a superkernel), as in `Choice`."""

    def __init__(
        self,
        input_decision: str,
        op_decision: str,
        sources: tuple[int, ...],
        ops: tuple[str, ...],
        candidates: Mapping[str, nn.Module],
        shared: Mapping[int, Sequence[ElasticBlock]] | None = None,
    ) -> None:
        super().__init__()
        self.input_decision, self.op_decision = input_decision, op_decision
        self.sources, self.ops = sources, ops
        self.candidates = nn.ModuleDict(dict(candidates))
        self.shared = nn.ModuleList(block for blocks in (shared or {}).values() for block in blocks)
        self._route: dict[str, tuple[int, str]] = {}
        index = 0
        for source, blocks in (shared or {}).items():
            for block in blocks:
                self._route.update({factorized_key(source, op): (index, op) for op in block.choices})
                index += 1

    def forward(self, states: Sequence[Tensor], weights: Weights, drop_prob: float) -> Tensor:
        if weights is None:
            if len(self.candidates) != 1 or len(self.shared):
                raise ArchitectureError(f"decision {self.op_decision!r}: a supernet needs weights")
            (key, module), = self.candidates.items()
            source = int(key[2:].split("_", 1)[0])
            return _maybe_drop(module(states[source]), module, drop_prob, self.training)
        w_in = check_weight(self.input_decision, weights[self.input_decision], len(self.sources))
        w_op = check_weight(self.op_decision, weights[self.op_decision], len(self.ops))
        pairs = [(i, o) for i in active(w_in) for o in active(w_op)]
        if not pairs:
            raise ArchitectureError(f"node of {self.op_decision!r}: every weight is zero; nothing to run")
        read = sorted({self.sources[i] for i, _ in pairs})  # the states the pairs read: the recomputation's inputs
        if len(pairs) == 1:
            return self._weighted_sum(pairs, w_in, w_op, read, *(states[j] for j in read))
        return self.relaxed(self._weighted_sum, pairs, w_in, w_op, read, *(states[j] for j in read))

    def _weighted_sum(self, pairs: list[tuple[int, int]], w_in: Tensor, w_op: Tensor, read: list[int],
                      *inputs: Tensor) -> Tensor:
        state = dict(zip(read, inputs, strict=True))
        out: Tensor | None = None
        for i, o in pairs:
            x = state[self.sources[i]]
            term = candidate(self, factorized_key(self.sources[i], self.ops[o]))(x) * (w_in[i] * w_op[o]).to(x.dtype)
            out = term if out is None else out + term
        assert out is not None
        return out


def preprocess(c_prev_prev: int, c_prev: int, channels: int, reduction_prev: bool) -> tuple[nn.Module, nn.Module]:
    """Bring both cell inputs to `channels` at the resolution of the previous cell."""
    first = FactorizedReduce(c_prev_prev, channels) if reduction_prev else ReLUConvBN(c_prev_prev, channels, 1, 1, 0)
    return first, ReLUConvBN(c_prev, channels, 1, 1, 0)


class Cell(nn.Module):
    """`nodes[k]` is a ModuleDict of named slots for node k + 2; its value is the
    sum of its slots. The output concatenates nodes 2..5 (4 x channels).
    A standalone cell that reads only one input has no preprocessing for the
    other (None): nothing is built that the forward does not run."""

    def __init__(self, preprocess0: nn.Module | None, preprocess1: nn.Module | None,
                 nodes: Sequence[Mapping[str, nn.Module]]) -> None:
        super().__init__()
        self.preprocess0, self.preprocess1 = preprocess0, preprocess1
        self.nodes = nn.ModuleList(nn.ModuleDict(dict(slots)) for slots in nodes)

    def inputs_read(self) -> set[int]:
        """Which cell inputs (0: c_{k-2}, 1: c_{k-1}) some slot reads."""
        sources: set[int] = set()
        for slots in self.nodes:
            for slot in slots.values():
                if isinstance(slot, Edge):
                    sources.add(slot.source)
                else:
                    sources.update(int(key[2:].split("_", 1)[0]) for key in slot.candidates)
        return sources & {0, 1}

    def forward(self, s0: Tensor | None, s1: Tensor | None, weights: Weights = None, drop_prob: float = 0.0) -> Tensor:
        states = [None if pre is None else pre(s) for pre, s in ((self.preprocess0, s0), (self.preprocess1, s1))]
        for slots in self.nodes:
            outs = [slot(states, weights, drop_prob) for slot in slots.values()]
            total = outs[0]
            for out in outs[1:]:
                total = total + out
            states.append(total)
        return torch.cat(states[2:], dim=1)


class PrunedCell(nn.Module):
    """A standalone cell whose output no later cell, classifier or auxiliary head
    reads: nothing is built and its output is None. It keeps the supernet's module
    path, so weights still copy by path."""

    def forward(self, s0: Tensor | None, s1: Tensor | None, weights: Weights = None, drop_prob: float = 0.0) -> None:
        return None


class _FactorizedConv(nn.Sequential):
    """GDAS FRC branch: ReLU, 1x3 conv stride (1,2), 3x1 conv stride (2,1), BN,
    ReLU, 1x1 conv, BN (GDAS Fig. 3; plain, not grouped, convolutions)."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, (1, 3), stride=(1, 2), padding=(0, 1), bias=False),
            nn.Conv2d(channels, channels, (3, 1), stride=(2, 1), padding=(1, 0), bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )


class FixedReductionCell(nn.Module):
    """GDAS's hand-designed reduction cell (FRC, GDAS Sec. 3.3 and Fig. 3): each
    input through a factorized 1x3/3x1 conv branch and a 3x3 max pool, the four
    results concatenated (4 x channels, half resolution). Nothing to search."""

    def __init__(self, preprocess0: nn.Module, preprocess1: nn.Module, channels: int) -> None:
        super().__init__()
        self.preprocess0, self.preprocess1 = preprocess0, preprocess1
        self.conv0, self.conv1 = _FactorizedConv(channels), _FactorizedConv(channels)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def inputs_read(self) -> set[int]:
        return {0, 1}

    def forward(self, s0: Tensor, s1: Tensor, weights: Weights = None, drop_prob: float = 0.0) -> Tensor:
        x0, x1 = self.preprocess0(s0), self.preprocess1(s1)
        branches = [self.conv0(x0), self.conv1(x1), self.pool(x0), self.pool(x1)]
        if self.training and drop_prob > 0:
            branches[:2] = [drop_path(b, drop_prob) for b in branches[:2]]
        return torch.cat(branches, dim=1)
