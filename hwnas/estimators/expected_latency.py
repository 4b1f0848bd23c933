"""The linear latency model ``g(x) = bias + sum_e coef_e . x_e`` and the expected-LUT baseline.

``g`` evaluated on relaxed one-hots is RELAX's control variate (UNAS Sec. 3.1:
"we use a simple linear function to represent g"). Its expectation under the
categorical, ``E_p[g(b)] = bias + sum_e theta_e . coef_e``, is the
differentiable latency of FBNet / ProxylessNAS. That gradient is exact for
``E_p[L(b)]`` only when ``L`` is additive over decisions; any interaction
(fusion, kernel selection) is a bias it cannot see — the biased baseline that
RELAX with the *measured* latency removes.

Units are the caller's (milliseconds for latency). Coefficients are packed like
the logits (mapping by name, or sequence by position).
"""

from __future__ import annotations

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


def expected_latency(logits: Logits | ArchitectureDistribution, model: LinearSurrogate) -> Tensor:
    """FBNet / ProxylessNAS: ``E_p[g(b)] = bias + sum_e theta_e . LUT_e``, differentiable wrt phi."""
    dist = as_distribution(logits)
    return model(dist.pack(dist.probabilities()))
