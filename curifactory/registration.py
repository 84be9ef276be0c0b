"""A run's entry in the experiment store and its sets in the parameter registry.

:func:`register_run` gives a run its number and its first store block (under the
store's inter-process lock); :func:`store_run` rewrites the block and adds the
run's parameter sets to the registry. Both read the manager; neither is called by
its constructor behind the caller's back (see :func:`curifactory.runner.start_run`).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from curifactory import hashing
from curifactory.store import ManagerStore, ParamsRegistry

logger = logging.getLogger(__name__)


def run_block(manager: Any) -> dict[str, Any]:
    """The run's block in ``store.json``."""
    git = manager.git_info
    block: dict[str, Any] = {
        "reference": manager.get_reference_name(),
        "experiment_name": manager.experiment_name,
        "run_number": manager.experiment_run_number,
        "timestamp": manager.get_str_timestamp(),
        "commit": manager.git_commit_hash,
        "workdir_dirty": manager.git_workdir_dirty,
        "param_files": list(manager.parameter_files),
        "params": params_block(manager),
        "full_store": manager.store_full,
        "status": manager.status,
        "cli": manager.run_line,
        "hostname": manager.hostname,
        "notes": manager.notes,
    }
    if git is not None:
        block["git_branch"] = git.branch
    if manager.error is not None:
        block["error"] = manager.error
    if manager.store_full and manager.reproduction_line:
        block["reproduce"] = manager.reproduction_line
    return block


def params_block(manager: Any) -> dict[str, list[list[str]]]:
    """``{parameter file: [[set name, hash], ...]}`` (``live`` for sets not from a file)."""
    if manager.param_file_param_sets:
        return dict(manager.param_file_param_sets)
    sets = [[str(p.name), hashing.hash_param_set(p)] for p in manager.get_all_param_sets()]
    return {"live": sets} if sets else {}


def registry_entries(manager: Any) -> dict[str, dict[str, Any]]:
    """The registry's entries for the run's parameter sets: {hash: string forms of the fields}."""
    return {hashing.hash_param_set(p): hashing.param_set_string_hash_representations(p)
            for p in manager.get_all_param_sets()}


def register_run(manager: Any) -> None:
    """Give the run its number and enter it in the store (a dry run only learns its number)."""
    if not manager.writes_store:
        return
    store = ManagerStore(manager.manager_cache_path)
    if manager.dry:
        manager.experiment_run_number = store.next_run_number(manager.experiment_name)
        return

    def build(number: int) -> dict[str, Any]:
        manager.experiment_run_number = number
        return run_block(manager)

    store.register_run(build, manager.experiment_name)
    manager.stored = True


def check_registry(manager: Any) -> None:
    """Read the registry once at the start, so a broken one stops the run before its stages.

    Raises:
        StoreError: the registry is not a JSON object of parameter sets.
    """
    if manager.writes_store and not manager.dry:
        ParamsRegistry(manager.manager_cache_path).load()


def store_run(manager: Any) -> bool:
    """Rewrite the run's block and add its sets to the registry; False when it may not write."""
    if manager.dry or not manager.writes_store:
        return False
    if not manager.stored:
        register_run(manager)
    store = ManagerStore(manager.manager_cache_path)
    try:  # the registry first: when it cannot be written, the block says so
        ParamsRegistry(manager.manager_cache_path).add(registry_entries(manager))
    except Exception as exc:
        manager.status = "error"
        manager.error = manager.error or f"the parameter registry could not be written: {exc}"
        _replace_block(manager, store)
        raise
    _replace_block(manager, store)
    manager.stored = True
    return True


def _replace_block(manager: Any, store: ManagerStore) -> None:
    try:
        store.replace_run(run_block(manager))
    except Exception:
        manager.store_failed = True  # its block keeps what it said before: the CLI must not claim more
        raise


def note_failure(manager: Any, stage: str, record: Any, exc: BaseException) -> None:
    """Remember the first stage that raised, and on which record (for the store and the CLI);
    the exception gets a note naming them."""
    if manager.error_stage is not None:
        return
    params = record.params
    where = record.get_reference_name()
    manager.error_stage = {"stage": stage, "record": where, "params_name": getattr(params, "name", None),
                           "params_hash": record.get_hash()}
    manager.error = f"{type(exc).__name__} in stage '{stage}' of record {where}" + (f": {exc}" if str(exc) else "")
    manager.error_thrown = True
    # the traceback goes to the run's log file and report; the console keeps its one paragraph
    manager.error_traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    logger.error("stage '%s' failed on record %s:\n%s", stage, where, manager.error_traceback.rstrip(),
                 extra={"cf_file_only": True})
    if hasattr(exc, "add_note"):
        exc.add_note(f"(curifactory: raised in stage '{stage}' of record {where}, "
                     f"parameter set '{getattr(params, 'name', None)}' {record.get_hash()})")
