"""The one atomic write (`search_spaces.files`): whole files or nothing, no temporary file left
behind, and a failure that names the file the caller asked for."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path
from typing import IO

import pytest

from search_spaces.files import atomic_rename, atomic_write, write_json


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_writes_bytes_text_and_a_writer_function(tmp_path: Path) -> None:
    assert atomic_write(tmp_path / "a.bin", b"\x00\x01") == tmp_path / "a.bin"
    atomic_write(tmp_path / "b.txt", "grüße\n")
    atomic_write(tmp_path / "deeper" / "c.bin", lambda handle: handle.write(b"abc"))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "grüße\n".encode()
    assert (tmp_path / "deeper" / "c.bin").read_bytes() == b"abc"
    assert _names(tmp_path) == ["a.bin", "b.txt", "deeper"]


def test_json_document_ends_with_one_newline_and_round_trips(tmp_path: Path) -> None:
    document = {"b": [1, 2.5, None], "a": {"x": "y"}}
    write_json(tmp_path / "d.json", document)
    text = (tmp_path / "d.json").read_text(encoding="utf-8")
    assert text == json.dumps(document, indent=2) + "\n"
    with pytest.raises(ValueError):
        write_json(tmp_path / "e.json", {"x": float("nan")}, allow_nan=False)
    assert _names(tmp_path) == ["d.json"]


def test_a_new_file_has_ordinary_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f", b"")
    finally:
        os.umask(umask)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_concurrent_writers_never_share_a_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "tensorrt-timing.cache"
    payloads = [bytes([index]) * 200_000 for index in range(8)]
    threads = [threading.Thread(target=atomic_write, args=(target, payload)) for payload in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_bytes() in payloads  # one writer's whole file, never a mix
    assert _names(tmp_path) == [target.name]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_removes_the_temporary_and_names_the_target(tmp_path: Path) -> None:
    target = tmp_path / "lut.json"
    target.write_text("old\n")

    def disk_full(handle: IO[bytes]) -> None:
        handle.write(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as raised:
        atomic_write(target, disk_full)
    assert raised.value.errno == errno.ENOSPC
    assert raised.value.filename == str(target)
    assert str(target) in str(raised.value) and "\n" not in str(raised.value)
    assert target.read_text() == "old\n"
    assert _names(tmp_path) == ["lut.json"]


def test_a_folder_in_the_way_is_an_oserror_of_its_kind_naming_the_target(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "inside").write_text("x")
    with pytest.raises(IsADirectoryError) as raised:
        atomic_write(tmp_path / "taken", b"data")
    assert raised.value.filename == str(tmp_path / "taken")
    assert _names(tmp_path) == ["taken"]

    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OSError) as raised:
        atomic_write(tmp_path / "a-file" / "below.json", b"data")  # its folder is a file
    assert raised.value.filename == str(tmp_path / "a-file" / "below.json")


def test_an_interrupt_while_writing_leaves_no_temporary_file(tmp_path: Path) -> None:
    def interrupted(handle: IO[bytes]) -> None:
        handle.write(b"part")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "checkpoint.pt", interrupted)
    assert _names(tmp_path) == []


def test_a_folder_is_renamed_into_place(tmp_path: Path) -> None:
    staging = tmp_path / ".out.partial"
    staging.mkdir()
    (staging / "model.onnx").write_bytes(b"onnx")
    atomic_rename(staging, tmp_path / "out")
    assert _names(tmp_path) == ["out"] and (tmp_path / "out" / "model.onnx").read_bytes() == b"onnx"
    with pytest.raises(FileNotFoundError) as raised:
        atomic_rename(staging, tmp_path / "again")
    assert raised.value.filename == str(tmp_path / "again")
