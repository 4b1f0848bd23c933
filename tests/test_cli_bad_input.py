"""Issue #13, "Bad input and faults" items 1-17, through the real command line.

Every refusal keeps the contract of tests/cli_contract.py: exit 2, at most 3
lines, no traceback, files written before unchanged. The fixtures are real: a
profile directory with a fitted model (lut.fit on samples that follow a known
linear rule), architecture files drawn from the space, a search run folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_contract import refused, run_cli, snapshot
from hwnas.cli import main
from hwnas.cli.profile_device import precision_note
from hwnas.cli.profile_device import collapse_warning
from hwnas.run.rundir import RunDirectory, read_metrics
from lut.profile import planned_arch
from search_spaces import get_space
from test_cli_lut import TINY, _profile_dir
from test_search_cli import TINY as SEARCH

SPACE = {"resolution": 28, **TINY}


@pytest.fixture
def arch_file(tmp_path: Path) -> Path:
    return planned_arch(get_space("proxyless", **SPACE), 0, 3).save(tmp_path / "arch.json")


@pytest.fixture
def binary_file(tmp_path: Path) -> Path:
    path = tmp_path / "binary.json"
    path.write_bytes(bytes(range(128, 256)) * 4)
    return path


# ---- 1. a binary arch file -------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["arch", "show", "{arch}"],
    ["profile", "--model", "{arch}", "--budget", "0.1"],
    ["export", "{arch}", "--out", "{tmp}/export"],
    ["train", "{arch}", "--data", "digits", "--out", "{tmp}/train"],
    ["lut", "predict", "{prof}", "{arch}"],
])
def test_1_binary_arch_file(command: list[str], binary_file: Path, profile: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = [part.format(arch=binary_file, tmp=tmp_path, prof=profile) for part in command]
    line = refused(argv, capsys, keep=[profile, binary_file], absent=[tmp_path / "export", tmp_path / "train"])
    assert f"{binary_file} is a binary file" in line


# ---- 2. degenerate space configurations ---------------------------------------------------------

@pytest.mark.parametrize(("extra", "needle"), [
    (["--space", "proxyless", "--set", "depths=[0,0,0,0,0,0]"], "6 depths >= 1"),
    (["--space", "proxyless", "--set", "resolution=-5"], "resolution must be an integer >= 1"),
    (["--space", "darts", "--set", "C=-4"], "C must be an integer >= 1"),
    (["--space", "darts", "--set", "C=abc"], "C must be an integer >= 1, got 'abc'"),
    (["--space", "darts", "--set", "layers=-3"], "layers must be an integer >= 1"),
    (["--space", "proxyless", "--set", "dropout=2"], "dropout must be a number in [0, 1)"),
    (["--space", "proxyless", "--seed", "-1"], "--seed: -1 must be >= 0"),
])
def test_2_degenerate_space_config_is_refused_before_writing(extra: list[str], needle: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a.json"
    assert needle in refused(["arch", "sample", *extra, "--out", str(out)], capsys, absent=[out])


@pytest.mark.parametrize(("flag", "value"), [("--channels", "0"), ("--layers", "-3")])
def test_2_degenerate_show_options(flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert flag in refused(["arch", "show", "darts_v2", flag, value], capsys)


def test_2_a_degenerate_stored_arch_is_refused_by_show(arch_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(arch_file.read_text())
    document["config"]["resolution"] = -5
    arch_file.write_text(json.dumps(document))
    assert "resolution must be an integer >= 1" in refused(["arch", "show", str(arch_file)], capsys, keep=[arch_file])


# ---- 3. lut predict and space_version ---------------------------------------------------------

def test_3_lut_predict_refuses_another_space_version(profile: Path, arch_file: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(arch_file.read_text())
    document["space_version"] = 99
    arch_file.write_text(json.dumps(document))
    line = refused(["lut", "predict", str(profile), str(arch_file)], capsys, keep=[profile])
    assert "space_version" in line and "99" in line


# ---- 4. NaN / inf / binary lut.json -----------------------------------------------------------

def _poison(profile: Path, value: float) -> None:
    lut = profile / "lut.json"
    document = json.loads(lut.read_text())
    document["model"]["bias_ms"] = value
    lut.write_text(json.dumps(document))  # json writes NaN / Infinity tokens, as a hand edit or another tool might


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("command", [
    ["lut", "predict", "{prof}", "{arch}"],
    ["lut", "show", "{prof}"],
    ["lut", "eval", "{prof}"],
    ["lut", "eval", "{prof}", "--samples", "{prof}/samples.jsonl"],
])
def test_4_non_finite_lut_is_refused_naming_the_field(command: list[str], value: float, profile: Path, arch_file: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _poison(profile, value)
    line = refused([part.format(prof=profile, arch=arch_file) for part in command], capsys, keep=[profile])
    assert "lut.json" in line and "bias_ms" in line and "finite" in line


def test_4_search_with_a_nan_lut_blames_the_lut(profile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _poison(profile, float("nan"))
    argv = ["search", *SEARCH, "--out", str(tmp_path / "run")]
    argv[argv.index("--lut") + 1] = str(profile)
    line = refused(argv, capsys, keep=[profile], absent=[tmp_path / "run"])
    assert "bias_ms is nan" in line and "ONNX" not in line


@pytest.mark.parametrize(("path", "value"), [
    (("test", "linear (ridge)", "kendall"), None),  # removed
    (("test", "linear (ridge)", "mape"), "text"),
    (("target_method",), 1e308),
    (("test_fraction",), "text"),
    (("storable",), 0),  # the full fuzz's `swap model/metrics/storable`: lut show raised a TypeError
    (("learning", 1, "spearman"), {}),  # ... `swap model/metrics/learning/1/spearman`: a TypeError
    (("networks_needed",), 0),  # ... `swap model/metrics/networks_needed`: an AttributeError
])
def test_4_damaged_fit_metrics_are_refused(path: tuple[str, ...], value: object, profile: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Every reader refuses them in one line; `lut fit`, which writes the model and its metrics, re-fits."""
    lut = profile / "lut.json"
    document = json.loads(lut.read_text())
    parent = document["model"]["metrics"]
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    lut.write_text(json.dumps(document))
    for command in (["lut", "show", str(profile)], ["lut", "eval", str(profile)]):
        assert "model metrics" in refused(command, capsys, keep=[profile])
    assert run_cli(["lut", "fit", str(profile)], capsys)[0] == 0
    assert run_cli(["lut", "show", str(profile)], capsys)[0] == 0


def test_4_binary_lut_json(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (profile / "lut.json").write_bytes(b"\xff\xfe" + os.urandom(300))
    assert "is a binary file" in refused(["lut", "show", str(profile)], capsys, keep=[profile])


# ---- 5. a half-written profile.json, samples.jsonl a folder ------------------------------------

def test_5_half_written_manifest_and_samples_folder(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = profile / "profile.json"
    whole = manifest.read_text()
    manifest.write_text(whole[: len(whole) // 2])
    assert "profile.json is not valid JSON" in refused(["lut", "fit", str(profile)], capsys, keep=[profile])
    manifest.write_text(whole)
    (profile / "samples.jsonl").rename(profile / "samples-0-of-2.jsonl")
    (profile / "samples.jsonl").mkdir()
    assert "samples.jsonl is a folder" in refused(["lut", "fit", str(profile)], capsys, keep=[profile])


# ---- 6. nothing written before the inputs are validated ---------------------------------------

@pytest.mark.parametrize("extra", [
    ["--device", "cuda:99"],
    ["--backend", "nope"],
    ["--batch-size", "0"],
    ["--space", "darts", "--space-option", "C=-4"],
    ["--space-option", "widths=wide"],
])
def test_6_a_refused_profile_writes_nothing(extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prof"
    refused(["profile", "--samples", "4", *extra, "--out", str(out)], capsys, absent=[out])


# ---- 7 and 8. unwritable outputs, --json DIR/ ------------------------------------------------

@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a_file"
    path.write_text("keep me\n")
    return path


@pytest.mark.parametrize("command", [
    ["profile", "--model", "resnet18", "--json", "{file}/r.json"],
    ["profile", "--model", "resnet18", "--json", "/proc/hwnas-r.json"],
    ["profile", "--model", "resnet18", "--json", "{tmp}/newdir/"],
    ["profile", "--device", "cpu", "--out", "{file}/prof"],
    ["profile", "--device", "cpu", "--out", "/proc/hwnas-prof"],
    ["profile", "--device", "cpu", "--out", "{file}"],
    ["search", *SEARCH, "--out", "{file}/run"],
    ["search", *SEARCH, "--out", "/proc/hwnas-run"],
    ["train", "{arch}", "--data", "digits", "--out", "{file}/train"],
    ["train", "{arch}", "--data", "digits", "--out", "/proc/hwnas-train"],
    ["arch", "sample", "--space", "proxyless", "--out", "{file}/a.json"],
    ["arch", "sample", "--space", "proxyless", "--out", "/proc/hwnas-a.json"],
    ["export", "{arch}", "--out", "{file}"],
    ["export", "{arch}", "--out", "/proc/hwnas-export"],
])
def test_7_8_unwritable_outputs_are_refused_before_any_work(command: list[str], a_file: Path, arch_file: Path,
                                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [part.format(file=a_file, tmp=tmp_path, arch=arch_file) for part in command]
    line = refused(argv, capsys, keep=[a_file, arch_file], absent=[tmp_path / "newdir"])
    assert "--out" in line or "--json" in line


def test_7_read_only_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes here")
        assert "cannot write" in refused(["arch", "sample", "--space", "darts", "--out", str(locked / "a.json")], capsys)
    finally:
        locked.chmod(0o755)


# ---- 9. silently accepted values ----------------------------------------------------------------

@pytest.mark.parametrize(("argv", "needle"), [
    (["profile", "--retest", "-3"], "--retest: -3 must be >= 0"),
    (["profile", "--model", "resnet18", "--budget", "nan"], "--budget: 'nan' is not a finite number"),
    (["search", "--latency-target", "inf"], "--latency-target must be positive and finite"),
    (["search", "--latency-target", "nan"], "--latency-target must be positive and finite"),
    (["search", "--image-size", "0"], "--image-size: 0 must be >= 1"),
    (["search", "--w-lr", "-1"], "--w-lr: -1 must be > 0"),
    (["search", "--checkpoint-seconds", "0"], "--checkpoint-seconds: 0 must be > 0"),
    (["train", "x", "--data", "digits", "--lr", "inf"], "--lr: 'inf' is not a finite number"),
    (["export", "x", "--out", "o", "--threads", "0"], "--threads: 0 must be >= 1"),
    (["lut", "fit", "x", "--test-fraction", "1.5"], "--test-fraction: 1.5 must be < 1"),
])
def test_9_values_that_cannot_work_are_refused(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert needle in refused(argv, capsys)


def test_9_tiny_inputs_and_fp16_on_cpu_are_warned_about() -> None:
    assert "1x1" in (collapse_warning(get_space("proxyless", resolution=7)) or "")
    assert collapse_warning(get_space("proxyless", resolution=64)) is None
    assert "fp16 on a CPU" in (precision_note("cpu", "fp16") or "")
    assert precision_note("cuda:0", "fp16") is None and precision_note("cpu", "fp32") is None


# ---- 10. torn last lines ---------------------------------------------------------------------------

def test_10_torn_metrics_line_on_resume(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path)
    for step in range(4):
        run.append_metrics({"step": step, "loss": float("nan") if step == 2 else 0.5})
    with run.metrics_path.open("a") as stream:
        stream.write('{"step": 4, "lo')  # what kill -9 in the middle of a write leaves
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 1, 2, 3]
    RunDirectory(tmp_path, resume=True).keep_until(3, 0)
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 1, 2]
    assert run.metrics_path.read_text().endswith("\n")
    run.append_metrics({"step": 3})
    with run.metrics_path.open("a") as stream:
        stream.write('{"step": 4, "lo')
    run.append_metrics({"step": 4})  # the next append drops the torn fragment instead of gluing onto it
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 1, 2, 3, 4]


# ---- 11 and 15. reruns over earlier runs ---------------------------------------------------------

def _earlier_run(folder: Path, *, finished: bool) -> Path:
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"a checkpoint of step 7")
    (folder / "metrics.jsonl").write_text('{"step": 0}\n')
    (folder / "latencies.jsonl").write_text('{"ms": 1.0}\n')
    if finished:
        (folder / "summary.json").write_text("{}\n")
    return folder


def test_11_search_refuses_a_rerun_over_a_stopped_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _earlier_run(tmp_path / "run", finished=False)
    line = refused(["search", *SEARCH, "--out", str(run)], capsys, keep=[run])
    assert "holds a stopped search" in line and "--resume" in line
    fresh = tmp_path / "fresh"
    assert "no search checkpoint to resume" in refused(["search", *SEARCH, "--out", str(fresh), "--resume"], capsys,
                                                       absent=[fresh])


def test_15_resume_of_a_finished_search_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _earlier_run(tmp_path / "run", finished=True)
    before = snapshot(run)
    code, out, err = run_cli(["search", *SEARCH, "--out", str(run), "--resume"], capsys)
    assert code == 0 and "holds a finished search" in out and err == ""
    assert snapshot(run) == before


def test_15_export_removes_what_a_killed_export_left(arch_file: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    stale = tmp_path / f".export.partial-{dead}-abcd"
    (stale / "model.onnx").parent.mkdir()
    (stale / "model.onnx").write_bytes(b"half an onnx file")
    alive = tmp_path / f".export.partial-{os.getpid()}-efgh"  # an export still running (this process)
    alive.mkdir()
    code, _, _ = run_cli(["export", str(arch_file), "--out", str(tmp_path / "export"), "--measure", "none"], capsys)
    assert code == 0 and (tmp_path / "export" / "model.onnx").exists()
    assert not stale.exists() and alive.exists()


# ---- 16. lut eval --samples -------------------------------------------------------------------

def test_16_lut_eval_samples_problems(profile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "new.jsonl"
    assert f"{missing} does not exist" in refused(["lut", "eval", str(profile), "--samples", str(missing)], capsys,
                                                  keep=[profile])
    weights = tmp_path / "model.pt"
    weights.write_bytes(os.urandom(2000) + b"\n" * 5000)
    assert "holds no sample records" in refused(["lut", "eval", str(profile), "--samples", str(weights)], capsys,
                                                keep=[profile])
    other = tmp_path / "other"
    other_space = _profile_dir(other, samples=20)
    document = json.loads((other_space / "samples.jsonl").read_text().splitlines()[0])
    document["arch"]["config"]["resolution"] = 32  # measured for another configuration of the same space
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(json.dumps(document) + "\n")
    line = refused(["lut", "eval", str(profile), "--samples", str(foreign)], capsys, keep=[profile])
    assert "config resolution 32" in line and "28" in line


def test_16_many_bad_lines_do_not_flood(profile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text((profile / "samples.jsonl").read_text() + "garbage\n" * 500)
    code, out, err = run_cli(["lut", "eval", str(profile), "--samples", str(mixed)], capsys)
    assert code == 0 and len(err.splitlines()) == 6 and "495 more problems" in err


# ---- 17. messages name flags that exist --------------------------------------------------------

def test_17_no_message_names_a_flag_that_does_not_exist() -> None:
    root = Path(__file__).resolve().parents[1]
    sources = [p for package in ("hwnas", "lut", "search_spaces", "profilers") for p in (root / package).rglob("*.py")]
    assert sources and not [p for p in sources if "--arch-config" in p.read_text(encoding="utf-8")]


def test_17_train_suggests_the_real_flag(arch_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(["train", str(arch_file), "--data", "digits", "--out", str(tmp_path / "t")], capsys)
    assert "--space-option in_channels=" in line


# ---- 13 and 14. interrupted work is kept ----------------------------------------------------------

def _wait_for(path: Path, process: subprocess.Popen[bytes], lines: int = 1, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= lines:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never got {lines} lines (exit {process.poll()})")


@pytest.mark.slow
def test_13_ctrl_c_during_the_per_op_lut_keeps_what_was_timed(tmp_path: Path) -> None:
    out = tmp_path / "prof"
    argv = ["profile", "--device", "cpu", "--input-size", "28", "--samples", "2", "--retest", "0",
            "--time-per-net", "0.05", "--out", str(out)]
    for key, value in TINY.items():
        argv += ["--space-option", f"{key}={json.dumps(value)}"]
    # SIGINT back to default in the child: a suite started in the background (`make test &`, nohup) passes
    # SIGINT on as ignored, and a Python started so never raises KeyboardInterrupt (seen: exit 0, not 130)
    child = subprocess.Popen([sys.executable, "-m", "hwnas", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for(out / "ops.partial.jsonl", child)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130 and b"everything measured so far is kept" in err
    kept = {name: median for line in (out / "ops.partial.jsonl").read_text().splitlines()
            for name, median, _ in json.loads(line)["items"]}
    assert kept and not (out / "lut.json").exists()

    assert main(argv) == 0  # resumes: times only the ops not yet timed
    table = json.loads((out / "lut.json").read_text())
    final = {f"{e['decision']}.{e['choice']}": e["median_ms"] for e in table["ops"]}
    final.update({e["name"]: e["median_ms"] for e in table["fixed"]})
    assert {name: final[name] for name in kept} == kept  # kept, not measured again
    assert len(final) > len(kept) and not (out / "ops.partial.jsonl").exists()


@pytest.mark.slow
def test_14_10_kill_9_before_the_step_checkpoint_loses_at_most_seconds(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    argv = ["search", *SEARCH, "--out", str(run)]
    argv[argv.index("--steps") + 1] = "300"
    argv += ["--latency-estimator", "none", "--checkpoint-every", "100000", "--checkpoint-seconds", "1"]
    child = subprocess.Popen([sys.executable, "-m", "hwnas", *argv], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(run / "metrics.jsonl", child, lines=1)
        deadline = time.monotonic() + 120
        while not (run / "checkpoint.pt").exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert (run / "checkpoint.pt").exists(), "no checkpoint by time"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    with (run / "metrics.jsonl").open("a") as stream:
        stream.write('{"step": 99999, "pha')  # the torn line kill -9 can leave (item 10)
    assert "holds a stopped search" in refused(argv, capsys, keep=[run])  # item 11: no silent restart

    code, out, err = run_cli([*argv, "--resume"], capsys)
    assert code == 0, err
    steps = [record["step"] for record in read_metrics(run)]
    assert steps == list(range(len(steps))) and len(steps) >= 300  # no step lost, none twice, the torn line gone
    assert (run / "summary.json").exists()
