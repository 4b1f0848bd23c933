"""The search times what is deployed (#27 item 1): graph replays by default on CUDA, TensorRT engines
cached by architecture with build time per step, and the closing note when most sampled networks were
launch-bound. The CUDA / TensorRT paths run where those are (marked), the logic everywhere."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_contract import refused
from hwnas.cli import build_parser
from hwnas.cli.search import config_from_args
from hwnas.search.engines import EngineCache, engine_key
from hwnas.errors import UsageError
from hwnas.search.latency import (SEARCH_MEASURE, LatencyConditions, LatencyOracle, SampleTiming, SearchTiming,
                                  default_cuda_graphs, resolve_cuda_graphs)
from lut.profile import launch_bound_note
from lut.samples import SampleRecord
from profilers.result import mostly_launch_bound
from search_spaces import get_space

TINY = {"widths": [4, 4, 4, 4, 8, 8, 8, 8, 16], "depths": [1, 1, 1, 1, 1, 1], "small_input": True, "resolution": 12}
QUICK = replace(SEARCH_MEASURE, warmup_runs=1, warmup_s=0.0, min_runs=3, max_runs=3, budget_s=0.05)


@pytest.fixture(scope="module")
def cpu_result():
    """One real CPU measurement (eager, a tiny sampled network): the record every case below starts from."""
    space = get_space("proxyless", **TINY)
    oracle = LatencyOracle(space, LatencyConditions(backend="eager"), config=QUICK)
    return oracle.measure_sample(space.sample(np.random.default_rng(0)))


@pytest.mark.parametrize(("device", "backend", "graphs"),
                         [("cuda:0", "eager", True), ("cuda:1", "eager", True), ("cpu", "eager", False),
                          ("cpu", "ort", False), ("cuda:0", "ort", False), ("cuda:0", "tensorrt", False)])
def test_graph_replays_are_the_default_exactly_where_eager_can_replay(device: str, backend: str, graphs: bool) -> None:
    assert default_cuda_graphs(device, backend) is graphs
    LatencyConditions(device=device, backend=backend, cuda_graphs=graphs)  # the default is always a valid condition


@pytest.mark.parametrize(("device", "backend"), [("cpu", "eager"), ("cpu", "ort"), ("cuda:0", "tensorrt")])
def test_asking_for_graph_replays_where_nothing_replays_is_refused_in_one_line(device: str, backend: str) -> None:
    with pytest.raises(UsageError, match=f"^--cuda-graphs: CUDA-graph replays time eager PyTorch on a CUDA device, "
                                         f"not {backend} on {device}; drop the flag") as error:
        resolve_cuda_graphs(True, device, backend)
    assert "\n" not in str(error.value)
    assert resolve_cuda_graphs(False, device, backend) is False and resolve_cuda_graphs(None, device, backend) is False


def test_the_flags_choose_on_cuda_and_neither_takes_the_default() -> None:
    assert resolve_cuda_graphs(None, "cuda:0", "eager") is True
    assert resolve_cuda_graphs(False, "cuda:0", "eager") is False and resolve_cuda_graphs(True, "cuda:0", "eager") is True


@pytest.mark.parametrize(("argv", "graphs"), [
    (["--latency-device", "cuda:0", "--backend", "eager"], True),
    (["--latency-device", "cuda:1", "--backend", "eager", "--cuda-graphs"], True),
    (["--latency-device", "cuda:0", "--backend", "eager", "--no-cuda-graphs"], False),
    (["--latency-device", "cuda:0", "--backend", "ort"], False),
    ([], False),  # the CPU default run is unchanged
    (["--no-cuda-graphs"], False),
])
def test_search_flags_set_the_timing_mode_in_the_conditions(argv: list[str], graphs: bool) -> None:
    config = config_from_args(build_parser().parse_args(["search", *argv]))
    assert config.latency.conditions.cuda_graphs is graphs


@pytest.mark.parametrize("argv", [["--cuda-graphs"], ["--latency-device", "cuda:0", "--backend", "ort", "--cuda-graphs"]])
def test_search_refuses_graph_replays_where_nothing_replays_in_one_line(argv: list[str], tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(["search", *argv, "--out", str(tmp_path / "run")], capsys, absent=[tmp_path / "run"])
    if "cuda:0" in argv and not torch.cuda.is_available():  # every command checks its devices first (#30)
        assert "cuda:0" in line and "no usable NVIDIA GPU" in line
    else:
        assert "--cuda-graphs: CUDA-graph replays time eager PyTorch on a CUDA device" in line
    device, backend = ("cuda:0", "ort") if "cuda:0" in argv else ("cpu", "ort")
    with pytest.raises(Exception, match="--cuda-graphs: CUDA-graph replays time eager PyTorch on a CUDA device"):
        resolve_cuda_graphs(True, device, backend)  # the flag check itself, on any machine


def test_a_cpu_timing_knows_no_launch_bound_and_builds_nothing(cpu_result) -> None:
    timing = SampleTiming.of(cpu_result)
    assert timing.latency_ms == cpu_result.value_ms and timing.runs == cpu_result.runs and timing.cv == cpu_result.cv
    assert timing.launch_bound is None and timing.build_s == 0.0  # the CPU has no enqueue-vs-GPU split
    assert SearchTiming(LatencyConditions(), (timing,) * 5).closing_lines() == []


def _timings(result, flags: list[bool | None]) -> tuple[SampleTiming, ...]:
    """The real record with the profiler's launch-bound flag as a CUDA timing sets it (`profilers.api._result`)."""
    return tuple(SampleTiming.of(replace(result, launch_bound=flag, timing_mode="gpu_events")) for flag in flags)


def test_the_closing_note_says_most_were_launch_bound_and_what_to_do(cpu_result) -> None:
    plain = LatencyConditions(device="cuda:0", batch_size=32)
    lines = SearchTiming(plain, _timings(cpu_result, [True, True, True, False, None])).closing_lines()
    assert len(lines) == 1 and lines[0].startswith("note: 3 of 4 sampled networks were launch-bound")
    assert "graph replays (drop --no-cuda-graphs)" in lines[0] and "--latency-batch-size" in lines[0]
    graphs = replace(plain, cuda_graphs=True)  # replays already: the way out is an engine or a larger batch
    note = SearchTiming(graphs, _timings(cpu_result, [True, True])).launch_bound_note()
    assert note is not None and "--backend tensorrt" in note and "no-cuda-graphs" not in note


@pytest.mark.parametrize("flags", [[True, False], [False, False, True], [None, None, None], []])
def test_no_note_unless_more_than_half_of_the_known_flags_are_launch_bound(cpu_result, flags: list[bool | None]) -> None:
    timing = SearchTiming(LatencyConditions(device="cuda:0"), _timings(cpu_result, flags))
    assert timing.launch_bound_note() is None and timing.closing_lines() == []


def test_the_profile_and_the_search_count_launch_bound_timings_alike(cpu_result) -> None:
    flags = [True, False, True, None]
    records = [SampleRecord(i, 0, "0-0", {}, 1.0, 1.0, macs=1, params=1, result=replace(cpu_result, launch_bound=flag).to_dict())
               for i, flag in enumerate(flags)]
    assert mostly_launch_bound(flags) == (2, 3)
    assert launch_bound_note(records).startswith("note: 2 of 3 networks")
    assert SearchTiming(LatencyConditions(device="cuda:0"), _timings(cpu_result, flags)).launch_bound_note().startswith("2 of 3")


def test_engine_key_is_the_network_and_its_conditions_not_its_search_history() -> None:
    space = get_space("proxyless", **TINY)
    rng = np.random.default_rng(1)
    a, b = space.sample(rng), space.sample(rng)
    while b.choices == a.choices:
        b = space.sample(rng)
    gpu = LatencyConditions(device="cuda:0", backend="tensorrt", batch_size=8)
    runtime = "tensorrt-10.13-NVIDIA_H100-sm90-cuda13.0-timing.cache"
    key = engine_key(a, gpu, runtime)
    assert key == engine_key(space.architecture(dict(a.choices)), gpu, runtime)  # same content, same engine
    assert key == engine_key(replace(a, extra={"probabilities": {"x": 1.0}}), gpu, runtime)  # a derived network's extras
    others = {engine_key(b, gpu, runtime), engine_key(a, replace(gpu, batch_size=1), runtime),
              engine_key(a, replace(gpu, precision="fp16"), runtime), engine_key(a, gpu, runtime.replace("10.13", "11.4"))}
    assert key not in others and len(others) == 4


def test_the_engine_cache_builds_once_per_key_and_refuses_a_build_that_wrote_nothing(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "engines")
    built: list[Path] = []

    def build(path: Path) -> None:
        built.append(path)
        path.write_bytes(b"engine bytes")

    first, seconds = cache.get("k1", build)
    assert first == tmp_path / "engines" / "k1.engine" and first.read_bytes() == b"engine bytes" and seconds >= 0.0
    again, seconds = cache.get("k1", build)
    assert again == first and seconds == 0.0 and built == [first]
    assert (cache.builds, cache.hits) == (1, 1)
    with pytest.raises(RuntimeError, match="wrote no k2.engine"):
        cache.get("k2", lambda path: None)
    assert not cache.path("k2").exists()


def test_only_tensorrt_keeps_an_engine_cache_and_reports_build_seconds(tmp_path: Path, cpu_result) -> None:
    space = get_space("proxyless", **TINY)
    assert LatencyOracle(space, LatencyConditions(backend="ort")).take_build_seconds() is None
    oracle = LatencyOracle(space, LatencyConditions(device="cuda:0", backend="tensorrt"), engine_dir=tmp_path)
    assert oracle.engines is not None and oracle.engines.directory == tmp_path
    oracle.timings += [SampleTiming.of(cpu_result, 2.5), SampleTiming.of(cpu_result, 0.0)]  # one built, one cached
    assert oracle.take_build_seconds() == 2.5 and oracle.take_build_seconds() == 0.0  # each step its own share
    summary = oracle.summary()
    assert (summary.engine_builds, summary.engine_hits, summary.build_seconds) == (1, 1, 2.5)
    assert summary.closing_lines()[0] == "TensorRT engines: 1 built in 2.5 s, 1 from the engine cache"


def test_the_search_log_keeps_each_samples_launch_bound_flag_and_build_time(tmp_path: Path) -> None:
    space = get_space("proxyless", **TINY)
    log = tmp_path / "latencies.jsonl"
    oracle = LatencyOracle(space, LatencyConditions(backend="ort", threads=1), config=QUICK, log_path=log)
    arch = space.sample(np.random.default_rng(3))
    value = oracle.latency_ms(arch)
    assert oracle.latency_ms(arch) == value and oracle.hits == 1  # timed once
    (line,) = [json.loads(text) for text in log.read_text().splitlines()]
    assert line == {"choices": arch.choices, "latency_ms": value, "cv": line["cv"], "runs": line["runs"],
                    "launch_bound": None, "build_s": 0.0}
    assert oracle.summary().timings == (SampleTiming(value, line["cv"], line["runs"]),)


@pytest.mark.tensorrt
def test_a_tensorrt_search_oracle_builds_each_sampled_network_once_and_shares_one_timing_cache(tmp_path: Path) -> None:
    space = get_space("proxyless", **TINY)
    conditions = LatencyConditions(device="cuda:0", backend="tensorrt", batch_size=4)
    archs = [space.sample(np.random.default_rng(seed)) for seed in (4, 5)]
    oracle = LatencyOracle(space, conditions, config=QUICK, engine_dir=tmp_path)
    first = [oracle.time_sample(arch) for arch in archs]
    assert all(t.build_s > 0 and t.latency_ms > 0 for t in first)
    assert len(list(tmp_path.glob("*.engine"))) == 2 and len(list(tmp_path.glob("*timing.cache"))) == 1
    fresh = LatencyOracle(space, conditions, config=QUICK, engine_dir=tmp_path)  # another search, same conditions
    assert [fresh.time_sample(arch).build_s for arch in archs] == [0.0, 0.0]


@pytest.mark.cuda
def test_a_cuda_oracle_with_default_conditions_times_graph_replays() -> None:
    space = get_space("proxyless", **TINY)
    conditions = LatencyConditions(device="cuda:0", batch_size=4, cuda_graphs=default_cuda_graphs("cuda:0", "eager"))
    result = LatencyOracle(space, conditions, config=QUICK).measure_sample(space.sample(np.random.default_rng(6)))
    assert result.context.cuda_graphs and result.median_ms > 0
