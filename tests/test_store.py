"""The experiment store and registry under concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from curifactory.errors import StoreError
from curifactory.store import ManagerStore, ParamsRegistry


def _register(path: str, barrier, queue) -> None:
    from curifactory.manager import ArtifactManager

    barrier.wait()
    manager = ArtifactManager("race", manager_cache_path=path, suppress_live_log=True,
                              status_override="incomplete")
    queue.put(manager.experiment_run_number)


def test_simultaneous_runs_get_distinct_numbers_and_both_entries(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    count = 6
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(count), context.Queue()
    procs = [context.Process(target=_register, args=(str(tmp_path / "data"), barrier, queue)) for _ in range(count)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    numbers = sorted(queue.get() for _ in range(count))
    assert numbers == list(range(1, count + 1))
    runs = json.loads((tmp_path / "data" / "store.json").read_text())
    assert sorted(r["run_number"] for r in runs) == numbers
    assert len({r["reference"] for r in runs}) == count


def test_corrupt_store_is_a_clear_error_and_left_untouched(tmp_path):
    path = tmp_path / "store.json"
    path.write_text("[{broken")
    with pytest.raises(StoreError, match="not valid JSON"):
        ManagerStore(str(tmp_path)).register_run(lambda n: {"run_number": n}, "x")
    assert path.read_text() == "[{broken"


def test_registry_is_written_once_for_many_sets(tmp_path):
    registry = ParamsRegistry(str(tmp_path))
    entries = {f"h{i}": {"name": f"s{i}"} for i in range(500)}
    registry.add(entries)
    before = os.stat(registry.path).st_mtime_ns
    registry.add(entries)  # nothing new: not rewritten
    assert os.stat(registry.path).st_mtime_ns == before
    assert len(registry.load()) == 500
