"""lut.samples: append + resume without loss or duplicates; bad lines reported and skipped."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lut.errors import LutError
from lut.samples import SampleRecord, Shard, append, read_directory, read_samples


def _record(index: int, repeat: int = 0, ms: float = 1.0) -> SampleRecord:
    return SampleRecord(
        index=index,
        repeat=repeat,
        block="0-b",
        arch={"space": "toy", "space_version": 1, "config": {}, "choices": {"a": "x"}},
        latency_ms=ms,
        reference_ms=2.0,
        macs=100,
        params=10,
        result={"median_ms": ms},
    )


def test_append_then_read_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    append(path, [_record(0), _record(1)])
    append(path, [_record(0, repeat=1, ms=1.1)])
    read = read_samples([path])
    assert read.problems == ()
    assert [r.key for r in read.records] == [(0, 0), (1, 0), (0, 1)]
    assert read.records[2] == _record(0, repeat=1, ms=1.1)


def test_torn_last_line_is_reported_then_dropped_by_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    append(path, [_record(0), _record(1)])
    text = path.read_bytes()
    path.write_bytes(text[: len(text) - 25])  # a kill in the middle of the second line
    read = read_samples([path])
    assert [r.index for r in read.records] == [0]
    assert len(read.problems) == 1 and "line 2: truncated or corrupt JSON (cut short" in read.problems[0]
    assert path.read_bytes() == text[: len(text) - 25]  # readers never repair: a writer may be appending
    append(path, [_record(1), _record(2)])  # the resumed run re-measures sample 1
    read = read_samples([path])
    assert [r.key for r in read.records] == [(0, 0), (1, 0), (2, 0)]
    assert read.problems == ()  # the torn line is gone from the file, so it warns no more (issue #13, item 10)
    assert path.read_bytes().count(b"\n") == 3


def test_non_finite_latency_and_files_without_records_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    append(path, [_record(0)])
    good = path.read_text()
    path.write_text(good + good.replace('"index":0', '"index":1').replace('"latency_ms":1.0', '"latency_ms":NaN')
                    + good.replace('"index":0', '"index":2').replace('"latency_ms":1.0', '"latency_ms":Infinity'))
    read = read_samples([path])
    assert [r.index for r in read.records] == [0]
    assert ["not a finite number" in p for p in read.problems] == [True, True]
    binary = tmp_path / "weights.pt"
    binary.write_bytes(bytes(range(256)) * 40 + b"\n" * 3000)
    with pytest.raises(LutError, match="weights.pt holds no sample records"):
        read_samples([binary])
    with pytest.raises(LutError, match="does not exist"):
        read_samples([tmp_path / "missing.jsonl"])
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(LutError, match="is a folder"):
        read_samples([tmp_path / "folder.jsonl"])


def test_corrupt_and_foreign_lines_are_skipped_others_kept(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    append(path, [_record(0)])
    with path.open("a") as handle:
        handle.write("\x00garbage{\n")
        handle.write('{"index": 5}\n')
    append(path, [_record(1)])
    read = read_samples([path])
    assert [r.index for r in read.records] == [0, 1]
    assert [p.split(":")[0] for p in read.problems] == ["samples.jsonl line 2", "samples.jsonl line 3"]
    assert "not a sample record" in read.problems[1]


def test_duplicates_across_shard_files_keep_the_first(tmp_path: Path) -> None:
    append(tmp_path / Shard(0, 2).file_name, [_record(0, ms=1.0)])
    append(tmp_path / Shard(1, 2).file_name, [_record(1), _record(0, ms=9.0)])
    read = read_directory(tmp_path)
    assert {r.key: r.latency_ms for r in read.records} == {(0, 0): 1.0, (1, 0): 1.0}
    assert len(read.problems) == 1 and "appears twice" in read.problems[0]


def test_shard_parsing_and_ownership() -> None:
    shard = Shard.parse("1/3")
    assert (shard.index, shard.count, shard.file_name) == (1, 3, "samples-1-of-3.jsonl")
    assert [i for i in range(7) if shard.owns(i)] == [1, 4]
    assert Shard.parse(None).file_name == "samples.jsonl"
    for bad in ("3/3", "a/b", "1", "0/0"):
        with pytest.raises(LutError, match="--shard"):
            Shard.parse(bad)


@pytest.mark.parametrize("value", [{}, ["k3_e3"], 3, None])
def test_a_line_whose_choice_is_not_a_name_is_skipped(tmp_path: Path, value: object) -> None:
    """The full fuzz's `swap arch/choices/stage6.layer1` (a dict) reached lut eval's grouping: a TypeError traceback."""
    path = tmp_path / "samples.jsonl"
    bad = _record(1)
    append(path, [_record(0), replace(bad, arch={**bad.arch, "choices": {"a": value}}), _record(2)])
    read = read_samples([path])
    assert [r.index for r in read.records] == [0, 2]
    assert len(read.problems) == 1 and "arch choice a" in read.problems[0] and "not a choice name" in read.problems[0]
