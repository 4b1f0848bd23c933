"""The moving-average baseline at decays other than 0.5 (issue #31: with decay 0.5, `decay` and
`1 - decay` are the same number, so a swap of the two passed every test)."""

from __future__ import annotations

import pytest
import torch

from hwnas.estimators import MovingAverageBaseline, moving_average_baselines

DECAYS = [0.0, 0.2, 0.7, 0.9, 0.99]


def _closed_form(rewards: list[float], decay: float) -> float:
    """c_n = decay^(n-1) r_1 + sum_{k>=2} (1 - decay) decay^(n-k) r_k: the first reward is
    taken whole, every later one enters with weight 1 - decay and then fades by decay per step."""
    n = len(rewards)
    return decay ** (n - 1) * rewards[0] + sum((1 - decay) * decay ** (n - k) * rewards[k - 1] for k in range(2, n + 1))


@pytest.mark.parametrize("decay", DECAYS)
def test_baseline_matches_its_closed_form(decay: float) -> None:
    rewards = [3.0, -1.0, 4.0, 1.5, -5.0, 9.0, 2.625]
    tracker = MovingAverageBaseline(decay)
    assert tracker.value == 0.0
    for n in range(1, len(rewards) + 1):
        assert tracker.update(rewards[n - 1]) == pytest.approx(_closed_form(rewards[:n], decay), rel=1e-12, abs=1e-12)
        assert tracker.value == pytest.approx(_closed_form(rewards[:n], decay), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("decay", DECAYS)
def test_after_a_step_the_old_level_fades_as_decay_to_the_k(decay: float) -> None:
    """From a steady 0, k rewards of 1 leave decay^k of the old level: 1 - decay^k."""
    tracker = MovingAverageBaseline(decay)
    tracker.update(0.0)
    for k in range(1, 6):
        assert tracker.update(1.0) == pytest.approx(1.0 - decay**k, abs=1e-12)


@pytest.mark.parametrize("decay", [0.3, 0.8])
def test_sequence_baselines_are_those_before_each_update(decay: float) -> None:
    rewards = torch.tensor([[2.0, 0.0, 5.0], [1.0, -3.0, 4.0]], dtype=torch.float64)
    flat = rewards.reshape(-1).tolist()
    expected = [0.0] + [_closed_form(flat[:n], decay) for n in range(1, len(flat))]
    out = moving_average_baselines(rewards, decay)
    assert out.shape == rewards.shape and out.dtype == rewards.dtype
    assert out.reshape(-1).tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("decay", [0.0, 0.9])
def test_python_floats_and_float64_rewards_keep_their_precision(decay: float) -> None:
    """Rewards are latency penalties of ~0.09 ms and accuracies like 0.1: read as float32 they were off by ~1e-8
    relative, so a baseline equal to the reward did not cancel it."""
    rewards = [0.1, 0.0917, 1 / 3, 0.7]
    tracker = MovingAverageBaseline(decay)
    for n in range(1, len(rewards) + 1):
        assert tracker.update(rewards[n - 1]) == pytest.approx(_closed_form(rewards[:n], decay), rel=1e-15, abs=0)
    first = MovingAverageBaseline(decay)
    assert first.update(0.1) == 0.1 and first.update(torch.tensor(0.1, dtype=torch.float64)) == 0.1
    sequence = torch.tensor(rewards, dtype=torch.float64)
    expected = [0.0] + [_closed_form(rewards[:n], decay) for n in range(1, len(rewards))]
    assert moving_average_baselines(sequence, decay).tolist() == pytest.approx(expected, rel=1e-15, abs=0)


def test_a_float32_reward_is_averaged_as_the_float32_values_it_holds() -> None:
    values = torch.tensor([0.1, 0.2, 0.4], dtype=torch.float32)
    assert MovingAverageBaseline(0.9).update(values) == pytest.approx(sum(float(v) for v in values) / 3, rel=1e-15)


def test_the_baseline_is_the_mean_of_a_batch_reward() -> None:
    tracker = MovingAverageBaseline(0.75)
    tracker.update(torch.tensor([1.0, 3.0]))
    assert tracker.update(torch.tensor([10.0, 14.0, 0.0])) == pytest.approx(0.75 * 2.0 + 0.25 * 8.0)


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_decay_outside_zero_one_is_refused(decay: float) -> None:
    with pytest.raises(ValueError, match="decay must be in"):
        MovingAverageBaseline(decay)
