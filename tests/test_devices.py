"""Devices are checked once, for every command, by the code profile and export use (issue #30, group 5).

`search --device mps` and `train --device meta` used to start, write
config.json and die with a RuntimeError traceback deep in torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_contract import refused  # noqa: E402

DEVICES = ["mps", "meta", "cuda:99", "tpu", "cpu:1"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("flag", ["--device", "--latency-device"])
def test_search_refuses_a_device_it_cannot_use(tmp_path: Path, device: str, flag: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    line = refused(["search", "--space", "proxyless", "--data", "digits", "--steps", "2", flag, device,
                    "--out", str(out)], capsys, absent=[out])
    assert f"{flag} {device}" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("flag", ["--device", "--latency-device"])
def test_train_refuses_a_device_it_cannot_use(tmp_path: Path, device: str, flag: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    line = refused(["train", "proxyless_gpu", "--data", "digits", "--steps", "1", flag, device, "--out", str(out)],
                   capsys, absent=[out])
    assert f"{flag} {device}" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["profile", "--model", "resnet18", "--device", "mps"],
                                  ["export", "proxyless_gpu", "--device", "meta", "--out", "{tmp}/x"]])
def test_profile_and_export_refuse_the_same_way(tmp_path: Path, argv: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    line = refused([part.format(tmp=tmp_path) for part in argv], capsys, absent=[tmp_path / "x"])
    assert "unknown device" in line
