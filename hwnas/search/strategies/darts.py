"""DARTS: the softmax relaxation, differentiated first order, second order (the unrolled step) or
Amended-DARTS (`hwnas.estimators.darts`); the supernet trains the softmax mixture."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hwnas.estimators import ArchitectureDistribution, darts_gradient
from hwnas.objectives import cross_entropy
from hwnas.search.strategies.base import ArchContext, ArchStepReport, Strategy, latency_outcome
from hwnas.search.strategies.registry import register_strategy

if TYPE_CHECKING:
    from hwnas.search.sections import EstimatorConfig


@register_strategy("darts")
class Darts(Strategy):
    samples = False
    trains = "softmax mixture"
    supernet_rule = "sample"
    owns = {"darts_order": ("first", "<value> applies to {estimator.accuracy} darts only, not <chosen>")}

    def training_weights(self, estimator: EstimatorConfig, dist: ArchitectureDistribution, tau: float) -> dict[str, Tensor]:
        with torch.no_grad():
            return dict(dist.probabilities())  # type: ignore[arg-type]

    def gradient(self, ctx: ArchContext, dist: ArchitectureDistribution) -> tuple[dict[str, Tensor], ArchStepReport]:
        names = list(ctx.logits)
        alphas = [ctx.logits[name] for name in names]

        def soft() -> dict[str, Tensor]:
            return {name: torch.softmax(alpha, dim=-1) for name, alpha in zip(names, alphas, strict=True)}

        def train_loss() -> Tensor:
            return cross_entropy(ctx.net(ctx.train_batch[0], soft()), ctx.train_batch[1])

        weights = [p for p in ctx.net.parameters() if p.requires_grad]
        result = darts_gradient(
            ctx.estimator.darts_order, train_loss, lambda: ctx.accuracy(soft()), weights, alphas,
            eta=ctx.estimator.amended_eta, xi=ctx.w_lr,
        )
        grads = dict(zip(names, result.total, strict=True))
        latency = latency_outcome(ctx, dist)
        if latency is not None:
            extra = torch.autograd.grad(latency.surrogate, alphas, allow_unused=True)
            grads = {n: g if e is None else g + e for (n, g), e in zip(grads.items(), extra, strict=True)}
        report = ArchStepReport(result.val_loss, ctx.accuracy.last_val_loss, ctx.accuracy.last_val_acc, None, latency)
        return grads, report
