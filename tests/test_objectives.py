"""Objectives: L_gen (UNAS Eq. 8) and the latency penalties agree on floats and tensors."""

from __future__ import annotations

import pytest
import torch

from hwnas.errors import UsageError
from hwnas.objectives import LatencyPenalty, accuracy_objective, generalization_loss, needs_train_loss


def test_generalization_loss_is_train_plus_half_gap() -> None:
    assert generalization_loss(1.0, 1.4) == pytest.approx(1.2)
    assert generalization_loss(1.0, 0.6) == pytest.approx(1.2)  # absolute gap
    tensor = generalization_loss(torch.tensor(1.0), torch.tensor(1.4), lam=0.5)
    assert float(tensor) == pytest.approx(1.2)


def test_generalization_gradient_flows_to_both_losses() -> None:
    train, val = torch.tensor(1.0, requires_grad=True), torch.tensor(2.0, requires_grad=True)
    generalization_loss(train, val).backward()
    assert float(train.grad) == pytest.approx(0.5) and float(val.grad) == pytest.approx(0.5)


def test_accuracy_objective_selects_the_named_term() -> None:
    assert accuracy_objective("val", None, 0.7) == 0.7
    assert accuracy_objective("train", 0.3, None) == 0.3
    assert accuracy_objective("gen", 0.3, 0.7) == pytest.approx(0.5)
    assert needs_train_loss("gen") and not needs_train_loss("val")
    with pytest.raises(UsageError):
        accuracy_objective("test", 0.1, 0.1)


@pytest.mark.parametrize(
    ("kind", "latency", "expected"),
    [("hinge", 8.0, 0.0), ("hinge", 12.0, 0.4), ("power", 5.0, 0.5**2 * 2), ("abs", 8.0, 0.4)],
)
def test_penalty_values_match_on_floats_and_tensors(kind: str, latency: float, expected: float) -> None:
    penalty = LatencyPenalty(target_ms=10.0, kind=kind, weight=2.0, beta=2.0)
    assert penalty(latency) == pytest.approx(expected)
    assert float(penalty(torch.tensor(latency))) == pytest.approx(expected)


def test_penalty_gradient_is_zero_under_the_hinge_only() -> None:
    latency = torch.tensor([8.0, 12.0], requires_grad=True)
    LatencyPenalty(10.0, "hinge", weight=1.0)(latency).sum().backward()
    assert latency.grad.tolist() == pytest.approx([0.0, 0.1])


def test_acceptance_rule() -> None:
    assert LatencyPenalty(10.0, "hinge").satisfied(3.0)
    assert not LatencyPenalty(10.0, "hinge").satisfied(11.6)
    assert LatencyPenalty(10.0, "abs").satisfied(8.6) and not LatencyPenalty(10.0, "abs").satisfied(8.4)


def test_bad_penalties_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="positive"):
        LatencyPenalty(0.0)
    with pytest.raises(UsageError, match="unknown latency penalty"):
        LatencyPenalty(1.0, kind="square")
