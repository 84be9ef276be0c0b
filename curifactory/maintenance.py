"""Keeping a cache healthy over months: what it holds, whether it is intact, what can go.

:func:`cache_status` counts the entries (a metadata file and the files it names) per
experiment and stage and finds entries no run references, stale entries (made by an
older version of their stage's code), broken entries and temporary leftovers;
:func:`verify` re-hashes every entry against its metadata and can move a mismatch to a
quarantine folder; :func:`collect_garbage` deletes what no kept, pinned, running or
``--store-full`` run uses; :func:`pin` / :func:`unpin` protect a run's entries.

Garbage collection holds the cache's gc lock; a run takes the same lock for a moment
when it starts (:func:`wait_for_gc`), so a run never starts while entries are being
deleted, and the entries of a run already running are kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import time
from typing import Any, Iterable, Iterator

from curifactory import fileio, runlog
from curifactory.caching.base import ALTERNATE_METADATA_SUFFIX, METADATA_SUFFIX, content_problem, metadata_problem
from curifactory.errors import CacheError, UsageError
from curifactory.store import gc_lock_path, locked, no_gc  # noqa: F401 (no_gc: its public home was here)

QUARANTINE = ".quarantine"
CHECKPOINTS = ".checkpoints"
PINS_FILE = "pins.json"
_HIDDEN = {".locks", QUARANTINE, CHECKPOINTS}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One cache entry: its metadata file and the files it names."""

    metadata_path: str
    files: tuple[str, ...]
    size: int
    experiment: str
    stage: str
    artifact: str
    params_hash: str
    run_reference: str
    generated: float
    code: str = ""
    problem: str = ""

    @property
    def group(self) -> tuple[str, str, str]:
        """The stage call the entry belongs to (its outputs and reportables go together)."""
        return (os.path.dirname(self.metadata_path), self.params_hash, self.stage)


@dataclasses.dataclass(frozen=True)
class RunUse:
    """A run of the run log and the cache entries its stages used."""

    reference: str
    experiment: str
    start: str
    status: str
    store_full: bool
    paths: frozenset[str]
    prefix: str = ""


@dataclasses.dataclass(frozen=True)
class CacheStatus:
    """What :func:`cache_status` found."""

    cache_path: str
    entries: tuple[Entry, ...]
    groups: dict[tuple[str, str], tuple[int, int]]
    unreferenced: tuple[Entry, ...]
    stale: tuple[Entry, ...]
    broken: tuple[Entry, ...]
    leftovers: tuple[str, ...]
    checkpoints: tuple[str, ...]
    quarantined: int


@dataclasses.dataclass(frozen=True)
class GcResult:
    """What :func:`collect_garbage` removed (or, dry, would remove) and what it kept."""

    removed: tuple[Entry, ...]
    freed: int
    kept: int
    kept_bytes: int
    protected_runs: tuple[str, ...]
    extra_paths: tuple[str, ...]
    dry_run: bool


# -- reading the cache and the run log -----------------------------------------------------------


def _metadata_files(cache_path: str) -> Iterator[str]:
    for folder, subdirs, files in os.walk(cache_path):
        subdirs[:] = sorted(d for d in subdirs if d not in _HIDDEN and not d.startswith(fileio.TEMP_MARK))
        for name in sorted(files):
            if name.endswith(METADATA_SUFFIX) and not name.startswith(fileio.TEMP_MARK):
                yield os.path.join(folder, name)


def _size_of(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path) if os.path.exists(path) else 0


def read_entry(meta_path: str) -> Entry:
    """The entry of a metadata file (``problem`` says why it is broken, if it is)."""
    try:
        with open(meta_path, encoding="utf-8") as handle:
            metadata = json.load(handle)
    except (OSError, ValueError) as exc:
        metadata, problem = {}, f"unreadable metadata ({exc})"
    else:
        if not isinstance(metadata, dict):
            metadata, problem = {}, "metadata is not a JSON object"
        elif "content_hash" not in metadata and "files" not in metadata:
            problem = "" if metadata.get("artifact_name") else "incomplete metadata"
        else:
            problem = metadata_problem(metadata) or ""
    folder = os.path.dirname(meta_path)
    names = metadata.get("files") if not problem and isinstance(metadata.get("files"), list) else []
    files = tuple(os.path.join(folder, f) for f in names)
    missing = [f for f in files if not os.path.exists(f)]
    if missing and not problem:
        problem = f"missing file {missing[0]}"
    code = metadata.get("code")
    return Entry(meta_path, files, sum(_size_of(f) for f in (*files, meta_path)),
                 str(metadata.get("experiment_name") or ""), str(metadata.get("stage") or ""),
                 str(metadata.get("artifact_name") or ""), str(metadata.get("params_hash") or ""),
                 str(metadata.get("run_reference") or ""), os.path.getmtime(meta_path),
                 str(code.get("digest") or "") if isinstance(code, dict) else "", problem)


def _is_metadata(path: str) -> bool:
    """Whether a ``*_metadata.json`` file is an entry's metadata (and not, e.g., a JSON output
    named ``<x>_metadata``)."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError):
        return True  # unreadable: a broken entry
    return not isinstance(value, dict) or "content_hash" in value or "artifact_name" in value


def scan(cache_path: str) -> list[Entry]:
    """Every entry of the cache folder (quarantine, checkpoints and locks left out; a file that
    another entry names, or that lies inside a folder an entry names, is that entry's)."""
    if not os.path.isdir(cache_path):
        return []
    entries = [read_entry(path) for path in _metadata_files(cache_path) if _is_metadata(path)]
    named = {os.path.realpath(f) for e in entries for f in e.files}
    folders = tuple(f + os.sep for f in named if os.path.isdir(f))
    return [e for e in entries if os.path.realpath(e.metadata_path) not in named
            and not os.path.realpath(e.metadata_path).startswith(folders)]


def _metadata_candidates(path: str) -> Iterator[str]:
    stem = os.path.splitext(path)[0]
    for base in dict.fromkeys((stem, path)):
        yield base + METADATA_SUFFIX
        yield base + ALTERNATE_METADATA_SUFFIX


def run_uses(manager_cache_path: str) -> list[RunUse]:
    """Every run of the run log with the paths of the outputs its stages computed or loaded."""
    root = runlog.runlog_root(manager_cache_path)
    uses = []
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        document = runlog.read_run(os.path.join(root, name))
        if document is None:
            continue
        cache_path = str(document.get("cache_path") or "")
        paths = set()
        for record in document.get("records") or []:
            for stage in record.get("stages") or [] if isinstance(record, dict) else []:
                for output in stage.get("outputs") or [] if isinstance(stage, dict) else []:
                    path = output.get("path") if isinstance(output, dict) else None
                    if path:
                        full = os.path.realpath(os.path.join(cache_path, path))
                        paths.add(full)
                        paths.update(_metadata_candidates(full))
        uses.append(RunUse(str(document["reference"]), str(document.get("experiment") or ""),
                           str(document.get("start") or ""), str(document.get("status") or ""),
                           bool(document.get("store_full")), frozenset(paths),
                           str(document.get("prefix") or document.get("experiment") or "")))
    return uses


def _used_groups(entries: Iterable[Entry], uses: Iterable[RunUse]) -> set[tuple[str, str, str]]:
    paths = set().union(*(use.paths for use in uses))
    return {e.group for e in entries if os.path.realpath(e.metadata_path) in paths
            or any(os.path.realpath(f) in paths for f in e.files)}


# -- status ------------------------------------------------------------------------------------


def _stale(entries: list[Entry]) -> list[Entry]:
    """Entries whose stage code differs from the newest entry's of the same experiment and stage."""
    newest: dict[tuple[str, str], Entry] = {}
    for entry in entries:
        key = (entry.experiment, entry.stage)
        if entry.code and (key not in newest or entry.generated > newest[key].generated):
            newest[key] = entry
    return [e for e in entries if e.code and e.code != newest[(e.experiment, e.stage)].code]


def leftovers(cache_path: str) -> list[str]:
    """Temporary files and folders under the cache whose writing process is gone."""
    found = []
    for folder, subdirs, files in os.walk(cache_path) if os.path.isdir(cache_path) else []:
        subdirs[:] = [d for d in subdirs if d != ".locks" and not d.startswith(fileio.TEMP_MARK)]
        found += [os.path.join(folder, n) for n in files if n.startswith(fileio.TEMP_MARK)]
        found += [os.path.join(folder, n) for n in os.listdir(folder)
                  if n.startswith(fileio.TEMP_MARK) and os.path.isdir(os.path.join(folder, n))]
    return [path for path in found if fileio.is_stale_temp(path)]


def cache_status(cache_path: str, manager_cache_path: str) -> CacheStatus:
    """Entries and bytes per experiment and stage, and what needs attention."""
    entries = scan(cache_path)
    groups: dict[tuple[str, str], tuple[int, int]] = {}
    for entry in entries:
        count, size = groups.get((entry.experiment, entry.stage), (0, 0))
        groups[(entry.experiment, entry.stage)] = (count + 1, size + entry.size)
    used = _used_groups(entries, run_uses(manager_cache_path))
    checkpoint_dir = os.path.join(cache_path, CHECKPOINTS)
    quarantine = os.path.join(cache_path, QUARANTINE)
    return CacheStatus(
        cache_path, tuple(entries), dict(sorted(groups.items())),
        tuple(e for e in entries if e.group not in used), tuple(_stale(entries)),
        tuple(e for e in entries if e.problem), tuple(leftovers(cache_path)),
        tuple(sorted(os.listdir(checkpoint_dir))) if os.path.isdir(checkpoint_dir) else (),
        len(os.listdir(quarantine)) if os.path.isdir(quarantine) else 0,
    )


# -- verify ------------------------------------------------------------------------------------


def entry_problem(entry: Entry) -> str | None:
    """Why an entry does not match its metadata, re-hashing every byte (``None``: it does)."""
    if entry.problem:
        return entry.problem
    with open(entry.metadata_path, encoding="utf-8") as handle:
        metadata = json.load(handle)
    if "content_hash" not in metadata:
        return None  # a 0.20 entry: no hash to check against
    return content_problem(list(entry.files), metadata["content_hash"])


def quarantine(entry: Entry, cache_path: str) -> str:
    """Move an entry (metadata first) into ``<cache>/.quarantine/<time>-<name>/``; the next run
    recomputes it. Returns the folder it went to."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = os.path.join(cache_path, QUARANTINE, f"{stamp}-{os.path.basename(entry.metadata_path)[:150]}")
    os.makedirs(target, exist_ok=True)
    for path in (entry.metadata_path, *entry.files):
        if os.path.exists(path):
            shutil.move(path, os.path.join(target, os.path.basename(path)))
    return target


def verify(cache_path: str, fix: bool = False,
           manager_cache_path: str | None = None) -> list[tuple[Entry, str, str | None]]:
    """(entry, problem, where it was moved or None) for every entry that fails its check; with
    ``fix``, under the gc lock, leaving the entries of an experiment running now (its runs are
    found in ``manager_cache_path``, by default the cache folder's parent) in place."""
    found = []
    if not fix:
        return [(e, p, None) for e in scan(cache_path) if (p := entry_problem(e)) is not None]
    with locked(gc_lock_path(cache_path)):  # no run starts meanwhile; running ones keep their entries
        data = manager_cache_path or os.path.dirname(os.path.realpath(cache_path))
        running = {u.experiment for u in run_uses(data)
                   if u.status in runlog.ACTIVE}
        for entry in scan(cache_path):
            problem = entry_problem(entry)
            if problem is not None:
                moved = quarantine(entry, cache_path) if entry.experiment not in running else None
                found.append((entry, problem if moved or entry.experiment not in running
                              else f"{problem} (left in place: a run of {entry.experiment} is running)", moved))
    return found


# -- pins --------------------------------------------------------------------------------------


def pins_path(manager_cache_path: str) -> str:
    return os.path.join(manager_cache_path, PINS_FILE)


def pinned(manager_cache_path: str) -> list[str]:
    """The references of the pinned runs.

    Raises:
        CacheError: ``pins.json`` is not a list of references.
    """
    path = pins_path(manager_cache_path)
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise CacheError(f"Cannot read the pinned runs in {path}: {exc}. Fix or delete the file "
                         f"(and pin the runs again).") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CacheError(f"{path} is not a JSON list of run references. Fix or delete it.")
    return value


def _change_pins(manager_cache_path: str, reference: str, add: bool) -> bool:
    path = pins_path(manager_cache_path)
    os.makedirs(manager_cache_path, exist_ok=True)
    with locked(path):
        current = pinned(manager_cache_path)
        if (reference in current) == add:
            return False
        updated = [*current, reference] if add else [r for r in current if r != reference]
        fileio.atomic_write_json(path, updated, durable=True)
    return True


def pin(manager_cache_path: str, reference: str) -> bool:
    """Protect a run's entries from :func:`collect_garbage`; False if it was pinned already."""
    return _change_pins(manager_cache_path, reference, True)


def unpin(manager_cache_path: str, reference: str) -> bool:
    """Undo :func:`pin`; False if the run was not pinned."""
    return _change_pins(manager_cache_path, reference, False)


# -- garbage collection --------------------------------------------------------------------------


def parse_size(text: str) -> int:
    """Bytes from ``500M``, ``1.5GB``, ``2GiB``, ``123`` (powers of 1024).

    Raises:
        UsageError: not a size.
    """
    match = _SIZE.match(str(text))
    if not match:
        raise UsageError(f"--max-size {text!r} is not a size: give bytes or a number with K, M, G or T "
                         f"(e.g. 500M, 1.5G).")
    unit = (match.group(2) or "").lower()[:1]
    return int(float(match.group(1)) * _UNITS[unit])


def _started(use: RunUse) -> float:
    try:
        return time.mktime(time.strptime(use.start[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0.0


def protected_runs(uses: list[RunUse], pins: Iterable[str], keep_last: int | None,
                   older_than: float | None, now: float) -> list[RunUse]:
    """The runs whose entries stay: pinned, ``--store-full``, running, and the kept ones (the
    newest ``keep_last`` of each experiment, those started within ``older_than`` days; every
    run when neither is given)."""
    pins = set(pins)
    newest: set[str] = set()
    if keep_last is not None:
        by_experiment: dict[str, list[RunUse]] = {}
        for use in uses:
            by_experiment.setdefault(use.experiment, []).append(use)
        for runs in by_experiment.values():
            newest.update(u.reference for u in sorted(runs, key=_started)[max(0, len(runs) - keep_last):])
    cutoff = now - older_than * 86400 if older_than is not None else None

    def kept(use: RunUse) -> bool:
        if use.reference in pins or use.store_full or use.status in runlog.ACTIVE:
            return True
        if keep_last is None and cutoff is None:
            return True
        return use.reference in newest or (cutoff is not None and _started(use) >= cutoff)

    return [use for use in uses if kept(use)]


def _removable(entries: list[Entry], keep: list[RunUse], older_than: float | None, max_size: int | None,
               now: float) -> list[Entry]:
    used = _used_groups(entries, keep)
    active = [use for use in keep if use.status in runlog.ACTIVE]
    running = {use.experiment for use in active}
    prefixes = tuple(f"{use.prefix}_" for use in active if use.prefix)  # what a running run may still read
    cutoff = now - older_than * 86400 if older_than is not None else None
    candidates = sorted((e for e in entries if e.group not in used and e.experiment not in running
                         and not (prefixes and os.path.basename(e.metadata_path).startswith(prefixes))
                         and (cutoff is None or e.generated < cutoff)), key=lambda e: e.generated)
    if max_size is None:
        return candidates
    total = sum(e.size for e in entries)
    chosen = []
    for entry in candidates:
        if total <= max_size:
            break
        chosen.append(entry)
        total -= entry.size
    return chosen


def _delete(entry: Entry) -> None:
    for path in (entry.metadata_path, *entry.files):  # metadata first: a half-deleted entry is a miss
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.unlink(path)


def finished_checkpoints(cache_path: str, entries: list[Entry]) -> list[str]:
    """Checkpoints of stage calls whose outputs are in the cache (a killed run's, finished by a
    later run that did not need to run the stage again)."""
    folder = os.path.join(cache_path, CHECKPOINTS)
    if not os.path.isdir(folder):
        return []
    stems = set()
    for entry in entries:
        name, mark = os.path.basename(entry.metadata_path), f"_{entry.params_hash}_{entry.stage}_"
        if entry.stage and entry.params_hash and not entry.problem and mark in name:
            stems.add(name[:name.index(mark) + len(mark) - 1])
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))
            if name.rsplit("_", 1)[0] in stems]


def _extra_garbage(cache_path: str, older_than: float | None, now: float, entries: list[Entry]) -> list[str]:
    """Temporary leftovers, quarantined entries, checkpoints of finished calls and (with
    ``older_than``) old checkpoints."""
    extra = leftovers(cache_path) + finished_checkpoints(cache_path, entries)
    quarantine_dir = os.path.join(cache_path, QUARANTINE)
    if os.path.isdir(quarantine_dir):
        extra += [os.path.join(quarantine_dir, n) for n in sorted(os.listdir(quarantine_dir))]
    checkpoint_dir = os.path.join(cache_path, CHECKPOINTS)
    if older_than is not None and os.path.isdir(checkpoint_dir):
        extra += [p for p in (os.path.join(checkpoint_dir, n) for n in sorted(os.listdir(checkpoint_dir)))
                  if os.path.getmtime(p) < now - older_than * 86400 and p not in extra]
    return extra


def collect_garbage(cache_path: str, manager_cache_path: str, keep_last: int | None = None,
                    older_than: float | None = None, max_size: int | None = None,
                    dry_run: bool = False) -> GcResult:
    """Delete the entries no protected run uses (see :func:`protected_runs`), oldest first and,
    with ``max_size``, only until the cache is at most that large (then the newest run of each
    experiment is kept unless ``keep_last`` says otherwise); also temporary leftovers and
    quarantined entries. Runs wait while it deletes (the gc lock).

    Raises:
        UsageError: a negative ``keep_last``, ``older_than`` or ``max_size``.
    """
    for name, value in (("--keep-last", keep_last), ("--older-than", older_than), ("--max-size", max_size)):
        if value is not None and value < 0:
            raise UsageError(f"{name} must not be negative, not {value}.")
    if max_size is not None and keep_last is None:
        keep_last = 1
    with locked(gc_lock_path(cache_path)):
        now = time.time()
        entries = scan(cache_path)
        keep = protected_runs(run_uses(manager_cache_path), pinned(manager_cache_path), keep_last, older_than, now)
        removed = _removable(entries, keep, older_than, max_size, now)
        extra = _extra_garbage(cache_path, older_than, now, entries)
        freed = sum(e.size for e in removed) + sum(_size_of(p) for p in extra)
        if not dry_run:
            for entry in removed:
                _delete(entry)
            for path in extra:
                fileio.discard(path)
    gone = {e.metadata_path for e in removed}
    rest = [e for e in entries if e.metadata_path not in gone]
    return GcResult(tuple(removed), freed, len(rest), sum(e.size for e in rest),
                    tuple(u.reference for u in keep), tuple(extra), dry_run)
