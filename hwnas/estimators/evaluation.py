"""Many independent gradient estimates at once, and their bias and variance.

Each estimate gets its own copy of the logits (a leaf of shape ``(n, K_e)``),
so one ``surrogate.sum().backward()`` yields ``n`` per-sample gradients in a
handful of batched tensor ops — thousands of estimates in well under a second
on a toy, for tests and `benchmarks/estimator_variance.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from hwnas.estimators.distribution import ArchitectureDistribution, DecisionKey, as_distribution

Estimator = Callable[[ArchitectureDistribution], Tensor]
"""Builds the surrogate (shape ``(n,)``) of a distribution whose logits have batch ``(n,)``."""


def per_sample_gradients(logits: Mapping[DecisionKey, Tensor] | ArchitectureDistribution, n: int, estimator: Estimator) -> dict[DecisionKey, Tensor]:
    """``n`` independent estimates, each of shape ``(n, K_e)`` per decision."""
    dist = as_distribution(logits)
    leaves = {k: t.detach().expand(n, *t.shape).clone().requires_grad_(True) for k, t in dist.logits.items()}
    surrogate = estimator(ArchitectureDistribution(dist.pack(leaves)))
    if surrogate.shape != (n,):
        raise ValueError(f"the estimator must return one surrogate per sample, shape ({n},), got {tuple(surrogate.shape)}")
    grads = torch.autograd.grad(surrogate.sum(), list(leaves.values()), allow_unused=True)
    return {k: torch.zeros_like(leaf) if g is None else g for (k, leaf), g in zip(leaves.items(), grads)}


def flatten(values: Mapping[DecisionKey, Tensor]) -> Tensor:
    """Concatenate per-decision vectors along the last dimension."""
    return torch.cat(list(values.values()), dim=-1)


@dataclass(frozen=True)
class EstimateStatistics:
    """Monte-Carlo summary of ``n`` estimates of a flattened gradient.

    ``z`` = (mean - exact) / standard error per coordinate (+-inf for a
    deterministic estimator that misses); ``variance`` is the
    mean per-coordinate variance of one estimate; ``bias`` the norm of
    (mean - exact), ``relative_bias`` that over the norm of ``exact``.
    """

    mean: Tensor
    standard_error: Tensor
    z: Tensor
    variance: float
    bias: float
    relative_bias: float
    n: int


def summarise(estimates: Mapping[DecisionKey, Tensor], exact: Mapping[DecisionKey, Tensor]) -> EstimateStatistics:
    g = flatten(estimates).detach()
    target = flatten(exact).detach()
    n = g.shape[0]
    mean = g.mean(0)
    var = g.var(0, unbiased=True)
    se = (var / n).sqrt()
    error = mean - target
    return EstimateStatistics(
        mean=mean,
        standard_error=se,
        z=torch.where(se > 0, error / se, torch.where(error == 0, 0.0, torch.inf * error.sign())),
        variance=float(var.mean()),
        bias=float(error.norm()),
        relative_bias=float(error.norm() / target.norm().clamp_min(torch.finfo(se.dtype).tiny)),
        n=n,
    )

