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


def _block(reference: str, experiment: str, number: int, **extra) -> dict:
    return {"reference": reference, "experiment_name": experiment, "run_number": number, **extra}


def test_a_long_store_gets_one_line_changed_and_stays_one_json_list(tmp_path):
    store = ManagerStore(str(tmp_path))
    old = [_block(f"old_{i}_t", "old" if i % 2 else 'we"ird é', i, notes="a\nb") for i in range(1, 2001)]
    with open(store.path, "w") as handle:
        handle.write("[\n" + ",\n".join(json.dumps(b) for b in old) + "\n]\n")
    block = store.register_run(lambda n: _block(f"new_{n}_t", "old", n, status="incomplete"), "old")
    assert block["run_number"] == 2000  # the highest odd number was 1999
    weird = store.register_run(lambda n: _block(f"w_{n}_t", 'we"ird é', n), 'we"ird é')
    assert weird["run_number"] == 2001
    store.replace_run(dict(block, status="complete"))
    runs = json.loads(open(store.path).read())
    assert runs[:2000] == old and runs[2000] == dict(block, status="complete") and runs[2001] == weird
    store.replace_run(_block("gone_1_t", "old", 1))  # not in the store: appended
    assert store.load()[-1]["reference"] == "gone_1_t"


def test_a_store_written_by_0_20_is_read_whole_and_kept(tmp_path):
    store = ManagerStore(str(tmp_path))
    old = [_block("a_1_t", "a", 1, status="complete"), {"experiment_name": "a", "run_number": 2, "reference": "a_2_t"}]
    with open(store.path, "w") as handle:
        json.dump(old, handle, indent=4)  # 0.20's layout
    block = store.register_run(lambda n: _block(f"a_{n}_t", "a", n), "a")
    assert block["run_number"] == 3
    store.replace_run(dict(block, status="complete"))
    assert store.load() == [*old, dict(block, status="complete")]
