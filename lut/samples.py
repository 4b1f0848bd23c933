"""The whole-network samples store: JSON Lines, one measured architecture per line.

A profile can be stopped at any moment (Ctrl-C, SIGKILL, a lost machine)
and resumed: each block of measurements is appended and fsynced as soon as it
is timed, and a sample is identified by (index, pass) so a re-run measures
only what is missing. A line cut short by a kill, or otherwise corrupt, is
reported with its line number and skipped; every other line is kept, and the
next append drops a torn last line (search_spaces.files). Shards
(`--shard i/n`) write their own file, samples-i-of-n.jsonl, so processes on
different GPUs never share a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lut.errors import LutError
from search_spaces.files import append_jsonl, latency_ms, read_jsonl, whole_number

SAMPLES_GLOB = "samples*.jsonl"


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based) owns the samples whose index % count == index."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        if text is None:
            return cls()
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match or int(match.group(2)) < 1 or int(match.group(1)) >= int(match.group(2)):
            raise LutError(f"--shard {text!r} must be I/N with 0 <= I < N, e.g. --shard 0/4")
        return cls(int(match.group(1)), int(match.group(2)))

    def owns(self, sample_index: int) -> bool:
        return sample_index % self.count == self.index

    @property
    def file_name(self) -> str:
        return "samples.jsonl" if self.count == 1 else f"samples-{self.index}-of-{self.count}.jsonl"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class SampleRecord:
    """One whole network measured once.

    index: position in the profile's seeded sample plan; repeat: 0 for the
    first measurement, 1 for the test-retest pass. latency_ms is the network's
    latency (the profiler's reported statistic, the median unless configured
    otherwise); reference_ms the same statistic of the fixed reference network
    timed in the same block (for drift correction), reference_samples_ms its
    runs in order and runs_per_round the length of one round-robin turn (so
    the net's and the reference's runs can be paired round by round, see
    lut.targets); macs and params are per image. result is the profiler's
    full LatencyResult as a dict.
    """

    index: int
    repeat: int
    block: str
    arch: Mapping[str, Any]
    latency_ms: float
    reference_ms: float | None
    macs: int
    params: int
    result: Mapping[str, Any]
    reference_samples_ms: tuple[float, ...] = ()
    runs_per_round: int = 0

    @property
    def key(self) -> tuple[int, int]:
        return (self.index, self.repeat)

    @property
    def choices(self) -> Mapping[str, str]:
        return self.arch["choices"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "repeat": self.repeat,
            "block": self.block,
            "latency_ms": self.latency_ms,
            "reference_ms": self.reference_ms,
            "macs": self.macs,
            "params": self.params,
            "runs_per_round": self.runs_per_round,
            "reference_samples_ms": list(self.reference_samples_ms),
            "arch": dict(self.arch),
            "result": dict(self.result),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleRecord:
        reference = data.get("reference_ms")
        record = cls(
            index=whole_number(data["index"], "index", ValueError),
            repeat=whole_number(data["repeat"], "repeat", ValueError, maximum=2**31),
            block=str(data["block"]),
            arch=dict(data["arch"]),
            latency_ms=latency_ms(data["latency_ms"], "latency_ms", ValueError),
            reference_ms=None if reference is None else latency_ms(reference, "reference_ms", ValueError),
            macs=whole_number(data["macs"], "macs", ValueError, maximum=2**62),
            params=whole_number(data["params"], "params", ValueError, maximum=2**62),
            result=dict(data["result"]),
            reference_samples_ms=tuple(latency_ms(v, "reference_samples_ms", ValueError)
                                       for v in data.get("reference_samples_ms", ())),
            runs_per_round=whole_number(data.get("runs_per_round", 0), "runs_per_round", ValueError, maximum=2**31),
        )
        choices = record.arch.get("choices")
        if not isinstance(choices, dict):
            raise ValueError("arch has no 'choices' object")
        odd = next((k for k, v in choices.items() if not isinstance(v, str)), None)
        if odd is not None:  # a choice is a name: a dict or list here broke lut eval's grouping with a TypeError
            raise ValueError(f"arch choice {odd} is {choices[odd]!r}, not a choice name")
        return record


@dataclass(frozen=True)
class ReadResult:
    """The usable records (first occurrence of each (index, repeat)) and one line per problem."""

    records: tuple[SampleRecord, ...]
    problems: tuple[str, ...]

    def done(self) -> set[tuple[int, int]]:
        return {r.key for r in self.records}


def _read_lines(path: Path) -> tuple[list[SampleRecord], list[str]]:
    read = read_jsonl(path, LutError, what="samples file")
    records: list[SampleRecord] = []
    problems = list(read.problems)
    for number, document in read.records:
        try:
            records.append(SampleRecord.from_dict(document))
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError, LutError) as error:
            problems.append(f"{path.name} line {number}: not a sample record ({error}), skipped")
    if not records and problems:
        raise LutError(f"samples file {path} holds no sample records ({len(problems)} unreadable lines; "
                       f"first: {problems[0]}); give a samples*.jsonl written by `hwnas profile --device`")
    if read.torn_line is not None:
        problems.append(f"{path.name} line {read.torn_line}: truncated or corrupt JSON (cut short by an interrupted "
                        "write; the next profile run on this file drops it), skipped")
    return records, problems


def read_samples(paths: Iterable[Path | str]) -> ReadResult:
    """Read sample files in order; corrupt lines and repeated (index, repeat) keys are reported and skipped.

    A file that is missing, a folder, or holds no sample record at all (e.g. a .pt or .onnx file)
    is refused in one line naming it."""
    records: list[SampleRecord] = []
    problems: list[str] = []
    seen: set[tuple[int, int]] = set()
    for path in paths:
        path = Path(path)
        found, bad = _read_lines(path)
        problems.extend(bad)
        for record in found:
            if record.key in seen:
                problems.append(f"{path.name}: sample {record.index} pass {record.repeat} appears twice, the later one skipped")
                continue
            seen.add(record.key)
            records.append(record)
    return ReadResult(tuple(records), tuple(problems))


def read_directory(directory: Path | str) -> ReadResult:
    """All samples*.jsonl of a profile directory (every shard), merged."""
    return read_samples(sorted(Path(directory).glob(SAMPLES_GLOB)))


def append(path: Path | str, records: Sequence[SampleRecord]) -> None:
    """Append records as lines and fsync, so a kill right after loses none of them.

    If an earlier run was killed mid-line, that torn line is dropped first
    (search_spaces.files.append_jsonl): it neither stays in the file nor swallows
    the first new record.
    """
    append_jsonl(path, [r.to_dict() for r in records])
