"""Online tuning of the temperature tau and the control-variate scale eta.

REBAR and RELAX are unbiased for every (tau, eta), so the variance of the
estimate ``g_hat`` depends on them only through its second moment:
``d Var(g_hat) / d(tau, eta) = d E[||g_hat||^2] / d(tau, eta)``
(Grathwohl et al., RELAX, Sec. 3.3; Tucker et al., REBAR, Sec. 4). One
sample of ``d ||g_hat||^2 / d(tau, eta)`` is an unbiased estimate of that
gradient; a few Adam steps on ``log tau`` and ``eta`` follow it. The official
UNAS code fixes tau = 0.4 and eta = 1; this is the optional alternative.

``g_hat`` must keep its dependence on tau and eta, including inside the score
term where the surrogate stops gradients. We rebuild it as
``score * advantage + d reparameterised / d phi`` with the closed-form score
(constant) and ``create_graph=True``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Union

import torch
from torch import Tensor

from hwnas.estimators.distribution import DecisionKey
from hwnas.estimators.score_function import ScoreFunctionResult


Results = Union[ScoreFunctionResult, Sequence[ScoreFunctionResult]]


def gradient_estimate(results: Results, logits: Mapping[DecisionKey, Tensor]) -> dict[DecisionKey, Tensor]:
    """The estimate of the mean surrogate's gradient, differentiable wrt tau and eta.

    ``logits`` are the tensors the sample was drawn from (keyed like
    ``result.sample.score``). With several samples per step this is the
    batch-mean estimate, whose variance is the single-sample variance / n.
    Several results of one sample (a search's REBAR accuracy term and RELAX
    latency term) give the estimate of their sum, the gradient the step applies.
    """
    out: dict[DecisionKey, Tensor] = {}
    for result in [results] if isinstance(results, ScoreFunctionResult) else results:
        n = result.advantage.numel()
        reparam = torch.autograd.grad(
            result.reparameterised.sum() / n, [logits[k] for k in result.sample.score],
            create_graph=True, retain_graph=True, allow_unused=True,
        )
        for (k, score), r in zip(result.sample.score.items(), reparam):
            term = (score * result.advantage.unsqueeze(-1)).sum_to_size(logits[k].shape) / n
            term = term if r is None else term + r
            out[k] = out[k] + term if k in out else term
    return out


def second_moment(results: Results, logits: Mapping[DecisionKey, Tensor]) -> Tensor:
    """``||g_hat||^2`` summed over all coordinates: the variance objective."""
    return sum((g**2).sum() for g in gradient_estimate(results, logits).values())


class VarianceTuner:
    """Holds ``log tau`` and ``eta`` as parameters and steps them down the variance gradient.

    Usage per search step: ``s = sample_relaxed(dist, tuner.tau)``, build the
    result with ``eta=tuner.eta``, call ``tuner.step(result, logits)`` *before*
    ``result.surrogate.backward()`` (the graph is retained for it).
    """

    def __init__(self, tau: float = 0.5, eta: float = 1.0, *, lr: float = 0.02, tune_tau: bool = True, tune_eta: bool = True) -> None:
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        self.log_tau = torch.tensor(math.log(tau), dtype=torch.float64, requires_grad=tune_tau)
        self.eta_parameter = torch.tensor(float(eta), dtype=torch.float64, requires_grad=tune_eta)
        params = [p for p in (self.log_tau, self.eta_parameter) if p.requires_grad]
        if not params:
            raise ValueError("nothing to tune: tune_tau and tune_eta are both False")
        self._optimizer = torch.optim.Adam(params, lr=lr)

    @property
    def tau(self) -> Tensor:
        return self.log_tau.exp()

    @property
    def eta(self) -> Tensor:
        """eta for this step's estimate: a copy that carries the gradient to the parameter.

        The copy is what the estimate's graph saves, so the in-place Adam update
        in `step` neither invalidates that graph nor changes the eta its
        backward uses (it would if the parameter itself were saved).
        """
        return self.eta_parameter.clone()

    def state_dict(self) -> dict[str, object]:
        """log tau, eta and the Adam state, for a search checkpoint."""
        return {"log_tau": self.log_tau.detach().clone(), "eta": self.eta_parameter.detach().clone(),
                "optimizer": self._optimizer.state_dict()}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        with torch.no_grad():
            self.log_tau.copy_(state["log_tau"])  # type: ignore[arg-type]
            self.eta_parameter.copy_(state["eta"])  # type: ignore[arg-type]
        self._optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]

    @property
    def tunes_tau(self) -> bool:
        return bool(self.log_tau.requires_grad)

    def step_eta(self, estimate: Mapping[DecisionKey, Tensor], direction: Mapping[DecisionKey, Tensor]) -> float:
        """One Adam step on eta alone from first-order terms; returns ``||g_hat||^2``.

        A control-variate estimate is affine in eta: ``g_hat = a + eta * b`` with
        ``b = -c~ score + d(c - c~)/d phi`` at eta = 1, so
        ``d ||g_hat||^2 / d eta = 2 <g_hat, b>``: no second-order backward (which
        tau needs), and in a search ``b`` comes from the backward the step does anyway.
        """
        if self.tunes_tau:
            raise ValueError("step_eta tunes eta alone; this tuner also tunes tau (use step)")
        gradient = 2.0 * sum((estimate[k].double() * direction[k].double()).sum() for k in estimate)
        self._optimizer.zero_grad()
        self.eta_parameter.grad = torch.as_tensor(gradient, dtype=torch.float64).detach().reshape(())
        self._optimizer.step()
        return float(sum((g.double() ** 2).sum() for g in estimate.values()))

    def step(self, results: Results, logits: Mapping[DecisionKey, Tensor]) -> float:
        """One Adam step on ``||g_hat||^2``; returns its value before the step."""
        objective = second_moment(results, logits)
        params = [p for p in (self.log_tau, self.eta_parameter) if p.requires_grad]
        grads = torch.autograd.grad(objective, params, retain_graph=True, allow_unused=True)
        self._optimizer.zero_grad()
        for p, g in zip(params, grads):
            p.grad = torch.zeros_like(p) if g is None else g.detach().to(p.dtype)
        self._optimizer.step()
        return float(objective.detach())
