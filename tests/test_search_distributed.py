"""`run_search` under 2 gloo ranks: the same sampled architecture every step and the same result on both."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch.multiprocessing as mp

TINY = {"widths": [8, 8, 8, 8, 8, 8, 8, 8, 16], "depths": [1, 2, 1, 1, 1, 1], "small_input": True}


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    from hwnas import distributed  # noqa: PLC0415
    from hwnas.run import run_search  # noqa: PLC0415
    from hwnas.run import search as search_loop  # noqa: PLC0415
    from hwnas.search import SearchConfig  # noqa: PLC0415
    from hwnas.search.latency import LatencyOracle  # noqa: PLC0415

    calls = []

    def fake_measure(self, arch, config, **kwargs):  # noqa: ANN001, ANN003, ARG001
        calls.append(rank)
        return SimpleNamespace(value_ms=1.0 + 0.1 * sum(len(c) for c in arch.choices.values()), cv=0.0, runs=1, launch_bound=None)

    LatencyOracle.measure = fake_measure
    LatencyOracle.measure_sample = lambda self, arch: fake_measure(self, arch, None)  # the per-sample path (ORT parts)
    seen, status_line = [], search_loop.status_line
    search_loop.status_line = lambda record, target: (seen.append(record.get("sampled")), status_line(record, target))[1]
    config = SearchConfig.from_flat(space="proxyless", space_config=TINY, dataset="digits", data_limit=200, estimator="rebar",
                                    latency_estimator="relax", latency_target_ms=2.5, steps=5, warmup_steps=1, batch_size=8,
                                    progress=False, seed=rank)  # a different seed per rank must not matter: rank 0 decides
    result = run_search(config, Path(out) / "run", measure_final=False)
    Path(out, f"rank{rank}.json").write_text(json.dumps({"sampled": seen, "final": result.arch.choices,
                                                         "probabilities": result.probabilities, "timed": len(calls)}))
    distributed.shutdown()


@pytest.mark.slow
def test_two_ranks_search_with_one_sample_per_step_and_one_result(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["sampled"] == r1["sampled"] and any(r0["sampled"])
    assert r0["final"] == r1["final"] and r0["probabilities"] == r1["probabilities"]
    assert r0["timed"] > 0 and r1["timed"] == 0  # latency measured on rank 0 only
    assert (tmp_path / "run" / "metrics.jsonl").exists()
