"""A decision point inside a network: named candidate modules, run by weight.

The same module serves the supernet (every candidate present) and the
standalone network (only the chosen candidate present, at the same module
path). In the papers' supernet (`independent` weights) every candidate is its
own module, and a standalone network inherits by a plain state-dict copy. In
a weight-sharing supernet (`shared`, `search_spaces.elastic`) some candidates
are views of one shared block; `copy_weights` then asks the block to crop and
slice its weights into the standalone candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from search_spaces.elastic import ElasticBlock
from search_spaces.errors import ArchitectureError
from search_spaces.recompute import Recomputable

WEIGHT_SHARING = ("shared", "independent")
"""How a supernet holds the candidates of a decision: `shared` (one superkernel / elastic width per
family, Single-Path NAS / Once-for-All) or `independent` (one module per candidate: the papers' setting)."""


def check_sharing(space: str, weight_sharing: str) -> str:
    if weight_sharing not in WEIGHT_SHARING:
        raise ArchitectureError(
            f"{space} supernet: weight_sharing {weight_sharing!r} is unknown; allowed: {', '.join(WEIGHT_SHARING)}"
        )
    return weight_sharing


def active(weight: Tensor) -> list[int]:
    """Indices of the non-zero entries: the only choices a supernet runs.

    One host synchronisation per decision; the price of single-path cost."""
    return torch.nonzero(weight.detach(), as_tuple=False).flatten().tolist()


def check_weight(decision: str, weight: Tensor, size: int) -> Tensor:
    if weight.dim() != 1 or weight.shape[0] != size:
        raise ArchitectureError(
            f"decision {decision!r} needs a weight vector of shape ({size},), got {tuple(weight.shape)}"
        )
    return weight


class Choice(nn.Module, Recomputable):
    """Candidates of one decision, keyed by choice name.

    forward(x) with weights None: the standalone case, exactly one candidate.
    forward(x, weights): sum over choices with non-zero weight of
    weight * candidate(x), so gradients reach the weights as well.
    `shared` blocks (weight-sharing supernet only) serve the choices that are
    not in `candidates`. With `recompute` set, a relaxed evaluation keeps only its input for the
    backward and is run again there (`search_spaces.recompute`: exact, bounded memory).
    """

    def __init__(self, decision: str, choices: tuple[str, ...], candidates: Mapping[str, nn.Module],
                 shared: Sequence[ElasticBlock] = ()) -> None:
        super().__init__()
        self.decision = decision
        self.choices = choices
        self.candidates = nn.ModuleDict(dict(candidates))
        self.shared = nn.ModuleList(shared)
        self._route = {c: (i, c) for i, block in enumerate(self.shared) for c in block.choices}

    def shared_for(self, key: str) -> tuple[ElasticBlock, str] | None:
        """(block, its choice name) serving candidate `key`, or None when `key` is its own module."""
        return shared_for(self, key)

    def candidate(self, choice: str) -> Callable[[Tensor], Tensor]:
        """The function that computes `choice` (its own module, or its view of a shared block)."""
        return candidate(self, choice)

    def forward(self, x: Tensor, weights: Mapping[str, Tensor] | None = None) -> Tensor:
        if weights is None:
            if len(self.candidates) != 1 or len(self.shared):
                raise ArchitectureError(
                    f"decision {self.decision!r}: a supernet needs weights for every decision"
                )
            return next(iter(self.candidates.values()))(x)
        weight = check_weight(self.decision, weights[self.decision], len(self.choices))
        indices = active(weight)
        if not indices:
            raise ArchitectureError(f"decision {self.decision!r}: every weight is zero; nothing to run")
        if len(indices) == 1:  # a single path keeps little: nothing to recompute
            return self._weighted_sum(x, weight, indices)
        return self.relaxed(self._weighted_sum, x, weight, indices)

    def _weighted_sum(self, x: Tensor, weight: Tensor, indices: list[int]) -> Tensor:
        outputs: dict[int, Tensor] = {}
        by_block: dict[int, list[int]] = {}  # shared block -> the active choices it serves
        for index in indices:
            route = self._route.get(self.choices[index])
            if route is None:
                outputs[index] = self.candidates[self.choices[index]](x)
            else:
                by_block.setdefault(route[0], []).append(index)
        for block, served in by_block.items():  # one call per block, so its choices can share work
            names = [self._route[self.choices[index]][1] for index in served]
            outputs.update(zip(served, self.shared[block].forward_choices(x, names), strict=True))
        out: Tensor | None = None
        for index in indices:  # summed in choice order, as before
            term = outputs[index] * weight[index].to(x.dtype)
            out = term if out is None else out + term
        assert out is not None
        return out


def shared_for(holder: nn.Module, key: str) -> tuple[ElasticBlock, str] | None:
    """For a decision point with `shared` blocks and a `_route` {key: (block index, choice)}:
    the block serving candidate `key` and the choice name it knows it by."""
    if key not in holder._route:  # noqa: SLF001
        return None
    index, choice = holder._route[key]  # noqa: SLF001
    return holder.shared[index], choice


def candidate(holder: nn.Module, key: str) -> Callable[[Tensor], Tensor]:
    """The function computing candidate `key` of a decision point: its own module or a block's view."""
    found = shared_for(holder, key)
    if found is None:
        return holder.candidates[key]
    block, choice = found
    return lambda x: block(x, choice)


@torch.no_grad()
def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy the weights of `target`'s modules from the modules at the same paths in `source`
    (a supernet); a standalone candidate of a shared choice is filled by its block instead.

    Walks only the target's own modules: a supernet's full state dict holds every candidate
    and costs far more than the copy itself."""
    done: list[str] = []
    for path, module in target.named_modules():
        if any(path.startswith(prefix) for prefix in done):
            continue
        parent, _, choice = path.rpartition(".candidates.")
        holder = _submodule(source, parent) if parent else None
        found = shared_for(holder, choice) if hasattr(holder, "_route") else None
        if found is not None:
            block, name = found
            block.copy_into(name, module)
            done.append(path + ".")
            continue
        origin = _submodule(source, path)
        for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            tensor.copy_(getattr(origin, name))


def _submodule(source: nn.Module, path: str) -> nn.Module:
    try:
        return source.get_submodule(path)
    except AttributeError:
        raise ArchitectureError(
            f"supernet has no module {path!r}; was it built by this space with the same configuration?"
        ) from None
