"""Exact ``E_p[f(b)]`` and its gradient by enumerating every architecture.

Only for small toys (prod_e K_e architectures): it is the ground truth that
makes "unbiased" a test rather than a claim (docs/design.md#48-how-the-estimators-are-tested).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hwnas.estimators.distribution import ArchitectureDistribution, DecisionKey, Logits, WeightsFn, as_distribution


def enumerate_architectures(logits: Logits | ArchitectureDistribution) -> dict[DecisionKey, Tensor]:
    """Indices of all architectures, each of shape ``(prod_e K_e,)``, first decision slowest."""
    dist = as_distribution(logits)
    ranges = [torch.arange(k, device=t.device) for k, t in zip(dist.cardinalities.values(), dist.logits.values())]
    grid = torch.cartesian_prod(*ranges) if len(ranges) > 1 else ranges[0].unsqueeze(-1)
    return {key: grid[:, i] for i, key in enumerate(dist.keys)}


def exact_expectation(logits: Logits | ArchitectureDistribution, f: WeightsFn) -> Tensor:
    """``sum_b p_phi(b) f(b)``, differentiable wrt the (unbatched) logits.

    ``f`` gets the packed one-hots of all architectures (batch ``N``) and
    returns ``N`` values.
    """
    dist = as_distribution(logits)
    if dist.batch_shape:
        raise ValueError("exact enumeration needs unbatched logits (one K-vector per decision)")
    index = enumerate_architectures(dist)
    values = f(dist.pack(dist.one_hot(index))).detach()
    return (dist.log_prob(index).exp() * values).sum()


def exact_gradient(logits: Logits | ArchitectureDistribution, f: WeightsFn) -> dict[DecisionKey, Tensor]:
    """``d E_p[f(b)] / d phi_e`` for every decision."""
    dist = as_distribution(logits)
    leaves = {k: t.detach().clone().requires_grad_(True) for k, t in dist.logits.items()}
    leaf_dist = ArchitectureDistribution(dist.pack(leaves))
    grads = torch.autograd.grad(exact_expectation(leaf_dist, f), list(leaves.values()))
    return dict(zip(leaves, grads))
