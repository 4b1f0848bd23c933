"""Recomputing the relaxed decision points in the backward is exact (issue #30 group 8).

The memory of a relaxed (all-candidate) evaluation is bounded by `search_spaces.recompute`: each
decision point keeps its inputs in the forward and is rerun, at the whole batch, in the backward.
Micro-batches whose gradients accumulate would bound it too, but not exactly for hwnas's supernets:
their BatchNorm in training mode would normalise each micro-batch by its own statistics. Here every
gradient of a real supernet (BatchNorm in training mode, float64) is compared with the plain
backward's, and the running statistics with the plain forward's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from cli_contract import refused
from hwnas.datasets import load_dataset
from hwnas.estimators import MovingAverageBaseline
from hwnas.search import SearchConfig
from hwnas.run import run_search, space_for_data
from hwnas.search.memory import LIMIT_VARIABLE, MemoryPlan, estimate_search, saved_profile, search_memory_plan
from hwnas.search.steps import ArchContext, architecture_gradient, weight_step
from hwnas.search.strategies import get_strategy, list_strategies
from hwnas.search.terms import AccuracyTerm, accumulated_loss
from search_spaces import get_space
from search_spaces.recompute import images_interact, recomputing

SMALL = {"small_input": True, "widths": [4, 4, 4, 4, 8, 8, 8, 8, 16], "depths": [1, 1, 1, 1, 1, 1]}
BATCH = 12
EXACT = {"rtol": 1e-12, "atol": 1e-15}
"""float64: the recomputation runs the same operations on the same values (on this CPU bit for bit)."""


def _space(name: str = "proxyless", **config):  # noqa: ANN202
    if name == "proxyless":
        return get_space("proxyless", in_channels=1, num_classes=10, resolution=8, **SMALL)
    return get_space("darts", in_channels=1, num_classes=10, resolution=8, C=2, layers=3, **config)


def _supernet(space, sharing: str = "shared") -> nn.Module:  # noqa: ANN001
    torch.manual_seed(0)
    net = space.supernet(weight_sharing=sharing, batchnorm="choice").double().train()
    assert images_interact(net)  # BatchNorm in training mode: a micro-batch would not be a piece of the batch
    return net


def _batches() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return tuple((torch.randn(BATCH, 1, 8, 8, generator=generator, dtype=torch.float64),
                  torch.randint(0, 10, (BATCH,), generator=generator)) for _ in range(2))  # type: ignore[return-value]


def _statistics(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}


def _arch_gradient(strategy: str, recompute: bool, **options) -> tuple[dict, float, dict]:  # noqa: ANN003
    space = _space()
    net = _supernet(space)
    torch.manual_seed(3)
    logits = {d.name: torch.randn(len(d.choices), dtype=torch.float64, requires_grad=True) for d in space.decisions}
    train, val = _batches()
    config = SearchConfig.from_flat(estimator=strategy, latency_estimator="none", **options)
    term = AccuracyTerm(net, "gen", 0.5, train, val)
    ctx = ArchContext(config.estimator, net, logits, term, None, config.temperatures[0], 0.05, train,
                      MovingAverageBaseline(0.9), space=space)
    torch.manual_seed(4)  # the same Gumbel draws for both
    with recomputing(net, recompute):
        grads, report = architecture_gradient(ctx)
    return grads, report.objective, _statistics(net)


@pytest.mark.parametrize(("strategy", "options"), [
    *[(s, {}) for s in list_strategies() if s != "reinforce"],
    ("darts", {"darts_order": "second"}),  # an unrolled step: the weights move in place between evaluations
    ("darts", {"darts_order": "amended"}),  # a second-order backward (create_graph) through the recomputation
])
def test_the_architecture_gradient_is_the_batch_one(strategy: str, options: dict) -> None:
    """REBAR's relaxed evaluation, SNAS, GDAS, EGS and DARTS (first, second order, amended): recomputed, every
    logit's gradient and the objective are the plain backward's; BatchNorm's running statistics moved once."""
    plain, objective, statistics = _arch_gradient(strategy, False, **options)
    again, objective_again, statistics_again = _arch_gradient(strategy, True, **options)
    assert max(float(g.abs().max()) for g in plain.values()) > 0
    for name in plain:
        torch.testing.assert_close(again[name], plain[name], **EXACT)
    assert objective_again == pytest.approx(objective, **{"rel": 1e-12})
    for name in statistics:
        torch.testing.assert_close(statistics_again[name], statistics[name], rtol=0, atol=0)


def _relaxed_gradients(space, sharing: str, recompute: bool) -> tuple[list, dict]:  # noqa: ANN001
    net = _supernet(space, sharing)
    torch.manual_seed(3)
    logits = {d.name: torch.randn(len(d.choices), dtype=torch.float64, requires_grad=True) for d in space.decisions}
    images, labels = _batches()[0]
    with recomputing(net, recompute):
        weights = {name: torch.softmax(value, -1) for name, value in logits.items()}
        loss = nn.functional.cross_entropy(net(images, weights), labels)
        grads = torch.autograd.grad(loss, [*logits.values(), *net.parameters()], allow_unused=True)
    return list(grads), _statistics(net)


@pytest.mark.parametrize(("space", "sharing"), [("proxyless", "independent"), ("darts-edges", "shared"),
                                                ("darts-factorized", "shared"), ("darts-factorized", "independent")])
def test_every_weight_and_logit_gradient_of_a_relaxed_evaluation_is_the_batch_one(space: str, sharing: str) -> None:
    """Proxyless `Choice`s and DARTS cells' edges and factorized slots (the decision points that recompute)."""
    built = _space() if space == "proxyless" else _space("darts", parameterization=space.split("-")[1])
    plain, statistics = _relaxed_gradients(built, sharing, False)
    again, statistics_again = _relaxed_gradients(built, sharing, True)
    assert sum(g is not None for g in plain) > 20
    for g, h in zip(plain, again, strict=True):
        assert (g is None) == (h is None)
        if g is not None:
            torch.testing.assert_close(h, g, **EXACT)
    assert statistics_again.keys() == statistics.keys()
    for name in statistics:
        assert torch.equal(statistics_again[name], statistics[name]), name


def test_the_weight_step_on_the_mixture_is_the_batch_one() -> None:
    """DARTS / SNAS train the softmax mixture of every candidate: the step's gradients, recomputed, are the plain ones."""
    space = _space()
    weights = {d.name: torch.softmax(torch.randn(len(d.choices), dtype=torch.float64), -1) for d in space.decisions}
    grads = []
    for recompute in (False, True):
        net = _supernet(space)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.0)  # lr 0: the step leaves the gradients to read
        with recomputing(net, recompute):
            weight_step(net, optimizer, weights, _batches()[0], clip=1e9)
        grads.append({name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], **EXACT)


def test_recomputing_keeps_far_less_for_the_backward() -> None:
    """What autograd keeps outside the decision points (all it keeps when they recompute) against the plain
    graph, counted on the CPU; the meta-device estimate counts both exactly."""
    space = _space()
    net = _supernet(space).float()
    weights = {d.name: torch.full((len(d.choices),), 1 / len(d.choices), requires_grad=True) for d in space.decisions}
    images = torch.randn(4, 1, 8, 8)

    def kept(recompute: bool) -> int:
        seen: dict[int, int] = {}

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            seen[id(tensor)] = tensor.numel() * tensor.element_size()
            return tensor

        with recomputing(net, recompute), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            logits = net(images, weights)
        del logits
        return sum(seen.values())

    plain, recomputed = kept(False), kept(True)
    assert recomputed * 10 < plain
    with torch.device("meta"):
        meta = space.supernet(weight_sharing="shared", batchnorm="choice").train()
    estimate = saved_profile(meta, weights, (4, 1, 8, 8))
    assert estimate.total == plain
    assert estimate.kept == recomputed  # the decision points' inputs are saved outside them here too
    assert 0 < estimate.region < plain // 2  # this tiny net's first layer: 45% of its graph (224 px proxyless: 18%)


def test_a_ghost_micro_batch_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--micro-batch` below the batch on a supernet with BatchNorm would normalise each piece by its own
    statistics (another gradient): refused in one line, before anything is written."""
    out = tmp_path / "run"
    line = refused(["search", "--data", "digits", "--data-limit", "200", "--latency-estimator", "none", "--steps", "1",
                    "--warmup-steps", "0", "--batch-size", "8", "--micro-batch", "2", "--no-progress", "--out",
                    str(out)], capsys, absent=[out])
    assert "--micro-batch 2 cannot apply" in line and "BatchNorm" in line, line
    net = _supernet(_space())
    with pytest.raises(ValueError, match="not exact"):
        accumulated_loss(net, {}, _batches()[0], 4)


def test_a_search_short_of_memory_recomputes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a cap between the recomputed and the plain estimate (HWNAS_MEMORY_LIMIT_GIB) the search chooses the
    whole batch recomputed, runs, and records it in config.json."""
    config = SearchConfig.from_flat(space="proxyless", space_config=SMALL, dataset="digits", latency_estimator="none",
                                    steps=1, warmup_steps=1, batch_size=8, progress=False)
    data = load_dataset("digits", limit=200, seed=0)
    space = space_for_data(config, data)
    memory = estimate_search(space, weight_sharing="shared", batchnorm="choice", batch_size=8, arch_batch=8,
                             trains_mixture=False, relaxed_graphs=2 * get_strategy("rebar").graphs(config.estimator))
    plain, recomputed = memory.peak(MemoryPlan()), memory.peak(MemoryPlan(recompute=True))
    assert recomputed < plain
    monkeypatch.setenv(LIMIT_VARIABLE, repr((plain + recomputed) / 2 / 2**30))
    assert search_memory_plan(config, space, "cpu") == MemoryPlan(recompute=True)
    run_search(config, tmp_path, data=data, measure_final=False)
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert (recorded["micro_batch"], recorded["recompute"]) == (None, True)
