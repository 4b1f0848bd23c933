"""Recomputing a supernet's decision points in the backward: the exact way to bound its memory.

A relaxed (all-candidate) evaluation keeps, for the backward, the activations of every candidate of
every decision at the whole batch: ~0.5 GB per 224 px image in the proxyless supernet (issue #30,
group 8). Cutting the batch into micro-batches whose gradients accumulate bounds that, but it is
not the batch's gradient wherever images interact, and every supernet hwnas builds has BatchNorm in
training mode, which normalises by the statistics of the batch it sees: a micro-batch of 2 is
normalised by 2 images' mean and variance, not by the batch's (a "ghost batch").

Recomputing is exact instead. A decision point (`recompute` set, see `recomputing`) with more than
one candidate running, under autograd, runs through `torch.utils.checkpoint` (non-reentrant): the
forward keeps only its inputs; the backward reruns that one decision point, at the whole batch, so
every BatchNorm sees the same statistics, and differentiates it. The same operations on the same
inputs give the same values, and the gradient is the batch's to floating-point rounding
(tests/test_recompute.py compares it in float64 with the plain backward of real supernets: on this
CPU it is equal bit for bit). Between forward and backward the decision points' inputs are kept and
what the network saves outside them (stem, head, DARTS preprocessing); at most one decision point's
graph is alive at a time. At 224 px the proxyless supernet then keeps 15 MB per image plus its
largest layer's 86 MB per image while that layer is recomputed, against 485 MB per image
(hwnas.search.memory's meta-device count). The price is one more forward of every relaxed decision
point per backward (single-path evaluations are not recomputed: one candidate keeps little).

BatchNorm's running statistics: the recomputation runs each BatchNorm's forward again, which would
move its running mean and variance (and count) a second time. During a recomputation the BatchNorms
update copies, thrown away after it, so the statistics move once per forward, as without it (and the
buffers are never written in place behind autograd's back, which a second-order backward that keeps
them saved would refuse). Dropout and drop-path draw the same masks again (torch restores the random
state). Second-order backwards (`create_graph`: tau tuning, DARTS amended) go through it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


class Recomputable:
    """Mixin of a decision point (`Choice`, DARTS `FactorizedSlot`): `recompute` says whether its relaxed
    evaluation is recomputed in the backward (`recomputing` sets it for a whole network)."""

    recompute: bool = False

    def relaxed(self, run: Callable[..., Tensor], *inputs: Any) -> Tensor:
        """`run(*inputs)`: the evaluation of several candidates, recomputed in the backward when `recompute`
        is set and autograd records (a no-grad evaluation keeps nothing to recompute)."""
        if not (self.recompute and torch.is_grad_enabled()):
            return run(*inputs)
        assert isinstance(self, nn.Module)
        return checkpoint(run, *inputs, use_reentrant=False,
                          context_fn=lambda: (contextlib.nullcontext(), _RunningStatisticsKept(self)))


class _RunningStatisticsKept:
    """Within the block the BatchNorms of `module` update copies of their running statistics, thrown away
    after it: the buffers themselves are not touched, neither in value nor in autograd's version count (a
    second-order backward keeps them saved, and an in-place write would invalidate that). Enterable again:
    a second-order backward recomputes a decision point more than once."""

    NAMES = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, module: nn.Module) -> None:
        self.norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.kept: list[list[tuple[nn.Module, str, Tensor]]] = []

    def __enter__(self) -> None:
        kept = [(norm, name, getattr(norm, name)) for norm in self.norms for name in self.NAMES
                if getattr(norm, name) is not None]
        for norm, name, buffer in kept:
            setattr(norm, name, buffer.detach().clone())
        self.kept.append(kept)

    def __exit__(self, *_exc: object) -> None:
        for norm, name, buffer in self.kept.pop():
            setattr(norm, name, buffer)


def set_recompute(net: nn.Module, enabled: bool) -> None:
    """Recompute (or not) the relaxed evaluation of every decision point of `net` in the backward."""
    for module in net.modules():
        if isinstance(module, Recomputable):
            module.recompute = enabled


@contextlib.contextmanager
def recomputing(net: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """`set_recompute(net, enabled)` for the block, restored after it."""
    before = [(module, module.recompute) for module in net.modules() if isinstance(module, Recomputable)]
    set_recompute(net, enabled)
    try:
        yield net
    finally:
        for module, value in before:
            module.recompute = value


def images_interact(net: nn.Module) -> bool:
    """Whether one image's output depends on the other images of its batch: a BatchNorm normalising by
    batch statistics (training mode, or no running statistics). Only where none does is a micro-batch's
    gradient a piece of the batch's, so that micro-batches whose gradients accumulate give the batch's."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or m.running_mean is None)
               for m in net.modules())
