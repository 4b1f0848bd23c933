"""Biased baselines (soft Gumbel, GDAS straight-through, expected LUT) show their
bias; GDAS's forward/backward contract; the temperature schedule; ensemble Gumbel
against DARTS-EGS Definition 1 and Propositions 2-3."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from estimator_toys import ToyProblem, enumerate_architectures, exact_gradient, per_sample_gradients, summarise
from hwnas.estimators import (
    LinearSurrogate,
    LinearTemperature,
    ensemble_gumbel,
    expected_latency,
    gumbel_softmax,
    sample_ensemble,
    sample_relaxed,
    straight_through_gumbel,
)
from profilers import torch_threads

N = 20_000


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with torch_threads(1):
        yield


@pytest.mark.parametrize("relaxation", [gumbel_softmax, straight_through_gumbel])
@pytest.mark.parametrize("tau", [0.5, 1.0])
def test_pathwise_relaxations_are_biased_on_a_non_additive_toy(relaxation, tau):
    toy = ToyProblem.random(interaction=1.0, seed=0)
    g = torch.Generator().manual_seed(1)
    stats = summarise(
        per_sample_gradients(toy.logits, N, lambda d: relaxation(d, toy, tau, generator=g).surrogate),
        exact_gradient(toy.logits, toy),
    )
    # Unbiased estimators stay below 4 standard errors; a bias is "measurable" beyond 6
    # (two-sided p < 2e-9 per coordinate) together with a relative size over 5 %.
    assert stats.z.abs().max() > 6 and stats.relative_bias > 0.05, (stats.z.abs().max(), stats.relative_bias)


def test_expected_lut_is_exact_for_additive_f_and_biased_otherwise():
    additive = ToyProblem.random(interaction=0.0, seed=2)
    index = enumerate_architectures(additive.logits)
    lut = LinearSurrogate(0.0, {k: a for k, a in zip(additive.logits, additive.additive)})
    fitted = LinearSurrogate.fit(additive.logits, index, additive.lookup(index))
    exact = exact_gradient(additive.logits, additive)
    for model in (lut, fitted):
        leaves = {k: t.clone().requires_grad_(True) for k, t in additive.logits.items()}
        grads = torch.autograd.grad(expected_latency(leaves, model), list(leaves.values()))
        for k, g in zip(leaves, grads):
            torch.testing.assert_close(g, exact[k])

    toy = ToyProblem.random(interaction=1.0, seed=2)
    model = LinearSurrogate.fit(toy.logits, index, toy.lookup(index))
    leaves = {k: t.clone().requires_grad_(True) for k, t in toy.logits.items()}
    got = torch.cat(torch.autograd.grad(expected_latency(leaves, model), list(leaves.values())))
    want = torch.cat(list(exact_gradient(toy.logits, toy).values()))
    assert (got - want).norm() / want.norm() > 0.05


def test_gdas_forward_is_exactly_one_hot_and_backward_is_the_softmaxs():
    logits = {"a": torch.tensor([0.4, -0.2, 1.1, 0.0], dtype=torch.float64, requires_grad=True)}
    target = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)

    def loss(w):
        return ((w["a"] - target) ** 2).sum(-1)

    captured = {}
    result = straight_through_gumbel(logits, lambda w: captured.setdefault("w", w) and loss(w), 0.7,
                                     generator=torch.Generator().manual_seed(0))
    w = captured["w"]["a"]
    assert torch.equal(w.detach(), result.hard["a"]) and set(w.detach().tolist()) <= {0.0, 1.0} and float(w.detach().sum()) == 1.0
    (got,) = torch.autograd.grad(result.surrogate, logits["a"])
    # same noise: the relaxed sample behind it; dL/dx taken at x = b, chained through zeta
    s = sample_relaxed(logits, 0.7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s.hard["a"], result.hard["a"])
    (expected,) = torch.autograd.grad(s.relaxed["a"], logits["a"], grad_outputs=2 * (s.hard["a"] - target))
    torch.testing.assert_close(got, expected)


def test_linear_temperature_schedule():
    default = LinearTemperature(epochs=250)
    assert default(0) == 10.0 and default(249) == pytest.approx(0.1) and default(1000) == pytest.approx(0.1)
    assert default(124.5) == pytest.approx(5.05)
    paper = LinearTemperature(epochs=11, start=10.0, end=1.0)
    assert [round(paper(e), 6) for e in range(11)] == [round(10 - 0.9 * e, 6) for e in range(11)]
    with pytest.raises(ValueError):
        LinearTemperature(epochs=10, end=0.0)


P = torch.tensor([0.05, 0.1, 0.15, 0.3, 0.4], dtype=torch.float64)


def _exact_code_distribution(p: torch.Tensor, m: int) -> dict[tuple[int, ...], float]:
    """Definition 1 by enumeration of all M-tuples of one-hot draws."""
    out: dict[tuple[int, ...], float] = {}
    for draws in itertools.product(range(len(p)), repeat=m):
        code = tuple(int(k in draws) for k in range(len(p)))
        out[code] = out.get(code, 0.0) + math.prod(float(p[k]) for k in draws)
    return out


@pytest.mark.parametrize("m", [1, 2, 3])
def test_ensemble_on_probability_increases_with_p_and_is_one_minus_miss_probability(m):
    """Prop. 2: P(op k on) is monotone in p_k; exactly 1 - (1 - p_k)^M (not proportional for M > 1)."""
    n = 50_000
    s = sample_ensemble({"e": P.log()}, m, sample_shape=(n,), generator=torch.Generator().manual_seed(m))
    freq = s.codes["e"].mean(0)
    exact = 1 - (1 - P) ** m
    assert ((freq - exact).abs() / (exact * (1 - exact) / n).sqrt()).max() < 4
    assert torch.all(exact.diff() > 0) and torch.all(freq.diff() > 0)


@pytest.mark.parametrize("k,m", [(3, 1), (3, 2), (4, 2), (4, 3), (4, 4), (5, 2)])
def test_ensemble_reachable_codes_are_the_codes_with_one_to_m_ones(k, m):
    """Prop. 3's description: every binary code with at least one and at most M ones, nothing else.

    Its count formula C(K,M)(2^M - 1) agrees only for M = 1 or M = K (it counts
    a code once per M-subset containing it); the true count is sum_{j<=M} C(K,j).
    """
    p = torch.full((k,), 1.0 / k, dtype=torch.float64)
    reachable = {code for code, prob in _exact_code_distribution(p, m).items() if prob > 0}
    described = {c for c in itertools.product((0, 1), repeat=k) if 1 <= sum(c) <= m}
    assert reachable == described
    s = sample_ensemble({"e": p.log()}, m, sample_shape=(20_000,), generator=torch.Generator().manual_seed(k * 10 + m))
    sampled = {tuple(int(x) for x in row) for row in s.codes["e"].tolist()}
    assert sampled == described
    assert len(described) == sum(math.comb(k, j) for j in range(1, m + 1))
    assert (len(described) == math.comb(k, m) * (2**m - 1)) == (m in (1, k))


def test_ensemble_code_frequencies_match_definition_one():
    n, m = 60_000, 3
    s = sample_ensemble({"e": P.log()}, m, sample_shape=(n,), generator=torch.Generator().manual_seed(0))
    draws = torch.multinomial(P.expand(n, -1), m, replacement=True, generator=torch.Generator().manual_seed(1))
    reference = torch.zeros(n, len(P), dtype=torch.float64).scatter_(1, draws, 1.0)
    weights = 2 ** torch.arange(len(P), dtype=torch.float64)
    ours = torch.bincount((s.codes["e"] @ weights).long(), minlength=2 ** len(P)).double() / n
    theirs = torch.bincount((reference @ weights).long(), minlength=2 ** len(P)).double() / n
    exact = torch.zeros(2 ** len(P), dtype=torch.float64)
    for code, prob in _exact_code_distribution(P, m).items():
        exact[int(sum(c << i for i, c in enumerate(code)))] = prob
    se = (exact * (1 - exact) / n).sqrt().clamp_min(1e-12)
    assert ((ours - exact).abs() / se).max() < 4
    assert ((theirs - exact).abs() / se).max() < 4
    assert ((ours - theirs).abs() / (se * math.sqrt(2))).max() < 4


def test_ensemble_forward_is_the_multi_hot_code_and_gradient_that_of_the_relaxed_max():
    logits = {"e": torch.tensor([0.0, 0.5, -0.5, 1.0], dtype=torch.float64, requires_grad=True)}
    coef = torch.tensor([1.0, -1.0, 2.0, 0.5], dtype=torch.float64)
    seen = {}

    def loss(w):
        seen["w"] = w["e"]
        return (w["e"] * coef).sum(-1) ** 2

    result = ensemble_gumbel(logits, loss, 3, 0.5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(seen["w"].detach(), result.hard["e"]) and float(result.hard["e"].sum()) >= 1
    (got,) = torch.autograd.grad(result.surrogate, logits["e"])
    s = sample_ensemble(logits, 3, 0.5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(s.codes["e"], result.hard["e"])
    upstream = 2 * (s.codes["e"] * coef).sum() * coef
    (expected,) = torch.autograd.grad(s.relaxed["e"], logits["e"], grad_outputs=upstream)
    torch.testing.assert_close(got, expected)
