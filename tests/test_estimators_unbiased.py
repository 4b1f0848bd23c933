"""REINFORCE, REBAR and RELAX are unbiased: the mean of many estimates matches the
exact gradient of E_p[f(b)] (by enumeration) within 4 standard errors on every
coordinate, on a non-additive toy (4 decisions x 5 choices, 625 architectures).
A deliberately broken REBAR (term (ii) dropped) must fail the same check: the
test has the power to see a bias."""

from __future__ import annotations

import pytest
import torch

from estimator_toys import ToyProblem, enumerate_architectures, exact_gradient, per_sample_gradients, summarise
from hwnas.estimators import LinearSurrogate, moving_average_baselines, rebar, reinforce, relax, sample_hard, sample_relaxed
from hwnas.estimators.score_function import control_variate_surrogate
from profilers import torch_threads


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with torch_threads(1):
        yield


N = 20_000


def _toy(seed: int, choices=5) -> ToyProblem:
    return ToyProblem.random(decisions=4, choices=choices, interaction=1.0, seed=seed)


def _fitted(toy: ToyProblem) -> LinearSurrogate:
    index = enumerate_architectures(toy.logits)
    return LinearSurrogate.fit(toy.logits, index, toy.lookup(index))


def _estimator(name: str, toy: ToyProblem, tau: float, g: torch.Generator):
    if name == "reinforce":
        def est(dist):
            s = sample_hard(dist, generator=g)
            reward = toy.lookup(s.index)
            return reinforce(s, reward, moving_average_baselines(reward, 0.9)).surrogate
        return est
    variant = name.split("-")[1]
    if name.startswith("rebar"):
        return lambda dist: rebar(sample_relaxed(dist, tau, generator=g, conditional=variant), toy).surrogate
    surrogate = _fitted(toy)

    def est(dist):
        s = sample_relaxed(dist, tau, generator=g, conditional=variant)
        return relax(s, toy.lookup(s.index), surrogate).surrogate
    return est


CASES = [("reinforce", None)] + [
    (name, tau) for name in ("rebar-reuse", "rebar-fresh", "relax-reuse", "relax-fresh") for tau in (0.1, 0.5, 2.0)
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name,tau", CASES)
def test_mean_estimate_matches_exact_gradient(name, tau, seed):
    toy = _toy(seed)
    exact = exact_gradient(toy.logits, toy)
    g = torch.Generator().manual_seed(100 + seed)
    stats = summarise(per_sample_gradients(toy.logits, N, _estimator(name, toy, tau, g)), exact)
    assert stats.z.abs().max() < 4, f"{name} tau={tau}: max |z| = {stats.z.abs().max():.2f}"


@pytest.mark.parametrize("name", ["reinforce", "rebar-reuse", "relax-fresh"])
def test_unbiased_with_different_choice_counts_and_list_logits(name):
    toy = ToyProblem.random(decisions=4, choices=[2, 3, 4, 5], interaction=1.0, seed=7)
    exact = exact_gradient(toy.logits, toy)
    est = _estimator(name, toy, 0.5, torch.Generator().manual_seed(8))
    stats = summarise(per_sample_gradients(toy.logits, N, est), exact)
    assert stats.z.abs().max() < 4


def test_rebar_without_correction_term_is_detected_as_biased():
    toy = _toy(0)
    exact = exact_gradient(toy.logits, toy)
    g = torch.Generator().manual_seed(11)

    def broken(dist):  # c~ only as a detached baseline: term (ii) missing
        s = sample_relaxed(dist, 0.5, generator=g, conditional="fresh")
        return control_variate_surrogate(s, toy(s.hard), toy(s.relaxed), toy(s.conditional).detach()).surrogate

    stats = summarise(per_sample_gradients(toy.logits, N, broken), exact)
    assert stats.z.abs().max() > 8


def test_rebar_gives_network_parameters_the_gradient_of_the_hard_loss():
    """Parameters inside L_d get d L_d(b) / d w from the same backward (reuse variant: exactly)."""
    w = torch.tensor([0.7, -0.3, 1.5], dtype=torch.float64, requires_grad=True)
    logits = {"x": torch.zeros(3, dtype=torch.float64, requires_grad=True)}

    def loss(weights):
        return ((weights["x"] * w).sum(-1) - 1.0) ** 2

    s = sample_relaxed(logits, 0.5, generator=torch.Generator().manual_seed(0))
    rebar(s, loss).surrogate.backward()
    (expected,) = torch.autograd.grad(loss(s.hard), w)
    torch.testing.assert_close(w.grad, expected)
    assert logits["x"].grad is not None and torch.isfinite(logits["x"].grad).all()


def test_reinforce_and_relax_surrogates_have_the_documented_gradients():
    logits = {"x": torch.tensor([0.2, -0.5, 1.0], dtype=torch.float64, requires_grad=True)}
    s = sample_relaxed(logits, 0.7, generator=torch.Generator().manual_seed(4))
    coef = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    g = LinearSurrogate(0.5, {"x": coef})
    result = relax(s, 4.2, g, eta=0.8)
    (got,) = torch.autograd.grad(result.surrogate, logits["x"], retain_graph=True)
    zeta, zeta_c = s.relaxed["x"], s.conditional["x"]
    d_relaxed = torch.autograd.grad(0.8 * g({"x": zeta}) - 0.8 * g({"x": zeta_c}), logits["x"])[0]
    expected = (4.2 - 0.8 * g({"x": zeta_c}).detach()) * s.score["x"] + d_relaxed
    torch.testing.assert_close(got, expected)
    assert float(result.reward) == 4.2 and float(result.baseline) == pytest.approx(0.8 * float(g({"x": zeta_c}).detach()))
    r = reinforce(s, 4.2, baseline=1.0)
    (got,) = torch.autograd.grad(r.surrogate, logits["x"])
    torch.testing.assert_close(got, 3.2 * s.score["x"])


@pytest.mark.parametrize("name", ["rebar-reuse", "relax-reuse"])
def test_unbiased_in_float32(name):
    """The search loop runs in float32: the reuse-u inversion must stay exact enough there."""
    toy = ToyProblem.random(decisions=4, choices=5, interaction=1.0, seed=3, dtype=torch.float32)
    exact = exact_gradient({k: v.double() for k, v in toy.logits.items()},
                           lambda w: toy.lookup({k: x.argmax(-1) for k, x in w.items()}).double())
    est = _estimator(name, toy, 0.5, torch.Generator().manual_seed(9))
    stats = summarise({k: v.double() for k, v in per_sample_gradients(toy.logits, N, est).items()}, exact)
    assert stats.z.abs().max() < 4
