"""Why a stage call ran: the decisions of a run, kept on disk, and what changed in its parameters.

Every run that writes the store also writes ``<manager_cache_path>/decisions/<ref>.json``:
one row per stage call (record, set name and hash, stage, status, reason), read
back by ``curifactory why REF STAGE [RECORD]``. :func:`missing_because_of_parameters`
tells, for a call whose entry is missing, which parameters differ from the newest
entry the same stage wrote for a set of the same name (found through the registry).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from curifactory import fileio, hashing
from curifactory.errors import UsageError
from curifactory.legacyhash import legacy_hash
from curifactory.store import ManagerStore, ParamsRegistry

DECISIONS_DIR = "decisions"


@dataclass(frozen=True)
class CallDecision:
    """One stage call of a past run and why it ran (or did not)."""

    record_index: int
    record_name: str
    params_hash: str
    stage: str
    status: str
    reason: str


def decisions_path(manager_cache_path: str, reference: str) -> str:
    return os.path.join(manager_cache_path, DECISIONS_DIR, f"{reference}.json")


def write_decisions(manager: Any) -> str | None:
    """Write the run's decisions (atomically); None when the run writes no store."""
    if manager.dry or not manager.writes_store:
        return None
    rows = [[run.record_index, record.name, record.get_hash(), run.stage, run.status.value, run.reason]
            for record in manager.records for run in record.history]
    path = decisions_path(manager.manager_cache_path, manager.get_reference_name())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fileio.atomic_write_json(path, {"reference": manager.get_reference_name(), "calls": rows}, indent=None)
    return path


def find_reference(manager_cache_path: str, wanted: str) -> str:
    """The full reference of a run named by its reference, a unique prefix of it,
    ``<experiment>_<number>``, ``<experiment>#<number>``, ``<experiment>#latest`` or ``latest``.

    Raises:
        UsageError: no run (or more than one) matches.
    """
    blocks = [r for r in ManagerStore(manager_cache_path).load() if r.get("reference")]
    references = [str(r.get("reference")) for r in blocks]
    if wanted in ("latest", "last") and references:
        return references[-1]
    if "#" in wanted:  # EXPERIMENT#N or EXPERIMENT#latest, as curifactory show takes them
        experiment, _, number = wanted.rpartition("#")
        runs = [r for r in blocks if r.get("experiment_name") == experiment]
        if runs and number in ("latest", "last"):
            return str(max(runs, key=lambda r: int(r.get("run_number") or 0))["reference"])
        named = [str(r["reference"]) for r in runs if str(r.get("run_number")) == number]
        if len(named) == 1:
            return named[0]
    if wanted in references:
        return wanted
    matches = [r for r in references if r.startswith(wanted + "_")] or [r for r in references if r.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    recent = ", ".join(references[-5:]) or "none"
    if matches:
        raise UsageError(f"'{wanted}' names {len(matches)} runs ({', '.join(matches[:5])}); give more of the "
                         f"reference, e.g. {matches[-1]}.")
    raise UsageError(f"No run '{wanted}' in the store {os.path.join(manager_cache_path, 'store.json')}. The latest "
                     f"runs are: {recent}. Use a reference as printed by 'experiment' (or 'latest').")


def load_decisions(manager_cache_path: str, reference: str) -> list[CallDecision]:
    """The decisions of run ``reference``.

    Raises:
        UsageError: the run recorded none (it ran before they were recorded, dry, or
            the file is unreadable).
    """
    path = decisions_path(manager_cache_path, reference)
    try:
        with open(path, encoding="utf-8") as handle:
            rows = json.load(handle)["calls"]
        return [CallDecision(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5])) for r in rows]
    except FileNotFoundError:
        raise UsageError(f"Run {reference} has no recorded decisions ({path} is missing): it ran before "
                         f"curifactory recorded them, or wrote no store. Rerun it to see why each stage runs.") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise UsageError(f"The decisions of run {reference} in {path} are unreadable ({exc}); delete the file, "
                         f"and rerun the experiment to record them again.") from None


def select(decisions: list[CallDecision], stage: str, record: str | None) -> list[CallDecision]:
    """The calls of ``stage`` (on ``record``: an index, a set name or a hash prefix).

    Raises:
        UsageError: the run has no such stage or record, naming the ones it has.
    """
    of_stage = [d for d in decisions if d.stage == stage]
    if not of_stage:
        stages = ", ".join(dict.fromkeys(d.stage for d in decisions)) or "none"
        raise UsageError(f"The run called no stage '{stage}'; its stages are: {stages}.")
    if record is None:
        return of_stage
    chosen = [d for d in of_stage if record == str(d.record_index) or record == d.record_name
              or (len(record) >= 4 and d.params_hash.startswith(record))]
    if not chosen:
        names = ", ".join(f"{d.record_index}:{d.record_name}" for d in of_stage)
        raise UsageError(f"Stage '{stage}' ran on no record '{record}' in this run; it ran on: {names}. "
                         f"Name a record by index, parameter set name or hash prefix.")
    return chosen


def changed_parameters(before: dict[str, Any], params: Any) -> str:
    """``parameter 'degree' changed 3 -> 4, ...``: ``params`` against a registry entry."""
    now = hashing.param_set_string_hash_representations(params)
    changes = [f"parameter '{field}' changed {before.get(field, '(unset)')} -> {value}"
               for field, value in now.items() if field != "name" and before.get(field) != value]
    changes += [f"parameter '{field}' removed" for field in before if field not in now and field != "_DRY_REPS"]
    return ", ".join(changes)


def registry_index(manager: Any) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """(set name -> its hashes in the registry, oldest first; hash -> registry entry), read
    once per manager (``manager.param_history``)."""
    index = getattr(manager, "param_history", None)
    if index is None:
        entries = ParamsRegistry(manager.manager_cache_path).load()
        by_name: dict[str, list[str]] = {}
        for digest, entry in entries.items():
            if isinstance(entry, dict):
                by_name.setdefault(str(entry.get("name")), []).append(digest)
        index = manager.param_history = (by_name, entries)
    return index  # type: ignore[no-any-return]


def missing_because_of_parameters(manager: Any, cacher: Any, record: Any) -> str:
    """For an output with no entry: which parameters changed since the newest entry the same
    stage wrote for a set of the same name (found through the registry), or ""."""
    params = getattr(record, "params", None)
    if params is None or record.is_aggregate:
        return ""
    by_name, entries = registry_index(manager)
    current = record.get_hash()
    try:
        old = legacy_hash(params)  # the same values, named the 0.20 way: no parameter changed
    except Exception:
        old = None
    others = [h for h in by_name.get(str(getattr(params, "name", None)), ()) if h not in (current, old)]
    if not others:
        return ""
    meta_path = cacher.metadata_path()
    for candidate in reversed(others):
        if os.path.exists(meta_path.replace(current, candidate)):
            return changed_parameters(entries[candidate], params) or ""
    return ""
