"""Device profiles timed as CUDA-graph replays (`--cuda-graphs`), and the launch-bound note (#14, H200 run).

On the H200 (2026-11-27) eager CUDA-event times of launch-bound nets followed the host's launch speed
(raw retest MAPE 26%); graph replays are the GPU's work alone. A graph profile is another number than a
plain eager one, so it is keyed like precision: recorded in profile.json and lut.json, refused when mixed.
Runs on the CPU: what it checks is bookkeeping, not timing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwnas.cli import main
from lut.errors import LutError
from lut.profile import check_manifest, launch_bound_note, manifest_of, resolve_settings
from lut.samples import SampleRecord
from lut.table import Conditions, Expectation, LatencyTable, check, load, save
from search_spaces import get_space


def test_cuda_graphs_reach_both_timing_configs_and_gpu_turns_are_longer() -> None:
    settings = resolve_settings(device="cuda:0", samples=20, cuda_graphs=True, out="unused")
    assert settings.cuda_graphs and settings.net_config.cuda_graphs and settings.op_config.cuda_graphs
    assert settings.net_config.runs_per_round == 8 and settings.op_config.runs_per_round == 8
    plain = resolve_settings(device="cuda:0", samples=20, out="unused")
    assert not (plain.cuda_graphs or plain.net_config.cuda_graphs or plain.op_config.cuda_graphs)
    assert resolve_settings(device="cpu", samples=20, out="unused").net_config.runs_per_round == 3


@pytest.mark.parametrize(("device", "backend"), [("cpu", "eager"), ("cuda:0", "ort"), ("cuda:0", "tensorrt")])
def test_cuda_graphs_refused_where_nothing_replays(device: str, backend: str) -> None:
    with pytest.raises(LutError, match="--cuda-graphs replays eager PyTorch on a CUDA device"):
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
