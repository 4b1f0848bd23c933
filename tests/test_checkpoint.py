"""Checkpoints: atomic writes, weights_only loads, exact RNG round trips, SIGTERM / SIGINT as a stop request."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.checkpoint import StopSignal, capture_rng, load_checkpoint, restore_rng, restore_state, save_checkpoint, state_of
from hwnas.errors import UsageError


def _draws() -> tuple[float, float, torch.Tensor]:
    return random.random(), float(np.random.rand()), torch.rand(3)


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    random.gauss(0, 1)  # leaves a cached gaussian in Python's state
    np.random.randn()
    save_checkpoint(tmp_path / "c.pt", {"rng": capture_rng()})
    expected = _draws()
    _draws()
    restore_rng(load_checkpoint(tmp_path / "c.pt")["rng"])
    again = _draws()
    assert again[:2] == expected[:2] and torch.equal(again[2], expected[2])


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    target = save_checkpoint(tmp_path / "run" / "ckpt.pt", {"state_dict": model.state_dict(), "step": 7})
    save_checkpoint(target, {"state_dict": model.state_dict(), "step": 8})
    assert [p.name for p in target.parent.iterdir()] == ["ckpt.pt"]
    assert load_checkpoint(target)["step"] == 8


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    target = save_checkpoint(tmp_path / "ckpt.pt", {"step": 1})
    with pytest.raises(Exception):  # noqa: B017 - torch.save refuses a lambda (pickling error)
        save_checkpoint(target, {"step": 2, "bad": lambda: 0})
    assert load_checkpoint(target)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_load_refuses_code_missing_and_foreign_files_in_one_line(tmp_path: Path) -> None:
    torch.save({"format": "hwnas-checkpoint", "version": 1, "x": Path("not allowed")}, tmp_path / "code.pt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "foreign.pt")
    for name, expected in (("code.pt", "weights_only=True"), ("foreign.pt", "not an hwnas checkpoint"),
                           ("absent.pt", "does not exist")):
        with pytest.raises(UsageError) as error:
            load_checkpoint(tmp_path / name)
        assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_turns_the_signal_into_a_request_and_restores_handlers(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    with StopSignal() as stop:
        assert not stop.requested
        os.kill(os.getpid(), sig)
        assert stop.requested and stop.name == sig.name
    assert signal.getsignal(sig) is before


def test_a_second_sigint_interrupts_at_once() -> None:
    with StopSignal(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)


def test_state_of_and_restore_state_round_trip_modules_optimisers_and_logits(tmp_path: Path) -> None:
    def make() -> dict:
        model = torch.nn.Linear(2, 2)
        logits = torch.zeros(3, requires_grad=True)
        return {"net": model, "logits": logits, "adam": torch.optim.Adam([logits], lr=0.1)}

    first = make()
    first["logits"].grad = torch.ones(3)
    first["adam"].step()
    save_checkpoint(tmp_path / "c.pt", {"objects": state_of(first)})
    second = make()
    restore_state(second, load_checkpoint(tmp_path / "c.pt")["objects"])
    assert torch.equal(second["logits"], first["logits"]) and second["adam"].param_groups[0]["params"][0] is second["logits"]
    assert torch.equal(second["net"].weight, first["net"].weight)
    assert second["adam"].state_dict()["state"][0]["step"] == 1


def test_search_state_round_trips_logits_optimisers_baselines_memo_and_online_fit(tmp_path: Path) -> None:
    from types import SimpleNamespace  # noqa: PLC0415

    from hwnas.distributed import DistInfo  # noqa: PLC0415
    from hwnas.estimators import LinearSurrogate, MovingAverageBaseline  # noqa: PLC0415
    from hwnas.search.checkpoint import load_search, save_search  # noqa: PLC0415

    def make() -> dict:
        logits = torch.zeros(3, requires_grad=True)
        online = SimpleNamespace(_fitted_at=-1, current=LinearSurrogate(0.0, {"d": torch.zeros(3)}))
        return {"objects": {"logits.d": logits, "adam": torch.optim.Adam([logits], lr=0.1)},
                "baselines": {"accuracy": MovingAverageBaseline(0.9)}, "oracle": SimpleNamespace(_memo={}),
                "surrogate": online, "config": {"steps": 5, "progress": True}, "data_sha256": "abc", "info": DistInfo()}

    first = make()
    first["objects"]["logits.d"].grad = torch.ones(3)
    first["objects"]["adam"].step()
    first["baselines"]["accuracy"].update(2.0)
    first["oracle"]._memo = {("k3_e3", "zero"): 1.5, ("k5_e6", "k3_e3"): 2.5}
    first["surrogate"]._fitted_at, first["surrogate"].current = 2, LinearSurrogate(0.7, {"d": torch.arange(3.0)})
    save_search(tmp_path / "c.pt", step=4, **first)
    second = make()
    second["config"]["progress"] = False  # may differ on resume
    assert load_search(tmp_path / "c.pt", **second) == 4
    assert torch.equal(second["objects"]["logits.d"], first["objects"]["logits.d"])
    assert second["baselines"]["accuracy"].value == 2.0 and second["surrogate"]._fitted_at == 2
    assert list(second["oracle"]._memo.items()) == list(first["oracle"]._memo.items())
    assert torch.equal(second["surrogate"].current.coefficients["d"], torch.arange(3.0))
    second["config"]["steps"] = 6
    with pytest.raises(UsageError, match="steps is 6 now but 5"):
        load_search(tmp_path / "c.pt", **second)
