"""Accuracy of an architecture with weights inherited from a supernet (SPOS, Guo et al. 2020, Sec. 3.3).

A one-shot search ranks architectures by their accuracy with the supernet's
weights, with no training of their own. The weights transfer exactly (the
space's `extract_subnet` copies the chosen path into a standalone network),
but the BatchNorm running statistics do not: in the supernet each BN layer
averaged over every path that ran through it, so its statistics describe a
mixture of networks, not this one. SPOS therefore recomputes them for each
architecture on a few training batches before evaluating; without that an
architecture is judged partly by how far its activations are from the mixture.

Here: `calibration_batches` draws the batches once (the same batches for every
architecture, so the comparison is fair); `recalibrate_batchnorm` resets each
BN layer and averages the batch statistics over them with ``momentum=None``
(PyTorch's cumulative moving average: the running mean becomes the mean of the
per-batch means, the running variance the mean of the per-batch unbiased
variances); `inherited_score` puts the three steps together and evaluates on a
split (search-val by default: a search may look at it, never at test). The
supernet itself is left untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hwnas.datasets import DataSplits, FolderSplits
from hwnas.errors import UsageError
from hwnas.search.train import fit
from hwnas.train.steps import evaluate
from profilers import torch_threads
from search_spaces import Architecture, SearchSpace

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class InheritedScore:
    """One architecture judged with inherited weights: loss in nats, accuracy in [0, 1]."""

    loss: float
    accuracy: float
    split: str
    bn_batches: int

    def to_dict(self) -> dict[str, float | int | str]:
        return dict(self.__dict__)


def calibration_batches(data: DataSplits | FolderSplits, count: int, batch_size: int, *, seed: int = 0) -> list[Batch]:
    """The first `count` batches of a seeded shuffle of search-train: BN statistics are computed on these."""
    if count < 1 or batch_size < 2:
        raise UsageError(f"BN recalibration needs at least 1 batch of at least 2 images; got {count} x {batch_size}")
    batches = list(islice(iter(data.loader("train", batch_size, shuffle=True, seed=seed)), count))
    if len(batches) < count:
        raise UsageError(f"search-train holds only {len(batches)} batches of {batch_size}; ask for fewer BN batches")
    return batches


def calibration_batches_up_to(data: DataSplits | FolderSplits, count: int, batch_size: int, *, seed: int = 0) -> list[Batch]:
    """`calibration_batches`, fewer (at least one) when search-train holds fewer than `count` batches."""
    return calibration_batches(data, max(1, min(count, len(data.split("train")) // batch_size)), batch_size, seed=seed)


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[Batch], device: torch.device | str = "cpu") -> int:
    """Replace every BN layer's running statistics by their cumulative average over `batches`.

    Only the BN layers run in training mode (dropout and drop-path stay off, as at evaluation);
    each layer's momentum is restored afterwards. Returns the number of batches used.
    """
    layers = batchnorm_layers(model)
    momenta = [layer.momentum for layer in layers]
    was_training = model.training
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
        layer.train()
    used = 0
    try:
        for images, _ in batches:
            model(images.to(device))
            used += 1
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        model.train(was_training)
    return used


def inherited_network(space: SearchSpace, supernet: nn.Module, arch: Architecture) -> nn.Module:
    """The standalone network of `arch` carrying the supernet's weights (a copy; the supernet is unchanged)."""
    return space.extract_subnet(supernet, arch)


def inherited_score(
    space: SearchSpace,
    supernet: nn.Module,
    arch: Architecture,
    data: DataSplits | FolderSplits,
    *,
    batches: Sequence[Batch] | None = None,
    bn_batches: int = 10,
    batch_size: int = 64,
    split: str = "val",
    seed: int = 0,
    device: str = "cpu",
    threads: int | None = 1,
) -> InheritedScore:
    """Loss and accuracy of `arch` on `split` with inherited weights and recalibrated BN.

    Pass the same `batches` (from `calibration_batches`) when scoring many architectures;
    otherwise `bn_batches` batches of `batch_size` are drawn with `seed`.
    """
    with torch_threads(threads):
        where = torch.device(device)
        if batches is None:
            batches = calibration_batches(data, bn_batches, batch_size, seed=seed)
        network = inherited_network(space, supernet, arch).to(where)
        used = recalibrate_batchnorm(network, batches, where)
        loss, accuracy = evaluate(network, _eval_loader(data, split), where)
    return InheritedScore(loss, accuracy, split, used)


def finetuned_score(space: SearchSpace, supernet: nn.Module, arch: Architecture, data: DataSplits, *, steps: int,
                    batch_size: int = 32, lr: float = 0.05, seed: int = 0, split: str = "val",
                    threads: int | None = 1) -> InheritedScore:
    """Loss and accuracy on `split` of `arch` after `steps` of the standalone recipe (`hwnas.search.train.fit`)
    from its inherited weights, on search-train only. Why: a supernet that cannot rank networks of one latency by
    their inherited weights (docs/benchmark-log.md, "A fresh judge for the GDAS verdict's networks") may still
    give each a start from which a short training tells them apart, at a fraction of a standalone training."""
    with torch_threads(threads):
        network = inherited_network(space, supernet, arch)
        fit(network, data.train, steps=steps, batch_size=batch_size, lr=lr, seed=seed)
        loss, accuracy = evaluate(network, _eval_loader(data, split), torch.device("cpu"))
    return InheritedScore(loss, accuracy, split, steps)


def _eval_loader(data: DataSplits | FolderSplits, split: str) -> DataLoader:
    dataset = data.split(split)
    if isinstance(dataset, TensorDataset):  # whole split in a few large batches: evaluation is the cost here
        return DataLoader(dataset, batch_size=500, shuffle=False)
    return data.loader(split, 256, shuffle=False)
