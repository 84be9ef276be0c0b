"""The experiment store (``store.json``) and the parameter registry.

Both are JSON files in ``manager_cache_path``. Every update reads, changes and
rewrites the file atomically while holding an inter-process file lock, so two runs
started at the same moment get distinct run numbers and neither entry is lost.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from curifactory import fileio
from curifactory.errors import StoreError

STORE_FILENAME = "store.json"
REGISTRY_FILENAME = "params_registry.json"
LOCK_TIMEOUT = 60.0


def json_lines_list(items: list[Any]) -> str:
    """A JSON list written one item per line: still one JSON document (0.20 reads it as
    before), readable and diff-friendly, and encoded by the C encoder (``indent`` is
    pure Python and made rewriting a long store the slowest part of a warm run)."""
    if not items:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(item, default=str) for item in items) + "\n]\n"


@contextmanager
def locked(path: str, waiting_for: str | None = None) -> Iterator[None]:
    """Hold the inter-process lock of ``path`` (a ``<path>.lock`` file); ``waiting_for`` says
    what holds it when the wait times out."""
    from curifactory.locking import FileLock, Timeout

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    lock = FileLock(path + ".lock")
    try:
        lock.acquire(timeout=LOCK_TIMEOUT)
    except Timeout:  # before OSError: a Timeout is a TimeoutError
        if waiting_for:
            raise StoreError(f"Waited {LOCK_TIMEOUT:.0f} s for {waiting_for} (the lock {path}.lock).") from None
        raise StoreError(
            f"Waited {LOCK_TIMEOUT:.0f} s for the lock {path}.lock, held by another curifactory process "
            f"(the lock ends with the process that holds it: see which one with 'fuser {path}.lock')."
        ) from None
    except OSError as exc:
        raise StoreError(f"Cannot take the lock {path}.lock: {os_error(exc)}. Check that the folder "
                         f"{os.path.dirname(path) or '.'} is writable and has space (and that the lock is a file).") from None
    try:
        yield
    finally:
        lock.release()


def gc_lock_path(cache_path: str) -> str:
    """``<cache>.gc`` (its lock file is ``<cache>.gc.lock``, beside the cache folder, so a run
    taking it adds nothing to the cache)."""
    return os.path.realpath(cache_path) + ".gc"


@contextmanager
def no_gc(cache_path: str) -> Iterator[None]:
    """Hold the gc lock while a run starts (it waits, at most the store's lock timeout, while
    ``curifactory cache gc`` deletes entries); once it is marked running, gc keeps its entries."""
    if not os.path.isdir(cache_path) or not os.access(os.path.dirname(gc_lock_path(cache_path)), os.W_OK):
        yield  # no cache yet, or one this process cannot change (read-only): gc cannot delete there either
        return
    with locked(gc_lock_path(cache_path), waiting_for="'curifactory cache gc', which is deleting cache entries, "
                                                      "to finish; run the experiment again once it has"):
        yield


def os_error(exc: OSError) -> str:
    """``ENOSPC (No space left on device)``: an OS error's name and text, for messages."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    text = exc.strerror or str(exc)
    return f"{name} ({text})" if name else text


def write_failed(path: str, exc: OSError) -> StoreError:
    """The error for a failed write of the store or the registry, naming the file and the OS error."""
    return StoreError(f"Cannot write {path}: {os_error(exc)}. Free space or fix the folder's permissions; "
                      f"the file keeps its previous content (every write replaces it whole).")


def _read_json(path: str, default: Any) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default
    except ValueError as exc:
        raise StoreError(
            f"{path} is not valid JSON ({exc}). It was left untouched; fix or move it "
            f"away (a backup copy is safest) and run again."
        ) from None


_LINE_START = b'\n{"reference": '
"""The start of a run block's line as :func:`json_lines_list` writes it (see :func:`block_experiments`)."""


def _quoted(text: str) -> bytes:
    """A string as :func:`json_lines_list` writes it (``json.dumps``' defaults)."""
    return json.dumps(text).encode("ascii")


def _empty(data: bytes) -> bool:
    return len(data) < 16 and bytes(data[:16]).strip() == b"[]"


def _framed(data: bytes) -> bool:
    """Whether a store opens and closes as :func:`json_lines_list` writes it (``data``: bytes or a
    read-only memory map of the file)."""
    return data[:2] == b"[\n" and data[-3:] == b"\n]\n"


LAYOUT_SUFFIX = ".layout"
"""``store.json.layout`` holds the size, mtime and inode of the store as curifactory last wrote it
in the line layout: a store still so needs no counting over its bytes to be trusted."""


def stamp_of(status: os.stat_result) -> str:
    """What identifies one version of a file: its size, modification time and inode."""
    return f"{status.st_size} {status.st_mtime_ns} {status.st_ino}"


def _remember_layout(path: str) -> None:
    try:
        fileio.atomic_write_text(path + LAYOUT_SUFFIX, stamp_of(os.stat(path)) + "\n")
    except OSError:
        pass  # a hint only: the next reader counts


def _trusted(path: str | None, stamp: str | None) -> bool:
    if not path or not stamp:
        return False
    try:
        with open(path + LAYOUT_SUFFIX, encoding="utf-8") as handle:
            return handle.read().strip() == stamp
    except (OSError, ValueError):
        return False


def line_layout(data: bytes, path: str | None = None, stamp: str | None = None) -> bool:
    """Whether a store is written one block per line by :func:`json_lines_list` (two counts
    over the bytes, nothing parsed; none when ``stamp``, the :func:`stamp_of` the file ``data``
    was read from, is what curifactory's last line-layout write of ``path`` recorded); a store in
    another layout (e.g. 0.20's, or edited by hand) is read whole."""
    if _empty(data):
        return True
    if not _framed(data):
        return False
    if _trusted(path, stamp):
        return True
    whole = data if isinstance(data, bytes) else data[:]
    return whole.count(_LINE_START) == whole.count(b"\n") - 2


@contextmanager
def mapped_store(path: str) -> Iterator[tuple[Any, str | None]]:
    """A read-only memory map of a store and its :func:`stamp_of` (``b"[]\\n"`` and ``None`` when it
    is missing): finding and splicing one line of a long store never copies the file into Python."""
    import mmap

    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        yield b"[]\n", None
        return
    with handle:
        status = os.fstat(handle.fileno())
        if status.st_size == 0 or os.name == "nt":  # Windows cannot replace a file that is mapped
            data = handle.read()
            handle.close()
            yield data, stamp_of(status)
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            yield view, stamp_of(status)


def line_end(data: bytes, start: int) -> int:
    """Where the block whose line starts at ``start`` ends (before its comma and newline)."""
    end = data.find(b"\n", start)
    if end < 0:
        raise ValueError(f"no end of line after byte {start}")
    return end - (data[end - 1:end] == b",")


_EXPERIMENT_LINE = re.compile(rb'\n\{"reference": "(?:[^"\\\n]|\\.)*", "experiment_name": ("(?:[^"\\\n]|\\.)*")')


def block_experiments(data: bytes, path: str | None = None, stamp: str | None = None) -> list[str] | None:
    """The experiment of every run block, in order, of a store in the line layout (:func:`line_layout`),
    read without parsing the blocks; ``None`` otherwise."""
    if not line_layout(data, path, stamp):
        return None
    names: dict[bytes, str] = {}
    found = _EXPERIMENT_LINE.findall(data)
    for quoted in found:
        if quoted not in names:
            names[quoted] = json.loads(quoted)
    return [names[quoted] for quoted in found]


def last_blocks(data: bytes, experiments: list[str], first: int) -> dict[int, int] | None:
    """{position: offset of its line} of the blocks from position ``first`` to the last, found by
    walking back from the end of the store (``experiments``: :func:`block_experiments`); ``None``
    when a line does not hold the experiment expected there (a block not written as ours are)."""
    offsets: dict[int, int] = {}
    quoted = {name: _quoted(name) for name in set(experiments[first:])}
    end = len(data) - 2  # the newline before "]"
    for position in range(len(experiments) - 1, first - 1, -1):
        start = data.rfind(_LINE_START, 0, end)
        found = _EXPERIMENT_LINE.match(data, start) if start >= 0 else None
        name = experiments[position]
        if found is None or (found.group(1) != quoted[name] and json.loads(found.group(1)) != name):
            return None
        offsets[position], end = start + 1, start
    return offsets


def _a_block_line(line: bytes) -> bool:
    """Whether ``line`` starts as every line of the line layout does."""
    return (b"\n" + line).startswith(_LINE_START) and b"\n" not in line


def _highest_number(data: bytes, experiment_name: str) -> int:
    """The highest run number of ``experiment_name`` in a store in the line layout (each of its
    block lines found by a literal search, nothing else parsed)."""
    marker = re.escape(b'", "experiment_name": ' + _quoted(experiment_name) + b', "run_number": ') + rb"(-?\d+)"
    return max((int(m.group(1)) for m in re.finditer(marker, data)), default=0)


class ManagerStore:
    """The list of run blocks in ``<manager_cache_path>/store.json``.

    Registering a run and replacing its block touch only its own line of a store written
    one block per line: a store of thousands of runs is neither parsed nor re-encoded
    (the file is still rewritten whole, to a temporary file then renamed, as every write).
    """

    def __init__(self, manager_cache_path: str):
        self.path = os.path.join(manager_cache_path, STORE_FILENAME)

    def load(self) -> list[dict[str, Any]]:
        """All run blocks, oldest first."""
        runs = _read_json(self.path, [])
        if not isinstance(runs, list):
            raise StoreError(f"{self.path} should hold a JSON list of runs, not a {type(runs).__name__}; "
                             f"move it away (keep it to recover the runs) and run again.")
        odd = [r for r in runs if not isinstance(r, dict)]
        if odd:
            raise StoreError(f"{self.path} should hold a list of run blocks (JSON objects), but {len(odd)} of "
                             f"its {len(runs)} items are not (e.g. {json.dumps(odd[0], default=str)[:40]}); fix "
                             f"or move the file away and run again.")
        return runs

    def update(self, change: Callable[[list[dict[str, Any]]], Any]) -> Any:
        """Apply ``change`` to the run list under the lock and write it back atomically."""
        with locked(self.path):
            runs = self.load()
            result = change(runs)
            self._write_bytes(json_lines_list(runs).encode("utf-8"))
            return result

    def next_run_number(self, experiment_name: str, runs: list[dict[str, Any]] | None = None) -> int:
        """One more than the highest run number of ``experiment_name``."""
        runs = self.load() if runs is None else runs
        numbers = [r.get("run_number", 0) for r in runs if r.get("experiment_name") == experiment_name]
        return max(numbers, default=0) + 1

    def _write_bytes(self, data: bytes) -> None:
        try:
            fileio.atomic_write_bytes(self.path, data, durable=True)
        except OSError as exc:
            raise write_failed(self.path, exc) from exc
        if line_layout(data):  # e.g. blocks whose first key is not the reference are not
            _remember_layout(self.path)

    def _splice(self, pieces: list[bytes | tuple[int, int]], in_layout: bool) -> None:
        """Write the store from ``pieces`` (see :func:`fileio.atomic_splice`); ``in_layout``: the
        store was in the line layout, which a line added or replaced keeps (its stamp is recorded)."""
        try:
            fileio.atomic_splice(self.path, pieces, durable=True)
        except OSError as exc:
            raise write_failed(self.path, exc) from exc
        if in_layout:
            _remember_layout(self.path)

    def register_run(self, block_for_number: Callable[[int], dict[str, Any]], experiment_name: str) -> dict[str, Any]:
        """Reserve the next run number and append the block built for it, atomically."""
        with locked(self.path), mapped_store(self.path) as (data, stamp):
            if line_layout(data, self.path, stamp):
                block = block_for_number(_highest_number(data, experiment_name) + 1)
                line = json.dumps(block, default=str).encode("utf-8")
                if _empty(data):
                    self._write_bytes(b"[\n" + line + b"\n]\n")
                else:  # the kernel copies the older blocks; only the new line passes through here
                    self._splice([(0, len(data) - 3), b",\n" + line + b"\n]\n"], in_layout=_a_block_line(line))
                return block

        def change(runs: list[dict[str, Any]]) -> dict[str, Any]:
            block = block_for_number(self.next_run_number(experiment_name, runs))
            runs.append(block)
            return block

        return self.update(change)

    def replace_run(self, block: dict[str, Any]) -> None:
        """Replace the block with the same reference (append it if it is gone)."""
        with locked(self.path), mapped_store(self.path) as (data, stamp):
            line = json.dumps(block, default=str).encode("utf-8")
            # its own line is found by its start alone (other lines may be in any layout)
            start = data.rfind(_LINE_START + _quoted(str(block["reference"])) + b", ") if _framed(data) else -1
            if start >= 0:  # a block that is not the last keeps its comma
                self._splice([(0, start + 1), line, (line_end(data, start + 1), len(data))],
                             in_layout=_trusted(self.path, stamp) and _a_block_line(line))
                return

        def change(runs: list[dict[str, Any]]) -> None:
            for index, existing in enumerate(runs):
                if existing.get("reference") == block["reference"]:
                    runs[index] = block
                    return
            runs.append(block)

        self.update(change)

    def get_run(self, reference: str) -> dict[str, Any] | None:
        """The block of a run by its reference."""
        for run in self.load():
            if run.get("reference") == reference:
                return run
        return None


class ParamsRegistry:
    """``params_registry.json``: {hash: string forms of the set's fields}."""

    def __init__(self, manager_cache_path: str):
        self.path = os.path.join(manager_cache_path, REGISTRY_FILENAME)

    def load(self) -> dict[str, Any]:
        """The whole registry."""
        registry = _read_json(self.path, {})
        if not isinstance(registry, dict):
            raise StoreError(f"{self.path} should hold a JSON object of parameter sets by hash, not a "
                             f"{type(registry).__name__}; move it away (the next run writes a new one) and run again.")
        return registry

    def add(self, entries: dict[str, dict[str, str]]) -> None:
        """Add many sets at once (one locked read-modify-write per run)."""
        if not entries:
            return
        with locked(self.path):
            registry = self.load()
            if all(registry.get(h) == v for h, v in entries.items()):
                return
            registry.update(entries)
            try:
                fileio.atomic_write_json_lines(self.path, registry, durable=True)
            except OSError as exc:
                raise write_failed(self.path, exc) from exc
