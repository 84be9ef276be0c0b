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
import pickle
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
        self.refused: dict[str, str] = {}  # entry key -> why it was refused
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


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What :func:`adopt` did with a missing entry.

    Attributes:
        adopted: the 0.20 entry now stands for the cacher's.
        read_only: the run writes no cache (``--dry``, ``--dry-cache``, ``--map``): the cacher
            was pointed at the 0.20 files themselves instead of taking them over.
        reason: why the 0.20 entry found was refused ("" when there is none).
    """

    adopted: bool = False
    read_only: bool = False
    reason: str = ""


NOTHING = Outcome()


def adopt(call: Any, cacher: caching.Cacheable) -> Outcome:
    """Take over the 0.20 entry of ``cacher``'s artifact when it was written for exactly this
    parameter set; in a run that writes no cache, point ``cacher`` at it instead."""
    where = cacher._where()
    if where is None or (cacher.path_override is not None and "{hash}" not in cacher.path_override):
        return NOTHING  # a fixed path_override names the same file in 0.20 and here
    seen = _SEEN.setdefault(call.manager, _Seen())
    old_hash = seen.old_hash(call)
    if old_hash is None or old_hash == where.params_hash:
        return NOTHING
    legacy = copy.copy(cacher)
    legacy.location, legacy._path_memo, legacy.cache_paths = dataclasses.replace(where, params_hash=old_hash), None, []
    legacy.metadata_suffix = caching.METADATA_SUFFIX
    old_meta = legacy.metadata_path()
    if not seen.holds(old_meta):
        return NOTHING
    metadata = _read_json(old_meta)
    if metadata is None or "content_hash" in metadata:
        return NOTHING  # no 0.20 entry there (or one of ours, which needs no adopting)
    old_stem = os.path.basename(old_meta)[:-len(caching.METADATA_SUFFIX)]
    files = _entry_files(os.path.dirname(old_meta), old_stem)
    key = f"{old_meta}\0{where.params_hash}"
    if key in seen.refused:
        return Outcome(reason=seen.refused[key])
    try:
        reason = _refusal(call, cacher, metadata, files)
    except Exception:  # a value whose repr fails: its record can't be compared, so nothing is adopted
        logger.debug("Cannot compare the 0.20 entry %s", old_meta, exc_info=True)
        return NOTHING
    if reason is not None:
        seen.refused[key] = reason
        logger.warning("Not adopting the 0.20 cache entry %s for '%s' of stage '%s' (record %s): %s. The stage "
                       "will be recomputed.", old_meta, cacher.name, cacher.stage, call.record.get_reference_name(),
                       reason)
        outcome = Outcome(reason=reason)
    elif not call.manager.may_write_cache:
        _view(cacher, legacy, metadata, files)
        outcome = Outcome(adopted=True, read_only=True)
    else:
        if not _take_over(cacher, where, metadata, files, old_stem, old_meta):
            return NOTHING
        outcome = Outcome(adopted=True)
    emit(call.manager.listeners, LegacyEntry(call.spec.name, call.key[0], cacher.name or "", old_meta,
                                             outcome.adopted, outcome.reason))
    return outcome


def _take_over(cacher: caching.Cacheable, where: Any, metadata: dict[str, Any], files: list[str],
               old_stem: str, old_meta: str) -> bool:
    """Link the 0.20 entry's files under our names and write our metadata; False on a write error."""
    ours = cacher.metadata_path()
    new_stem = os.path.join(os.path.dirname(ours), os.path.basename(ours)[:-len(cacher.metadata_suffix)])
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
    return True


def _view(cacher: caching.Cacheable, legacy: caching.Cacheable, metadata: dict[str, Any], files: list[str]) -> None:
    """Point ``cacher`` at the 0.20 entry (a run that writes no cache reads it where it is)."""
    extra = metadata.get("extra")
    cacher.location, cacher._path_memo, cacher.cache_paths = legacy.location, None, []
    cacher.metadata_suffix = caching.METADATA_SUFFIX
    cacher.extra_metadata = dict(extra) if isinstance(extra, dict) else {}
    run_info = metadata.get("manager_run_info")
    cacher.metadata = {"preview": f"<{ADOPTED_NOTE}, read where it is>", "extra": cacher.extra_metadata,
                       "run_reference": run_info.get("reference") if isinstance(run_info, dict) else None,
                       "content_hash": fileio.hash_files(files), "files_stat": [caching.file_stat(f) for f in files]}
    cacher._unverified, cacher.invalid_reason = False, None
    logger.info("Reading the 0.20 cache entry of '%s' of stage '%s' where it is (this run writes no cache)",
                cacher.name, cacher.stage)


def legacy_reportables(call: Any) -> list[Any] | None:
    """The reportables 0.20 cached for this call (its ``_reportables`` folder and file list),
    when they were written for exactly this parameter set; None when there are none."""
    where = call.location
    seen = _SEEN.setdefault(call.manager, _Seen())
    old_hash = seen.old_hash(call)
    if where is None or old_hash is None or old_hash == where.params_hash:
        return None
    old = dataclasses.replace(where, params_hash=old_hash)
    stem = os.path.join(where.cache_path, old.filename("reportables_file_list", stage=call.spec.name))
    if not seen.holds(stem + caching.METADATA_SUFFIX):
        return None
    metadata = _read_json(stem + caching.METADATA_SUFFIX)
    listed = _read_json_value(stem + ".json")
    if metadata is None or "content_hash" in metadata or not isinstance(listed, list):
        return None
    if _params_refusal(call, metadata) is not None:
        return None
    folder = os.path.join(where.cache_path, old.filename("reportables", stage=call.spec.name))
    reportables = []
    for path in listed:
        # 0.20 listed them relative to where it ran: they are in the folder beside the list
        with open(os.path.join(folder, os.path.basename(str(path))), "rb") as handle:
            reportables.append(pickle.load(handle))
    logger.info("Reusing the %d reportables 0.20 cached for stage '%s'", len(reportables), call.spec.name)
    return reportables


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
    return _params_refusal(call, metadata)


def _params_refusal(call: Any, metadata: dict[str, Any]) -> str | None:
    """Why the parameter record in a 0.20 metadata file is not this call's (None: it is)."""
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
    value = _read_json_value(path)
    return value if isinstance(value, dict) else None


def _read_json_value(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
