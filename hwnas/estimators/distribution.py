"""The architecture distribution: independent categorical decisions.

An architecture is one choice per decision (a layer's op, a factorized-cell
input or op selector, ...). UNAS Sec. 3 assumes the factorial form
``p_phi(z) = prod_e p_phi_e(z_e)`` with ``p_phi_e = Categorical(softmax(phi_e))``;
this class is exactly that, and nothing about networks.

Logits come as a mapping ``name -> tensor(..., K_e)`` (``nn.ParameterDict``
included) or a sequence of such tensors; every decision may have its own number of choices ``K_e``, and all
share the same leading batch shape (usually none: one architecture at a
time). Values handed back to user callables (one-hot, relaxed or multi-hot
weights) are packed in the same container kind as the logits, so a search
loop that keys decisions by name gets names back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable, Union

import torch
from torch import Tensor

DecisionKey = Union[str, int]
Logits = Union[Mapping[str, Tensor], Sequence[Tensor]]
Packed = Union[dict[str, Tensor], list[Tensor]]
WeightsFn = Callable[[Any], Tensor]
"""A loss or control variate of the per-decision weight vectors (packed like the
logits, each of shape ``batch + (K_e,)``) returning one value per batch element."""


class ArchitectureDistribution:
    """``p_phi(b) = prod_e softmax(phi_e)[b_e]`` over independent decisions.

    The logits are kept by reference (not copied), so gradients of anything
    computed here flow to the caller's parameters.
    """

    def __init__(self, logits: Logits) -> None:
        if isinstance(logits, Mapping) or hasattr(logits, "items"):  # nn.ParameterDict is no Mapping
            self._keyed = True
            items = list(logits.items())
        else:
            self._keyed = False
            items = list(enumerate(logits))
        if not items:
            raise ValueError("an architecture distribution needs at least one decision")
        self.logits: dict[DecisionKey, Tensor] = dict(items)
        batch_shapes = {tuple(t.shape[:-1]) for t in self.logits.values()}
        if len(batch_shapes) != 1:
            raise ValueError(f"all decisions must share one batch shape, got {sorted(batch_shapes)}")
        for key, tensor in self.logits.items():
            if tensor.dim() == 0 or tensor.shape[-1] < 1:
                raise ValueError(f"decision {key!r}: logits need a last dimension of choices, got {tuple(tensor.shape)}")
        self.batch_shape: torch.Size = torch.Size(batch_shapes.pop())

    @property
    def keys(self) -> tuple[DecisionKey, ...]:
        return tuple(self.logits)

    @property
    def cardinalities(self) -> dict[DecisionKey, int]:
        """Number of choices K_e of each decision."""
        return {k: t.shape[-1] for k, t in self.logits.items()}

    def pack(self, values: Mapping[DecisionKey, Tensor]) -> Packed:
        """Per-decision values in the container kind the logits came in."""
        if self._keyed:
            return {k: values[k] for k in self.keys}  # type: ignore[misc]
        return [values[k] for k in self.keys]

    def probabilities(self) -> dict[DecisionKey, Tensor]:
        """theta_e = softmax(phi_e)."""
        return {k: torch.softmax(t, dim=-1) for k, t in self.logits.items()}

    def log_probabilities(self) -> dict[DecisionKey, Tensor]:
        """log theta_e = log_softmax(phi_e)."""
        return {k: torch.log_softmax(t, dim=-1) for k, t in self.logits.items()}

    def sample(self, sample_shape: Sequence[int] = (), generator: torch.Generator | None = None) -> dict[DecisionKey, Tensor]:
        """Choice indices b_e of shape ``sample_shape + batch_shape`` (no gradient)."""
        out = {}
        for k, log_theta in self.log_probabilities().items():
            flat = log_theta.detach().exp().reshape(-1, log_theta.shape[-1])
            n = int(torch.Size(sample_shape).numel())
            draws = torch.multinomial(flat, n, replacement=True, generator=generator)  # (batch, n)
            # A tuple, not unpacked arguments: reshape() with no arguments is a TypeError when both are ().
            out[k] = draws.T.reshape(tuple(sample_shape) + tuple(self.batch_shape))
        return out

    def one_hot(self, index: Mapping[DecisionKey, Tensor]) -> dict[DecisionKey, Tensor]:
        """Constant one-hot vectors of the indices, in the logits' dtype."""
        return {
            k: torch.nn.functional.one_hot(index[k], t.shape[-1]).to(t.dtype)
            for k, t in self.logits.items()
        }

    def log_prob(self, index: Mapping[DecisionKey, Tensor]) -> Tensor:
        """log p_phi(b) = sum_e log theta_e[b_e], differentiable wrt the logits."""
        terms = [
            log_theta.expand(*index[k].shape, log_theta.shape[-1]).gather(-1, index[k].unsqueeze(-1)).squeeze(-1)
            for k, log_theta in self.log_probabilities().items()
        ]
        return torch.stack(terms).sum(0)

    def score(self, index: Mapping[DecisionKey, Tensor]) -> dict[DecisionKey, Tensor]:
        """Closed form d log p_phi(b) / d phi_e = onehot(b_e) - theta_e (no autograd).

        Why: per-sample score functions for thousands of samples in one tensor
        op, and a constant factor in the variance objective of `tuning`.
        """
        hard = self.one_hot(index)
        return {k: hard[k] - theta.detach() for k, theta in self.probabilities().items()}

    def entropy(self) -> Tensor:
        """H(p_phi) = sum_e -sum_k theta_ek log theta_ek, shape ``batch_shape``."""
        terms = [-(lt.exp() * lt).sum(-1) for lt in self.log_probabilities().values()]
        return torch.stack(terms).sum(0)

    def argmax(self) -> dict[DecisionKey, Tensor]:
        """The derived architecture: the most probable choice of every decision."""
        return {k: t.detach().argmax(-1) for k, t in self.logits.items()}


def as_distribution(logits: Logits | ArchitectureDistribution) -> ArchitectureDistribution:
    return logits if isinstance(logits, ArchitectureDistribution) else ArchitectureDistribution(logits)
