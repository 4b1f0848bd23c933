"""Unbiased score-function estimators: REINFORCE, REBAR (UNAS Eq. 3), RELAX (UNAS Eq. 5).

All three share one surrogate (docs/design.md#43-reinforce-rebar-and-relax)::

    loss = log p(b) * stopgrad(f(b) - c~) + (c - c~)            (+ f(b) - stopgrad(f(b)))

whose gradient wrt phi is ``[f(b) - c~] d log p(b)/d phi + d c/d phi - d c~/d phi``:

* REINFORCE: ``c~`` = a constant baseline (moving average of past rewards), ``c = c~``;
* REBAR:  ``c = eta L_d(zeta)``, ``c~ = eta L_d(zeta~)`` with ``L_d`` the differentiable loss;
* RELAX:  ``c = eta g(zeta)``, ``c~ = eta g(zeta~)`` with ``g`` a differentiable surrogate
  of a non-differentiable ``L_n`` (the linear latency model on relaxed one-hots),
  and ``f(b) = L_n(b)`` e.g. the latency *measured* for ``b``.

The last term has value zero and no path to phi when ``f(b)`` is computed on the
constant one-hot ``b`` (`HardSample.hard`): it gives parameters inside the loss
(network weights) their ordinary gradient ``d f(b) / d w``. With the ``"reuse"``
conditional sample (the default, see `hwnas.estimators.gumbel`) ``zeta~ == zeta``
in value, so the weight gradients of ``c - c~`` cancel exactly. Never feed
straight-through weights to ``f(b)`` here: their phi path would add GDAS's bias.

Shapes: one value per batch element (``sample_shape + batch_shape``); the search
loop uses one architecture per step (scalar). ``surrogate.sum().backward()``
accumulates the *sum* of the per-sample estimates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch import Tensor

from hwnas.estimators.distribution import WeightsFn
from hwnas.estimators.gumbel import HardSample, RelaxedSample

Scalar = Union[float, Tensor]


@dataclass(frozen=True)
class ScoreFunctionResult:
    """The surrogate and its diagnostics.

    ``reward`` = f(b) and ``baseline`` = c~ (the value subtracted in the score
    term), ``relaxed_value`` = c (None for REINFORCE), all detached.
    ``advantage`` = f(b) - c~ and ``reparameterised`` = c - c~ keep their
    graphs (to phi, tau, eta) for `hwnas.estimators.tuning`.
    """

    surrogate: Tensor
    reward: Tensor
    baseline: Tensor
    relaxed_value: Tensor | None
    advantage: Tensor
    reparameterised: Tensor
    sample: HardSample


def control_variate_surrogate(sample: HardSample, reward: Tensor, relaxed: Tensor, conditional: Tensor) -> ScoreFunctionResult:
    """UNAS Eq. 3 / Eq. 5 from values: ``reward = f(b)``, ``relaxed = c(zeta)``, ``conditional = c(zeta~)``.

    ``c`` already includes eta (``c = eta L_d`` for REBAR, ``eta g`` for RELAX).
    For a search loop that evaluates its supernet itself, e.g. to batch the
    two relaxed forwards: ``L(b)`` on ``sample.hard``, ``c`` on
    ``sample.relaxed`` and ``sample.conditional``.
    """
    reward = torch.as_tensor(reward, dtype=sample.log_prob.dtype, device=sample.log_prob.device)
    advantage = reward.detach() - conditional
    reparameterised = relaxed - conditional
    surrogate = sample.log_prob * advantage.detach() + reparameterised + (reward - reward.detach())
    return ScoreFunctionResult(
        surrogate=surrogate,
        reward=reward.detach().expand_as(surrogate),
        baseline=conditional.detach().expand_as(surrogate),
        relaxed_value=relaxed.detach().expand_as(surrogate),
        advantage=advantage,
        reparameterised=reparameterised,
        sample=sample,
    )


def rebar(sample: RelaxedSample, loss_fn: WeightsFn, *, eta: Scalar = 1.0) -> ScoreFunctionResult:
    """REBAR for a differentiable ``L_d``: three evaluations, at ``b``, ``zeta`` and ``zeta~``.

    ``g = [L_d(b) - eta L_d(zeta~)] dlog p(b)/dphi + eta dL_d(zeta)/dphi - eta dL_d(zeta~)/dphi``.
    The search loop may instead evaluate its supernet itself and call
    `control_variate_surrogate(sample, L(b), eta * L(zeta), eta * L(zeta~))`.
    """
    return control_variate_surrogate(
        sample,
        loss_fn(sample.packed_hard()),
        eta * loss_fn(sample.packed_relaxed()),
        eta * loss_fn(sample.packed_conditional()),
    )


def relax(
    sample: RelaxedSample,
    reward: Tensor | float | Callable[[Any], Tensor],
    control_variate: WeightsFn,
    *,
    eta: Scalar = 1.0,
) -> ScoreFunctionResult:
    """RELAX for a non-differentiable ``L_n`` with a differentiable control variate ``g``.

    ``g_hat = [L_n(b) - eta g(zeta~)] dlog p(b)/dphi + eta dg(zeta)/dphi - eta dg(zeta~)/dphi``.
    ``reward`` is ``L_n(b)`` as a value (e.g. measured milliseconds) or a
    callable of the one-hot ``b``. Unbiased for any ``g``; a ``g`` correlated
    with ``L_n`` lowers the variance.
    """
    value = reward(sample.packed_hard()) if callable(reward) else reward
    return control_variate_surrogate(
        sample,
        torch.as_tensor(value, dtype=sample.log_prob.dtype, device=sample.log_prob.device),
        eta * control_variate(sample.packed_relaxed()),
        eta * control_variate(sample.packed_conditional()),
    )


def reinforce(sample: HardSample, reward: Tensor | float, baseline: Scalar = 0.0) -> ScoreFunctionResult:
    """REINFORCE (UNAS Eq. 1-2 with a constant control variate): ``(f(b) - c) dlog p(b)/dphi``.

    ``baseline`` must not depend on this ``f(b)`` (use the moving average of
    *earlier* rewards, `MovingAverageBaseline.value`, then `update`).
    """
    c = torch.as_tensor(baseline, dtype=sample.log_prob.dtype, device=sample.log_prob.device).detach()
    c = c.expand_as(sample.log_prob)
    return control_variate_surrogate(sample, reward, c, c)


class MovingAverageBaseline:
    """``c <- decay * c + (1 - decay) * mean f(b)``; the first update sets ``c = mean f(b)``.

    Stateful by design (it is the one piece of state REINFORCE carries between
    steps); ``value`` is 0 before the first update.
    """

    def __init__(self, decay: float = 0.9) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self._value: float | None = None

    @property
    def value(self) -> float:
        return 0.0 if self._value is None else self._value

    def update(self, reward: Tensor | float) -> float:
        """Fold in the mean of `reward`, taken in float64: a Python number is not rounded to float32 first
        (`torch.as_tensor(0.1)` is float32), and a float32 or integer tensor is averaged as the values it holds."""
        values = reward.detach() if isinstance(reward, Tensor) else torch.as_tensor(reward, dtype=torch.float64)
        r = float(values.double().mean())
        self._value = r if self._value is None else self.decay * self._value + (1.0 - self.decay) * r
        return self._value


def moving_average_baselines(rewards: Tensor, decay: float = 0.9) -> Tensor:
    """The baseline each reward of a sequence would have met (before its own update)."""
    tracker = MovingAverageBaseline(decay)
    out = []
    for r in rewards.detach().reshape(-1).tolist():
        out.append(tracker.value)
        tracker.update(r)
    return torch.tensor(out, dtype=rewards.dtype, device=rewards.device).reshape(rewards.shape)
