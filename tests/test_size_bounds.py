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
