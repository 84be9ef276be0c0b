"""The experiment store (``store.json``) and the parameter registry.

Both are JSON files in ``manager_cache_path``. Every update reads, changes and
rewrites the file atomically while holding an inter-process file lock, so two runs
started at the same moment get distinct run numbers and neither entry is lost.
"""

from __future__ import annotations

import json
import os
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
def locked(path: str) -> Iterator[None]:
    """Hold the inter-process lock of ``path`` (a ``<path>.lock`` file)."""
    from filelock import FileLock, Timeout

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    lock = FileLock(path + ".lock")
    try:
        with lock.acquire(timeout=LOCK_TIMEOUT):
            yield
    except Timeout:
        raise StoreError(
            f"Waited {LOCK_TIMEOUT:.0f} s for the lock {path}.lock held by another "
            f"curifactory process. If no other run is active, delete the .lock file."
        ) from None


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


class ManagerStore:
    """The list of run blocks in ``<manager_cache_path>/store.json``."""

    def __init__(self, manager_cache_path: str):
        self.path = os.path.join(manager_cache_path, STORE_FILENAME)

    def load(self) -> list[dict[str, Any]]:
        """All run blocks, oldest first."""
        runs = _read_json(self.path, [])
        if not isinstance(runs, list):
            raise StoreError(f"{self.path} should hold a JSON list of runs; move it away and run again.")
        return runs

    def update(self, change: Callable[[list[dict[str, Any]]], Any]) -> Any:
        """Apply ``change`` to the run list under the lock and write it back atomically."""
        with locked(self.path):
            runs = self.load()
            result = change(runs)
            fileio.atomic_write_bytes(self.path, json_lines_list(runs).encode("utf-8"), durable=True)
            return result

    def next_run_number(self, experiment_name: str, runs: list[dict[str, Any]] | None = None) -> int:
        """One more than the highest run number of ``experiment_name``."""
        runs = self.load() if runs is None else runs
        numbers = [r.get("run_number", 0) for r in runs if r.get("experiment_name") == experiment_name]
        return max(numbers, default=0) + 1

    def register_run(self, block_for_number: Callable[[int], dict[str, Any]], experiment_name: str) -> dict[str, Any]:
        """Reserve the next run number and append the block built for it, atomically."""

        def change(runs: list[dict[str, Any]]) -> dict[str, Any]:
            block = block_for_number(self.next_run_number(experiment_name, runs))
            runs.append(block)
            return block

        return self.update(change)

    def replace_run(self, block: dict[str, Any]) -> None:
        """Replace the block with the same reference (append it if it is gone)."""

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
            raise StoreError(f"{self.path} should hold a JSON object; move it away and run again.")
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
            fileio.atomic_write_json(self.path, registry, indent=2, durable=True)
