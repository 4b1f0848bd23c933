"""The checkpoint file format across versions and machines (issue #31 mutation survivors): a version-1
file written without hwnas's writer loads, another version is refused, a checkpoint that carries CUDA
generator states restores on a machine without CUDA, and saving creates the folders it needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hwnas.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from hwnas.errors import UsageError


def test_a_version_one_checkpoint_written_by_hand_loads(tmp_path: Path) -> None:
    path = tmp_path / "v1.pt"
    torch.save({"format": "hwnas-checkpoint", "version": 1, "step": 7, "logits": torch.ones(3)}, path)
    state = load_checkpoint(path)
    assert state["step"] == 7 and torch.equal(state["logits"], torch.ones(3))


def test_a_checkpoint_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v2.pt"
    torch.save({"format": "hwnas-checkpoint", "version": 2}, path)
    with pytest.raises(UsageError, match="has version 2; this hwnas reads version 1"):
        load_checkpoint(path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only machine reading a GPU machine's states")
def test_cuda_generator_states_are_skipped_where_there_is_no_cuda() -> None:
    state = capture_rng()
    state["cuda"] = [torch.zeros(16, dtype=torch.uint8)]  # what a GPU machine's capture would add
    restore_rng(state)  # must not reach for a CUDA generator
    first = torch.rand(4)
    restore_rng(state)
    assert torch.equal(torch.rand(4), first)


def test_save_creates_missing_folders(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "a" / "b" / "c.pt", {"step": 1})
    assert path.is_file() and load_checkpoint(path)["step"] == 1


def test_an_unreadable_file_is_refused_with_the_readers_own_first_line(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a checkpoint at all\nsecond line")
    with pytest.raises(Exception) as direct:  # noqa: PT011 - whatever torch raises, its first line is what we show
        torch.load(path, weights_only=True)
    first_line = str(direct.value).strip().splitlines()[0][:200]
    with pytest.raises(UsageError) as refused:
        load_checkpoint(path)
    assert first_line in str(refused.value) and "\n" not in str(refused.value)


def test_stop_signal_outside_the_main_thread_leaves_signals_alone() -> None:
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from hwnas.checkpoint import StopSignal  # noqa: PLC0415

    before = signal.getsignal(signal.SIGINT)
    seen: list[bool] = []

    def body() -> None:
        with StopSignal() as stop:
            seen.append(stop.requested)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [False] and signal.getsignal(signal.SIGINT) is before


def test_resuming_a_search_restores_the_random_state_of_the_save() -> None:
    """The draws after load_search are the draws that followed save_search, whatever ran in between."""
    import random  # noqa: PLC0415
    import tempfile  # noqa: PLC0415
    from types import SimpleNamespace  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from hwnas.distributed import DistInfo  # noqa: PLC0415
    from hwnas.search.checkpoint import load_search, save_search  # noqa: PLC0415

    def parts() -> dict:
        return {"objects": {"logits.d": torch.zeros(3)}, "baselines": {}, "oracle": SimpleNamespace(_memo={}),
                "surrogate": None, "config": {"steps": 5}, "data_sha256": "abc", "info": DistInfo()}

    torch.manual_seed(3)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.pt"
        save_search(path, step=2, **parts())
        after_save = (torch.rand(3), np.random.rand(), random.random())
        torch.manual_seed(99)
        np.random.seed(99)
        random.seed(99)
        assert load_search(path, **parts()) == 2
    resumed = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(resumed[0], after_save[0]) and resumed[1:] == after_save[1:]
