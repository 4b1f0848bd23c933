"""DDP on 2 CPU processes (gloo): one architecture sample per step on every rank, the same final architecture.

Each rank trains a real (tiny) proxyless supernet on its own data; the
weights go through DistributedDataParallel, the logits through an Adam whose
step averages their gradients over ranks, and the architecture sample is
drawn under `shared_sampling`. Latency is "measured" on rank 0 only.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from hwnas import distributed
from hwnas.estimators import ArchitectureDistribution, sample_relaxed
from search_spaces import get_space

STEPS = 6
SPACE = {"widths": [8, 8, 8, 8, 8, 8, 8, 8, 16], "depths": [1, 2, 1, 1, 1, 1], "resolution": 8,
         "num_classes": 3, "in_channels": 1, "small_input": True}


class CountingOracle:
    """Stands in for the latency oracle: a deterministic 'ms' per architecture, and a call count."""

    def __init__(self) -> None:
        self.calls = 0

    def latency_ms(self, arch) -> float:  # noqa: ANN001
        self.calls += 1
        return float(sum(len(choice) for choice in arch.choices.values()))


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    info = distributed.init_from_env("cpu")
    torch.manual_seed(100 + rank)  # different weights and data per rank unless synchronised
    space = get_space("proxyless", **SPACE)
    supernet = space.supernet()
    net = distributed.wrap(supernet, info, find_unused_parameters=True)
    logits = {d.name: torch.randn(len(d.choices), requires_grad=True) for d in space.decisions}
    distributed.broadcast_(logits.values(), info)
    w_opt = torch.optim.SGD(net.parameters(), lr=0.05)
    a_opt = torch.optim.Adam(list(logits.values()), lr=0.1)
    distributed.average_gradients_before_step(a_opt, info)
    oracle = distributed.RankOracle(CountingOracle() if rank == 0 else None, info, space)
    samples, agreed, rewards = [], [], []
    for _ in range(STEPS):
        x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 3, (4,))
        with distributed.shared_sampling(info):
            sample = sample_relaxed(ArchitectureDistribution(logits), 1.0)
        index = distributed.broadcast_choices(sample.index, info)
        agreed.append(distributed.agree(sample.index, info) and distributed.agree(sample.relaxed, info))
        choices = {d.name: d.choices[int(index[d.name])] for d in space.decisions}
        samples.append(choices)
        w_opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x, sample.hard), y).backward()
        w_opt.step()
        with torch.no_grad():
            reward = float(torch.nn.functional.cross_entropy(supernet(x, sample.hard), y))
        latency = oracle.latency_ms(space.architecture(choices))
        rewards.append(reward)
        a_opt.zero_grad()
        ((reward + 0.01 * latency) * sample.log_prob).backward()
        a_opt.step()
    probabilities = {k: torch.softmax(v.detach(), -1).tolist() for k, v in logits.items()}
    final = space.derive(probabilities).choices
    weights_agree = distributed.agree(dict(supernet.named_parameters()), info)  # BN buffers stay per rank
    result = {"samples": samples, "agreed": agreed, "rewards": rewards, "final": final, "weights_agree": weights_agree,
              "memo": oracle.measured(), "oracle_calls": oracle.oracle.calls if rank == 0 else None}
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_gloo_ranks_share_every_sample_and_the_final_architecture(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["samples"] == r1["samples"] and len(r0["samples"]) == STEPS
    assert all(r0["agreed"]) and all(r1["agreed"])
    assert r0["final"] == r1["final"]
    assert r0["weights_agree"] and r1["weights_agree"]
    assert r0["rewards"] != r1["rewards"]  # the ranks saw different data: agreement is not a coincidence
    assert r0["memo"] == r1["memo"] and r0["oracle_calls"] == len(r0["memo"])


def test_single_process_helpers_are_no_ops() -> None:
    info = distributed.init_from_env("cpu") if "WORLD_SIZE" not in os.environ else distributed.DistInfo()
    assert not info.enabled and info.is_main
    with distributed.shared_sampling(info) as seed:
        assert seed is None
    assert distributed.any_rank(True, info) and distributed.gather_objects(3, info) == [3]
