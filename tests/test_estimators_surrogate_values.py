"""What the score-function estimators give when called with their defaults, against closed forms (issue #31).

- REINFORCE with no baseline is ``f(b) d log p(b)/d phi`` with ``d log p(b)/d phi_e = onehot(b_e) - softmax(phi_e)``.
- REBAR with no eta is UNAS Eq. 3 at eta = 1, and its surrogate's *value* is that of the score term plus
  ``c - c~``: the term that hands network weights ``d f(b)/dw`` has value zero (score_function's docstring).
- The moving-average baseline's default decay is 0.9: ``c <- 0.9 c + 0.1 r``.
- GDAS's linear temperature schedule at its edges (one epoch, a start of exactly 1, refusals).
- `gumbel_softmax` is SNAS (soft weights) unless straight-through (GDAS) is asked for.
- The ensemble relaxation (DARTS-EGS) tends to its multi-hot code as tau -> 0.
"""

from __future__ import annotations

import pytest
import torch

from hwnas.estimators import (
    LinearTemperature,
    MovingAverageBaseline,
    gumbel_softmax,
    moving_average_baselines,
    rebar,
    reinforce,
    sample_ensemble,
    sample_hard,
    sample_relaxed,
)

SCALES = {"a": torch.tensor([1.0, 2.5, -3.0], dtype=torch.float64), "b": torch.tensor([0.5, -1.5], dtype=torch.float64)}


def _logits() -> dict[str, torch.Tensor]:
    return {"a": torch.tensor([0.3, -0.2, 0.9], dtype=torch.float64, requires_grad=True),
            "b": torch.tensor([-0.4, 0.1], dtype=torch.float64, requires_grad=True)}


def _loss(weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """A loss linear in the per-decision weights, plus 2 (so no term is zero by accident)."""
    return 2.0 + sum((weights[k] * SCALES[k]).sum(-1) for k in SCALES)


@pytest.mark.parametrize("seed", range(4))
def test_reinforce_without_a_baseline_is_reward_times_the_closed_form_score(seed: int) -> None:
    logits = _logits()
    sample = sample_hard(logits, generator=torch.Generator().manual_seed(seed))
    reward = 3.25
    reinforce(sample, reward).surrogate.backward()
    for key, phi in logits.items():
        chosen = torch.nn.functional.one_hot(sample.index[key], phi.shape[-1]).to(phi.dtype)
        expected = reward * (chosen - torch.softmax(phi.detach(), -1))
        torch.testing.assert_close(phi.grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("conditional", ["reuse", "fresh"])
@pytest.mark.parametrize("seed", range(4))
def test_rebar_default_is_eta_one_and_its_surrogate_value_has_no_extra_term(conditional: str, seed: int) -> None:
    logits = _logits()
    sample = sample_relaxed(logits, 0.5, generator=torch.Generator().manual_seed(seed), conditional=conditional)
    result = rebar(sample, _loss)
    with torch.no_grad():
        f_b = _loss(sample.hard)
        c = _loss(sample.relaxed)
        c_tilde = _loss(sample.conditional)
        log_p = sum(torch.log_softmax(logits[k], -1)[sample.index[k]] for k in logits)
    assert float(result.baseline) == pytest.approx(float(c_tilde), abs=1e-12)  # c~ = 1 x L(zeta~)
    assert float(result.relaxed_value) == pytest.approx(float(c), abs=1e-12)
    assert float(result.surrogate.detach()) == pytest.approx(float(log_p * (f_b - c_tilde) + c - c_tilde), abs=1e-12)


def test_moving_average_baseline_default_decay_is_0_9() -> None:
    tracker = MovingAverageBaseline()
    assert tracker.update(1.0) == 1.0
    assert tracker.update(0.0) == pytest.approx(0.9, abs=1e-15)
    assert tracker.update(0.0) == pytest.approx(0.81, abs=1e-15)
    seen = moving_average_baselines(torch.tensor([1.0, 0.0, 0.0, 5.0], dtype=torch.float64))
    torch.testing.assert_close(seen, torch.tensor([0.0, 1.0, 0.9, 0.81], dtype=torch.float64), rtol=0, atol=1e-15)


def test_linear_temperature_schedule_at_its_edges() -> None:
    """One epoch is the end temperature; a start of exactly 1 (GDAS's text: 10 -> 1) is a valid temperature and
    the midpoint of 1 -> 0.5 over three epochs is 0.75; zero epochs or a zero temperature are refused."""
    single = LinearTemperature(1)
    assert single(0) == single(3) == 0.1
    schedule = LinearTemperature(3, start=1.0, end=0.5)
    assert [schedule(epoch) for epoch in (-1, 0, 1, 2, 9)] == pytest.approx([1.0, 1.0, 0.75, 0.5, 0.5], abs=1e-15)
    for bad in ({"epochs": 0}, {"epochs": 3, "start": 0.0}, {"epochs": 3, "end": 0.0}):
        with pytest.raises(ValueError):
            LinearTemperature(**bad)


@pytest.mark.parametrize("seed", range(3))
def test_gumbel_softmax_is_snas_by_default_and_gdas_only_when_asked(seed: int) -> None:
    """By default the loss sees the soft relaxation (every op weighted, weights in (0, 1) summing to 1, SNAS);
    with straight_through it sees exactly the one-hot b (GDAS)."""
    soft = gumbel_softmax(_logits(), _loss, generator=torch.Generator().manual_seed(seed))
    for key, weights in soft.weights.items():
        assert bool(((weights > 0) & (weights < 1)).all()), key
        assert float(weights.sum()) == pytest.approx(1.0, abs=1e-12)
    hard = gumbel_softmax(_logits(), _loss, straight_through=True, generator=torch.Generator().manual_seed(seed))
    for key, weights in hard.weights.items():
        torch.testing.assert_close(weights.detach(), hard.hard[key], rtol=0, atol=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_ensemble_relaxation_tends_to_its_multi_hot_code_as_tau_goes_to_zero(seed: int) -> None:
    """DARTS-EGS: relaxed = max over the M samples of softmax(z^(m) / tau) over each sample's choices; as
    tau -> 0 every softmax becomes the one-hot of its argmax, so the relaxed max becomes the multi-hot code
    (computed over the choices of each sample, never across samples or batch rows)."""
    logits = {"a": torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(100 + seed)),
              "b": torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(200 + seed))}
    sample = sample_ensemble(logits, 2, 1e-5, sample_shape=(3,), generator=torch.Generator().manual_seed(seed))
    for key, codes in sample.codes.items():
        assert codes.shape == (3, logits[key].shape[-1])
        assert bool((codes.sum(-1) >= 1).all() and (codes.sum(-1) <= 2).all())
        torch.testing.assert_close(sample.relaxed[key], codes, rtol=0, atol=1e-3)
        torch.testing.assert_close(sample.weights[key].detach(), codes, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sample_shape", [(), (5,)])
def test_delayed_relax_completed_later_is_the_synchronous_relax_gradient(sample_shape: tuple[int, ...]) -> None:
    """`pending_relax` then `complete(R)` gives, summed over samples, the gradient autograd takes through
    `relax(sample, R, g)` on the same sample (hwnas.estimators.delayed's docstring), with one reward per sample
    or one for all; the sample's graph stays usable after the pending part is taken (the step's other terms)."""
    from hwnas.estimators.delayed import pending_relax  # noqa: PLC0415
    from hwnas.estimators.score_function import relax  # noqa: PLC0415

    logits = _logits()
    sample = sample_relaxed(logits, 0.5, sample_shape=sample_shape, generator=torch.Generator().manual_seed(3),
                            conditional="fresh")
    pending = pending_relax(sample, _loss, logits, eta=0.8)
    for reward in (torch.linspace(1.0, 3.0, 5, dtype=torch.float64)[: (sample_shape or (1,))[0]].reshape(sample_shape),
                   torch.tensor(2.5, dtype=torch.float64)):
        completed = pending.complete(reward)
        surrogate = relax(sample, reward, _loss, eta=0.8).surrogate.sum()
        reference = torch.autograd.grad(surrogate, list(logits.values()), retain_graph=True)
        for (key, phi), expected in zip(logits.items(), reference, strict=True):
            assert completed[key].shape == phi.shape
            torch.testing.assert_close(completed[key], expected, rtol=1e-10, atol=1e-12)
