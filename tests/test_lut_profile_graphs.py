"""Device profiles timed as CUDA-graph replays (`--cuda-graphs`), and the launch-bound note (#14, H200 run).

On the H200 (2026-11-27) eager CUDA-event times of launch-bound nets followed the host's launch speed
(raw retest MAPE 26%); graph replays are the GPU's work alone. A graph profile is another number than a
plain eager one, so it is keyed like precision: recorded in profile.json and lut.json, refused when mixed,
also by a search (LatencyConditions.cuda_graphs) and by its default profile directory. `hwnas profile`'s
timing-only flags (--channels-last, --ort-provider, --json, --budget) are refused for a device profile, which ignored them.
Runs on the CPU: what it checks is bookkeeping, not timing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_contract import refused
from hwnas.cli import build_parser, main
from hwnas.cli.search import config_from_args
from hwnas.search.latency import SEARCH_MEASURE, LatencyConditions, LatencyOracle, load_surrogate
from hwnas.run import prepare, profile_dir_for
from lut.errors import LutError
from lut.profile import check_manifest, fit_directory, launch_bound_note, manifest_of, planned_arch, resolve_settings
from lut.samples import SampleRecord, append
from lut.table import Conditions, Expectation, LatencyTable, check, load, save
from search_spaces import SearchSpace, get_space
from test_search_cli import TINY as SEARCH_TINY


def test_cuda_graphs_reach_both_timing_configs_and_gpu_turns_are_longer() -> None:
    settings = resolve_settings(device="cuda:0", samples=20, cuda_graphs=True, out="unused")
    assert settings.cuda_graphs and settings.net_config.cuda_graphs and settings.op_config.cuda_graphs
    assert settings.net_config.runs_per_round == 8 and settings.op_config.runs_per_round == 8
    plain = resolve_settings(device="cuda:0", samples=20, out="unused")
    assert not (plain.cuda_graphs or plain.net_config.cuda_graphs or plain.op_config.cuda_graphs)
    assert resolve_settings(device="cpu", samples=20, out="unused").net_config.runs_per_round == 3


@pytest.mark.parametrize(("device", "backend"), [("cpu", "eager"), ("cuda:0", "ort"), ("cuda:0", "tensorrt")])
def test_cuda_graphs_refused_where_nothing_replays(device: str, backend: str) -> None:
    with pytest.raises(LutError, match="^--cuda-graphs: CUDA-graph replay times eager PyTorch on a CUDA device, not --device"):
        resolve_settings(device=device, backend=backend, samples=20, cuda_graphs=True, out="unused")


def test_cli_refuses_cuda_graphs_for_a_cpu_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # before the fix the flag was parsed and silently ignored: a plain eager profile ran
    code = main(["profile", "--device", "cpu", "--cuda-graphs", "--samples", "20", "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert code == 2 and "--cuda-graphs" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()


def test_manifest_keys_cuda_graphs_and_reads_an_older_manifest_as_plain(tmp_path: Path) -> None:
    space = get_space("proxyless")
    plain = resolve_settings(device="cuda:0", samples=20, out=tmp_path)
    graphs = resolve_settings(device="cuda:0", samples=20, out=tmp_path, cuda_graphs=True)
    older = {k: v for k, v in manifest_of(plain, space).items() if k != "cuda_graphs"}
    (tmp_path / "profile.json").write_text(json.dumps(older))
    check_manifest(tmp_path, manifest_of(plain, space))  # absent key = plain eager: resumes
    with pytest.raises(LutError, match="^cuda_graphs differs: .* cuda_graphs=False, this run asks True"):
        check_manifest(tmp_path, manifest_of(graphs, space))


def _table(cuda_graphs: bool) -> LatencyTable:
    space = get_space("proxyless")
    return LatencyTable(space=space.name, space_version=space.version, space_config=space.config,
                        space_signature=space.signature(), context={}, ops=(), fixed=(),
                        conditions=Conditions("cuda:0", "eager", 32, "fp32", (32, 3, 224, 224), "GPU", cuda_graphs))


def test_lut_round_trips_cuda_graphs_and_a_mixed_expectation_is_refused(tmp_path: Path) -> None:
    save(_table(True), tmp_path / "lut.json")
    table = load(tmp_path, Expectation(cuda_graphs=True))
    assert table.conditions.cuda_graphs
    with pytest.raises(LutError, match="^cuda_graphs differs"):
        check(table, Expectation(cuda_graphs=False))
    check(table, Expectation())  # a caller that does not say accepts either


def test_older_lut_reads_as_plain_eager_and_a_damaged_flag_is_refused(tmp_path: Path) -> None:
    save(_table(False), tmp_path / "lut.json")
    data = json.loads((tmp_path / "lut.json").read_text())
    del data["conditions"]["cuda_graphs"]
    (tmp_path / "lut.json").write_text(json.dumps(data))
    assert load(tmp_path, Expectation(cuda_graphs=False)).conditions.cuda_graphs is False
    data["conditions"]["cuda_graphs"] = "false"
    (tmp_path / "lut.json").write_text(json.dumps(data))
    with pytest.raises(LutError, match="cuda_graphs must be true or false"):
        load(tmp_path)


def _record(index: int, launch_bound: bool | None, cuda_graphs: bool = False) -> SampleRecord:
    return SampleRecord(index=index, repeat=0, block="b", arch={"choices": {}}, latency_ms=1.0, reference_ms=1.0,
                        macs=1, params=1, result={"launch_bound": launch_bound, "context": {"cuda_graphs": cuda_graphs}})


def test_launch_bound_note_only_when_most_plain_timings_were_launch_bound() -> None:
    assert launch_bound_note([_record(0, True), _record(1, True), _record(2, False)]).startswith("note: 2 of 3 networks")
    assert launch_bound_note([_record(0, True), _record(1, False)]) is None  # half is not most
    assert launch_bound_note([_record(0, None), _record(1, None)]) is None  # CPU or no host runs: unknown
    assert launch_bound_note([_record(0, True, cuda_graphs=True)]) is None  # replays launch nothing per kernel


# ---- the search's side (H2 left it open: a search accepted a graph-replay profile as plain eager) ----------

def _search_argv(tmp_path: Path, lut: Path) -> list[str]:
    argv = ["search", *SEARCH_TINY, "--latency-device", "cuda:0", "--latency-timing", "inline", "--out", str(tmp_path / "run")]
    argv[argv.index("--lut") + 1] = str(lut)
    return argv


def _graph_profile(out: Path, space: SearchSpace) -> Path:
    """A fitted cuda:0 profile directory of `space` timed as graph replays (latency = a known linear rule)."""
    settings = resolve_settings(space=space.name, space_options=dict(space.config), device="cuda:0", samples=30, out=out,
                                cuda_graphs=True)
    out.mkdir(parents=True)
    (out / "profile.json").write_text(json.dumps(manifest_of(settings, space)))
    save(LatencyTable(space=space.name, space_version=space.version, space_config=space.config,
                      space_signature=space.signature(), context={}, ops=(), fixed=(),
                      conditions=Conditions("cuda:0", "eager", 32, "fp32", tuple(space.input_shape(32)), "GPU", True)),
         out / "lut.json")
    weights = np.random.default_rng(0).uniform(0.0, 0.1, len(space.feature_names()))
    records = [SampleRecord(i, 0, f"0-{i // 8}", (arch := planned_arch(space, 0, i)).to_dict(),
                            1.0 + float(space.encode(arch) @ weights), 1.0, macs=1000 + i, params=10 * i + 1,
                            result={}) for i in range(30)]
    append(out / "samples.jsonl", records)
    fit_directory(out)
    return out


def test_search_refuses_a_graph_replay_profile_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # before: the search took the graph profile's model as plain eager's and went on to time (and failed later)
    space = prepare(config_from_args(build_parser().parse_args(_search_argv(tmp_path, Path("none"))))).space
    profile = _graph_profile(tmp_path / "prof", space)
    plain = [*_search_argv(tmp_path, profile), "--no-cuda-graphs"]  # graph replays are the CUDA default (#27)
    line = refused(plain, capsys, keep=[profile], absent=[tmp_path / "run"])
    if torch.cuda.is_available():
        assert "cuda_graphs differs" in line and "cuda_graphs=True" in line and "without --cuda-graphs" in line
    else:  # the device is checked first (#30): without a GPU the search stops there, still in one line
        assert "cuda:0" in line and "no usable NVIDIA GPU" in line
    with pytest.raises(LutError, match="cuda_graphs differs"):  # the profile check itself, on any machine
        load_surrogate(profile, space, LatencyConditions(device="cuda:0", batch_size=32, cuda_graphs=False))
    graphs = LatencyConditions(device="cuda:0", batch_size=32, cuda_graphs=True)
    table, _ = load_surrogate(profile, space, graphs)  # conditions that time graph replays take it
    assert table.conditions.cuda_graphs


def test_latency_conditions_carry_cuda_graphs_to_every_measurement_and_the_profile_path() -> None:
    space = get_space("proxyless")
    plain = LatencyConditions(device="cuda:0", batch_size=32)
    graphs = replace(plain, cuda_graphs=True)
    assert plain.expectation(space).cuda_graphs is False and graphs.expectation(space).cuda_graphs is True
    assert graphs.measure_config(SEARCH_MEASURE).cuda_graphs
    assert not plain.measure_config(replace(SEARCH_MEASURE, cuda_graphs=True)).cuda_graphs
    assert LatencyOracle(space, graphs).config.cuda_graphs
    # plain eager keeps the directory name it always had; a graph profile gets its own
    assert profile_dir_for(space, plain, "p").name == f"proxyless-{space.signature()[:8]}-cuda0-eager-b32-fp32"
    assert profile_dir_for(space, graphs, "p").name == f"proxyless-{space.signature()[:8]}-cuda0-eager-b32-fp32-graphs"
    assert resolve_settings(device="cuda:0", samples=2, cuda_graphs=True).out == Path("profiles/proxyless-cuda0-eager-b32-fp32-graphs")
    assert resolve_settings(device="cuda:0", samples=2).out == Path("profiles/proxyless-cuda0-eager-b32-fp32")


@pytest.mark.parametrize(("device", "backend"), [("cpu", "eager"), ("cuda:0", "ort"), ("cuda:0", "tensorrt")])
def test_latency_conditions_refuse_cuda_graphs_where_nothing_replays(device: str, backend: str) -> None:
    with pytest.raises(ValueError, match="^cuda_graphs: CUDA-graph replay times eager PyTorch on a CUDA device"):
        LatencyConditions(device=device, backend=backend, cuda_graphs=True)


@pytest.mark.parametrize("flag", [["--channels-last"], ["--ort-provider", "cpu"], ["--json", "x.json"], ["--budget", "3"]])
def test_device_profile_refuses_timing_only_flags(flag: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # before: parsed and silently ignored (a contiguous, default-provider profile ran, no JSON written)
    out = tmp_path / "p"
    line = refused(["profile", "--device", "cpu", *flag, "--input-size", "28", "--samples", "2", "--retest", "0", "--skip-ops",
                    "--out", str(out)], capsys, absent=[out])
    assert f"{flag[0]} applies to timing --model networks" in line


@pytest.mark.cuda
def test_oracle_times_graph_replays_when_its_conditions_say_so() -> None:
    space = get_space("proxyless", widths=[4, 4, 4, 4, 8, 8, 8, 8, 16], depths=[1, 1, 1, 1, 1, 1], small_input=True,
                      resolution=12)
    arch = planned_arch(space, 0, 0)
    plain = LatencyConditions(device="cuda:0", batch_size=4)
    results = {graphs: LatencyOracle(space, replace(plain, cuda_graphs=graphs)).measure_sample(arch) for graphs in (False, True)}
    assert results[True].context.cuda_graphs and not results[False].context.cuda_graphs
    assert results[True].median_ms > 0 and results[False].median_ms > 0
