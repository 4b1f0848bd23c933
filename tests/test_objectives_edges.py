"""The objectives at the edges their definitions draw (issue #31 mutation survivors): which losses
each term needs, the defaults of the power penalty, sub-millisecond targets and weights below
one, and the hinge's acceptance band including its end."""

from __future__ import annotations

import pytest
import torch

from hwnas.errors import UsageError
from hwnas.objectives import LatencyPenalty, accuracy_objective, generalization_loss


@pytest.mark.parametrize(("train", "val"), [(None, 0.7), (0.3, None), (None, None)])
def test_l_gen_refuses_a_missing_loss(train: float | None, val: float | None) -> None:
    with pytest.raises(ValueError, match="'gen' needs both losses"):
        accuracy_objective("gen", train, val)


@pytest.mark.parametrize(("kind", "train", "val"), [("val", 0.3, None), ("train", None, 0.7)])
def test_each_term_refuses_the_loss_it_lacks(kind: str, train: float | None, val: float | None) -> None:
    with pytest.raises(ValueError, match=f"'{kind}' needs"):
        accuracy_objective(kind, train, val)


@pytest.mark.parametrize("lam", [0.0, 0.25, 2.0])
def test_l_gen_is_symmetric_in_the_gap_and_linear_in_lambda(lam: float) -> None:
    assert generalization_loss(1.0, 1.4, lam) == pytest.approx(1.0 + 0.4 * lam)
    assert generalization_loss(1.4, 1.0, lam) == pytest.approx(1.4 + 0.4 * lam)
    tensor = generalization_loss(torch.tensor(1.4), torch.tensor(1.0), lam)
    assert float(tensor) == pytest.approx(1.4 + 0.4 * lam)


def test_power_penalty_defaults_to_the_plain_ratio() -> None:
    """weight 1 and beta 1 by default: the penalty is L / T itself."""
    penalty = LatencyPenalty(4.0, "power")
    assert penalty(6.0) == pytest.approx(1.5) and penalty(2.0) == pytest.approx(0.5)


def test_sub_millisecond_targets_and_fractional_weights_are_valid() -> None:
    penalty = LatencyPenalty(0.05, "hinge", weight=0.5)
    assert penalty(0.1) == pytest.approx(0.5)
    assert LatencyPenalty(0.05, "abs", weight=0.0)(0.1) == 0.0
    with pytest.raises(UsageError, match="latency weight must be >= 0"):
        LatencyPenalty(1.0, weight=-0.1)
    with pytest.raises(UsageError, match="positive"):
        LatencyPenalty(-0.5)


@pytest.mark.parametrize("target", [2.0, 7.3])
def test_the_hinge_accepts_up_to_and_including_target_times_one_plus_tolerance(target: float) -> None:
    penalty = LatencyPenalty(target, "hinge")
    assert penalty.satisfied(target * 1.15) and penalty.satisfied(target * 1.1)
    assert not penalty.satisfied(target * 1.16)
    assert penalty.satisfied(target * 1.25, tolerance=0.25) and not penalty.satisfied(target * 1.26, tolerance=0.25)


@pytest.mark.parametrize("kind", ["abs", "power"])
def test_two_sided_acceptance_includes_both_ends(kind: str) -> None:
    penalty = LatencyPenalty(10.0, kind)
    assert penalty.satisfied(10.0 * 1.125, tolerance=0.125) and penalty.satisfied(10.0 * 0.875, tolerance=0.125)
    assert not penalty.satisfied(10.0 * 1.13, tolerance=0.125) and not penalty.satisfied(10.0 * 0.87, tolerance=0.125)


def test_accuracy_and_cross_entropy_against_their_definitions() -> None:
    from hwnas.objectives import accuracy, cross_entropy  # noqa: PLC0415

    logits = torch.tensor([[2.0, 0.1, -1.0], [0.0, 3.0, 0.5], [0.2, 0.1, 0.9], [1.0, 1.5, 0.0]])
    labels = torch.tensor([0, 1, 0, 2])  # the first two are predicted right, the last two wrong
    assert accuracy(logits, labels) == 0.5
    assert accuracy(logits, logits.argmax(dim=1)) == 1.0
    log_softmax = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    assert float(cross_entropy(logits, labels)) == pytest.approx(float(-log_softmax[torch.arange(4), labels].mean()))
