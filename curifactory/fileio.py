"""Atomic file writes and content hashes.

Every file curifactory writes (artifacts, metadata, store, registry, reports) goes
to a temporary name in the destination folder and is renamed into place with
``os.replace``, so a killed process never leaves a half-written file under the
final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import itertools
import secrets
import socket
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

TEMP_MARK = ".cftmp-"
_counter = itertools.count()
# which machine wrote a temporary file: on a cache shared between hosts, only this
# host's dead processes can be told apart from another host's live ones
_HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=2).hexdigest()
STALE_FOREIGN_SECONDS = 24 * 3600
_CHUNK = 1 << 20
NAME_MAX = 255
"""The longest file name (in bytes) of ext4, xfs, btrfs, APFS and NTFS."""


def temp_path_for(path: str | os.PathLike[str]) -> str:
    """A fresh temporary path in the folder of ``path``, keeping its file extension.

    The name starts with ``.cftmp-`` so it is hidden and easy to clean up; the
    extension is kept because some writers (numpy, pandas' excel) infer the format
    from it or append one when it is missing.
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    if folder and not os.path.isdir(folder):  # one stat: makedirs costs a failing mkdir each time
        os.makedirs(folder, exist_ok=True)
    # pid + a process-wide counter + randomness: unique without creating the file,
    # which third-party writers do themselves (creating files is the slow part)
    unique = f"{os.getpid()}-{_HOST}-{next(_counter)}{secrets.token_hex(3)}"
    temp = f"{TEMP_MARK}{unique}-{name}"
    if len(temp.encode("utf-8", "surrogateescape")) > NAME_MAX:  # a long final name: its digest stands in
        extension = os.path.splitext(name)[1][:16]
        temp = f"{TEMP_MARK}{unique}-{hashlib.blake2b(name.encode('utf-8', 'surrogateescape'), digest_size=8).hexdigest()}{extension}"
    return os.path.join(folder, temp)


def relative_inside(path: str, base: str | None = None) -> str:
    """``path`` relative to ``base`` (the working directory by default) when it is inside it,
    else as given (also when it is on another drive, on Windows)."""
    try:
        relative = os.path.relpath(path, base) if base is not None else os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith(os.pardir) else relative


def name_too_long(path: str) -> bool:
    """Whether the file name of ``path`` is longer than most file systems allow (255 bytes)."""
    return len(os.path.basename(path).encode("utf-8", "surrogateescape")) > NAME_MAX


def commit(tmp: str, final: str | os.PathLike[str]) -> None:
    """Move a finished temporary file or folder into place (atomic for files)."""
    final = os.fspath(final)
    if os.path.isdir(tmp):
        if os.path.isdir(final):
            # a folder cannot be swapped atomically; move the old one aside first
            old = temp_path_for(final)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
            return
    os.replace(tmp, final)


def discard(tmp: str) -> None:
    """Remove a temporary file or folder left by a failed write, ignoring errors."""
    if os.path.isdir(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path to write ``path``'s new content to; move it into place
    when the block succeeds, remove it when the block fails."""
    tmp = temp_path_for(path)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def copy_tree(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
    """Replace the folder ``destination`` by a copy of ``source``."""
    with replacing(destination) as tmp:
        shutil.copytree(source, tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, durable: bool = False) -> None:
    """Write ``data`` to ``path`` atomically.

    Args:
        durable: also flush the file to disk before it replaces the old one, so a
            power loss leaves the old or the new content, never an empty file (used
            for the store and registry, which no content hash protects).
    """
    with replacing(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())


def atomic_splice(path: str | os.PathLike[str], pieces: Iterable[bytes | tuple[int, int]],
                  durable: bool = False) -> None:
    """Replace ``path`` atomically by ``pieces`` in order: new bytes, or ``(start, end)`` byte ranges
    of its current content, which the kernel copies (``copy_file_range``) without passing them
    through Python, so a long file changed in one place costs little more than the change."""
    if os.name == "nt" or not hasattr(os, "pread"):  # a file open there cannot be replaced: bytes in memory
        with open(path, "rb") as source:
            old = source.read()
        atomic_write_bytes(path, b"".join(old[p[0]:p[1]] if isinstance(p, tuple) else p for p in pieces), durable)
        return
    with open(path, "rb") as source, replacing(path) as tmp:
        target = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            for piece in pieces:
                if isinstance(piece, tuple):
                    _copy_range(source.fileno(), target, piece[0], piece[1])
                else:
                    _write_all(target, piece)
            if durable:
                os.fsync(target)
        finally:
            os.close(target)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_range(source: int, target: int, start: int, end: int) -> None:
    """Append bytes ``[start, end)`` of the file ``source`` to ``target``."""
    copy = getattr(os, "copy_file_range", None)
    while start < end:
        done = 0
        if copy is not None:
            try:
                done = copy(source, target, end - start, start)
            except OSError:  # another file system, an old kernel: copy by hand from now on
                copy = None
        if not done:
            chunk = os.pread(source, min(end - start, _CHUNK), start)
            if not chunk:
                raise OSError(f"the file ended at byte {start}, before byte {end}")
            _write_all(target, chunk)
            done = len(chunk)
        start += done


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], value: Any, indent: int | None = 2,
                      durable: bool = False) -> None:
    """Write ``value`` as JSON to ``path`` atomically (non-JSON values use ``str``)."""
    atomic_write_bytes(path, json.dumps(value, indent=indent, default=str).encode("utf-8"), durable)


def json_object_lines(value: dict[str, Any]) -> str:
    """A JSON object written one key per line, each value on its line: readable, and encoded
    by the C encoder (``indent`` is pure Python, about 0.2 ms for an entry's metadata)."""
    if not value:
        return "{}\n"
    return "{\n" + ",\n".join(f"  {json.dumps(str(key))}: {json.dumps(item, default=str)}"
                              for key, item in value.items()) + "\n}\n"


def atomic_write_json_lines(path: str | os.PathLike[str], value: dict[str, Any], durable: bool = False) -> None:
    """Write the object ``value`` to ``path`` atomically, as :func:`json_object_lines` does."""
    atomic_write_bytes(path, json_object_lines(value).encode("utf-8"), durable)


def hash_file(path: str | os.PathLike[str], digest: Any = None) -> str:
    """The blake2b hex digest of a file's bytes."""
    h = digest if digest is not None else hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def hash_files(paths: Iterable[str]) -> str:
    """One digest over several files or folders (names relative to nothing: order matters)."""
    h = hashlib.blake2b(digest_size=16)
    for path in paths:
        if os.path.isdir(path):
            for sub in sorted(Path(path).rglob("*")):
                if sub.is_file():
                    h.update(str(sub.relative_to(path)).encode())
                    hash_file(sub, h)
        else:
            hash_file(path, h)
    return h.hexdigest()


SAMPLE_EDGE = 64 * 1024
SAMPLE_BLOCK = 4096
SAMPLE_BLOCKS = 16


def sample_hash(paths: Iterable[str]) -> str:
    """A cheap digest of large files: each file's size, its first and last 64 KiB and 16
    blocks of 4 KiB spread evenly between them (folders: every file in them). It finds a
    truncated, extended or rewritten file and most local damage; :func:`hash_files` finds
    any change."""
    h = hashlib.blake2b(digest_size=16)
    for path in paths:
        files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if os.path.isdir(path) else [Path(path)]
        for file in files:
            size = file.stat().st_size
            h.update(f"{file.name}:{size};".encode())
            with open(file, "rb") as handle:
                offsets = [0, max(0, size - SAMPLE_EDGE)]
                offsets += [size * i // (SAMPLE_BLOCKS + 1) for i in range(1, SAMPLE_BLOCKS + 1)]
                for number, offset in enumerate(offsets):
                    handle.seek(offset)
                    h.update(handle.read(SAMPLE_EDGE if number < 2 else SAMPLE_BLOCK))
    return h.hexdigest()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale_temp(path: str, now: float | None = None) -> bool:
    """Whether ``path`` is a temporary file or folder of a process that no longer runs (one
    written on another host, e.g. to a shared cache, once it is a day old)."""
    name = os.path.basename(path)
    if not name.startswith(TEMP_MARK):
        return False
    parts = name[len(TEMP_MARK):].split("-", 2)
    try:
        pid, host = int(parts[0]), parts[1]
        age = (time.time() if now is None else now) - os.lstat(path).st_mtime
    except (ValueError, IndexError, OSError):
        return False
    if host == _HOST:
        return pid != os.getpid() and not pid_alive(pid)
    return age > STALE_FOREIGN_SECONDS


def remove_stale_temps(folder: str | os.PathLike[str], recursive: bool = True) -> list[str]:
    """Delete temporary files left under ``folder`` by processes that no longer run.

    A killed save leaves its ``.cftmp-...`` file behind; it is never loaded (it has
    no metadata and not the final name), and this sweeps it away (see :func:`is_stale_temp`).
    Without ``recursive``, only the entries right in ``folder`` (e.g. the reports folder, where
    a killed run leaves its half-written report folder).
    """
    removed: list[str] = []
    now = time.time()
    for directory, subdirs, files in os.walk(folder):
        names = [*files, *subdirs]
        subdirs[:] = [d for d in subdirs if d != ".locks" and recursive]
        for name in names:
            path = os.path.join(directory, name)
            if is_stale_temp(path, now):
                discard(path)
                removed.append(path)
    return removed
