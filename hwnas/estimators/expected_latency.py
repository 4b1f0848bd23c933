"""The linear latency model ``g(x) = bias + sum_e coef_e . x_e`` and the expected-LUT baseline.

``g`` evaluated on relaxed one-hots is RELAX's control variate (UNAS Sec. 3.1:
"we use a simple linear function to represent g"). Its expectation under the
categorical, ``E_p[g(b)] = bias + sum_e theta_e . coef_e``, is the
differentiable latency of FBNet / ProxylessNAS. That gradient is exact for
``E_p[L(b)]`` only when ``L`` is additive over decisions; any interaction
(fusion, kernel selection) is a bias it cannot see — the biased baseline that
RELAX with the *measured* latency removes.

Where the search returns a pruned network (DARTS: per node two input edges keep
their op, the rest become `none`), the expectation over every decision prices
networks the search never returns: on the cluttered-MNIST cell space it reads
13.1 ms at uniform while uniform genotypes average 9.5. `kept` then prices the
pruned network instead: per group `keep` decisions drawn without replacement
with probability proportional to their non-dropped mass, each with its
renormalised non-dropped choice; the rest at the dropped choice. At uniform
logits that is the uniform genotype the device profile measures.

Units are the caller's (milliseconds for latency). Coefficients are packed like
the logits (mapping by name, or sequence by position).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor

from hwnas.estimators.distribution import ArchitectureDistribution, DecisionKey, Logits, as_distribution

Coefficients = Union[Mapping[str, Tensor], Sequence[Tensor]]


def _items(values: Mapping | Sequence) -> dict[DecisionKey, Tensor]:
    return dict(values.items()) if hasattr(values, "items") else dict(enumerate(values))


@dataclass(frozen=True)
class LinearSurrogate:
    """``g(x) = bias + sum_e sum_k coef_ek x_ek`` for one-hot, relaxed or multi-hot ``x``."""

    bias: float
    coefficients: Coefficients

    def __call__(self, weights: Mapping | Sequence) -> Tensor:
        coefs, xs = _items(self.coefficients), _items(weights)
        if set(coefs) != set(xs):
            raise ValueError(f"decisions differ: surrogate has {sorted(map(str, coefs))}, weights have {sorted(map(str, xs))}")
        terms = [(xs[k] * coefs[k].to(xs[k])).sum(-1) for k in coefs]
        return self.bias + torch.stack(torch.broadcast_tensors(*terms)).sum(0)

    @classmethod
    def fit(cls, logits: Logits | ArchitectureDistribution, index: Mapping[DecisionKey, Tensor], targets: Tensor) -> LinearSurrogate:
        """Least-squares fit on one-hot features (minimum-norm: one-hots of a decision sum to one)."""
        dist = as_distribution(logits)
        hard = dist.one_hot(index)
        features = torch.cat([torch.ones_like(targets).unsqueeze(-1)] + [hard[k] for k in dist.keys], dim=-1)
        solution = torch.linalg.pinv(features) @ targets
        sizes = [1] + [dist.cardinalities[k] for k in dist.keys]
        parts = torch.split(solution.detach(), sizes)
        coefs = dict(zip(dist.keys, parts[1:]))
        packed = dist.pack(coefs)
        return cls(bias=float(parts[0]), coefficients=packed)


@dataclass(frozen=True)
class Kept:
    """Per group, `keep` decisions keep a choice other than `dropped` (an index); the others take `dropped`."""

    groups: Sequence[Sequence[DecisionKey]]
    keep: int
    dropped: int


def inclusion_probabilities(weights: Tensor, keep: int) -> Tensor:
    """P(item i is among `keep` items drawn without replacement, each draw with probability proportional
    to `weights` of the items left). Exact, by summing over the ordered draws (a DARTS node has <= 5 items)."""
    count = weights.shape[-1]
    total = weights.sum(-1)
    included = [torch.zeros_like(total) for _ in range(count)]
    for order in itertools.permutations(range(count), min(keep, count)):
        probability, left = torch.ones_like(total), total
        for item in order:
            probability = probability * weights[..., item] / left
            left = left - weights[..., item]
        for item in order:
            included[item] = included[item] + probability
    return torch.stack(included, -1)


def expected_latency(logits: Logits | ArchitectureDistribution, model: LinearSurrogate, kept: Kept | None = None) -> Tensor:
    """FBNet / ProxylessNAS: ``E_p[g(b)] = bias + sum_e theta_e . LUT_e``, differentiable wrt phi; with
    `kept`, the expectation of g over the pruned networks (module docstring)."""
    dist = as_distribution(logits)
    probabilities = dist.probabilities()
    if kept is None:
        return model(dist.pack(probabilities))
    coefs = _items(model.coefficients)
    if not isinstance(model.coefficients, Mapping):
        coefs = {key: coefs[position] for position, key in enumerate(dist.keys)}
    grouped = {key for group in kept.groups for key in group}
    total = model.bias + sum((probabilities[k] * coefs[k].to(probabilities[k])).sum(-1)
                             for k in dist.keys if k not in grouped)
    for group in kept.groups:
        p = torch.stack([probabilities[k] for k in group])  # (edges, choices)
        w = torch.stack([coefs[k].to(p) for k in group])
        others = torch.ones(p.shape[-1], dtype=torch.bool, device=p.device)
        others[kept.dropped] = False
        mass = p[:, others].sum(-1).clamp_min(torch.finfo(p.dtype).tiny)
        kept_cost = (p[:, others] * w[:, others]).sum(-1) / mass
        included = inclusion_probabilities(mass, kept.keep)
        total = total + (included * kept_cost + (1 - included) * w[:, kept.dropped]).sum()
    return total
