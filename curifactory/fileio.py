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
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

TEMP_MARK = ".cftmp-"
_counter = itertools.count()
_CHUNK = 1 << 20


def temp_path_for(path: str | os.PathLike[str]) -> str:
    """A fresh temporary path in the folder of ``path``, keeping its file extension.

    The name starts with ``.cftmp-`` so it is hidden and easy to clean up; the
    extension is kept because some writers (numpy, pandas' excel) infer the format
    from it or append one when it is missing.
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    # pid + a process-wide counter + randomness: unique without creating the file,
    # which third-party writers do themselves (creating files is the slow part)
    unique = f"{os.getpid()}-{next(_counter)}{secrets.token_hex(4)}"
    return os.path.join(folder, f"{TEMP_MARK}{unique}-{name}")


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


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with replacing(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], value: Any, indent: int | None = 2) -> None:
    """Write ``value`` as JSON to ``path`` atomically (non-JSON values use ``str``)."""
    atomic_write_text(path, json.dumps(value, indent=indent, default=str))


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[str]:
    """Delete temporary files left in ``folder`` by processes that no longer run.

    A killed save leaves its ``.cftmp-<pid>-...`` file behind; it is never loaded
    (it has no metadata and not the final name), and this sweeps it away.
    """
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMP_MARK):
            continue
        try:
            pid = int(entry.name[len(TEMP_MARK):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            discard(entry.path)
            removed.append(entry.path)
    return removed
