"""Inter-process file locks: ``fcntl.flock`` on a lock file (POSIX), the ``filelock`` package elsewhere.

The lock file is created when missing and never deleted (deleting it would let a
process that opened the old file and one that opened the new one both hold "the"
lock). A lock is held by an open file: a second :class:`FileLock` of the same path in
the same process waits like any other process would, so locks must not be nested.
The standard library does it in a few system calls; importing ``filelock`` cost about
7 ms of every run.
"""

from __future__ import annotations

import errno
import os
import time
from types import TracebackType
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: filelock's msvcrt locks
    fcntl = None  # type: ignore[assignment]

POLL_SECONDS = 0.05
"""The longest wait between two tries of a lock held by another process."""


class Timeout(TimeoutError):
    """The lock was still held by another process when the time given ran out."""

    def __init__(self, path: str):
        super().__init__(f"the lock {path} is held by another process")
        self.lock_file = path


class FileLock:
    """An exclusive lock of the file ``path`` (``with FileLock(path): ...``)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self._fd: int | None = None
        self._fallback: Any = None

    @property
    def is_locked(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None or (self._fallback is not None and self._fallback.is_locked)

    def acquire(self, timeout: float = -1.0) -> None:
        """Take the lock, waiting at most ``timeout`` seconds (negative: for ever).

        Raises:
            Timeout: another process still held it when ``timeout`` ran out.
            OSError: the lock file cannot be opened (a folder, no permission, no space).
        """
        if fcntl is None:
            self._acquire_fallback(timeout)
            return
        fd = _open(self.path)
        deadline = time.monotonic() + timeout if timeout >= 0 else None
        delay = 0.001
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self._fd = fd
                    return
                except BlockingIOError:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise Timeout(self.path) from None
                    time.sleep(delay if left is None else min(delay, left))
                    delay = min(delay * 2, POLL_SECONDS)
        finally:
            if self._fd != fd:  # not taken (a timeout, an error, Ctrl-C while waiting): no descriptor left open
                os.close(fd)

    def _acquire_fallback(self, timeout: float) -> None:
        import filelock

        self._fallback = filelock.FileLock(self.path)
        try:
            self._fallback.acquire(timeout=timeout)
        except filelock.Timeout:
            raise Timeout(self.path) from None

    def release(self) -> None:
        """Give the lock up (nothing when it is not held)."""
        if self._fallback is not None:
            self._fallback.release()
            return
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


def _open(path: str) -> int:
    """The lock file opened for locking (read-only when it exists in a folder that cannot be written)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM) and os.path.isfile(path):
            return os.open(path, os.O_RDONLY)
        raise
