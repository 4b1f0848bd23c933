"""The expected latency of the network a pruning derivation returns (a DARTS genotype), against
independent references: a hand-written sequential draw (Monte Carlo), the closed form at uniform
logits, and central finite differences for the gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import search_spaces as ss
from hwnas.estimators import Kept, LinearSurrogate, expected_latency
from hwnas.estimators.expected_latency import inclusion_probabilities
from hwnas.search.terms import kept_inputs


def draw_without_replacement(rng: np.random.Generator, weights: np.ndarray, keep: int) -> list[int]:
    """One draw at a time, each proportional to the weights of the items not yet drawn."""
    left, drawn = weights.astype(np.float64).copy(), []
    for _ in range(keep):
        item = int(rng.choice(len(left), p=left / left.sum()))
        drawn.append(item)
        left[item] = 0.0
    return drawn


def test_inclusion_probabilities_sum_to_keep_and_match_sequential_draws() -> None:
    rng = np.random.default_rng(0)
    weights = np.array([0.9, 0.1, 0.5, 0.05, 0.7])
    exact = inclusion_probabilities(torch.tensor(weights), 2).numpy()
    assert exact.sum() == pytest.approx(2.0)
    draws = 40_000
    counts = np.zeros(len(weights))
    for _ in range(draws):
        counts[draw_without_replacement(rng, weights, 2)] += 1
    frequency = counts / draws
    se = np.sqrt(exact * (1 - exact) / draws)
    assert np.all(np.abs(frequency - exact) < 4 * se), (frequency, exact)
    # keep >= items: every item is kept
    assert torch.allclose(inclusion_probabilities(torch.tensor([0.2, 0.3], dtype=torch.float64), 2), torch.ones(2, dtype=torch.float64))


@pytest.fixture(scope="module")
def darts() -> tuple[ss.SearchSpace, Kept, LinearSurrogate, dict[str, torch.Tensor]]:
    space = ss.get_space("darts", C=4, layers=5)
    kept = kept_inputs(space)
    assert kept is not None
    rng = np.random.default_rng(1)
    model = LinearSurrogate(2.0, {d.name: torch.tensor(rng.uniform(0.0, 1.0, len(d.choices))) for d in space.decisions})
    logits = {d.name: torch.tensor(rng.normal(0.0, 1.5, len(d.choices))) for d in space.decisions}
    return space, kept, model, logits


def test_pruned_expectation_matches_sampled_genotypes(darts) -> None:
    """Draw genotypes by the rule the docstring states, price each with the model, compare the mean."""
    space, kept, model, logits = darts
    rng = np.random.default_rng(2)
    probabilities = {k: torch.softmax(v, -1).numpy() for k, v in logits.items()}
    none = kept.dropped
    values = []
    for _ in range(6_000):
        choices = {}
        for group in kept.groups:
            mass = np.array([1.0 - probabilities[name][none] for name in group])
            chosen = {group[i] for i in draw_without_replacement(rng, mass, kept.keep)}
            for name in group:
                decision = next(d for d in space.decisions if d.name == name)
                if name in chosen:
                    p = probabilities[name].copy()
                    p[none] = 0.0
                    choices[name] = decision.choices[int(rng.choice(len(p), p=p / p.sum()))]
                else:
                    choices[name] = decision.choices[none]
        values.append(float(model(space.one_hot(space.architecture(choices)))))
    exact = float(expected_latency(logits, model, kept))
    mean, se = float(np.mean(values)), float(np.std(values) / np.sqrt(len(values)))
    assert abs(mean - exact) < 4 * se, (mean, exact, se)
    assert abs(exact - float(expected_latency(logits, model))) > 10 * se  # pruning changes the price


def test_uniform_logits_give_the_mean_over_uniform_genotypes(darts) -> None:
    """Closed form: a node with n input edges keeps each with probability 2/n, with a uniform non-none op."""
    space, kept, model, _ = darts
    uniform = {d.name: torch.zeros(len(d.choices), dtype=torch.float64) for d in space.decisions}
    coefs = model.coefficients
    want = model.bias
    for group in kept.groups:
        for name in group:
            w = coefs[name].numpy()
            others = np.delete(w, kept.dropped)
            want += kept.keep / len(group) * others.mean() + (1 - kept.keep / len(group)) * w[kept.dropped]
    assert float(expected_latency(uniform, model, kept)) == pytest.approx(want, rel=1e-12)
    rng = np.random.default_rng(3)
    sampled = [float(model(space.one_hot(space.sample_network(rng)))) for _ in range(3_000)]
    assert abs(np.mean(sampled) - want) < 4 * np.std(sampled) / np.sqrt(len(sampled))


def test_gradient_matches_central_differences(darts) -> None:
    space, kept, model, logits = darts
    leaves = {k: v.clone().requires_grad_(True) for k, v in logits.items()}
    gradient = torch.autograd.grad(expected_latency(leaves, model, kept), list(leaves.values()))
    rng = np.random.default_rng(4)
    names = list(logits)
    for index in rng.choice(len(names), size=6, replace=False):
        name = names[int(index)]
        for choice in range(len(logits[name])):
            step = 1e-6
            plus = {k: v.clone() for k, v in logits.items()}
            minus = {k: v.clone() for k, v in logits.items()}
            plus[name][choice] += step
            minus[name][choice] -= step
            numeric = (float(expected_latency(plus, model, kept)) - float(expected_latency(minus, model, kept))) / (2 * step)
            assert gradient[int(index)][choice].item() == pytest.approx(numeric, abs=1e-7)


def test_only_pruning_spaces_get_a_kept_rule() -> None:
    assert kept_inputs(ss.get_space("proxyless")) is None
    assert kept_inputs(ss.get_space("darts", parameterization="factorized")) is None
    kept = kept_inputs(ss.get_space("darts"))
    assert kept is not None and kept.keep == 2 and len(kept.groups) == 8
    assert sorted(len(group) for group in kept.groups) == [2, 2, 3, 3, 4, 4, 5, 5]
