"""What a sample is, recorded in every result (issue #14.2), on the CPU where it can run.

The GPU side (CUDA events, enqueue and host wall time, the launch-bound flag)
runs in tests/test_profilers_gpu.py on a GPU machine.
"""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from profilers import LatencyResult, MeasureConfig, measure
from profilers._mathmode import cudnn_benchmark, torch_math_mode, torch_threads
from profilers.result import TIMING_MODES
from test_profilers_measure import FAST, SHAPE, tiny_net


@pytest.mark.parametrize("backend", ["eager", "ort"])
def test_cpu_results_are_host_wall_time_and_say_so(backend: str) -> None:
    result = measure(tiny_net(), backend=backend, input_shape=SHAPE, config=FAST)
    assert result.timing_mode == "host_wall" and result.timing_mode in TIMING_MODES
    assert result.host_wall_ms == pytest.approx(statistics.median(result.samples_ms))
    assert result.enqueue_ms is None and result.launch_bound is None  # no queue on the CPU
    assert result.median_ms <= result.p90_ms <= result.p95_ms <= result.p99_ms <= max(result.samples_ms)
    document = json.loads(json.dumps(result.to_dict()))
    assert document["timing_mode"] == "host_wall" and document["version"] == 2
    assert {"p95_ms", "p99_ms", "enqueue_ms", "host_wall_ms", "launch_bound"} <= set(document)


def test_a_version_1_record_still_loads_with_its_percentiles_recomputed() -> None:
    result = measure(tiny_net(), backend="eager", input_shape=SHAPE, config=FAST)
    old = result.to_dict()
    for key in ("p95_ms", "p99_ms", "timing_mode", "enqueue_ms", "host_wall_ms", "launch_bound"):
        del old[key]
    old["version"] = 1
    loaded = LatencyResult.from_dict(old)
    assert loaded.p95_ms == result.p95_ms and loaded.p99_ms == result.p99_ms
    assert loaded.timing_mode == "host_wall"
    cuda = {**old, "context": {**old["context"], "device": "cuda:0"}}
    assert LatencyResult.from_dict(cuda).timing_mode == "unrecorded"


def test_host_runs_must_not_be_negative() -> None:
    with pytest.raises(Exception, match="host_runs"):
        MeasureConfig(host_runs=-1)


def test_cudnn_benchmark_is_restored_and_tf32_described() -> None:
    previous = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = False
        with cudnn_benchmark(True):
            assert torch.backends.cudnn.benchmark is True
            assert "cudnn.benchmark: True" in torch_math_mode()
        assert torch.backends.cudnn.benchmark is False
        with pytest.raises(RuntimeError), cudnn_benchmark(True):
            raise RuntimeError("a failed measurement restores it too")
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = previous
    assert "cuDNN fp32 conv: " in torch_math_mode() and "cuBLAS fp32 matmul: " in torch_math_mode()


def test_torch_threads_sets_the_count_for_the_block_and_restores_the_callers() -> None:
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with torch_threads(None):  # None: the caller's count, untouched
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), torch_threads(1):
            raise RuntimeError("an error in the block restores it too")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
