"""`hwnas train`: exact resume after SIGTERM, DARTS extras on a CIFAR-10 folder, ImageFolder, export-loadable weights."""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from folder_fixtures import write_cifar10, write_image_folder

from hwnas.cli.train import register
from hwnas.datasets import load_data
from hwnas.errors import UsageError
from hwnas.export.weights import load_weights
from hwnas.train import TrainConfig, fit_to_data, train
from search_spaces import Architecture, get_space, space_for

TINY_PROXYLESS = {"widths": [8, 8, 8, 8, 8, 8, 8, 8, 16], "depths": [1, 1, 1, 1, 1, 1], "small_input": True,
                  "in_channels": 1, "resolution": 8, "num_classes": 10, "dropout": 0.2}
TINY_DARTS = {"C": 4, "layers": 3, "network": "cifar", "resolution": 32}


def _arch(tmp_path: Path, space: str, config: dict) -> Path:
    arch = get_space(space, **config).sample(np.random.default_rng(1))
    path = tmp_path / f"{space}.json"
    arch.save(path)
    return path


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["train", *argv])
    return args.func(args)


def _trajectory(run: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "seconds"} for line in lines]


def test_sigterm_then_resume_gives_the_uninterrupted_trajectory(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = load_data("digits", limit=240)
    arch, _ = fit_to_data(Architecture.load(_arch(tmp_path, "proxyless", TINY_PROXYLESS)), data.image_shape, 10)
    config = TrainConfig(epochs=3, batch_size=32, lr=0.1, warmup_epochs=1, log_every=1, checkpoint_every=1000,
                         measure_latency=False, seed=4)
    whole = train(arch, data, config, tmp_path / "whole")

    def sigterm_at(step: int) -> None:
        if step == 7:
            os.kill(os.getpid(), signal.SIGTERM)

    stopped = train(arch, data, config, tmp_path / "cut", on_step=sigterm_at)
    assert stopped.stopped_by == "SIGTERM" and stopped.step == 7 < whole.step
    resumed = train(arch, data, config, tmp_path / "cut", resume=True)
    assert resumed.complete and resumed.step == whole.step
    assert _trajectory(tmp_path / "cut") == _trajectory(tmp_path / "whole")
    assert resumed.test_accuracy == whole.test_accuracy
    a, b = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)["state_dict"] for run in ("whole", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_changed_recipe_and_a_fresh_run_refuses_an_existing_checkpoint(tmp_path: Path) -> None:
    data = load_data("digits", limit=200)
    arch, _ = fit_to_data(Architecture.load(_arch(tmp_path, "proxyless", TINY_PROXYLESS)), data.image_shape, 10)
    config = TrainConfig(epochs=1, steps=2, batch_size=32, measure_latency=False)
    train(arch, data, config, tmp_path / "run")
    with pytest.raises(UsageError, match="already holds checkpoint.pt"):
        train(arch, data, config, tmp_path / "run")
    with pytest.raises(UsageError, match="lr is 0.5 now"):
        train(arch, data, config.replace(lr=0.5), tmp_path / "run", resume=True)
    with pytest.raises(UsageError, match="nothing to resume"):
        train(arch, data, config, tmp_path / "other", resume=True)


def test_darts_on_a_cifar10_folder_trains_with_auxiliary_head_and_exports(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    root = write_cifar10(tmp_path / "cifar", per_batch=10)
    arch_path = _arch(tmp_path, "darts", TINY_DARTS)
    out = tmp_path / "run"
    code = _cli([str(arch_path), "--data", str(root), "--out", str(out), "--epochs", "2", "--steps", "3",
                 "--batch-size", "8", "--workers", "0", "--log-every", "1", "--json"])
    assert code == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["config"]["auxiliary_weight"] == 0.4 and state["config"]["drop_path_prob"] == 0.2
    assert state["config"]["cutout"] == 16 and state["auxiliary_state_dict"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["latency_ms"] > 0 and 0 <= summary["test_accuracy"] <= 1
    arch = Architecture.load(out / "arch.json")
    network = space_for(arch).build(arch)
    load_weights(network, out / "checkpoint.pt")  # what `hwnas export --weights` does
    assert torch.equal(network.state_dict()["classifier.weight"], state["state_dict"]["classifier.weight"])


def test_proxyless_on_an_image_folder_tree(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    root = write_image_folder(tmp_path / "imagenet", classes=3, per_class=6)
    config = {**TINY_PROXYLESS, "in_channels": 3, "resolution": 32, "num_classes": 3}
    out = tmp_path / "run"
    code = _cli([_arch(tmp_path, "proxyless", config).as_posix(), "--data", str(root), "--out", str(out),
                 "--epochs", "1", "--batch-size", "4", "--workers", "0", "--no-latency"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["dataset"] == "imagefolder" and summary["config"]["label_smoothing"] == 0.1
    assert summary["steps"] == 4  # 18 training images, batch 4, drop_last


def test_an_input_shape_mismatch_is_one_line_naming_the_keys(tmp_path: Path) -> None:
    root = write_cifar10(tmp_path / "cifar", per_batch=10)
    with pytest.raises(UsageError) as error:
        _cli(["proxyless_gpu", "--data", str(root), "--out", str(tmp_path / "run"), "--workers", "0"])
    assert "in_channels" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.slow
def test_a_real_sigterm_to_the_cli_checkpoints_and_resume_finishes_without_gaps(tmp_path: Path) -> None:
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    torch.set_num_threads(1)
    arch = _arch(tmp_path, "proxyless", {**TINY_PROXYLESS, "dropout": 0.0})
    out = tmp_path / "run"
    command = [sys.executable, "-m", "hwnas", "train", str(arch), "--data", "digits", "--limit", "200", "--out", str(out),
               "--steps", "60", "--epochs", "10", "--batch-size", "16", "--log-every", "1", "--no-latency"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        metrics = out / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 143, output
    assert "stopped by SIGTERM" in output and (out / "checkpoint.pt").exists() and not (out / "summary.json").exists()
    stopped_at = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert 3 <= stopped_at < 60
    assert _cli([*command[4:], "--resume"]) == 0  # the resumed half in-process: one interpreter start less
    steps = [line["step"] for line in _trajectory(out) if "loss" in line]
    assert steps == list(range(1, 61))
