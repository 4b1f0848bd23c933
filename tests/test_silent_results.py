"""No wrong answer printed as a right one (issue #30, group 1).

Each case here used to exit 0 with a number that meant nothing: parity
"passed" on NaN outputs, a LUT with negative latencies summed, a model with
missing coefficients predicting its bias alone, 1e300 ms fitted through
overflow warnings, samples of another resolution mixed into a fit, a duplicate
JSON key keeping its last value, and flags that could not apply ignored.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_contract import refused, run_cli  # noqa: E402
from hwnas.export.parity import ParityError, check_parity  # noqa: E402
from lut.profile import planned_arch  # noqa: E402
from lut.samples import read_directory  # noqa: E402
from profilers import MeasureConfig  # noqa: E402
from profilers._onnx import export_onnx  # noqa: E402
from search_spaces import get_space  # noqa: E402
from search_spaces.errors import ArchitectureError  # noqa: E402
from search_spaces.files import read_json, read_jsonl  # noqa: E402
from test_cli_lut import TINY  # noqa: E402


def _edit_lut(profile: Path, edit) -> None:  # noqa: ANN001
    document = json.loads((profile / "lut.json").read_text())
    edit(document)
    (profile / "lut.json").write_text(json.dumps(document))


# ---- parity --------------------------------------------------------------------------------------

def test_parity_fails_on_nan_outputs(tmp_path: Path) -> None:
    """NaN against NaN used to compute a relative error of 0.0 and pass."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2)).eval()
    model(torch.zeros(1, 3, 8, 8))
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.onnx"
    export_onnx(model, torch.zeros(1, 3, 8, 8), path, "torchscript")
    with pytest.raises(ParityError, match="not finite"):
        check_parity(model, path, backend="ort", device=torch.device("cpu"), precision="fp32", input_shape=(1, 3, 8, 8),
                     config=MeasureConfig(threads=1), workdir=tmp_path)


def test_export_refuses_weights_with_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = get_space("proxyless", resolution=28, **TINY)
    arch = planned_arch(space, 0, 1).save(tmp_path / "arch.json")
    state = space.build(planned_arch(space, 0, 1)).state_dict()
    name = next(key for key, value in state.items() if value.is_floating_point() and value.ndim == 4)
    state[name][0, 0, 0, 0] = float("inf")
    torch.save(state, tmp_path / "w.pt")
    line = refused(["export", str(arch), "--weights", str(tmp_path / "w.pt"), "--out", str(tmp_path / "out"),
                    "--measure", "none", "--threads", "1"], capsys, absent=[tmp_path / "out"])
    assert "not finite" in line and name in line


# ---- LUT fields ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [("ops/0/median_ms", -3.5), ("ops/1/median_ms", 0.0),
                                               ("fixed/0/median_ms", -1.0), ("ops/0/cv", -0.1),
                                               ("conditions/batch_size", 0), ("model/alpha", -1.0),
                                               ("model/n_train", 0), ("ops/0/input_shape/1", -8)])
def test_lut_fields_that_must_be_positive_are_checked(profile: Path, tmp_path: Path, field: str, value: float,
                                                      capsys: pytest.CaptureFixture[str]) -> None:

    def edit(document: dict) -> None:
        *parents, last = field.split("/")
        node = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value

    _edit_lut(profile, edit)
    line = refused(["lut", "show", str(profile), "--ops"], capsys, keep=[profile])
    assert "positive" in line or "negative" in line, line


def test_a_model_with_a_missing_coefficient_is_refused(profile: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """It used to predict the bias alone (0.399 ms against 1.768) as the network's latency."""
    chosen = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 3)
    decision, choice = next(iter(chosen.choices.items()))

    def drop(document: dict) -> None:
        document["model"]["coefficients"] = [entry for entry in document["model"]["coefficients"]
                                             if (entry["decision"], entry["choice"]) != (decision, choice)]

    _edit_lut(profile, drop)
    arch = chosen.save(tmp_path / "arch.json")
    line = refused(["lut", "predict", str(profile), str(arch)], capsys, keep=[profile])
    assert f"no coefficient for {decision}={choice}" in line
    line = refused(["lut", "eval", str(profile)], capsys, keep=[profile])
    assert "no coefficient for" in line


def test_a_model_with_a_gap_is_refused_on_load_and_refitted(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lut show` printed a model lacking a coefficient as sound, and `lut predict` answered for any architecture
    that avoided the gap (the fuzz's `silent coefficient 0 missing`); `lut fit`, which the error advises, re-fits it."""
    _edit_lut(profile, lambda document: document["model"]["coefficients"].pop(0))
    line = refused(["lut", "show", str(profile), "--ops"], capsys, keep=[profile])
    assert "no coefficient for" in line and "lut fit" in line, line
    code, _, _ = run_cli(["lut", "fit", str(profile)], capsys)
    assert code == 0
    code, out, _ = run_cli(["lut", "show", str(profile)], capsys)
    assert code == 0, out


# ---- samples -------------------------------------------------------------------------------------

def _rewrite_samples(profile: Path, change, every: int = 3) -> int:  # noqa: ANN001
    lines = (profile / "samples.jsonl").read_text().splitlines()
    changed = 0
    for number, line in enumerate(lines):
        if number % every == 0:
            record = json.loads(line)
            change(record)
            lines[number] = json.dumps(record)
            changed += 1
    (profile / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return changed


@pytest.mark.parametrize("command", [["lut", "fit"], ["lut", "eval"]])
def test_samples_of_another_resolution_are_refused_with_a_count(
    profile: Path, tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    changed = _rewrite_samples(profile, lambda record: record["arch"]["config"].update(resolution=32))
    line = refused([*command, str(profile)], capsys, keep=[profile])
    assert f"{changed} of " in line and "resolution" in line, line


def test_samples_of_other_conditions_are_refused(profile: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    changed = _rewrite_samples(profile, lambda record: record["result"].update(batch_size=8, precision="fp16"), every=4)
    line = refused(["lut", "fit", str(profile)], capsys, keep=[profile])
    assert f"{changed} of " in line and "batch_size" in line, line


def test_overflowing_latencies_are_refused_before_fitting(profile: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _rewrite_samples(profile, lambda record: record.update(latency_ms=1e300), every=1)
    with _no_runtime_warning():
        line = refused(["lut", "fit", str(profile)], capsys, keep=[profile])
    assert "1e+300" in line or "latency_ms" in line, line


class _no_runtime_warning:  # noqa: N801 - a context manager named for what it checks
    def __enter__(self) -> None:
        import warnings  # noqa: PLC0415

        self.catcher = warnings.catch_warnings(record=True)
        self.caught = self.catcher.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc: object) -> None:
        self.catcher.__exit__(*exc)
        overflow = [w for w in self.caught if issubclass(w.category, RuntimeWarning)]
        assert not overflow, [str(w.message) for w in overflow[:3]]


def test_one_overflowing_sample_is_skipped_and_named(profile: Path, tmp_path: Path) -> None:
    _rewrite_samples(profile, lambda record: record.update(latency_ms=1e300), every=1000)
    read = read_directory(profile)
    assert any("latency_ms" in problem and "line 1" in problem for problem in read.problems), read.problems


# ---- JSON readers --------------------------------------------------------------------------------

def test_a_duplicate_json_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "arch.json"
    path.write_text('{"space": "proxyless", "choices": {"a": "k3_e3", "a": "k7_e6"}}')
    with pytest.raises(ArchitectureError, match="'a' twice"):
        read_json(path, ArchitectureError, what="architecture file")
    lines = tmp_path / "s.jsonl"
    lines.write_text('{"index": 1, "index": 2}\n{"index": 3}\n')
    read = read_jsonl(lines, ArchitectureError)
    assert [record for _, record in read.records] == [{"index": 3}] and "'index' twice" in read.problems[0]


def test_arch_show_refuses_a_duplicate_decision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arch = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 3).save(tmp_path / "arch.json")
    text = arch.read_text()
    decision = next(iter(json.loads(text)["choices"]))
    arch.write_text(text.replace(f'"{decision}":', f'"{decision}": "k3_e3", "{decision}":', 1))
    line = refused(["arch", "show", str(arch)], capsys, keep=[arch])
    assert "twice" in line and decision in line


# ---- flags that cannot apply ---------------------------------------------------------------------

def test_profile_refuses_input_size_against_a_resolution_option(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(["profile", "--device", "cpu", "--space", "proxyless", "--input-size", "28", "--space-option",
                    "resolution=32", "--samples", "2", "--out", str(tmp_path / "p")], capsys, absent=[tmp_path / "p"])
    assert "--input-size 28" in line and "resolution=32" in line


def test_a_static_onnx_notes_the_flags_it_ignores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    path = tmp_path / "static.onnx"
    export_onnx(model, torch.zeros(1, 3, 16, 16), path, "torchscript")
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    code, out, err = run_cli(["profile", "--model", str(path), "--backend", "ort", "--batch-size", "4",
                              "--input-size", "32", "--budget", "0.05", "--threads", "1"], capsys)
    assert code == 0, err
    notes = [line for line in (out + err).splitlines() if "static input shape" in line]
    assert len(notes) == 1 and "--batch-size 4" in notes[0] and "--input-size 32" in notes[0], out + err


def test_default_export_profile_and_fit_write_only_finite_numbers(profile: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Every JSON these commands write, read back: no NaN or Infinity in any field (the search's
    run folder is checked the same way in test_search_cli)."""
    from cli_contract import non_finite_numbers  # noqa: PLC0415

    arch = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 3).save(tmp_path / "arch.json")
    assert run_cli(["export", str(arch), "--out", str(tmp_path / "export"), "--threads", "1"], capsys)[0] == 0
    assert run_cli(["profile", "--model", str(arch), "--budget", "0.05", "--threads", "1", "--json",
                    str(tmp_path / "p.json")], capsys)[0] == 0
    assert run_cli(["lut", "fit", str(profile)], capsys)[0] == 0
    assert (tmp_path / "export" / "manifest.json").exists()
    assert non_finite_numbers(tmp_path) == []
