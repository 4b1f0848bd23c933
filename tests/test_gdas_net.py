"""`gdas-net`: GDAS whose hard sample is a network the derivation returns. In an argmax space it is GDAS
exactly; in the DARTS edge space its sample is a genotype, its forward value that genotype's network, and
its gradient reaches the logits of the kept edges only, as GDAS's straight-through gradient of z / tau."""

from __future__ import annotations

import pytest
import torch

from hwnas.estimators import ArchitectureDistribution, MovingAverageBaseline
from hwnas.estimators.gumbel import perturb
from hwnas.search import SearchConfig
from hwnas.search.steps import ArchContext, architecture_gradient
from hwnas.search.terms import AccuracyTerm
from search_spaces import get_space
from search_spaces.darts.space import NONE

BATCH = 8


def _batches(channels: int, side: int) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return tuple((torch.randn(BATCH, channels, side, side, generator=generator),  # type: ignore[return-value]
                  torch.randint(0, 10, (BATCH,), generator=generator)) for _ in range(2))


def _gradient(space, strategy: str, seed: int = 4) -> tuple[dict[str, torch.Tensor], dict, torch.nn.Module, dict]:  # noqa: ANN001
    torch.manual_seed(0)
    net = space.supernet(weight_sharing="shared", batchnorm="choice").train()
    torch.manual_seed(3)
    logits = {d.name: torch.randn(len(d.choices), requires_grad=True) for d in space.decisions}
    train, val = _batches(space.config["in_channels"], space.config["resolution"])
    config = SearchConfig.from_flat(estimator=strategy, latency_estimator="none")
    term = AccuracyTerm(net, "val", 0.5, train, val)
    ctx = ArchContext(config.estimator, net, logits, term, None, 2.0, 0.05, train, MovingAverageBaseline(0.9), space=space)
    torch.manual_seed(seed)
    grads, report = architecture_gradient(ctx)
    return grads, report.sampled, net, logits


def test_in_an_argmax_space_it_is_gdas_exactly() -> None:
    space = get_space("proxyless", in_channels=1, num_classes=10, resolution=8, small_input=True,
                      widths=[4, 4, 4, 4, 8, 8, 8, 8, 16], depths=[1, 1, 1, 1, 1, 1])
    gdas, gdas_sampled, _, _ = _gradient(space, "gdas")
    net_grads, net_sampled, _, _ = _gradient(space, "gdas-net")
    assert net_sampled == gdas_sampled
    assert any(float(g.abs().max()) > 0 for g in gdas.values())
    for name in gdas:
        torch.testing.assert_close(net_grads[name], gdas[name], rtol=0, atol=0)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_in_the_edge_space_it_samples_a_genotype_and_trains_its_kept_edges_only(seed: int) -> None:
    space = get_space("darts", parameterization="edges", C=2, layers=3, in_channels=1, num_classes=10, resolution=8)
    grads, sampled, net, logits = _gradient(space, "gdas-net", seed)
    choices = {d.name: d.choices[sampled[d.name]] for d in space.decisions}

    # the sample is what the derivation of z = log p + G returns for the same Gumbel draws
    torch.manual_seed(seed)
    dist = ArchitectureDistribution(logits)
    z = {name: perturb(lp, ()) for name, lp in dist.log_probabilities().items()}
    assert choices == space.derive({k: v.detach().tolist() for k, v in z.items()}).choices
    for group in space.pruning.groups:  # per node two kept edges, each with an op
        assert sum(choices[name] != NONE for name in group) == 2

    # gradient: zero on every pruned edge; on a kept edge GDAS's straight-through one, d softmax(z / tau) / d phi
    # times dL/dw (dL/dw from autograd of the same loss at the hard one-hot weights)
    weights = {d.name: torch.nn.functional.one_hot(torch.tensor(sampled[d.name]), len(d.choices)).float().requires_grad_()
               for d in space.decisions}
    _, val = _batches(1, 8)
    loss = torch.nn.functional.cross_entropy(net(val[0], weights), val[1])
    dl_dw = dict(zip(weights, torch.autograd.grad(loss, list(weights.values())), strict=True))
    for decision in space.decisions:
        name = decision.name
        if choices[name] == NONE:
            assert float(grads[name].abs().max()) == 0.0
            continue
        phi = logits[name].detach().clone().requires_grad_()
        relaxed = torch.softmax((torch.log_softmax(phi, -1) + (z[name] - torch.log_softmax(logits[name], -1)).detach()) / 2.0, -1)
        (expected,) = torch.autograd.grad((relaxed * dl_dw[name]).sum(), [phi])
        torch.testing.assert_close(grads[name], expected, rtol=1e-4, atol=1e-7)
        assert float(grads[name].abs().max()) > 0
