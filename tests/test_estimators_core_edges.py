"""Edges of the estimators' numeric core that the unbiasedness tests never reach (issue #31's mutation
survivors of distribution, expected_latency, darts and tuning), each checked against an independent
reference: a closed form, enumeration, or torch's own implementation of the same definition."""

from __future__ import annotations

import math

import pytest
import torch

from estimator_toys import enumerate_architectures
from hwnas.estimators import ArchitectureDistribution
from profilers import torch_threads


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with torch_threads(1):
        yield


def test_a_decision_needs_a_last_dimension_of_at_least_one_choice_and_one_choice_is_a_fixed_decision() -> None:
    """A decision of one choice (a layer whose op is fixed) is a valid factor with probability 1: log p(b), the
    entropy and the score equal those of the other decisions alone. A scalar or an empty last dimension is no
    categorical and is refused as such."""
    for bad in (torch.tensor(0.3), torch.zeros(0), torch.zeros(2, 0)):
        with pytest.raises(ValueError, match="last dimension of choices"):
            ArchitectureDistribution({"a": bad})
    free = {"b": torch.tensor([0.2, -0.7, 1.1], dtype=torch.float64)}
    with_fixed = ArchitectureDistribution({"fixed": torch.tensor([0.9], dtype=torch.float64), **free})
    alone = ArchitectureDistribution(free)
    index = enumerate_architectures(with_fixed)
    assert torch.equal(index["fixed"], torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(with_fixed.log_prob(index), torch.distributions.Categorical(logits=free["b"]).log_prob(index["b"]))
    torch.testing.assert_close(with_fixed.entropy(), alone.entropy())
    torch.testing.assert_close(with_fixed.score(index)["fixed"], torch.zeros(3, 1, dtype=torch.float64))
    draws = with_fixed.sample((50,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws["fixed"], torch.zeros(50, dtype=torch.long))
    assert math.isclose(float(with_fixed.probabilities()["fixed"]), 1.0)


def _pruned_expectation_by_enumeration(probabilities: dict[str, list[float]], coefficients: dict[str, list[float]],
                                       bias: float, groups: list[list[str]], keep: int, dropped: int) -> float:
    """E[g] by listing every outcome of the pruning rule: per group, each ordered draw of `keep` edges (each draw
    proportional to the non-dropped mass of the edges left), each kept edge's non-dropped choice (renormalised);
    the other edges at `dropped`; decisions in no group drawn from their own categorical."""
    import itertools  # noqa: PLC0415

    total = bias
    grouped = {name for group in groups for name in group}
    for name, p in probabilities.items():
        if name not in grouped:
            total += sum(pk * ck for pk, ck in zip(p, coefficients[name]))
    for group in groups:
        mass = {name: 1.0 - probabilities[name][dropped] for name in group}
        for order in itertools.permutations(group, keep):
            chance, left = 1.0, sum(mass.values())
            for name in order:
                chance *= mass[name] / left
                left -= mass[name]
            choices = [[c for c in range(len(probabilities[name])) if c != dropped] if name in order else [dropped]
                       for name in group]
            for picked in itertools.product(*choices):
                weight = chance
                for name, c in zip(group, picked):
                    if name in order:
                        weight *= probabilities[name][c] / mass[name]
                total += weight * sum(coefficients[name][c] for name, c in zip(group, picked))
    return total


def test_pruned_expectation_prices_decisions_outside_every_group_by_their_own_categorical() -> None:
    """The pruned expectation with decisions in no group (the DARTS cell space has none, so no other test has them)
    against a listing of every outcome; logits and coefficients given as a mapping or by position agree."""
    from hwnas.estimators import Kept, LinearSurrogate, expected_latency  # noqa: PLC0415

    generator = torch.Generator().manual_seed(4)
    names = ["u", "e0", "e1", "v", "e2"]  # u, v in no group, placed between grouped edges
    sizes = {"u": 3, "e0": 4, "e1": 4, "v": 2, "e2": 4}
    logits = {n: torch.randn(sizes[n], generator=generator, dtype=torch.float64) for n in names}
    coefficients = {n: torch.rand(sizes[n], generator=generator, dtype=torch.float64) + 0.1 for n in names}
    bias = 0.7
    expected = _pruned_expectation_by_enumeration(
        {n: torch.softmax(logits[n], -1).tolist() for n in names}, {n: coefficients[n].tolist() for n in names},
        bias, [["e0", "e1", "e2"]], keep=2, dropped=1)
    keyed = expected_latency(logits, LinearSurrogate(bias, coefficients), Kept([["e0", "e1", "e2"]], keep=2, dropped=1))
    assert float(keyed) == pytest.approx(expected, rel=1e-12)
    by_position = expected_latency([logits[n] for n in names], LinearSurrogate(bias, [coefficients[n] for n in names]),
                                   Kept([[1, 2, 4]], keep=2, dropped=1))
    assert float(by_position) == pytest.approx(expected, rel=1e-12)
    plain = expected_latency(logits, LinearSurrogate(bias, coefficients))
    assert float(plain) == pytest.approx(bias + sum(float(torch.softmax(logits[n], -1) @ coefficients[n]) for n in names), rel=1e-12)


def _coupled_losses(w: torch.Tensor, a: torch.Tensor, unused_a: torch.Tensor | None = None):
    """Smooth train / val losses of weights w (3,) and logits a (2,) that couple the two (non-zero mixed
    derivatives); `unused_a` enters neither."""
    mix = torch.softmax(a, -1)
    train = (torch.tanh(w[:2] * mix) ** 2).sum() + w[2] ** 2 * mix[0] + 0.3 * (w ** 4).sum()
    val = torch.log1p((w[:2] * mix - 0.5) ** 2).sum() + torch.sin(w[2]) * mix[1]
    return train, val


def test_the_amended_gradient_by_default_uses_bi_et_als_eta_the_searchs_default() -> None:
    """amended() and darts_gradient('amended') without eta: g1 - 0.1 H_aw H_ww dL_val/dw (Bi et al. Eq. 7 with
    eta 0.1, the default of the search's --amended-eta), against dense Hessians of the joint loss."""
    from hwnas.estimators.darts import amended, darts_gradient  # noqa: PLC0415
    from hwnas.search.sections import EstimatorConfig  # noqa: PLC0415

    w0 = torch.tensor([0.4, -0.8, 0.6], dtype=torch.float64)
    a0 = torch.tensor([0.3, -0.2], dtype=torch.float64)
    joint = torch.cat([w0, a0])
    hessian = torch.autograd.functional.hessian(lambda j: _coupled_losses(j[:3], j[3:])[0], joint)
    grad_val = torch.autograd.functional.jacobian(lambda j: _coupled_losses(j[:3], j[3:])[1], joint)
    eta = EstimatorConfig().amended_eta
    assert eta == 0.1
    reference = grad_val[3:] - eta * hessian[3:, :3] @ (hessian[:3, :3] @ grad_val[:3])
    assert float((reference - grad_val[3:]).norm()) > 1e-3  # the correction matters here
    w, a = w0.clone().requires_grad_(), a0.clone().requires_grad_()
    train, val = (lambda: _coupled_losses(w, a)[0]), (lambda: _coupled_losses(w, a)[1])
    for result in (amended(train, val, [w], [a]), darts_gradient("amended", train, val, [w], [a])):
        torch.testing.assert_close(result.total[0], reference, rtol=1e-10, atol=1e-12)


def test_tensors_a_loss_does_not_read_get_a_zero_gradient_in_every_order() -> None:
    """The module's contract: a logit or weight the losses do not depend on gets a zero gradient (not an error),
    and the others get what they get without it."""
    from hwnas.estimators.darts import darts_gradient  # noqa: PLC0415

    w = torch.tensor([0.4, -0.8, 0.6], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    idle_w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    idle_a = torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64, requires_grad=True)
    train, val = (lambda: _coupled_losses(w, a)[0]), (lambda: _coupled_losses(w, a)[1])
    for order in ("first", "second", "amended"):
        alone = darts_gradient(order, train, val, [w], [a], xi=0.05)
        with_idle = darts_gradient(order, train, val, [w, idle_w], [a, idle_a], xi=0.05)
        torch.testing.assert_close(with_idle.total[0], alone.total[0], rtol=1e-9, atol=1e-12)
        assert torch.equal(with_idle.total[1], torch.zeros(3, dtype=torch.float64)), order
        assert torch.equal(idle_w.detach(), torch.tensor([1.0, 2.0], dtype=torch.float64))


def test_the_amended_mixed_term_refuses_a_direction_that_misses_a_weight() -> None:
    """<dL_train/dw, v> over fewer direction tensors than weights would silently drop the missing weights' part."""
    from hwnas.estimators.darts import amended_mixed_term  # noqa: PLC0415

    w = torch.tensor([0.4, -0.8, 0.6], dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor([0.1], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError):
        amended_mixed_term(lambda: _coupled_losses(w, a)[0] + (w2 ** 2).sum(), [w, w2], [a], [torch.ones(3, dtype=torch.float64)])


def test_second_order_probes_the_train_loss_at_w_plus_minus_0_01_along_the_unrolled_val_gradient() -> None:
    """DARTS Eq. 8: the mixed product by central differences at w +- eps v', eps = 0.01 / ||v'||, v' = dL_val/dw at
    the unrolled w' = w - xi dL_train/dw. Seen through a train loss that records where it is evaluated: the two
    probes sit 0.01 from w, on either side, along v' (computed here by autograd at w')."""
    from hwnas.estimators.darts import second_order  # noqa: PLC0415

    w0 = torch.tensor([0.4, -0.8, 0.6], dtype=torch.float64)
    a = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    xi = 0.05
    unrolled = (w0 - xi * torch.autograd.functional.jacobian(lambda x: _coupled_losses(x, a.detach())[0], w0)).requires_grad_()
    (v,) = torch.autograd.grad(_coupled_losses(unrolled, a)[1], unrolled)
    assert float(v.norm()) not in (0.0, 1.0)

    w = w0.clone().requires_grad_()
    seen: list[torch.Tensor] = []

    def train() -> torch.Tensor:
        seen.append(w.detach().clone())
        return _coupled_losses(w, a)[0]

    second_order(train, lambda: _coupled_losses(w, a)[1], [w], [a], xi=xi)
    assert len(seen) == 3  # the unrolling step, then w + eps v', w - eps v'
    torch.testing.assert_close(seen[0], w0)
    torch.testing.assert_close(seen[1] - w0, 0.01 * v / v.norm(), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(seen[2] - w0, -0.01 * v / v.norm(), rtol=1e-9, atol=1e-12)


def test_second_order_with_a_val_loss_flat_in_the_weights_is_first_order() -> None:
    """v' = 0 (the val loss does not move with w): no finite difference to take, the correction is zero."""
    from hwnas.estimators.darts import first_order, second_order  # noqa: PLC0415

    w = torch.tensor([0.4, -0.8, 0.6], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    val = lambda: (torch.softmax(a, -1) * torch.tensor([1.0, 3.0], dtype=torch.float64)).sum() + 0.0 * w.sum()  # noqa: E731
    result = second_order(lambda: _coupled_losses(w, a)[0], val, [w], [a], xi=0.05)
    torch.testing.assert_close(result.total[0], first_order(val, [w], [a]).total[0])
    assert torch.equal(result.correction[0], torch.zeros(2, dtype=torch.float64))


def _tuning_toy():
    from estimator_toys import ToyProblem  # noqa: PLC0415
    from hwnas.estimators import LinearSurrogate  # noqa: PLC0415

    toy = ToyProblem.random(decisions=3, choices=4, interaction=0.3, seed=3)
    index = enumerate_architectures(toy.logits)
    return toy, LinearSurrogate.fit(toy.logits, index, toy.lookup(index))


def test_the_estimate_of_several_results_of_one_sample_is_the_gradient_of_their_summed_surrogates() -> None:
    """A search's REBAR accuracy term and RELAX latency term on one sample: gradient_estimate of both is the
    autograd gradient of the mean of their summed surrogates (not of their difference)."""
    from hwnas.estimators import relax, sample_relaxed  # noqa: PLC0415
    from hwnas.estimators.tuning import gradient_estimate  # noqa: PLC0415

    toy, surrogate = _tuning_toy()
    n = 16
    leaves = {k: t.expand(n, -1).clone().requires_grad_(True) for k, t in toy.logits.items()}
    s = sample_relaxed(leaves, 0.5, generator=torch.Generator().manual_seed(3))
    first = relax(s, toy.lookup(s.index), surrogate, eta=0.7)
    second = relax(s, 2.0 * toy.lookup(s.index) + 1.0, surrogate, eta=0.4)
    rebuilt = gradient_estimate([first, second], leaves)
    direct = torch.autograd.grad((first.surrogate.sum() + second.surrogate.sum()) / n, list(leaves.values()))
    for (k, r), d in zip(rebuilt.items(), direct):
        torch.testing.assert_close(r, d)


def test_a_tuner_refuses_a_temperature_that_is_not_positive_by_saying_so() -> None:
    from hwnas.estimators import VarianceTuner  # noqa: PLC0415

    for tau in (0.0, -0.5):
        with pytest.raises(ValueError, match="tau must be positive"):
            VarianceTuner(tau=tau)
    assert float(VarianceTuner(tau=1e-6).tau.detach()) == pytest.approx(1e-6)


def test_a_restored_tuner_continues_exactly_as_the_one_never_stopped() -> None:
    """state_dict / load_state_dict through torch.save and torch.load (a search checkpoint): a fresh tuner loaded
    from one mid-run takes the same next steps, bit for bit (log tau, eta and Adam's moments all restored)."""
    import io  # noqa: PLC0415

    from hwnas.estimators import VarianceTuner, relax, sample_relaxed  # noqa: PLC0415

    toy, surrogate = _tuning_toy()
    leaves = {k: t.clone().requires_grad_(True) for k, t in toy.logits.items()}

    def one_step(tuner: VarianceTuner, seed: int) -> float:
        s = sample_relaxed(leaves, tuner.tau, sample_shape=(8,), generator=torch.Generator().manual_seed(seed))
        return tuner.step(relax(s, toy.lookup(s.index), surrogate, eta=tuner.eta), leaves)

    running = VarianceTuner(tau=0.3, eta=0.6, lr=0.05)
    for seed in range(3):
        one_step(running, seed)
    restored = VarianceTuner(tau=1.7, eta=-2.0, lr=0.05)  # another starting point: everything must come from the state
    saved = io.BytesIO()
    torch.save(running.state_dict(), saved)
    saved.seek(0)
    restored.load_state_dict(torch.load(saved))
    assert float(restored.tau.detach()) == float(running.tau.detach()) and float(restored.eta.detach()) == float(running.eta.detach())
    for seed in range(3, 6):
        assert one_step(restored, seed) == one_step(running, seed)
        assert float(restored.tau.detach()) == float(running.tau.detach()) and float(restored.eta.detach()) == float(running.eta.detach())


def test_step_eta_is_adam_on_the_closed_form_derivative_of_the_squared_norm() -> None:
    """g_hat = a + eta b is affine in eta, so d||g_hat||^2/d eta = 2 <a + eta b, b>. Several step_eta calls, each on
    other (a, b), follow torch's Adam fed that derivative (computed here in numpy), and each returns ||g_hat||^2."""
    import numpy as np  # noqa: PLC0415

    from hwnas.estimators import VarianceTuner  # noqa: PLC0415

    rng = np.random.default_rng(0)
    tuner = VarianceTuner(tau=0.5, eta=0.8, lr=0.1, tune_tau=False)
    reference = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([reference], lr=0.1)
    for step in range(5):
        a = {"x": rng.normal(size=3) * (step + 1), "y": rng.normal(size=(2, 2))}
        b = {"x": rng.normal(size=3), "y": rng.normal(size=(2, 2)) * 3.0 ** -step}
        eta = float(tuner.eta.detach())
        assert eta == pytest.approx(float(reference.detach()), rel=1e-12)
        estimate = {k: torch.tensor(a[k] + eta * b[k]) for k in a}
        squared = sum(float(((a[k] + eta * b[k]) ** 2).sum()) for k in a)
        derivative = sum(2.0 * float(((a[k] + eta * b[k]) * b[k]).sum()) for k in a)
        assert tuner.step_eta(estimate, {k: torch.tensor(b[k]) for k in b}) == pytest.approx(squared, rel=1e-12)
        reference.grad = torch.tensor(derivative, dtype=torch.float64)
        adam.step()
    assert float(tuner.eta.detach()) == pytest.approx(float(reference.detach()), rel=1e-12)
    with pytest.raises(ValueError, match="step_eta tunes eta alone"):
        VarianceTuner(tau=0.5, eta=0.8).step_eta(estimate, {k: torch.tensor(b[k]) for k in b})


def test_a_control_variate_that_ignores_a_decision_leaves_only_its_score_term() -> None:
    """RELAX with a control variate that reads one decision of three: the estimate is still the autograd gradient of
    the mean surrogate; the ignored decisions get only their score term (no reparameterised part)."""
    from hwnas.estimators import relax, sample_relaxed  # noqa: PLC0415
    from hwnas.estimators.tuning import gradient_estimate  # noqa: PLC0415

    toy, _ = _tuning_toy()
    n = 8
    leaves = {k: t.expand(n, -1).clone().requires_grad_(True) for k, t in toy.logits.items()}
    first = next(iter(leaves))
    weight = torch.linspace(0.5, 2.0, leaves[first].shape[-1], dtype=torch.float64)
    s = sample_relaxed(leaves, 0.5, generator=torch.Generator().manual_seed(6))
    result = relax(s, toy.lookup(s.index), lambda x: (x[first] * weight).sum(-1), eta=0.9)
    rebuilt = gradient_estimate(result, leaves)
    direct = torch.autograd.grad(result.surrogate.sum() / n, list(leaves.values()))
    for (k, r), d in zip(rebuilt.items(), direct):
        torch.testing.assert_close(r, d)


def test_a_temperature_the_estimate_does_not_read_stays_and_eta_steps_as_if_tuned_alone() -> None:
    """A sample drawn at a fixed tau (not the tuner's): log tau gets a zero gradient, so Adam leaves it, and eta takes
    the step of a tuner of eta alone on the same estimate."""
    from hwnas.estimators import VarianceTuner, relax, sample_relaxed  # noqa: PLC0415

    toy, surrogate = _tuning_toy()
    leaves = {k: t.clone().requires_grad_(True) for k, t in toy.logits.items()}
    s = sample_relaxed(leaves, 0.5, sample_shape=(8,), generator=torch.Generator().manual_seed(2))
    both, alone = VarianceTuner(tau=0.3, eta=0.8, lr=0.1), VarianceTuner(tau=0.3, eta=0.8, lr=0.1, tune_tau=False)
    for tuner in (both, alone):
        tuner.step(relax(s, toy.lookup(s.index), surrogate, eta=tuner.eta), leaves)
    assert float(both.tau.detach()) == pytest.approx(0.3, rel=1e-15)
    assert float(both.eta.detach()) == float(alone.eta.detach()) != 0.8


def test_a_tuner_built_without_eta_or_lr_starts_where_the_searchs_default_tuner_starts() -> None:
    """VarianceTuner's eta and learning rate default to the search's (estimator.rebar_eta = UNAS's eta 1 and
    estimator.tune_variance_lr): a direct library call tunes as a default search does."""
    from hwnas.estimators import VarianceTuner, relax, sample_relaxed  # noqa: PLC0415
    from hwnas.search.sections import EstimatorConfig  # noqa: PLC0415

    toy, surrogate = _tuning_toy()
    leaves = {k: t.clone().requires_grad_(True) for k, t in toy.logits.items()}
    config = EstimatorConfig()
    assert config.rebar_eta == 1.0
    default, search = VarianceTuner(tau=0.4), VarianceTuner(tau=0.4, eta=config.rebar_eta, lr=config.tune_variance_lr)
    assert float(default.eta.detach()) == config.rebar_eta
    for seed in range(2):
        for tuner in (default, search):
            s = sample_relaxed(leaves, tuner.tau, sample_shape=(8,), generator=torch.Generator().manual_seed(seed))
            tuner.step(relax(s, toy.lookup(s.index), surrogate, eta=tuner.eta), leaves)
        assert float(default.eta.detach()) == float(search.eta.detach())
        assert float(default.tau.detach()) == float(search.tau.detach())
