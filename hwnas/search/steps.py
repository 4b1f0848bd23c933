"""One weight step and one architecture step (GDAS Alg. 1 / UNAS Sec. 3.2).

Weight step: the supernet weights w descend L_train on a search-train batch
at the weights the strategy trains with (softmax for DARTS, a soft Gumbel
sample for SNAS, the hard sample b for GDAS / REINFORCE / REBAR — single
path, so only the sampled ops run — and the multi-hot ensemble for EGS).

Architecture step: the logits phi get the strategy's gradient of
accuracy term + latency term on a search-val batch; Adam applies it.
What each estimator does is its strategy's (`hwnas.search.strategies`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from hwnas.estimators import ArchitectureDistribution
from hwnas.objectives import accuracy, cross_entropy
from hwnas.search.config import SearchConfig
from hwnas.search.paths import TrainingPaths, distillation_loss
from hwnas.search.strategies import ArchContext, ArchStepReport, get_strategy
from hwnas.search.terms import Batch, check_pieces_exact, chunks

__all__ = ["ArchContext", "ArchStepReport", "arch_step", "architecture_gradient", "weight_step", "weights_for_training"]


def weights_for_training(config: SearchConfig, dist: ArchitectureDistribution, tau: float) -> dict[str, Tensor]:
    """The (detached) per-decision weights the supernet is trained at in this step (the strategy's)."""
    return get_strategy(config.estimator.accuracy).training_weights(config.estimator, dist, tau)


def weight_step(
    net: nn.Module, optimizer: torch.optim.Optimizer, paths: Mapping[str, Tensor] | TrainingPaths, batch: Batch,
    clip: float = 5.0, micro_batch: int | None = None,
) -> tuple[float, float]:
    """One SGD step of the supernet weights on one batch; returns the first path's (loss in nats, accuracy).

    `paths` is one path's weights or a rule's `TrainingPaths`: the gradients of all its paths add
    up into one update (the first on the labels; with `distill` the others on its predictions).
    `micro_batch` (None: the whole batch) runs the batch in pieces whose gradients, each weighted by
    its share of the batch, accumulate into the one update: the batch's gradient where images do not
    interact; a network with BatchNorm normalising by batch statistics is refused (`check_pieces_exact`)."""
    if micro_batch is not None and micro_batch < len(batch[0]):
        check_pieces_exact(net, micro_batch)
    if not isinstance(paths, TrainingPaths):
        paths = TrainingPaths((dict(paths),))
    optimizer.zero_grad(set_to_none=True)
    total = len(batch[0])
    loss_sum, correct = 0.0, 0.0
    for images, labels in chunks(batch, micro_batch):
        share = len(images) / total
        teacher = net(images, paths.paths[0])
        loss = cross_entropy(teacher, labels)
        (loss * share).backward()
        for weights in paths.paths[1:]:
            logits = net(images, weights)
            extra = distillation_loss(logits, teacher) if paths.distill else cross_entropy(logits, labels)
            (extra * share).backward()
        loss_sum += float(loss.detach()) * share
        correct += accuracy(teacher.detach(), labels) * share
    nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], clip)
    optimizer.step()
    return loss_sum, correct


def architecture_gradient(ctx: ArchContext) -> tuple[dict[str, Tensor], ArchStepReport]:
    """The estimator's gradient of accuracy + latency terms wrt every decision's logits, for one step
    (what `arch_step` applies; benchmarks/arch_gradient_snr.py draws it many times to measure its noise)."""
    return get_strategy(ctx.estimator.accuracy).gradient(ctx, ArchitectureDistribution(ctx.logits))


def arch_step(ctx: ArchContext, optimizer: torch.optim.Optimizer) -> ArchStepReport:
    """Compute the estimator's gradient wrt the logits and take one optimizer step."""
    names = list(ctx.logits)
    grads, report = architecture_gradient(ctx)
    with ctx.clock("optimizer"):
        optimizer.zero_grad(set_to_none=True)
        for name in names:
            ctx.logits[name].grad = grads[name].detach().to(ctx.logits[name].dtype)
        optimizer.step()
    return report
