"""The test bench of every estimator: a toy objective, its exact gradient, and many estimates at once.

Used by the estimator tests and by `benchmarks/estimator_variance.py` (which puts this folder on its
path); not part of the hwnas package, since no search uses it.

- `ToyProblem`: ``D`` decisions with ``K_e`` choices each; the value of architecture ``b`` is a table
  ``T[b] = sum_e A_e[b_e] + s * R[b]``: an additive part (what a LUT can represent) plus an arbitrary
  interaction part ``R`` (what it cannot). The smooth extension to relaxed inputs is the multilinear
  one, ``f(x) = sum_b T[b] prod_e x_e[b_e]``: equal to ``T`` on one-hots, a polynomial elsewhere, so
  REBAR's ``L_d`` is differentiable as it requires.
- `exact_expectation` / `exact_gradient`: ``E_p[f(b)]`` and its gradient by enumerating every
  architecture (small toys only: prod_e K_e of them). The ground truth that makes "unbiased" a test
  rather than a claim (docs/design.md#48-how-the-estimators-are-tested).
- `per_sample_gradients` / `summarise`: each estimate gets its own copy of the logits (a leaf of shape
  ``(n, K_e)``), so one ``surrogate.sum().backward()`` yields ``n`` per-sample gradients in a handful of
  batched tensor ops (thousands of estimates in well under a second on a toy), and their bias and
  variance against the exact gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from hwnas.estimators.distribution import ArchitectureDistribution, DecisionKey, Logits, WeightsFn, as_distribution


@dataclass(frozen=True)
class ToyProblem:
    """``table`` has shape ``(K_1, ..., K_D)``; ``additive[e]`` is ``A_e``;
    ``logits`` the distribution's starting point, decisions named ``d0, d1, ...``."""

    table: Tensor
    additive: tuple[Tensor, ...]
    logits: dict[str, Tensor]

    @classmethod
    def random(cls, decisions: int = 4, choices: int | Sequence[int] = 5, interaction: float = 1.0, seed: int = 0,
               logit_scale: float = 1.0, dtype: torch.dtype = torch.float64) -> ToyProblem:
        sizes = [choices] * decisions if isinstance(choices, int) else list(choices)
        if len(sizes) != decisions:
            raise ValueError(f"{decisions} decisions but {len(sizes)} choice counts")
        g = torch.Generator().manual_seed(seed)
        additive = tuple(torch.randn(k, generator=g, dtype=dtype) for k in sizes)
        table = interaction * torch.randn(sizes, generator=g, dtype=dtype)
        for e, a in enumerate(additive):
            shape = [1] * decisions
            shape[e] = sizes[e]
            table = table + a.reshape(shape)
        logits = {f"d{e}": logit_scale * torch.randn(k, generator=g, dtype=dtype) for e, k in enumerate(sizes)}
        return cls(table=table, additive=additive, logits=logits)

    def distribution(self) -> ArchitectureDistribution:
        return ArchitectureDistribution(self.logits)

    def __call__(self, weights: Mapping[DecisionKey, Tensor]) -> Tensor:
        """The multilinear extension ``f(x)`` over batch dims of the weights."""
        xs = list(weights.values())
        batch = torch.broadcast_shapes(*(x.shape[:-1] for x in xs))
        r = xs[0] @ self.table.reshape(xs[0].shape[-1], -1)  # contract the first decision unbatched
        r = r.expand(*batch, r.shape[-1])
        for x in xs[1:]:
            k = x.shape[-1]
            r = (x.expand(*batch, k).unsqueeze(-1) * r.reshape(*batch, k, -1)).sum(-2)
        return r.squeeze(-1)

    def lookup(self, index: Mapping[DecisionKey, Tensor]) -> Tensor:
        """``T[b]`` for hard choices (no gradient): the 'measured' value."""
        return self.table[tuple(index.values())]


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
