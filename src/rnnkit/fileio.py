"""Files: atomic writes, and bounded reads of a user's files.

Writing: a reader sees the old file or the new one, never a torn one. Write
to a temporary file in the same directory, flush, fsync, then ``os.replace``
it over the target (atomic on POSIX), then fsync the directory so the rename
itself survives a crash.

Reading (`open_regular_file`, `read_regular_bytes`): only a regular file, and
at most a given number of bytes. The file is opened without blocking (a FIFO
with no writer would wait for ever) and checked through the opened descriptor
(`fstat`), so a symlink to ``/dev/zero``, a pipe or a socket is refused before
a byte is read, and a file that grows while it is read stops at the limit.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from rnnkit.errors import DataError, RnnkitError

TEMP_SUFFIX = ".rnnkit-tmp"
WRITTEN_BY = "rnnkit"  # the Software field of every PNG rnnkit draws: a later run may replace it


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success move it over `target`.

    The caller writes the whole file to the yielded path. If the block raises
    (including a full disk), the temporary file is removed and `target` is untouched.
    """
    with atomic_paths(target) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(*targets: str | os.PathLike) -> Iterator[list[Path]]:
    """`atomic_path` for several files written together (a bundle).

    Yields one temporary path per target. Only when the block has written all
    of them are they fsynced, then renamed over their targets in the order
    given (so the last target is the one that makes the set complete). If
    anything fails before the renames (a full disk while writing or syncing),
    every temporary file is removed and no target is touched.
    """
    paths = [Path(t) for t in targets]
    temps: list[Path] = []
    try:
        for target in paths:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
            temps.append(Path(name))
            os.fchmod(fd, _mode_for(target))  # mkstemp makes 0600 files; give what a plain write would
            os.close(fd)
        yield temps
        for tmp in temps:
            _fsync_file(tmp)
        for tmp, target in zip(temps, paths):
            os.replace(tmp, target)
        for directory in dict.fromkeys(target.parent for target in paths):
            _fsync_dir(directory)
    except BaseException:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise


def remove_stale_temporaries(directory: str | os.PathLike, target_name: str | None = None) -> list[Path]:
    """Delete the temporary files a killed writer left in `directory` (for `target_name`, or for any target).

    A kill -9 between `mkstemp` and `os.replace` strands ``.<name>.XXXX.rnnkit-tmp``;
    nothing ever reads it. Only call this where no other process is writing,
    e.g. when a run resumes in its own output directory. Returns the removed paths.
    """
    pattern = f".{target_name}.*{TEMP_SUFFIX}" if target_name else f".*{TEMP_SUFFIX}"
    removed = []
    for stale in Path(directory).glob(pattern):
        if stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def open_regular_file(path: str | os.PathLike, max_bytes: int, error: type[RnnkitError] = DataError,
                      hint: str = "use a smaller sample of it") -> BinaryIO:
    """Open `path` for binary reading if it is a regular file of at most `max_bytes` bytes.

    Anything else is `error` (DataError by default) naming the path and the fix: a missing or
    unreadable path, a directory, a pipe, socket or device (also through a symlink), or a file over
    the limit (`hint` says what to do then). The caller reads at most ``max_bytes + 1`` bytes to
    notice a file that grew after the check.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{path} does not exist; check the path") from None
    except IsADirectoryError:
        raise error(f"cannot read {path}: it is a directory, where a file is expected") from None
    except OSError as exc:
        raise error(f"cannot read {path} ({exc.strerror}); check the path and its permissions") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"cannot read {path}: it is a directory, where a file is expected")
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path} is not a regular file (a pipe, socket or device); save the data to a file "
                        "and pass that")
        if info.st_size > max_bytes:
            raise error(f"{path} is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit; {hint}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=1 << 16)
    except BaseException:
        os.close(fd)
        raise


def read_regular_bytes(path: str | os.PathLike, max_bytes: int, error: type[RnnkitError] = DataError,
                       hint: str = "use a smaller sample of it") -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them (see `open_regular_file`)."""
    with open_regular_file(path, max_bytes, error, hint) as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            data = handle.read(min(size, max_bytes) + 1)  # read(n) allocates n bytes up front: ask for what is there
            if len(data) > size:  # it grew since the check: read on, up to the limit
                data += handle.read(max_bytes + 1 - len(data))
        except OSError as exc:
            raise error(f"cannot read {path} ({exc.strerror}); check the path and its permissions") from None
    if len(data) > max_bytes:
        raise error(f"{path} grew past the {max_bytes:,}-byte limit while it was read; {hint}")
    return data


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_with(target: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` to produce the file, then move it into place."""
    with atomic_path(target) as tmp:
        writer(tmp)


def _mode_for(target: Path) -> int:
    """The permissions `target` has now, or those a plain open() would give a new file (0666 minus the umask)."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def _current_umask() -> int:
    mask = os.umask(0o022)  # read it once, at import (no other thread is writing files yet)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem allows fsync on a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
