"""One weight step and one architecture step per estimator (GDAS Alg. 1 / UNAS Sec. 3.2).

Weight step: the supernet weights w descend L_train on a search-train batch
at the weights the estimator trains with (softmax for DARTS, a soft Gumbel
sample for SNAS, the hard sample b for GDAS / REINFORCE / REBAR — single
path, so only the sampled ops run — and the multi-hot ensemble for EGS).

Architecture step: the logits phi get the estimator's gradient of
accuracy term + latency term on a search-val batch; Adam applies it.

- darts:     softmax relaxation; first / second order / amended (`hwnas.estimators.darts`)
- snas:      L(zeta), zeta = softmax((log theta + G) / tau)           (biased)
- gdas:      L(b) forward, gradient of zeta (straight-through)        (biased)
- egs:       L(max_m b_m) forward, gradient of max_m zeta_m           (biased)
- reinforce: (L(b) - c) d log p(b)                                    (unbiased)
- rebar:     UNAS Eq. 3 with eta                                      (unbiased)

REBAR uses the "reuse" conditional sample by default (zeta~ equals zeta in
value, `hwnas.estimators.gumbel`); then L(zeta) - L(zeta~) has the gradient
dL/dx|zeta . (dzeta/dphi - dzeta~/dphi), which one forward at
x = zeta.detach() + (zeta - zeta~) computes: two supernet evaluations per
step instead of three. With "fresh" all three are evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from hwnas.estimators import (
    ArchitectureDistribution,
    MovingAverageBaseline,
    VarianceTuner,
    control_variate_surrogate,
    darts_gradient,
    reinforce,
    sample_ensemble,
    sample_relaxed,
)
from hwnas.objectives import accuracy, cross_entropy
from hwnas.search.config import SearchConfig
from hwnas.search.paths import TrainingPaths, distillation_loss
from hwnas.search.phases import PhaseClock
from hwnas.search.terms import AccuracyTerm, Batch, LatencyOutcome, LatencyTerm, supernet_loss


def weights_for_training(config: SearchConfig, dist: ArchitectureDistribution, tau: float) -> dict[str, Tensor]:
    """The (detached) per-decision weights the supernet is trained at in this step."""
    with torch.no_grad():
        if config.estimator == "darts":
            return dict(dist.probabilities())  # type: ignore[arg-type]
        if config.estimator == "egs":
            return dict(sample_ensemble(dist, config.egs_samples, tau).codes)  # type: ignore[arg-type]
        sample = sample_relaxed(dist, tau)
        if config.estimator == "snas":
            return dict(sample.relaxed)  # type: ignore[arg-type]
        return dict(sample.hard)  # type: ignore[arg-type]


def weight_step(
    net: nn.Module, optimizer: torch.optim.Optimizer, paths: Mapping[str, Tensor] | TrainingPaths, batch: Batch,
    clip: float = 5.0,
) -> tuple[float, float]:
    """One SGD step of the supernet weights on one batch; returns the first path's (loss in nats, accuracy).

    `paths` is one path's weights or a rule's `TrainingPaths`: the gradients of all its paths add
    up into one update (the first on the labels; with `distill` the others on its predictions)."""
    if not isinstance(paths, TrainingPaths):
        paths = TrainingPaths((dict(paths),))
    optimizer.zero_grad(set_to_none=True)
    images, labels = batch
    teacher = net(images, paths.paths[0])
    loss = cross_entropy(teacher, labels)
    loss.backward()
    for weights in paths.paths[1:]:
        logits = net(images, weights)
        extra = distillation_loss(logits, teacher) if paths.distill else cross_entropy(logits, labels)
        extra.backward()
    nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], clip)
    optimizer.step()
    return float(loss.detach()), accuracy(teacher.detach(), labels)


@dataclass(frozen=True)
class ArchStepReport:
    """What one architecture step saw (losses in nats, latencies in ms)."""

    objective: float
    val_loss: float | None
    val_acc: float | None
    sampled: dict[str, int] | None
    latency: LatencyOutcome | None


@dataclass
class ArchContext:
    """Everything an architecture step needs; built fresh each step by the loop."""

    config: SearchConfig
    net: nn.Module
    logits: dict[str, Tensor]
    accuracy: AccuracyTerm
    latency: LatencyTerm | None
    tau: float | Tensor
    w_lr: float
    train_batch: Batch
    baseline: MovingAverageBaseline
    tuner: VarianceTuner | None = None
    """--tune-variance: tau (then `tuner.tau`) and REBAR's eta follow the variance gradient."""
    clock: PhaseClock = field(default_factory=PhaseClock)


def _latency(ctx: ArchContext, dist: ArchitectureDistribution, sample=None) -> LatencyOutcome | None:  # noqa: ANN001
    if ctx.latency is None:
        return None
    with ctx.clock("latency"):
        return ctx.latency(dist, sample)


def _darts(ctx: ArchContext, dist: ArchitectureDistribution) -> tuple[dict[str, Tensor], ArchStepReport]:
    names = list(ctx.logits)
    alphas = [ctx.logits[name] for name in names]

    def soft() -> dict[str, Tensor]:
        return {name: torch.softmax(alpha, dim=-1) for name, alpha in zip(names, alphas, strict=True)}

    def train_loss() -> Tensor:
        return cross_entropy(ctx.net(ctx.train_batch[0], soft()), ctx.train_batch[1])

    weights = [p for p in ctx.net.parameters() if p.requires_grad]
    result = darts_gradient(
        ctx.config.darts_order, train_loss, lambda: ctx.accuracy(soft()), weights, alphas,
        eta=ctx.config.amended_eta, xi=ctx.w_lr,
    )
    grads = dict(zip(names, result.total, strict=True))
    latency = _latency(ctx, dist)
    if latency is not None:
        extra = torch.autograd.grad(latency.surrogate, alphas, allow_unused=True)
        grads = {n: g if e is None else g + e for (n, g), e in zip(grads.items(), extra, strict=True)}
    report = ArchStepReport(result.val_loss, ctx.accuracy.last_val_loss, ctx.accuracy.last_val_acc, None, latency)
    return grads, report


def _pathwise(ctx: ArchContext, dist: ArchitectureDistribution) -> tuple[Tensor, ArchStepReport]:
    if ctx.config.estimator == "egs":
        ensemble = sample_ensemble(dist, ctx.config.egs_samples, ctx.tau)
        loss = ctx.accuracy(ensemble.weights)
        latency = _latency(ctx, dist)
        sampled = None
    else:
        sample = sample_relaxed(dist, ctx.tau, conditional=ctx.config.conditional)
        weights = sample.relaxed if ctx.config.estimator == "snas" else sample.straight_through()
        loss = ctx.accuracy(weights)
        latency = _latency(ctx, dist, sample)
        sampled = {k: int(v) for k, v in sample.index.items()}
    total = loss + (latency.surrogate if latency is not None else 0.0)
    report = ArchStepReport(float(loss.detach()), ctx.accuracy.last_val_loss, ctx.accuracy.last_val_acc, sampled, latency)
    return total, report


def _score_function(ctx: ArchContext, dist: ArchitectureDistribution) -> tuple[Tensor, ArchStepReport]:
    sample = sample_relaxed(dist, ctx.tau, conditional=ctx.config.conditional)
    with ctx.clock("accuracy_hard"), torch.no_grad():
        reward = ctx.accuracy(sample.hard)
    val_loss, val_acc = ctx.accuracy.last_val_loss, ctx.accuracy.last_val_acc
    if ctx.config.estimator == "reinforce":
        result = reinforce(sample, reward, ctx.baseline.value)
        ctx.baseline.update(reward)
    else:
        eta_only = ctx.tuner is not None and not ctx.tuner.tunes_tau
        eta = ctx.config.rebar_eta if ctx.tuner is None else 1.0 if eta_only else ctx.tuner.eta
        with ctx.clock("accuracy_relaxed"):
            if ctx.config.conditional == "reuse" and (ctx.tuner is None or eta_only):
                shifted = {k: z.detach() + (z - sample.conditional[k]) for k, z in sample.relaxed.items()}
                relaxed = eta * ctx.accuracy(shifted)
                conditional = relaxed.detach()
            else:  # tau tuning needs c~ = eta L(zeta~) with its own graph to tau and eta
                relaxed = eta * ctx.accuracy(sample.relaxed)
                conditional = eta * ctx.accuracy(sample.conditional)
        result = control_variate_surrogate(sample, reward, relaxed, conditional)
        if eta_only:
            assert ctx.tuner is not None
            result = _tune_eta(ctx, sample, result, float(reward))
    latency = _latency(ctx, dist, sample)
    if ctx.tuner is not None and ctx.tuner.tunes_tau:
        with ctx.clock("tuning"):
            # the variance of what this step applies: REBAR's estimate plus RELAX's when timed in line
            estimates = [result] + ([latency.estimate] if latency is not None and latency.estimate is not None else [])
            ctx.tuner.step(estimates, ctx.logits)
    total = result.surrogate + (latency.surrogate if latency is not None else 0.0)
    report = ArchStepReport(float(reward), val_loss, val_acc, {k: int(v) for k, v in sample.index.items()}, latency)
    return total, report


def _tune_eta(ctx: ArchContext, sample, result, reward: float):  # noqa: ANN001, ANN202
    """--tune-variance eta: REBAR's estimate is affine in eta, g = a + eta b (`result` holds it at eta = 1), so
    one first-order backward gives b, the tuner's step (`VarianceTuner.step_eta`) and g itself; what returns is
    the result with a linear surrogate whose gradient wrt the logits is g at the tuner's eta."""
    assert ctx.tuner is not None
    names = list(ctx.logits)
    with ctx.clock("backward"):
        control = sample.log_prob * -result.baseline + result.reparameterised  # b's surrogate: reward 0, eta 1
        values = torch.autograd.grad(control.sum(), [ctx.logits[n] for n in names], retain_graph=True, allow_unused=True)
    direction = {n: torch.zeros_like(ctx.logits[n]) if v is None else v.detach() for n, v in zip(names, values, strict=True)}
    eta = float(ctx.tuner.eta.detach())
    estimate = {n: reward * sample.score[n].to(direction[n].dtype) + eta * direction[n] for n in names}
    with ctx.clock("tuning"):
        ctx.tuner.step_eta(estimate, direction)
    linear = sum((ctx.logits[n] * estimate[n]).sum() for n in names)
    return replace(result, surrogate=linear)


STEPS: dict[str, Callable[[ArchContext, ArchitectureDistribution], tuple[Tensor, ArchStepReport]]] = {
    "snas": _pathwise,
    "gdas": _pathwise,
    "egs": _pathwise,
    "reinforce": _score_function,
    "rebar": _score_function,
}


def architecture_gradient(ctx: ArchContext) -> tuple[dict[str, Tensor], ArchStepReport]:
    """The estimator's gradient of accuracy + latency terms wrt every decision's logits, for one step
    (what `arch_step` applies; benchmarks/arch_gradient_snr.py draws it many times to measure its noise)."""
    dist = ArchitectureDistribution(ctx.logits)
    names = list(ctx.logits)
    if ctx.config.estimator == "darts":
        return _darts(ctx, dist)
    surrogate, report = STEPS[ctx.config.estimator](ctx, dist)
    with ctx.clock("backward"):
        values = torch.autograd.grad(surrogate, [ctx.logits[n] for n in names], allow_unused=True)
    return {n: torch.zeros_like(ctx.logits[n]) if g is None else g for n, g in zip(names, values, strict=True)}, report


def arch_step(ctx: ArchContext, optimizer: torch.optim.Optimizer) -> ArchStepReport:
    """Compute the estimator's gradient wrt the logits and take one optimizer step."""
    names = list(ctx.logits)
    grads, report = architecture_gradient(ctx)
    with ctx.clock("optimizer"):
        optimizer.zero_grad(set_to_none=True)
        for name in names:
            ctx.logits[name].grad = grads[name].detach().to(ctx.logits[name].dtype)
        optimizer.step()
    return report
