"""The architecture distribution and the Gumbel / conditional Gumbel samples it rests on."""

from __future__ import annotations

import math

import pytest
import torch

from estimator_toys import enumerate_architectures
from hwnas.estimators import ArchitectureDistribution, sample_hard, sample_relaxed
from hwnas.estimators.gumbel import conditional_perturbation, invert_conditional, log_exponential_noise, perturb
from profilers import torch_threads



@pytest.fixture(autouse=True)
def _one_torch_thread():
    with torch_threads(1):
        yield


LOGITS = {"a": torch.tensor([0.3, -1.0, 1.2], dtype=torch.float64), "b": torch.tensor([0.0, 2.0], dtype=torch.float64)}


def test_log_prob_entropy_probabilities_match_torch_categorical():
    dist = ArchitectureDistribution(LOGITS)
    index = enumerate_architectures(dist)
    cats = {k: torch.distributions.Categorical(logits=t) for k, t in LOGITS.items()}
    expected = sum(cats[k].log_prob(index[k]) for k in LOGITS)
    torch.testing.assert_close(dist.log_prob(index), expected)
    torch.testing.assert_close(dist.log_prob(index).exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(dist.entropy(), sum(c.entropy() for c in cats.values()))
    for k in LOGITS:
        torch.testing.assert_close(dist.probabilities()[k], cats[k].probs)
    assert {k: int(v) for k, v in dist.argmax().items()} == {"a": 2, "b": 1}
    assert dist.cardinalities == {"a": 3, "b": 2}


def test_score_closed_form_equals_autograd():
    leaves = {k: t.clone().requires_grad_(True) for k, t in LOGITS.items()}
    dist = ArchitectureDistribution(leaves)
    index = {"a": torch.tensor(1), "b": torch.tensor(0)}
    grads = torch.autograd.grad(dist.log_prob(index), list(leaves.values()))
    for (k, closed), g in zip(dist.score(index).items(), grads):
        torch.testing.assert_close(closed, g)


def test_list_logits_come_back_as_lists_and_batch_shapes_must_agree():
    dist = ArchitectureDistribution(list(LOGITS.values()))
    assert isinstance(dist.pack(dist.probabilities()), list)
    s = sample_relaxed(dist, 0.5, sample_shape=(7,), generator=torch.Generator().manual_seed(0))
    assert [w.shape for w in s.packed_relaxed()] == [(7, 3), (7, 2)]
    with pytest.raises(ValueError, match="batch shape"):
        ArchitectureDistribution({"a": torch.zeros(2, 3), "b": torch.zeros(3)})


@pytest.mark.parametrize("sampler", ["multinomial", "gumbel_max"])
def test_sample_frequencies_match_probabilities(sampler):
    n = 40_000
    dist = ArchitectureDistribution(LOGITS)
    g = torch.Generator().manual_seed(3)
    s = sample_hard(dist, sample_shape=(n,), generator=g) if sampler == "multinomial" else sample_relaxed(dist, 1.0, sample_shape=(n,), generator=g)
    for k, theta in dist.probabilities().items():
        freq = torch.bincount(s.index[k], minlength=theta.numel()).double() / n
        se = (theta * (1 - theta) / n).sqrt()
        assert ((freq - theta).abs() / se).max() < 4


def test_reuse_conditional_equals_relaxed_in_value_and_inverts_exactly():
    dist = ArchitectureDistribution(LOGITS)
    s = sample_relaxed(dist, 0.3, sample_shape=(1000,), generator=torch.Generator().manual_seed(1), conditional="reuse")
    for k in LOGITS:
        torch.testing.assert_close(s.conditional[k], s.relaxed[k], rtol=1e-9, atol=1e-12)
    log_theta = dist.log_probabilities()["a"]
    z = perturb(log_theta, (500,), torch.Generator().manual_seed(2))
    b = z.argmax(-1)
    torch.testing.assert_close(conditional_perturbation(log_theta, b, invert_conditional(z, log_theta, b)), z)


def test_fresh_conditional_sample_has_the_law_of_z_given_b():
    """z~ from fresh v must be distributed as z | argmax z = b: compare moments per b."""
    log_theta = torch.log_softmax(torch.tensor([0.5, -0.4, 1.0, 0.0], dtype=torch.float64), -1)
    n = 200_000
    g = torch.Generator().manual_seed(5)
    z = perturb(log_theta, (n,), g)
    b = z.argmax(-1)
    z_cond = conditional_perturbation(log_theta, b, log_exponential_noise(z.shape, z, g))
    assert torch.equal(z_cond.argmax(-1), b)
    for choice in range(4):
        a, c = z[b == choice], z_cond[b == choice]
        se = (a.var(0) / len(a) + c.var(0) / len(c)).sqrt()
        assert ((a.mean(0) - c.mean(0)).abs() / se).max() < 4
        assert ((a.std(0) - c.std(0)).abs() / a.std(0)).max() < 0.05


def test_max_of_perturbed_log_probabilities_is_standard_gumbel():
    """z~_b = -log(-log v_b) relies on max_i (log theta_i + G_i) ~ Gumbel(0)."""
    log_theta = torch.log_softmax(torch.tensor([0.1, 2.0, -1.0], dtype=torch.float64), -1)
    m = perturb(log_theta, (100_000,), torch.Generator().manual_seed(9)).max(-1).values
    assert abs(float(m.mean()) - 0.5772156649) < 4 * float(m.std()) / math.sqrt(len(m))


def test_unbatched_sample_has_the_batch_shape_of_the_logits():
    """Issue #13: one architecture (no sample or batch shape) gives scalar indices, not a TypeError."""
    sample = sample_hard({"a": torch.zeros(3)}, generator=torch.Generator().manual_seed(0))
    assert sample.index["a"].shape == () and 0 <= int(sample.index["a"]) < 3
    assert sample.hard["a"].shape == (3,) and float(sample.hard["a"].sum()) == 1.0
    several = ArchitectureDistribution({"a": torch.zeros(3)}).sample((5,))
    assert several["a"].shape == (5,)
