"""Gradient estimators for architecture distributions, independent of networks.

They work on per-decision logits and on loss callables of (hard, relaxed or
multi-hot) weight vectors, so each one is tested against the exact gradient of
a toy (docs/design.md#48-how-the-estimators-are-tested). Pieces:

* `ArchitectureDistribution` — independent categoricals: sample, log_prob, entropy, argmax.
* `sample_relaxed` / `sample_hard` — b, zeta, zeta~ (conditional variant "reuse" or "fresh").
* `rebar`, `relax`, `reinforce`, `control_variate_surrogate` — unbiased (UNAS Eq. 1-5).
* `gumbel_softmax`, `straight_through_gumbel`, `ensemble_gumbel`, `expected_latency` — biased baselines.
* `VarianceTuner` — online tau / eta tuning by minimising the estimator's variance.
* `darts_gradient` (`hwnas.estimators.darts`) — DARTS first / second order and Amended-DARTS on the softmax relaxation.

One search step (accuracy by REBAR, measured latency by RELAX, one shared ``b``)::

    alpha = nn.ParameterDict({name: nn.Parameter(torch.zeros(k)) for name, k in choices.items()})
    s = sample_relaxed(ArchitectureDistribution(alpha), tau=0.5)      # b, zeta, zeta~ ("reuse")
    arch = {name: int(i) for name, i in s.index.items()}              # -> measure its latency
    acc = rebar(s, lambda w: supernet_loss(w, val_batch))             # L_d at s.hard, zeta, zeta~
    lat = relax(s, measured_ms(arch), lut_model)                      # L_n(b) and g = LinearSurrogate
    (acc.surrogate + lam * lat.surrogate).backward()                  # alpha and supernet weights

For a latency *penalty* h(L) (hinge, power), pass ``h(measured_ms)`` as the
reward and ``lambda w: h(lut_model(w))`` as the control variate.
"""

from __future__ import annotations

from hwnas.estimators.darts import DARTS_ORDERS, ArchGradient, amended, darts_gradient, first_order, second_order
from hwnas.estimators.distribution import ArchitectureDistribution
from hwnas.estimators.expected_latency import Kept, LinearSurrogate, expected_latency
from hwnas.estimators.gumbel import HardSample, RelaxedSample, sample_hard, sample_relaxed
from hwnas.estimators.relaxations import (
    EnsembleSample,
    LinearTemperature,
    PathwiseResult,
    ensemble_gumbel,
    gumbel_softmax,
    sample_ensemble,
    straight_through_gumbel,
)
from hwnas.estimators.score_function import (
    MovingAverageBaseline,
    ScoreFunctionResult,
    control_variate_surrogate,
    moving_average_baselines,
    rebar,
    reinforce,
    relax,
)
from hwnas.estimators.tuning import VarianceTuner

__all__ = [
    "DARTS_ORDERS",
    "ArchGradient",
    "ArchitectureDistribution",
    "EnsembleSample",
    "HardSample",
    "LinearSurrogate",
    "Kept",
    "LinearTemperature",
    "MovingAverageBaseline",
    "PathwiseResult",
    "RelaxedSample",
    "ScoreFunctionResult",
    "VarianceTuner",
    "amended",
    "control_variate_surrogate",
    "darts_gradient",
    "ensemble_gumbel",
    "expected_latency",
    "first_order",
    "gumbel_softmax",
    "moving_average_baselines",
    "rebar",
    "reinforce",
    "relax",
    "sample_ensemble",
    "sample_hard",
    "sample_relaxed",
    "second_order",
    "straight_through_gumbel",
]
