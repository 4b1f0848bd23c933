"""Pathwise (reparameterised) estimators: biased, cheap, and the DNAS standard.

* Soft Gumbel-softmax (SNAS): the loss is evaluated at ``zeta = softmax(z / tau)``;
  every op runs, weighted. Its gradient is unbiased for ``E[L(zeta)]``, not for
  ``E[L(b)]`` (UNAS Sec. 3.1: SNAS is term (iii) alone).
* Hard straight-through Gumbel (GDAS Eq. 5-7): forward with ``b``, backward
  through ``zeta``: weights ``b - zeta.detach() + zeta``. Only the chosen op
  needs computing; its output is multiplied by its (value 1) weight so the
  gradient reaches phi.
* Ensemble Gumbel (DARTS-EGS Definition 1): ``M`` hard samples merged by
  element-wise max into a multi-hot code, gradient through the element-wise
  max of the ``M`` relaxed samples (straight-through on the max).

`LinearTemperature` is GDAS's linear annealing per epoch; defaults follow the
official scripts (10 -> 0.1); the paper's text says 10 -> 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from hwnas.estimators.distribution import ArchitectureDistribution, DecisionKey, Logits, WeightsFn, as_distribution
from hwnas.estimators.gumbel import Temperature, perturb, sample_relaxed


@dataclass(frozen=True)
class LinearTemperature:
    """``tau(epoch) = start + (end - start) * epoch / (epochs - 1)``, clamped to the ends."""

    epochs: int
    start: float = 10.0
    end: float = 0.1

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.start <= 0 or self.end <= 0:
            raise ValueError(f"temperatures must be positive, got start={self.start}, end={self.end}")

    def __call__(self, epoch: int) -> float:
        if self.epochs == 1:
            return self.end
        fraction = min(max(epoch, 0), self.epochs - 1) / (self.epochs - 1)
        return self.start + (self.end - self.start) * fraction


@dataclass(frozen=True)
class PathwiseResult:
    """``surrogate = L(weights)`` (shape ``batch``): its backward is the estimator.

    ``weights`` are what was fed to the loss (packed like the logits);
    ``hard`` is the discrete code behind them (one-hot, or multi-hot for the
    ensemble), detached.
    """

    surrogate: Tensor
    weights: dict[DecisionKey, Tensor]
    hard: dict[DecisionKey, Tensor]

    @property
    def loss(self) -> Tensor:
        return self.surrogate.detach()


def _evaluate(dist: ArchitectureDistribution, loss_fn: WeightsFn, weights: dict, hard: dict) -> PathwiseResult:
    return PathwiseResult(surrogate=loss_fn(dist.pack(weights)), weights=weights, hard=hard)


def gumbel_softmax(
    logits: Logits | ArchitectureDistribution,
    loss_fn: WeightsFn,
    tau: Temperature = 1.0,
    *,
    straight_through: bool = False,
    sample_shape: Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> PathwiseResult:
    """SNAS: ``d L(softmax((log theta + G) / tau)) / d phi``; with ``straight_through``, GDAS:
    the loss sees exactly ``b`` and the gradient is that of ``zeta``."""
    dist = as_distribution(logits)
    s = sample_relaxed(dist, tau, sample_shape=sample_shape, generator=generator)
    return _evaluate(dist, loss_fn, s.straight_through() if straight_through else s.relaxed, s.hard)


straight_through_gumbel = partial(gumbel_softmax, straight_through=True)
"""GDAS (hard Gumbel-softmax): `gumbel_softmax` with ``straight_through=True``."""


@dataclass(frozen=True)
class EnsembleSample:
    """``codes[e]``: the multi-hot ``max_m b^(m)``; ``relaxed[e]``: ``max_m zeta^(m)``;
    ``weights[e]``: ``codes - relaxed.detach() + relaxed`` (value = codes)."""

    codes: dict[DecisionKey, Tensor]
    relaxed: dict[DecisionKey, Tensor]
    weights: dict[DecisionKey, Tensor]


def sample_ensemble(
    logits: Logits | ArchitectureDistribution,
    num_samples: int,
    tau: Temperature = 1.0,
    *,
    sample_shape: Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> EnsembleSample:
    """DARTS-EGS Definition 1: ``p~_k = max_{1<=i<=M} z_k^(i)`` with ``M = num_samples``."""
    if num_samples < 1:
        raise ValueError(f"num_samples (M) must be >= 1, got {num_samples}")
    dist = as_distribution(logits)
    codes, relaxed, weights = {}, {}, {}
    for k, log_theta in dist.log_probabilities().items():
        z = perturb(log_theta, (num_samples, *sample_shape), generator)
        hard = torch.nn.functional.one_hot(z.detach().argmax(-1), z.shape[-1]).to(z.dtype)
        codes[k] = hard.amax(0)
        relaxed[k] = torch.softmax(z / tau, dim=-1).amax(0)
        weights[k] = codes[k] - relaxed[k].detach() + relaxed[k]
    return EnsembleSample(codes, relaxed, weights)


def ensemble_gumbel(
    logits: Logits | ArchitectureDistribution,
    loss_fn: WeightsFn,
    num_samples: int,
    tau: Temperature = 1.0,
    *,
    sample_shape: Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> PathwiseResult:
    """DARTS-EGS: the loss sees the multi-hot code; the gradient is that of the relaxed max."""
    dist = as_distribution(logits)
    s = sample_ensemble(dist, num_samples, tau, sample_shape=sample_shape, generator=generator)
    return _evaluate(dist, loss_fn, s.weights, s.codes)
