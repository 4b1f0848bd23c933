"""Sizes are bounded before anything is allocated (issue #30, group 4).

Widths of 100000, a resolution of 100000, 10**12 classes, `export
--input-size 100000` and `--dynamic-batch 1,1,1000000000` used to end in an
allocation traceback (or the OOM killer). The estimate comes from the meta
device (search_spaces.memory) and is checked against an independent count.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_contract import refused  # noqa: E402
from lut.profile import planned_arch  # noqa: E402
from search_spaces import get_space  # noqa: E402
from search_spaces.memory import MemoryEstimate, estimate, refusal  # noqa: E402
from test_cli_lut import TINY  # noqa: E402


def test_the_estimate_counts_parameters_and_outputs_exactly() -> None:
    """Against a count by hand: conv 3->8 k3 (216 + 8), BN (16), linear 8->5 (40 + 5)."""
    def build() -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))

    need = estimate(build, (2, 3, 10, 10))
    assert need.parameters == 216 + 8 + 16 + 40 + 5
    assert need.activations == 3 * (2 * 8 * 10 * 10) + 2 * 8 + 2 * 8 + 2 * 5  # conv, bn, relu; pool, flatten, linear
    assert need.bytes == 4 * (need.parameters + need.activations)
    assert not any(p.device.type != "meta" for p in build().to("meta").parameters())


def test_the_estimate_matches_a_real_network() -> None:
    space = get_space("proxyless", resolution=28, **TINY)
    arch = planned_arch(space, 0, 2)
    need = estimate(lambda: space.build(arch), tuple(space.input_shape(1)))
    assert need.parameters == sum(p.numel() for p in space.build(arch).parameters())
    assert refusal(need, "x", "y") is None
    assert "would need about" in refusal(MemoryEstimate(2**40, 0), "x", "lower it", limit=2**30)


@pytest.mark.parametrize("change", [{"widths": [100000] * 9}, {"resolution": 100000}, {"num_classes": 10**12}])
@pytest.mark.parametrize("command", [["arch", "show", "{file}"], ["export", "{file}", "--out", "{tmp}/out"],
                                     ["train", "{file}", "--data", "digits", "--steps", "1", "--out", "{tmp}/out"],
                                     ["profile", "--model", "{file}", "--budget", "0.05"]])
def test_an_architecture_beyond_memory_is_refused_with_its_estimate(
    tmp_path: Path, change: dict, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    document = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 1).to_dict()
    document["config"].update(change)
    file = tmp_path / "big.json"
    file.write_text(json.dumps(document))
    line = refused([part.format(file=file, tmp=tmp_path) for part in command], capsys, absent=[tmp_path / "out"])
    assert "would need about" in line and "GiB" in line, line


@pytest.mark.parametrize("flags", [["--input-size", "100000"], ["--dynamic-batch", "1,1,1000000000"],
                                   ["--batch-size", "100000000"]])
def test_export_refuses_a_shape_beyond_memory(tmp_path: Path, flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    arch = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 1).save(tmp_path / "arch.json")
    line = refused(["export", str(arch), "--out", str(tmp_path / "out"), "--measure", "none", *flags], capsys,
                   absent=[tmp_path / "out"])
    assert "would need about" in line, line


def test_nothing_is_allocated_for_the_estimate() -> None:
    space = get_space("proxyless", resolution=28, **{**TINY, "widths": [100000] * 9})
    arch = planned_arch(space, 0, 1)
    need = estimate(lambda: space.build(arch), tuple(space.input_shape(1)))
    assert need.bytes > 2**40  # terabytes, estimated without allocating them
    assert torch.empty(0).device.type == "cpu"  # the meta default device did not leak


@pytest.mark.parametrize(("space", "change"), [("proxyless", {"depths": [10**30, 1, 1, 1, 1, 1]}),
                                               ("proxyless", {"depths": [10**400] * 6}),
                                               ("darts", {"layers": 10**30})])
def test_a_layer_count_beyond_memory_is_refused_before_the_layers_are_listed(space: str, change: dict) -> None:
    """Depths of 10**30 (the fuzz's `int 10**30 config/depths/0`) looped, listing layers, until the OOM killer
    came (20.6 GB in the fuzz): the space now refuses them in its constructor with the least they would need."""
    from search_spaces.errors import ArchitectureError

    with pytest.raises(ArchitectureError, match=r"would need at least about 10\^\d+ GiB to build .* lower (depths|layers)"):
        get_space(space, **change)


def _traced_build(space: str, config: dict, choose) -> int:  # noqa: ANN001
    import tracemalloc

    tracemalloc.start()
    try:
        built = get_space(space, **config)
        arch = built.architecture({d.name: choose(d) for d in built.decisions})
        with torch.device("meta"):
            network = built.build(arch)
        used = tracemalloc.get_traced_memory()[0]
        del network
        return used
    finally:
        tracemalloc.stop()


def test_the_layer_bound_is_below_what_a_layer_takes() -> None:
    """The per-layer bytes the bound uses are at most what the cheapest layer really takes (width 1, `zero`;
    a DARTS cell at C=1 with first choices), so the bound refuses nothing that could be built."""
    from search_spaces.darts.space import CELL_BYTES
    from search_spaces.proxyless import LAYER_BYTES

    cheapest = lambda d: "zero" if "zero" in d.choices else d.choices[0]  # noqa: E731
    deep, shallow = (_traced_build("proxyless", {"widths": [1] * 9, "depths": [1, 1, 1, n, 1, 1]}, cheapest)
                     for n in (101, 1))
    assert (deep - shallow) / 100 >= LAYER_BYTES
    deep, shallow = (_traced_build("darts", {"C": 1, "layers": n}, lambda d: d.choices[0]) for n in (103, 3))
    assert (deep - shallow) / 100 >= CELL_BYTES


def test_an_architecture_file_with_absurd_depths_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 1).to_dict()
    document["config"]["depths"] = [10**30, 1, 1, 1, 1, 1]
    file = tmp_path / "deep.json"
    file.write_text(json.dumps(document))
    line = refused(["arch", "show", str(file)], capsys)
    assert "depths give about 10^30 layers" in line, line


@pytest.mark.parametrize("widths", [[10**9] * 9, [10**30] * 9])
@pytest.mark.parametrize("command", [["arch", "show", "{file}"], ["export", "{file}", "--out", "{tmp}/out", "--measure", "none"]])
def test_widths_beyond_torch_sizes_are_refused(tmp_path: Path, widths: list[int], command: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Widths of 10**9 make a 6*10**18-element weight, which torch's meta device refuses with "Storage size
    calculation overflowed" (10**30: an OverflowError-like TypeError): that escaped the estimate as a traceback."""
    document = planned_arch(get_space("proxyless", resolution=28, **TINY), 0, 1).to_dict()
    document["config"]["widths"] = widths
    file = tmp_path / "wide.json"
    file.write_text(json.dumps(document))
    line = refused([part.format(file=file, tmp=tmp_path) for part in command], capsys)
    assert "would need more than 8 EiB" in line and "widths" in line, line


def test_a_search_beyond_torch_sizes_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    line = refused(["search", "--data", "digits", "--data-limit", "100", "--latency-estimator", "none", "--steps", "1",
                    "--no-progress", "--space-option", f"widths={[10**9] * 9}".replace(" ", ""), "--out", str(out)],
                   capsys, absent=[out])
    assert "would need more than 8 EiB" in line, line


def test_the_available_memory_respects_an_address_space_limit() -> None:
    """Under `prlimit --as` (the fuzz caps itself so) an allocation fails past the limit whatever the machine
    has free: the estimate's budget is what the limit leaves, so a case is refused in one line, not by a MemoryError."""
    import subprocess

    code = ("import resource, torch; from search_spaces.memory import available_bytes, _address_space; "
            "hard = resource.getrlimit(resource.RLIMIT_AS)[1]; "
            "soft = _address_space() + 2**30; "
            "soft = soft if hard == resource.RLIM_INFINITY else min(soft, hard); "  # no hard limit: RLIM_INFINITY (-1)
            "resource.setrlimit(resource.RLIMIT_AS, (soft, hard)); "
            "print(available_bytes())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert 0 < int(result.stdout) <= 2**30
