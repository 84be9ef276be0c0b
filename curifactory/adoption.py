"""Reusing the cache a curifactory 0.20 project brings along.

0.20 named entries by its own parameter hash (:func:`curifactory.legacyhash.legacy_hash`),
so none of them is found under ours. When an entry is missing, :func:`adopt` looks
for the 0.20 entry of the same prefix, stage and artifact under the set's 0.20 hash
and takes it over (hard links, a copy where links are impossible, then our metadata
with the content hash) only when the parameter record 0.20.5 wrote into its metadata
equals the set's exactly. A 0.20 hash collision (two nested sets sharing one hash)
therefore never hands over the other set's value: the records differ, the entry is
refused and the stage recomputes. The 0.20 files stay where they were.

An aggregate's entry is adopted only when each of its records is confirmed: a 0.20
entry under that record's 0.20 hash carries that record's exact parameter record.
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import json
import logging
import os
import shutil
import weakref
from typing import Any

from curifactory import caching, fileio
from curifactory.events import LegacyEntry, emit
from curifactory.legacyhash import legacy_combo_hash, legacy_hash, legacy_representations

logger = logging.getLogger("curifactory.execution")

ADOPTED_NOTE = "adopted from a curifactory 0.20 cache entry"


class _Seen:
    """What one manager's run learnt about the 0.20 cache: the refusals (reported once, not
    again in the second pass) and each folder's file names (listed once: a missing entry
    costs no failing open, and most folders hold no 0.20 entry at all)."""

    def __init__(self) -> None:
        self.refused: set[str] = set()
        self.names: dict[str, frozenset[str]] = {}
        self.hashes: dict[int, tuple[Any, str | None]] = {}  # id -> (the record, kept alive: no id reuse)

    def old_hash(self, call: Any) -> str | None:
        """The call's record's 0.20 hash (see :func:`_old_hash`), computed once per record."""
        known = self.hashes.get(id(call.record))
        if known is not None and known[0] is call.record:
            return known[1]
        try:
            value = _old_hash(call)
        except Exception:  # a user's hash function or repr failing the 0.20 way: nothing to adopt
            logger.debug("No 0.20 hash for record %s", call.record.get_reference_name(), exc_info=True)
            value = None
        self.hashes[id(call.record)] = (call.record, value)
        return value

    def holds(self, path: str) -> bool:
        folder = os.path.dirname(path)
        names = self.names.get(folder)
        if names is None:
            try:
                names = self.names[folder] = frozenset(os.listdir(folder or "."))
            except OSError:
                names = self.names[folder] = frozenset()
        return os.path.basename(path) in names


_SEEN: weakref.WeakKeyDictionary[Any, _Seen] = weakref.WeakKeyDictionary()


class _Adopted:
    """Stands in for the value in an adopted entry's metadata preview (the value is not loaded)."""

    def __repr__(self) -> str:
        return f"<{ADOPTED_NOTE}>"


def adopt(call: Any, cacher: caching.Cacheable) -> bool:
    """Take over the 0.20 entry of ``cacher``'s artifact when it was written for exactly this
    parameter set; True when the entry under our hash now exists."""
    where = cacher._where()
    if where is None or cacher.path_override is not None or not call.manager.may_write_cache:
        return False
    seen = _SEEN.setdefault(call.manager, _Seen())
    old_hash = seen.old_hash(call)
    if old_hash is None or old_hash == where.params_hash:
        return False
    ours = cacher.metadata_path()
    folder, base = os.path.split(ours)
    old_meta = os.path.join(folder, base.replace(f"_{where.params_hash}_", f"_{old_hash}_", 1))
    if not seen.holds(old_meta):
        return False
    legacy = copy.copy(cacher)
    legacy.location, legacy._path_memo, legacy.cache_paths = dataclasses.replace(where, params_hash=old_hash), None, []
    metadata = _read_json(old_meta)
    if metadata is None or "content_hash" in metadata:
        return False  # no 0.20 entry there (or one of ours, which needs no adopting)
    name = cacher.name or "artifact"
    old_stem = legacy.location.filename(name, prefix=cacher.prefix, stage=cacher.stage)
    files = _entry_files(os.path.dirname(old_meta), old_stem)
    refused = seen.refused
    key = f"{old_meta}\0{where.params_hash}"
    if key in refused:
        return False
    try:
        reason = _refusal(call, cacher, metadata, files)
    except Exception:  # a value whose repr fails: its record can't be compared, so nothing is adopted
        logger.debug("Cannot compare the 0.20 entry %s", old_meta, exc_info=True)
        return False
    if reason is None:
        new_stem = os.path.join(os.path.dirname(cacher.metadata_path()),
                                where.filename(name, prefix=cacher.prefix, stage=cacher.stage))
        try:
            written = [_link_into(path, new_stem + os.path.basename(path)[len(old_stem):]) for path in files]
            extra = metadata.get("extra")
            cacher.extra_metadata = dict(extra) if isinstance(extra, dict) else {}
            cacher._write_metadata(_Adopted(), written)
        except OSError as exc:  # a full disk, a read-only cache: the stage recomputes
            logger.warning("Could not adopt the 0.20 cache entry %s (%s); the stage will be recomputed.",
                           old_meta, exc)
            return False
        logger.info("Adopted the 0.20 cache entry %s for '%s' of stage '%s'", old_meta, cacher.name, cacher.stage)
    else:
        refused.add(key)
        logger.warning("Not adopting the 0.20 cache entry %s for '%s' of stage '%s' (record %s): %s. The stage "
                       "will be recomputed.", old_meta, cacher.name, cacher.stage, call.record.get_reference_name(),
                       reason)
    emit(call.manager.listeners, LegacyEntry(call.spec.name, call.key[0], cacher.name or "", old_meta,
                                             reason is None, reason or ""))
    return reason is None


def _old_hash(call: Any) -> str | None:
    """The record's 0.20 hash; for an aggregate, only when each of its records is confirmed."""
    record = call.record
    params = record.params
    if not record.is_aggregate:
        return legacy_hash(params) if params is not None else None
    inputs = list(call.records or [])
    if any(r.params is None or not _confirmed(call, r) for r in inputs):
        return None
    return legacy_combo_hash(legacy_hash(params) if params is not None else None,
                             [legacy_hash(r.params) for r in inputs])


def _confirmed(call: Any, record: Any) -> bool:
    """Every 0.20 entry under the record's 0.20 hash carries the record's exact parameter
    record (and there is one): no colliding set ever wrote under that hash."""
    manager = call.manager
    prefix = glob.escape(f"{manager.prefix or manager.experiment_name}_{legacy_hash(record.params)}_")
    wanted = _comparable(legacy_representations(record.params))
    found = False
    for path in glob.glob(os.path.join(glob.escape(manager.cache_path), prefix + "*" + caching.METADATA_SUFFIX)):
        metadata = _read_json(path)
        if metadata is None or "content_hash" in metadata:
            continue
        if _comparable(metadata.get("params")) != wanted:
            return False
        found = True
    return found


def _refusal(call: Any, cacher: caching.Cacheable, metadata: dict[str, Any], files: list[str]) -> str | None:
    """Why the 0.20 entry must not be adopted for this call (None: it may)."""
    if not files:
        return "its artifact file is missing"
    for key, ours in (("artifact_name", cacher.name), ("stage", cacher.stage)):
        if metadata.get(key) not in (None, ours):
            return f"its metadata names {key} '{metadata.get(key)}', not '{ours}'"
    params = call.record.params
    if call.record.is_aggregate and params is None:
        return None if metadata.get("params") is None else "it was written for an aggregate with a parameter set"
    if "params" not in metadata:
        return "its metadata records no parameter values to compare"
    if _comparable(metadata["params"]) != _comparable(legacy_representations(params)):
        return ("the parameter values recorded with it differ from this set's (a 0.20 hash collision), "
                "so it holds another set's result")
    return None


def _comparable(representation: Any) -> Any:
    """A parameter record as JSON holds it, without the set's name (a name is not a value)."""
    if not isinstance(representation, dict):
        return representation
    plain = json.loads(json.dumps(representation, default=str))
    plain.pop("name", None)
    return plain


def _entry_files(folder: str, stem: str) -> list[str]:
    """The files and folders of a 0.20 entry: ``stem`` itself, ``stem`` plus an extension, and
    ``stem_<suffix>`` files (a cacher's ``get_path("_x.y")``) that are not another entry's."""
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    meta = caching.METADATA_SUFFIX
    others = [n[:-len(meta)] for n in names if n.endswith(meta) and n.startswith(stem + "_") and n != stem + meta]
    kept = []
    for name in names:
        if not name.startswith(stem) or name == stem + meta:
            continue
        rest = name[len(stem):]
        if rest == "" or rest.startswith(".") or (rest.startswith("_") and not any(
                name.startswith(other) for other in others)):
            kept.append(os.path.join(folder, name))
    return sorted(kept)


def _link_into(source: str, target: str) -> str:
    """Make ``target`` the same file (or folder tree) as ``source``, atomically; return ``target``."""
    temp = fileio.temp_path_for(target)
    if os.path.isdir(source):
        shutil.copytree(source, temp, copy_function=_link_or_copy)
    else:
        _link_or_copy(source, temp)
    try:
        os.replace(temp, target)
    except OSError:
        if os.path.isdir(temp):
            shutil.rmtree(temp, ignore_errors=True)
        raise
    return target


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: a copy
        shutil.copy2(source, target)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
