"""Files that survive bad input and hard kills: the one home of hwnas's file-safety rules.

It sits in the lowest package so that `search_spaces`, `lut` and `hwnas` share
it (dependencies point one way); each caller passes its own error type, so a
problem reaches the command line as one line naming the file.

- `open_regular` / `read_regular`: the one door for reading a user's file;
  anything but a regular file (a FIFO that would block for ever, a socket, a
  device like /dev/zero that never ends) is refused in one line.
- `read_json`: a JSON document, with a binary file, a half-written file, a
  folder, a key given twice or a JSON value of the wrong type refused in one
  line naming the file.
- `read_jsonl` / `append_jsonl`: JSON Lines written one complete line at a
  time. A kill -9 can leave only the *last* line torn; readers drop it, and
  the next append (or resume) truncates the file to its last complete line,
  so the torn line neither stays nor swallows the next record.
- `atomic_write` / `write_json` / `atomic_rename`: every file (and export
  folder) hwnas writes replaces the old one in one step, so a reader, a crash or
  a kill -9 finds the old content or the new, never half of one. The temporary
  file sits beside the target (same file system: the rename is atomic), is
  fsynced before the rename, and the folder is fsynced after it, so the rename
  itself survives a power cut. A failed write leaves no temporary file and
  raises an `OSError` naming the target (callers turn it into one line).
- `run_lock`: one process per run folder (`fcntl.flock` on `.lock` in the
  folder, released by the kernel when the process dies, even by kill -9);
  a second process is refused in one line naming the first one's pid, or
  waits its turn (`wait=True`). The one lock of hwnas and its benchmarks.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

LOCK_NAME = ".lock"


def atomic_write(path: Path | str, data: bytes | str | Callable[[IO[bytes]], None]) -> Path:
    """Replace `path` with `data` (bytes, text written as UTF-8, or a function that writes into the
    open binary file, such as `torch.save`) in one step; its folder is created if missing.

    The temporary file has a unique name beside `path` (concurrent writers, e.g. profile shards,
    never share one) and the ordinary permissions of a new file (umask applies). On an `OSError`
    the temporary file is removed and the error is raised again naming `path` (`filename`), so a
    full disk or a read-only folder reads as a problem with the file the user asked for; any
    other exception (a Ctrl-C, an object that cannot be saved) also removes it."""
    target = Path(path)
    temporary: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary, descriptor = _new_temporary(target)
        with os.fdopen(descriptor, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        temporary = None
    except OSError as error:
        raise _naming(error, target) from error
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    _sync_folder(target.parent)
    return target


def write_json(path: Path | str, document: Any, *, indent: int | None = 2, allow_nan: bool = True) -> Path:
    """`document` as JSON (one trailing newline), written by `atomic_write`."""
    return atomic_write(path, json.dumps(document, indent=indent, allow_nan=allow_nan) + "\n")


def atomic_rename(source: Path | str, target: Path | str) -> None:
    """Rename `source` to `target` in one step, replacing a file or an empty folder there (same file
    system), then fsync the folder so the rename survives a power cut: how a staged export folder
    takes its final name. An `OSError` is raised naming `target`."""
    try:
        os.replace(source, target)
    except OSError as error:
        raise _naming(error, Path(target)) from error
    _sync_folder(Path(target).parent)


def _new_temporary(target: Path) -> tuple[Path, int]:
    """A new, empty, uniquely named file beside `target`, opened for writing (mode 0o666 less the umask)."""
    while True:
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return temporary, os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue


def _naming(error: OSError, target: Path) -> OSError:
    """`error` as an OSError of the same kind (errno: `PermissionError`, ...) whose `filename` is
    `target`, not the temporary file's name: what a caller reports as 'cannot write TARGET: STRERROR'."""
    return OSError(error.errno, error.strerror or str(error), str(target))


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename in it is on disk; skipped where the platform or file system cannot."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def open_regular(path: Path | str, error: type[Exception], *, what: str = "file", fix: str = "") -> BinaryIO:
    """`path` opened for binary reading, refused with `error` in one line unless it is a regular file.

    The one door every reader of a user's file goes through: a FIFO would block the reader until
    a writer appears (for ever, in practice), a device like /dev/zero never ends, and a socket
    cannot be opened. The file is opened non-blocking and checked with fstat on the open
    descriptor, so neither a FIFO nor a swap of the path between check and read can hang it."""
    path = Path(path)
    hint = f"; {fix}" if fix else ""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist{hint}") from None
    except OSError as problem:
        if problem.errno == errno.ENXIO:  # what open(2) answers for a socket
            raise error(f"{what} {path} is a socket, not a regular file; hwnas reads only regular files{hint}") from None
        raise error(f"cannot read {what} {path}: {problem.strerror or problem}{hint}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise error(f"{what} {path} is a folder, not a file{hint}")
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")
        raise error(f"{what} {path} is {kind}, not a regular file; hwnas reads only regular files{hint}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path: Path | str, error: type[Exception], *, what: str = "file", fix: str = "") -> bytes:
    """The bytes of `path`, through `open_regular`'s checks."""
    hint = f"; {fix}" if fix else ""
    with open_regular(path, error, what=what, fix=fix) as handle:
        try:
            return handle.read()
        except OSError as problem:
            raise error(f"cannot read {what} {path}: {problem.strerror or problem}{hint}") from None


def read_json(path: Path | str, error: type[Exception], *, what: str = "file", fix: str = "",
              kind: type = dict) -> Any:
    """The JSON value of `path`, which must be a `kind` (dict by default; `object` accepts any);
    every way it can be unreadable raises `error` with one line naming `path` and ending with `fix`."""
    path = Path(path)
    hint = f"; {fix}" if fix else ""
    try:
        text = read_regular(path, error, what=what, fix=fix).decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {path} is a binary file, not JSON{hint}") from None
    try:
        value = loads(text)
    except json.JSONDecodeError as problem:
        raise error(f"{what} {path} is not valid JSON: {problem.msg} at line {problem.lineno} "
                    f"column {problem.colno}{hint}") from None
    except RecursionError:
        raise error(f"{what} {path} nests too deeply to be one of hwnas's files{hint}") from None
    except DuplicateKeyError as problem:
        raise error(f"{what} {path} {problem}{hint}") from None
    except ValueError as problem:  # Python's limit on integer digits, beyond what any hwnas file holds
        raise error(f"{what} {path} holds {_digits_problem(problem)}{hint}") from None
    if kind is not object and not isinstance(value, kind):
        raise error(f"{what} {path} holds a JSON {_json_type(value)}, not a JSON {_json_type(kind())}{hint}")
    return value


class DuplicateKeyError(ValueError):
    """A JSON object naming one key twice: `json` keeps the last silently, hwnas refuses it."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise DuplicateKeyError(f"names the key {key!r} twice in one object; keep one")
        value[key] = item
    return value


def loads(text: str) -> Any:
    """`json.loads` as every hwnas reader uses it: a key given twice in one object (which
    json would silently resolve to the last value) raises DuplicateKeyError."""
    return json.loads(text, object_pairs_hook=_unique_keys)


def _digits_problem(problem: ValueError) -> str:
    """What a ValueError from `json.loads` that is not a syntax error means: an integer longer than
    Python converts (4,300 digits by default)."""
    return (f"an integer of more than {sys.get_int_max_str_digits() or 4300} digits, far beyond any value hwnas "
            f"reads ({str(problem).split(':')[0]})")


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def finite_number(value: Any, name: str, error: type[Exception], *, positive: bool = False,
                  nonnegative: bool = False, at_most: float | None = None) -> float:
    """`value` as a float, refused unless it is a finite number (JSON's NaN / Infinity / strings /
    booleans included), > 0 when `positive`, >= 0 when `nonnegative`, and <= `at_most` when given
    (a bound that keeps later sums and squares finite): the one check of numbers read from files."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{name} is {_shown(value)}, not a number")
    try:
        number = float(value)
    except OverflowError:
        raise error(f"{name} is {_shown(value)}, far beyond any value hwnas reads") from None
    if not math.isfinite(number):
        raise error(f"{name} is {number}, not a finite number")
    if positive and number <= 0:
        raise error(f"{name} is {number}, not a positive number")
    if nonnegative and number < 0:
        raise error(f"{name} is {number}, a negative number where only 0 or more makes sense")
    if at_most is not None and number > at_most:
        raise error(f"{name} is {number:g}, above the largest plausible value {at_most:g}")
    return number


MAX_MS = 3.6e6
"""The largest latency (ms) read from a file: one forward pass of an hour. Anything above is a
damaged number, and bounding it keeps every sum and square of latencies finite (1e300 ms used to
be fitted through overflow warnings into a model of zeros)."""


def latency_ms(value: Any, name: str, error: type[Exception]) -> float:
    """A measured latency read from a file (LUT entries, samples): finite, > 0 and at most MAX_MS."""
    return finite_number(value, name, error, positive=True, at_most=MAX_MS)


def whole_number(value: Any, name: str, error: type[Exception], *, minimum: int = 0,
                 maximum: int = 2**53) -> int:
    """`value` as an int, refused unless it is a JSON integer (not a float, string or boolean) in
    [minimum, maximum]: an index of 10**30 or a batch of -1 read from a file stops here, in one
    line, instead of overflowing numpy or allocating later."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{name} is {_shown(value)}, not a whole number")
    if value < minimum:
        wanted = {0: "a negative number where only 0 or more makes sense", 1: "not a positive whole number"}
        raise error(f"{name} is {_shown(value)}, {wanted.get(minimum, f'below the least allowed {minimum}')}")
    if value > maximum:
        raise error(f"{name} is {_shown(value)}, above the largest plausible value {maximum}")
    return value


def _shown(value: Any) -> str:
    """`value` for a message: short, and safe for an int Python refuses to print in full."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


@dataclass(frozen=True)
class JsonLines:
    """What `read_jsonl` found: the objects of the complete lines, with their 1-based line numbers,
    one message per unreadable line, and the number of the last line if it was torn (cut short by
    a kill; None if not). A torn line is not among `problems`: it is what an interrupted append
    leaves, and the file's next append removes it."""

    records: tuple[tuple[int, dict[str, Any]], ...]
    problems: tuple[str, ...]
    torn_line: int | None


def read_jsonl(path: Path | str, error: type[Exception], *, what: str = "file") -> JsonLines:
    """Every line of a JSON Lines file; a bad line is reported (not raised) and skipped.

    A last line with no newline that does not parse is the torn line a kill leaves: it is
    dropped and flagged (`torn_line`), not counted as corruption. Readers never repair a file
    (another process may be appending to it); its writer does, on its next append. A folder, a missing or an
    unreadable file raise `error` naming it."""
    path = Path(path)
    data = read_regular(path, error, what=what)
    lines = data.split(b"\n")
    unterminated = lines.pop()  # b"" when the file ends with a newline
    records: list[tuple[int, dict[str, Any]]] = []
    problems: list[str] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        value, problem = _parse_line(raw)
        if problem:
            problems.append(f"{path.name} line {number}: {problem}, skipped")
        else:
            records.append((number, value))
    torn = None
    if unterminated.strip():
        value, problem = _parse_line(unterminated)
        if problem:
            torn = len(lines) + 1
        else:
            records.append((len(lines) + 1, value))
    return JsonLines(tuple(records), tuple(problems), torn)


def _parse_line(raw: bytes) -> tuple[Any, str]:
    try:
        value = loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as problem:
        return None, f"truncated or corrupt JSON ({type(problem).__name__})"
    except DuplicateKeyError as problem:
        return None, f"the line {problem}"
    except ValueError as problem:
        return None, _digits_problem(problem)
    if not isinstance(value, dict):
        return None, f"a JSON {_json_type(value)}, not an object"
    return value, ""


def drop_torn_tail(path: Path | str) -> bool:
    """Truncate `path` to its last complete line when its last line is torn (no newline, no valid
    JSON); an unterminated but valid last line gets its newline. True if the file changed."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return False
        handle.seek(0)
        data = handle.read()
        cut = data.rfind(b"\n") + 1
        _, problem = _parse_line(data[cut:])
        if problem:
            handle.truncate(cut)
        else:
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def append_jsonl(path: Path | str, records: Iterable[Mapping[str, Any]], *, sync: bool = True,
                 allow_nan: bool = False) -> None:
    """Append one line per record after dropping a torn last line; fsync unless `sync` is False,
    so a kill right after loses none of them. NaN/inf are refused unless `allow_nan` (a diverged
    loss in a metrics log is data; a latency of NaN is not). A failed write (a full disk) cuts the
    file back to the lines it had and raises an OSError naming `path`."""
    text = "".join(json.dumps(dict(r), allow_nan=allow_nan, separators=(",", ":")) + "\n" for r in records)
    if not text:
        return
    path = Path(path)
    kept = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        drop_torn_tail(path)
        with path.open("ab") as handle:
            kept = handle.tell()
            handle.write(text.encode("utf-8"))
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
    except OSError as error:
        if kept is not None:  # a full disk may have taken part of the text: cut back to the complete lines
            with contextlib.suppress(OSError):
                os.truncate(path, kept)
        raise _naming(error, path) from error


def keep_lines(path: Path | str, keep: Any, error: type[Exception]) -> None:
    """Rewrite a JSON Lines file atomically with only the records `keep(index, record)` accepts
    (index counts readable records); torn and corrupt lines go. Used on resume."""
    path = Path(path)
    if not path.exists():
        return
    read = read_jsonl(path, error)
    kept = [record for index, (_, record) in enumerate(read.records) if keep(index, record)]
    atomic_write(path, "".join(json.dumps(record) + "\n" for record in kept))


def wait_while_locked(folder: Path | str, *, name: str = LOCK_NAME, on_wait: Callable[[str], None] | None = None) -> None:
    """Return once no process holds `folder`'s lock `name`, waiting if one does.

    For a shared cache that another process may be filling (the default device profile two
    searches reuse): the second waits and then reuses what the first made, instead of being
    refused. `on_wait(pid)` is called once if it has to wait. A shared probe, so waiters do not
    block each other; the holder's own `run_lock` still refuses a second *writer*."""
    path = Path(folder) / name
    if not path.exists():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown")
            fcntl.flock(fd, fcntl.LOCK_SH)  # blocks until the holder exits or releases
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def run_lock(folder: Path | str, error: type[Exception], *, what: str = "run folder",
             name: str = LOCK_NAME, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (created if missing) while the block runs.

    A second process asking for the same lock (`name`, one per folder unless the caller splits
    the work, as profile shards do) is refused at once with `error`, naming the holder's pid;
    with `wait` it waits for the holder instead (writers taking turns at one shared file, such as
    a benchmark's results that several processes fill). The
    kernel drops the lock when the holder exits or is killed, so a stale lock file never blocks a
    later run. A folder this call created is removed again if the block leaves nothing else in it
    (a run refused before its first file)."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            refusal = error(f"{what} {folder} is in use by another hwnas process (pid {holder}); wait for it to "
                            "finish or stop it, or choose another folder")
            refusal.locked_by = holder  # type: ignore[attr-defined] - lets a caller that may wait tell this refusal apart
            raise refusal from None
        try:
            try:  # the holder's pid, for the refusal of a second process; a full disk stops here, named
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            except OSError as problem:
                raise _naming(problem, path) from problem
            yield folder
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                if created and [p.name for p in folder.iterdir()] == [name]:
                    path.unlink()
                    folder.rmdir()
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
