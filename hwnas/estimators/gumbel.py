"""Gumbel noise, the Gumbel-max sample, its relaxation and the conditional relaxation.

Notation of docs/design.md#41-notation, per decision: theta = softmax(phi),
``z = log theta + G`` with ``G = -log(-log u)``, ``b = onehot(argmax z)``,
``zeta = softmax(z / tau)``. We carry the noise as ``log e`` with
``e = -log u ~ Exp(1)``, so ``G = -log e``: this keeps every formula in
log space and makes the conditional sample's inverse exact.

Conditional relaxed sample ``zeta~ ~ r(zeta | b)`` (REBAR, Tucker et al. 2017,
UNAS Eq. 3), from exponentials ``e' = -log v``::

    z~_b = -log(e'_b)                                 (= -log(-log v_b))
    z~_i = -log(e'_i / theta_i + e'_b)    for i != b  (= -log(-log v_i / theta_i - log v_b))

Two ways to choose ``v`` are both unbiased (each estimator term is an
expectation under the right marginal); this module offers both:

* ``"reuse"`` (default; the REBAR paper's correlated choice and what the
  public UNAS code does): ``v`` is the uniform that maps back to the *same*
  ``z`` given ``b``, obtained by inverting the formulas above with theta
  detached: ``e'_b = exp(-z_b)``, ``e'_i = theta_i (exp(-z_i) - exp(-z_b))``.
  Given ``b`` this ``v`` is uniform and independent of ``b`` (the conditional
  map is a bijection onto ``{argmax z = b}``), so ``zeta~`` equals ``zeta`` in
  value and only its gradient path differs. Why it is the default: the
  network-weight gradients of ``L(zeta) - L(zeta~)`` then cancel exactly, so
  weights get exactly ``dL(b)/dw``. It does *not* lower the variance of the
  architecture gradient on our toys (fresh ``v`` was 5-10 % lower at
  tau = 0.5; benchmarks/estimator_variance.py).
* ``"fresh"``: ``v ~ U(0,1)^K`` drawn anew (the textbook form).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

import torch
from torch import Tensor

from hwnas.estimators.distribution import ArchitectureDistribution, DecisionKey, Logits, as_distribution

Conditional = Literal["reuse", "fresh"]
Temperature = Union[float, Tensor]


def log_exponential_noise(shape: Sequence[int], like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``log e`` with ``e = -log u``, ``u ~ U(0,1)``: minus a standard Gumbel variate."""
    u = torch.rand(tuple(shape), dtype=like.dtype, device=like.device, generator=generator)
    u = u.clamp_min(torch.finfo(like.dtype).tiny)
    return torch.log(-torch.log(u))


def perturb(log_theta: Tensor, sample_shape: Sequence[int], generator: torch.Generator | None = None) -> Tensor:
    """``z = log theta + G`` of shape ``sample_shape + log_theta.shape``; ``argmax z ~ Categorical(theta)``."""
    shape = (*sample_shape, *log_theta.shape)
    return log_theta - log_exponential_noise(shape, log_theta, generator)


def conditional_perturbation(log_theta: Tensor, index: Tensor, log_e: Tensor) -> Tensor:
    """``z~`` given the hard choice ``index`` from log-exponentials ``log e'`` (formula above)."""
    log_e_b = log_e.gather(-1, index.unsqueeze(-1))  # log e'_b = -z~_b
    others = -torch.logaddexp(log_e - log_theta, log_e_b)
    is_b = torch.nn.functional.one_hot(index, log_theta.shape[-1]).bool()
    return torch.where(is_b, -log_e_b.expand_as(others), others)


def invert_conditional(z: Tensor, log_theta: Tensor, index: Tensor) -> Tensor:
    """The ``log e'`` for which `conditional_perturbation` returns ``z`` again (all detached)."""
    z, log_theta = z.detach(), log_theta.detach()
    z_b = z.gather(-1, index.unsqueeze(-1))
    gap = (z - z_b).clamp_max(0.0)  # z_i - z_b <= 0; equality only at i = b
    is_b = torch.nn.functional.one_hot(index, z.shape[-1]).bool()
    # log e'_i = log theta_i - z_i + log(1 - exp(z_i - z_b)); log e'_b = -z_b
    others = log_theta - z + torch.log(-torch.expm1(gap.masked_fill(is_b, -1.0)))
    return torch.where(is_b, -z_b.expand_as(z), others)


@dataclass(frozen=True)
class HardSample:
    """One or many architectures ``b`` drawn from p_phi.

    ``index[e]`` has shape ``batch``; ``hard[e]`` is the constant one-hot
    (no gradient path to phi: pass it to a supernet for ``L(b)``);
    ``log_prob`` is differentiable wrt the logits; ``score[e]`` is the closed
    form ``d log p(b) / d phi_e = onehot(b_e) - theta_e``.
    """

    distribution: ArchitectureDistribution
    index: dict[DecisionKey, Tensor]
    hard: dict[DecisionKey, Tensor]
    log_prob: Tensor
    score: dict[DecisionKey, Tensor]

    def packed_hard(self):
        return self.distribution.pack(self.hard)


@dataclass(frozen=True)
class RelaxedSample(HardSample):
    """A Gumbel-max sample with its relaxation and conditional relaxation.

    ``relaxed[e] = zeta_e = softmax(z_e / tau)`` and ``conditional[e] = zeta~_e``
    (see the module docstring for the variant), both reparameterised: they
    carry gradients to the logits and to ``tau`` when it is a tensor.
    """

    relaxed: dict[DecisionKey, Tensor]
    conditional: dict[DecisionKey, Tensor]
    tau: Temperature
    variant: Conditional

    def packed_relaxed(self):
        return self.distribution.pack(self.relaxed)

    def packed_conditional(self):
        return self.distribution.pack(self.conditional)

    def straight_through(self) -> dict[DecisionKey, Tensor]:
        """GDAS weights: value ``b``, gradient of ``zeta``: ``b - zeta.detach() + zeta``."""
        return {k: self.hard[k] - z.detach() + z for k, z in self.relaxed.items()}


def sample_relaxed(
    logits: Logits | ArchitectureDistribution,
    tau: Temperature = 0.5,
    *,
    sample_shape: Sequence[int] = (),
    generator: torch.Generator | None = None,
    conditional: Conditional = "reuse",
) -> RelaxedSample:
    """Draw ``b`` by Gumbel-max with its ``zeta`` and ``zeta~``, all decisions at once.

    Output shapes are ``sample_shape + batch_shape (+ (K_e,))``. Temperatures
    may be a Python float or a (positive) tensor, e.g. ``exp(log_tau)`` being tuned.
    A ``generator`` must live on the logits' device.
    """
    if conditional not in ("reuse", "fresh"):
        raise ValueError(f"conditional must be 'reuse' or 'fresh', got {conditional!r}")
    dist = as_distribution(logits)
    index, relaxed, cond = {}, {}, {}
    for k, log_theta in dist.log_probabilities().items():
        z = perturb(log_theta, sample_shape, generator)
        index[k] = z.detach().argmax(-1)
        relaxed[k] = torch.softmax(z / tau, dim=-1)
        if conditional == "reuse":
            log_e = invert_conditional(z, log_theta, index[k])
        else:
            log_e = log_exponential_noise(z.shape, log_theta, generator)
        cond[k] = torch.softmax(conditional_perturbation(log_theta, index[k], log_e) / tau, dim=-1)
    return RelaxedSample(
        distribution=dist,
        index=index,
        hard=dist.one_hot(index),
        log_prob=dist.log_prob(index),
        score=dist.score(index),
        relaxed=relaxed,
        conditional=cond,
        tau=tau,
        variant=conditional,
    )


def sample_hard(
    logits: Logits | ArchitectureDistribution,
    *,
    sample_shape: Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> HardSample:
    """Draw ``b ~ p_phi`` without relaxations (REINFORCE needs nothing more)."""
    dist = as_distribution(logits)
    index = dist.sample(sample_shape, generator)
    return HardSample(dist, index, dist.one_hot(index), dist.log_prob(index), dist.score(index))


