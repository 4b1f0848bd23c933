"""Measured latency in the search loop (#15): the delayed RELAX update on an exact toy, the
latency worker process, and a search that times its samples in the worker."""

from __future__ import annotations

import torch

from estimator_toys import ToyProblem, enumerate_architectures, exact_gradient, per_sample_gradients, summarise
from hwnas.estimators import ArchitectureDistribution, LinearSurrogate, relax, sample_relaxed
from hwnas.estimators.delayed import pending_relax

N = 20_000


def _toy(seed: int = 0):
    toy = ToyProblem.random(decisions=3, choices=4, interaction=0.5, seed=seed)
    index = enumerate_architectures(toy.logits)
    return toy, LinearSurrogate.fit(toy.logits, index, toy.lookup(index))


def _leaves(logits, n):
    return {k: t.detach().expand(n, *t.shape).clone().requires_grad_(True) for k, t in logits.items()}


def _delayed(toy, surrogate, n, seed, move_by: float):
    """n delayed RELAX estimates: drawn and prepared at phi_0, the logits then take a step
    (as the next architecture step would), the measured value arrives, the estimate is completed."""
    leaves = _leaves(toy.logits, n)
    sample = sample_relaxed(ArchitectureDistribution(leaves), 0.5, generator=torch.Generator().manual_seed(seed))
    pending = pending_relax(sample, surrogate, leaves)
    with torch.no_grad():  # the optimizer moves phi before the measurement comes back
        for leaf in leaves.values():
            leaf.add_(move_by)
            leaf[..., 0].sub_(2 * move_by)
    return pending.complete(toy.lookup(sample.index)), sample


def test_the_delayed_estimate_is_the_synchronous_relax_estimate_sample_by_sample():
    toy, surrogate = _toy()
    n = 256
    delayed, sample = _delayed(toy, surrogate, n, seed=1, move_by=0.3)
    leaves = _leaves(toy.logits, n)  # phi_0 again: the synchronous estimate of the same draws
    same = sample_relaxed(ArchitectureDistribution(leaves), 0.5, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(same.index[k], sample.index[k]) for k in same.index)
    surrogate_loss = relax(same, toy.lookup(same.index), surrogate).surrogate.sum()
    synchronous = dict(zip(leaves, torch.autograd.grad(surrogate_loss, list(leaves.values())), strict=True))
    for key in leaves:
        torch.testing.assert_close(delayed[key], synchronous[key], rtol=1e-10, atol=1e-12)


def test_the_delayed_update_has_the_expected_gradient_of_the_synchronous_one():
    """Mean of N delayed estimates = the exact gradient at the phi that drew the samples (enumeration),
    as the synchronous RELAX mean is; the logits moving before completion changes nothing."""
    toy, surrogate = _toy(seed=2)
    exact = exact_gradient(toy.logits, toy)
    delayed, _ = _delayed(toy, surrogate, N, seed=3, move_by=0.5)
    stats = summarise(delayed, exact)
    assert stats.z.abs().max() < 4.5, stats.z

    def synchronous(dist):
        s = sample_relaxed(dist, 0.5, generator=torch.Generator().manual_seed(4))
        return relax(s, toy.lookup(s.index), surrogate).surrogate

    reference = summarise(per_sample_gradients(toy.logits, N, synchronous), exact)
    assert reference.z.abs().max() < 4.5, reference.z
    # same estimator, same variance (within Monte-Carlo error of two independent runs)
    assert 0.9 < stats.variance / reference.variance < 1.1
    # and the moved logits' gradient is a different target: the test can tell them apart
    moved = {k: (t + 0.5).clone() for k, t in toy.logits.items()}
    for t in moved.values():
        t[0] -= 1.0
    far = summarise(delayed, exact_gradient(moved, toy))
    assert far.z.abs().max() > 10


# --- the worker in a real search -------------------------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from hwnas.errors import UsageError  # noqa: E402
from hwnas.run import SearchStopped, read_metrics, run_search, space_for_data  # noqa: E402
from hwnas.run import search as search_loop  # noqa: E402
from hwnas.search import SearchConfig  # noqa: E402
from hwnas.search.latency import LatencyConditions  # noqa: E402
from hwnas.search.latency_worker import resolve_timing  # noqa: E402

TINY = {"widths": [4, 4, 4, 4, 8, 8, 8, 8, 16], "depths": [1, 1, 1, 1, 1, 1], "small_input": True}
HAS_TWO_CORES = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2


def _search_config(**changes: object) -> SearchConfig:
    base = dict(space="proxyless", space_config=TINY, dataset="digits", data_limit=200, estimator="rebar",
                latency_estimator="relax", latency_target_ms=0.5, steps=5, warmup_steps=1, batch_size=8,
                latency_backend="ort", measure_budget_s=0.02, progress=False, latency_timing="worker")
    base.update(changes)
    return SearchConfig.from_flat(**base)  # type: ignore[arg-type]


def test_timing_is_in_line_where_a_worker_would_share_the_training_device():
    gpu = LatencyConditions(device="cuda:0")
    assert resolve_timing("auto", gpu, "cuda:0", False)[0] == "inline"
    assert resolve_timing("auto", gpu, "cuda:1", False)[0] == "worker"
    assert resolve_timing("auto", LatencyConditions(), "cpu", True)[0] == "inline"  # torchrun
    assert resolve_timing("inline", LatencyConditions(), "cpu", False)[0] == "inline"
    assert resolve_timing("auto", LatencyConditions(backend="ort"), "cpu", False)[0] == ("worker" if HAS_TWO_CORES else "inline")
    # eager too: on a quiet machine eager in the worker was cheaper and repeated better than in line
    assert resolve_timing("auto", LatencyConditions(backend="eager"), "cpu", False)[0] == ("worker" if HAS_TWO_CORES else "inline")
    if HAS_TWO_CORES:
        assert resolve_timing("worker", LatencyConditions(backend="eager"), "cpu", False)[0] == "worker"
    # several timing threads on the CPU that trains leave no core free: in line, and a forced worker is refused
    assert resolve_timing("auto", LatencyConditions(backend="eager", threads=2), "cpu", False)[0] == "inline"
    with pytest.raises(UsageError, match="no core"):
        resolve_timing("worker", LatencyConditions(threads=2), "cpu", False)
    with pytest.raises(UsageError, match="cuda:0, the device that trains"):
        resolve_timing("worker", gpu, "cuda:0", False)


@pytest.mark.slow  # a spawned worker imports torch and ONNX Runtime: seconds on a busy machine
@pytest.mark.skipif(not HAS_TWO_CORES, reason="the latency worker needs a second CPU core")
def test_a_search_timed_in_the_worker_logs_every_sample_and_leaves_the_cores_alone(tmp_path: Path) -> None:
    affinity = os.sched_getaffinity(0)
    result = run_search(_search_config(), tmp_path, measure_final=False)
    assert os.sched_getaffinity(0) == affinity
    metrics = read_metrics(tmp_path)
    assert [m["step"] for m in metrics] == list(range(6))
    warmup = [m for m in metrics if m["phase"] == "warm-up"]
    assert "latency" in warmup[-1]["phases"]  # the warm-up ended by waiting for the worker's ready
    search = [m for m in metrics if m["phase"] == "search"]
    assert all(m["sampled_latency_ms"] > 0 and m["latency_penalty"] is not None for m in search)
    assert all({"weight_step", "accuracy_relaxed", "latency", "optimizer"} <= set(m["phases"]) for m in search)
    timed = [json.loads(line) for line in (tmp_path / "latencies.jsonl").read_text().splitlines()]
    assert len(timed) == result.measured_during_search == len({json.dumps(t["choices"], sort_keys=True) for t in timed})
    by_choices = {json.dumps(t["choices"], sort_keys=True): t["latency_ms"] for t in timed}
    for m in search:  # each step's record carries the latency of the sample that step drew
        assert m["sampled_latency_ms"] == by_choices[json.dumps(m["sampled"], sort_keys=True)]
    assert "worker" in json.loads((tmp_path / "config.json").read_text())["latency_timing"]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TWO_CORES, reason="the latency worker needs a second CPU core")
def test_a_worker_search_stopped_and_resumed_writes_every_step_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _search_config(steps=6, checkpoint_every=50)
    status_line = search_loop.status_line

    def stop_at_step_4(record, target):  # noqa: ANN001, ANN202
        if record["step"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return status_line(record, target)

    monkeypatch.setattr(search_loop, "status_line", stop_at_step_4)
    with pytest.raises(SearchStopped):
        run_search(config, tmp_path, measure_final=False)
    monkeypatch.setattr(search_loop, "status_line", status_line)
    run_search(config, tmp_path, measure_final=False, resume=True)
    metrics = read_metrics(tmp_path)
    assert [m["step"] for m in metrics] == list(range(7))
    assert all(m["sampled_latency_ms"] > 0 for m in metrics if m["phase"] == "search")


def test_variance_tuning_runs_in_a_search_and_moves_tau_and_eta(tmp_path: Path) -> None:
    config = _search_config(latency_timing="inline", tune_variance="tau-eta", tune_variance_lr=0.1, steps=3)
    run_search(config, tmp_path, measure_final=False)
    search = [m for m in read_metrics(tmp_path) if m["phase"] == "search"]
    assert len({round(m["tau"], 9) for m in search}) == 3 and len({round(m["eta"], 9) for m in search}) == 3
    assert all("tuning" in m["phases"] for m in search)


def test_eta_only_tuning_keeps_tau_and_moves_eta(tmp_path: Path) -> None:
    config = _search_config(latency_timing="inline", tune_variance="eta", tune_variance_lr=0.1, steps=3)
    run_search(config, tmp_path, measure_final=False)
    search = [m for m in read_metrics(tmp_path) if m["phase"] == "search"]
    assert {m["tau"] for m in search} == {0.4} and len({round(m["eta"], 9) for m in search}) == 3


def test_eta_tuning_applies_the_rebar_gradient_at_the_tuners_eta() -> None:
    """The first-order eta path gives, for the same draw, the gradient the untuned step gives at that eta."""
    from hwnas.estimators import MovingAverageBaseline, VarianceTuner
    from hwnas.search.steps import ArchContext
    from hwnas.search.strategies import get_strategy
    from hwnas.search.terms import AccuracyTerm
    from hwnas.datasets import load_dataset

    data = load_dataset("digits", limit=100, seed=0)
    config = _search_config(latency_estimator="none", latency_target_ms=None, latency_timing="inline")
    space = space_for_data(config, data)
    torch.manual_seed(0)
    net = space.supernet().train()
    images = torch.stack([data.train[i][0] for i in range(16)])
    labels = torch.tensor([int(data.train[i][1]) for i in range(16)])
    gradients = []
    for tuner in (None, VarianceTuner(0.4, 0.8, lr=0.1, tune_tau=False)):
        logits = {d.name: (0.1 * torch.arange(len(d.choices), dtype=torch.float32)).requires_grad_(True) for d in space.decisions}
        term = AccuracyTerm(net, "gen", 0.5, (images[:8], labels[:8]), (images[8:], labels[8:]))
        ctx = ArchContext(config.replace(rebar_eta=0.8).estimator, net, logits, term, None, 0.4, 0.0, (images[:8], labels[:8]),
                          MovingAverageBaseline(), tuner)
        torch.manual_seed(5)
        surrogate, _ = get_strategy("rebar").surrogate(ctx, ArchitectureDistribution(logits))
        gradients.append(torch.autograd.grad(surrogate, list(logits.values())))
    for untuned, tuned in zip(*gradients, strict=True):
        torch.testing.assert_close(tuned, untuned, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TWO_CORES, reason="the latency worker needs a second CPU core")
def test_the_search_process_leaves_the_workers_core_while_the_worker_runs() -> None:
    """Left to the scheduler, the training thread also ran on the worker's core and eager timings there read up to
    6x the in-line ones (benchmarks/search_step_cost.py): while a worker is attached the search keeps off its core."""
    from dataclasses import replace  # noqa: PLC0415

    from hwnas.search.latency import SEARCH_MEASURE, LatencyOracle  # noqa: PLC0415
    from hwnas.search.latency_worker import attached_worker, worker_cores  # noqa: PLC0415
    from search_spaces import get_space  # noqa: PLC0415

    space = get_space("proxyless", **TINY, in_channels=1, num_classes=10, resolution=8)
    conditions = LatencyConditions(backend="ort")
    oracle = LatencyOracle(space, conditions, config=replace(SEARCH_MEASURE, budget_s=0.02))
    before = os.sched_getaffinity(0)
    worker_core, search_cores = worker_cores(conditions, "cpu")  # type: ignore[misc]
    with attached_worker(oracle, True, space, "cpu"):
        assert os.sched_getaffinity(0) == search_cores and worker_core not in search_cores
    assert os.sched_getaffinity(0) == before


def test_architecture_steps_use_their_own_batch_size(tmp_path: Path) -> None:
    """--arch-batch-size: the architecture steps' search-val batches hold that many images (val_acc is then a
    multiple of 1/24, and not always of 1/8, the weight steps' batch), the weight steps keep --batch-size."""
    config = _search_config(latency_estimator="none", latency_timing="inline", batch_size=8, arch_batch_size=24,
                            steps=6, data_limit=300)
    run_search(config, tmp_path, measure_final=False, surrogate=None)
    metrics = read_metrics(tmp_path)
    val = [m["val_acc"] for m in metrics if m["phase"] == "search"]
    train = [m["train_acc"] for m in metrics]
    assert all(abs(v * 24 - round(v * 24)) < 1e-4 for v in val)  # float32 accuracies
    assert any(abs(v * 8 - round(v * 8)) > 1e-4 for v in val)
    assert all(abs(t * 8 - round(t * 8)) < 1e-4 for t in train)
    from hwnas.search.config import check_combination  # noqa: PLC0415

    with pytest.raises(UsageError, match="loop.arch_batch_size must be >= 1"):
        check_combination(_search_config(arch_batch_size=0))
