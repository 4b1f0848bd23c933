"""The search-loop usage: one hard sample per step, REBAR for a supernet's loss and
RELAX for a measured latency, sharing b; nn.ParameterDict logits; tensors for tau."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hwnas.estimators import ArchitectureDistribution, LinearSurrogate, rebar, relax, sample_relaxed

CHOICES = {"layer1": 3, "layer2": 4}


class TinySupernet(nn.Module):
    """Per decision, a weighted sum of candidate linear ops (only non-zero weights run)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = nn.ModuleDict({name: nn.ModuleList(nn.Linear(2, 2) for _ in range(k)) for name, k in CHOICES.items()})

    def forward(self, x: torch.Tensor, weights) -> torch.Tensor:
        for name, ops in self.ops.items():
            w = weights[name]
            x = sum(w[i] * op(x) for i, op in enumerate(ops) if w[i].detach() != 0)
        return x


def test_rebar_plus_relax_search_step():
    torch.manual_seed(0)
    alpha = nn.ParameterDict({n: nn.Parameter(torch.zeros(k)) for n, k in CHOICES.items()})
    net = TinySupernet()
    x, y = torch.randn(8, 2), torch.randn(8, 2)
    lut = LinearSurrogate(1.0, {n: torch.arange(k, dtype=torch.float32) for n, k in CHOICES.items()})

    def measured_ms(arch: dict[str, int]) -> float:  # stands in for a profiler; not differentiable
        return 1.0 + arch["layer1"] + arch["layer2"] + 0.5 * (arch["layer1"] == arch["layer2"])

    s = sample_relaxed(ArchitectureDistribution(alpha), tau=0.5, generator=torch.Generator().manual_seed(1))
    arch = {n: int(i) for n, i in s.index.items()}
    accuracy = rebar(s, lambda w: ((net(x, w) - y) ** 2).mean())
    latency = relax(s, measured_ms(arch), lut)
    (accuracy.surrogate + 0.1 * latency.surrogate).backward()

    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in alpha.values())
    for name, ops in net.ops.items():  # weights get d L(b) / d w: only the chosen op's are non-zero
        grads = [op.weight.grad for op in ops]
        assert grads[arch[name]] is not None and grads[arch[name]].abs().sum() > 0
        assert all(g is None or g.abs().sum() < 1e-6 for i, g in enumerate(grads) if i != arch[name])
    assert float(latency.reward) == measured_ms(arch)
    torch.testing.assert_close(latency.baseline, lut(s.conditional).detach())


def test_tensor_temperature_reaches_tau_by_autograd():
    log_tau = torch.tensor(-0.5, requires_grad=True)
    logits = {"d": torch.tensor([0.1, 0.2, -0.3], requires_grad=True)}
    s = sample_relaxed(logits, log_tau.exp(), generator=torch.Generator().manual_seed(0), conditional="fresh")
    (grad,) = torch.autograd.grad((s.relaxed["d"] * torch.tensor([1.0, 2.0, 3.0])).sum(), log_tau)
    assert torch.isfinite(grad) and grad != 0


@pytest.mark.cuda
def test_estimators_run_on_cuda_logits():
    device = torch.device("cuda")
    logits = {"a": torch.zeros(3, device=device, requires_grad=True), "b": torch.zeros(5, device=device, requires_grad=True)}
    lut = LinearSurrogate(0.0, {"a": torch.arange(3.0, device=device), "b": torch.arange(5.0, device=device)})
    s = sample_relaxed(logits, 0.5, sample_shape=(16,), generator=torch.Generator(device).manual_seed(0))
    result = relax(s, lut(s.hard) + 0.1, lut)
    result.surrogate.sum().backward()
    assert logits["a"].grad.device.type == "cuda" and torch.isfinite(logits["b"].grad).all()


@pytest.mark.parametrize("reward", [3, True, torch.tensor(3), torch.tensor([2, 4]), 3.0, torch.tensor([3.0])])
def test_moving_average_baseline_takes_ints_and_integer_tensors(reward):
    """Issue #13: an integer reward (a count, an accuracy in samples) is a number like any other."""
    from hwnas.estimators import MovingAverageBaseline

    baseline = MovingAverageBaseline(0.5)
    first = baseline.update(reward)
    assert first == float(torch.as_tensor(reward, dtype=torch.float64).mean())
    assert baseline.update(1) == 0.5 * first + 0.5
