"""`hwnas search`: SIGTERM mid-search, then resume: the same metrics trajectory as an uninterrupted run.

Latency is 'measured' by a deterministic stand-in for the profiler (a real
timing differs run to run), so the test sees the memo, the online surrogate
and RELAX exactly as in a real search.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from folder_fixtures import write_cifar10, write_image_folder

from hwnas.run import SearchStopped, run_search
from hwnas.run import search as search_loop
from hwnas.search import SearchConfig
from hwnas.search.latency import LatencyOracle

TINY = {"widths": [8, 8, 8, 8, 8, 8, 8, 8, 16], "depths": [1, 2, 1, 1, 1, 1], "small_input": True, "dropout": 0.1}


def _fake_measure(self, arch, config, **kwargs):  # noqa: ANN001, ANN003, ARG001
    return SimpleNamespace(value_ms=1.0 + 0.1 * sum(len(c) for c in arch.choices.values()), cv=0.0, runs=1, launch_bound=None)


def _fake_measure_sample(self, arch):  # noqa: ANN001, ANN202 - the search's per-sample path (parts for ORT)
    return _fake_measure(self, arch, None)


def _trajectory(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("seconds", "phases")} for row in rows]  # wall times differ


def test_sigterm_mid_search_then_resume_matches_the_uninterrupted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LatencyOracle, "measure", _fake_measure)
    monkeypatch.setattr(LatencyOracle, "measure_sample", _fake_measure_sample)
    config = SearchConfig.from_flat(space="proxyless", space_config=TINY, dataset="digits", data_limit=200, estimator="rebar",
                                    latency_estimator="relax", latency_target_ms=2.5, steps=8, warmup_steps=2, batch_size=16,
                                    progress=False, checkpoint_every=3, latency_timing="inline")  # the stand-in runs in this process
    whole = run_search(config, tmp_path / "whole", measure_final=False)

    status_line = search_loop.status_line

    def stop_at_step_6(record, target):  # noqa: ANN001, ANN202
        if record["step"] == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return status_line(record, target)

    monkeypatch.setattr(search_loop, "status_line", stop_at_step_6)
    with pytest.raises(SearchStopped) as stopped:
        run_search(config, tmp_path / "cut", measure_final=False)
    assert stopped.value.step == 6 and stopped.value.signal_name == "SIGTERM"
    monkeypatch.setattr(search_loop, "status_line", status_line)
    resumed = run_search(config, tmp_path / "cut", measure_final=False, resume=True)
    assert _trajectory(tmp_path / "cut") == _trajectory(tmp_path / "whole")
    assert resumed.arch.choices == whole.arch.choices
    assert resumed.probabilities == whole.probabilities
    timed = [json.loads(line)["choices"] for line in (tmp_path / "cut" / "latencies.jsonl").read_text().splitlines()]
    assert len(timed) == len({json.dumps(c, sort_keys=True) for c in timed}) == whole.measured_during_search


def test_search_runs_on_a_cifar10_folder(tmp_path: Path) -> None:
    root = write_cifar10(tmp_path / "cifar", per_batch=20)
    config = SearchConfig.from_flat(space="proxyless", space_config={**TINY, "dropout": 0.0}, dataset=str(root), estimator="gdas",
                                    latency_estimator="none", steps=2, warmup_steps=1, batch_size=8, progress=False)
    result = run_search(config, tmp_path / "run", measure_final=False)
    assert result.data.record.dataset == "cifar10" and (tmp_path / "run" / "arch.json").exists()
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 3


def test_search_runs_on_an_image_folder_tree(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imagenet", classes=3, per_class=8)
    config = SearchConfig.from_flat(space="proxyless", space_config={**TINY, "dropout": 0.0, "resolution": 32, "num_classes": 3},
                                    dataset=str(root), image_size=32, estimator="gdas", latency_estimator="none", steps=2,
                                    warmup_steps=1, batch_size=4, progress=False)
    result = run_search(config, tmp_path / "run", measure_final=False)
    assert result.data.record.dataset == "imagefolder" and result.data.num_classes == 3
    assert (tmp_path / "run" / "arch.json").exists()
