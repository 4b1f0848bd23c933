"""`VarianceTuner` used as its docstring says: step the tuner, then backpropagate the same
estimate. Before the fix, Adam's in-place update of eta bumped the version of a tensor the
surrogate's graph had saved, so `backward()` raised whenever eta was tuned (the default).
The backward must also use the eta the estimate was computed with, not the updated one."""

from __future__ import annotations

import torch

from estimator_toys import ToyProblem, enumerate_architectures
from hwnas.estimators import LinearSurrogate, VarianceTuner, relax, sample_relaxed


def _problem():
    toy = ToyProblem.random(decisions=3, choices=4, interaction=0.3, seed=3)
    index = enumerate_architectures(toy.logits)
    return toy, LinearSurrogate.fit(toy.logits, index, toy.lookup(index))


def _gradient(toy, surrogate, leaves, tau, eta, seed):
    sample = sample_relaxed(leaves, tau, sample_shape=(8,), generator=torch.Generator().manual_seed(seed))
    result = relax(sample, toy.lookup(sample.index), surrogate, eta=eta)
    return result, sample


def test_backward_after_a_tuner_step_uses_the_eta_of_the_forward():
    toy, surrogate = _problem()
    tuner = VarianceTuner(tau=0.5, eta=0.8, lr=0.1)  # tune_tau and tune_eta: the defaults
    leaves = {k: t.clone().requires_grad_(True) for k, t in toy.logits.items()}
    result, _ = _gradient(toy, surrogate, leaves, tuner.tau, tuner.eta, seed=5)
    tuner.step(result, leaves)
    assert float(tuner.eta.detach()) != 0.8  # the step moved eta
    result.surrogate.sum().backward()  # raised "modified by an inplace operation" before the fix
    tuned = {k: v.grad.clone() for k, v in leaves.items()}

    reference_leaves = {k: t.clone().requires_grad_(True) for k, t in toy.logits.items()}
    reference, _ = _gradient(toy, surrogate, reference_leaves, torch.tensor(0.5, dtype=torch.float64),
                             torch.tensor(0.8, dtype=torch.float64), seed=5)
    reference.surrogate.sum().backward()
    for key, value in reference_leaves.items():
        torch.testing.assert_close(tuned[key], value.grad)


def test_eta_and_tau_receive_their_variance_gradients():
    toy, surrogate = _problem()
    tuner = VarianceTuner(tau=0.5, eta=0.8, lr=0.1)
    leaves = {k: t.clone().requires_grad_(True) for k, t in toy.logits.items()}
    before = (float(tuner.tau.detach()), float(tuner.eta.detach()))
    result, _ = _gradient(toy, surrogate, leaves, tuner.tau, tuner.eta, seed=7)
    tuner.step(result, leaves)
    after = (float(tuner.tau.detach()), float(tuner.eta.detach()))
    assert after[0] != before[0] and after[1] != before[1]
    assert tuner.eta.requires_grad and tuner.tau.requires_grad


def test_eta_step_from_first_order_terms_matches_the_second_order_gradient():
    """d||g||^2/d eta = 2 <g, b>, b = the control-variate part at eta = 1: equal to autograd through create_graph."""
    from hwnas.estimators.delayed import pending_relax
    from hwnas.estimators.tuning import second_moment

    toy, surrogate = _problem()
    leaves = {k: t.clone().requires_grad_(True) for k, t in toy.logits.items()}
    eta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    sample = sample_relaxed(leaves, 0.5, generator=torch.Generator().manual_seed(11))
    reward = toy.lookup(sample.index)
    (reference,) = torch.autograd.grad(second_moment(relax(sample, reward, surrogate, eta=eta), leaves), eta)

    direction = pending_relax(sample, surrogate, leaves).base  # b: reward 0, eta 1
    estimate = {k: float(reward) * sample.score[k] + 0.7 * direction[k] for k in leaves}
    tuner = VarianceTuner(tau=0.5, eta=0.7, lr=0.1, tune_tau=False)
    before = float(tuner.eta.detach())
    tuner.step_eta(estimate, direction)
    gradient = 2.0 * sum((estimate[k] * direction[k]).sum() for k in leaves)
    torch.testing.assert_close(gradient, reference)
    assert (float(tuner.eta.detach()) < before) == (float(reference) > 0)  # Adam moves eta against the gradient
