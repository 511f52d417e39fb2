"""Advisory file locks between processes (POSIX flock), for the engine's one-time compile and the study.

Where locks are not to be had (no fcntl, as on Windows, or a lock file that cannot be opened) the
callers go on unlocked, as they would without this module.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class LockHeld(RuntimeError):
    """A non-blocking `file_lock` found the lock held by another process."""


def open_lock(path: str) -> Optional[int]:
    """The lock file's descriptor: created if missing; read-only where another user created it (flock
    needs no write access); None where neither works (e.g. an unwritable temp directory)."""
    for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
        try:
            return os.open(path, flags, 0o666)
        except OSError:
            continue
    return None


@contextlib.contextmanager
def file_lock(path: str, blocking: bool = True) -> Iterator[bool]:
    """Hold the exclusive lock on `path` for the block; yields whether a lock is held at all (False where
    none can be had). Blocking waits for another holder; non-blocking raises LockHeld instead."""
    fd = open_lock(str(path)) if fcntl is not None else None
    if fd is None:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError as err:
            raise LockHeld(str(path)) from err
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
