"""The inter-process lock (curifactory.locking) and the other pieces of a fast run's start."""

from __future__ import annotations

import errno
import gc
import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

from curifactory import environment, fileio, locking
from curifactory.cli import common


def _holder(path: str, seconds: float) -> subprocess.Popen:
    """Another process holding the lock of ``path`` for ``seconds`` (it prints 'held' once it does)."""
    code = textwrap.dedent(f"""
        import time
        from curifactory.locking import FileLock
        lock = FileLock({path!r})
        lock.acquire()
        print("held", flush=True)
        time.sleep({seconds})
        lock.release()
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_lock_held_by_another_process_times_out_then_is_taken(tmp_path):
    path = str(tmp_path / "store.json.lock")
    holder = _holder(path, 1.0)
    try:
        lock = locking.FileLock(path)
        with pytest.raises(locking.Timeout) as caught:
            lock.acquire(timeout=0.2)
        assert caught.value.lock_file == path and not lock.is_locked
        lock.acquire(timeout=10)  # the holder lets go after a second
        assert lock.is_locked
        lock.release()
        assert not lock.is_locked and os.path.exists(path)  # never deleted
    finally:
        holder.wait(timeout=10)


def test_two_locks_of_one_path_exclude_each_other_in_one_process(tmp_path):
    path = str(tmp_path / "x.lock")
    with locking.FileLock(path):
        with pytest.raises(locking.Timeout):
            locking.FileLock(path).acquire(timeout=0.05)
    with locking.FileLock(path):
        pass


def test_a_lock_that_is_a_folder_names_the_os_error(tmp_path):
    folder = tmp_path / "busy.lock"
    folder.mkdir()
    with pytest.raises(OSError) as caught:
        locking.FileLock(str(folder)).acquire(timeout=0)
    assert caught.value.errno == errno.EISDIR


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_existing_lock_in_a_read_only_folder_is_still_taken(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "x.lock").write_text("")
    folder.chmod(0o555)
    try:
        with locking.FileLock(str(folder / "x.lock")) as lock:
            assert lock.is_locked
    finally:
        folder.chmod(0o755)


def test_metadata_json_is_one_key_per_line_and_round_trips():
    value = {"files": ["a.csv"], "extra": {"x": [1, 2]}, "n": None, "f": float("inf"), 3: "int key"}
    text = fileio.json_object_lines(value)
    assert json.loads(text) == {**{k: v for k, v in value.items() if k != 3}, "3": "int key"}
    assert text.splitlines()[1] == '  "files": ["a.csv"],' and len(text.splitlines()) == len(value) + 2
    assert json.loads(fileio.json_object_lines({})) == {}


def test_the_quick_package_list_equals_a_full_metadata_parse():
    full = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata["Name"]},
                  key=str.lower)
    assert environment._metadata_freeze().splitlines() == full
    assert environment._name_and_version("Metadata-Version: 2.1\nName: a-b\nVersion: 1.0\n\nName: not me") \
        == ("a-b", "1.0")
    assert environment._name_and_version("") == (None, None)


def test_the_heap_is_frozen_only_when_the_command_owns_its_process(monkeypatch):
    before = gc.get_freeze_count()
    monkeypatch.setattr(common, "whole_process", False)
    common.freeze_imported()  # main([...]) called from Python: never
    assert gc.get_freeze_count() == before
    monkeypatch.setattr(common, "whole_process", True)
    monkeypatch.setenv(common.GC_FREEZE_VARIABLE, "0")
    common.freeze_imported()
    assert gc.get_freeze_count() == before
    monkeypatch.delenv(common.GC_FREEZE_VARIABLE)
    try:
        common.freeze_imported()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def test_a_splice_keeps_ranges_of_the_old_file_and_adds_new_bytes(tmp_path, monkeypatch):
    path = tmp_path / "store.json"
    old = b"".join(f"line {i:05d}\n".encode() for i in range(20000))  # 220 KB: several kernel copies
    path.write_bytes(old)
    fileio.atomic_splice(str(path), [(0, 11), b"NEW\n", (22, len(old))], durable=True)
    assert path.read_bytes() == old[:11] + b"NEW\n" + old[22:]

    def refuse(*args):  # e.g. a file system without copy_file_range: copied by hand
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    fileio.atomic_splice(str(path), [b"head\n", (0, 11)])
    assert path.read_bytes() == b"head\n" + old[:11]
    with pytest.raises(OSError):
        fileio.atomic_splice(str(path), [(0, 10**6)])  # past its end: nothing replaced
    assert path.read_bytes() == b"head\n" + old[:11]
    assert [p.name for p in tmp_path.iterdir()] == ["store.json"]  # no temporary file left


def test_a_store_edited_behind_our_back_is_counted_again(tmp_path):
    from curifactory.store import LAYOUT_SUFFIX, ManagerStore, mapped_store, stamp_of

    store = ManagerStore(str(tmp_path))

    def block(number: int) -> dict:
        return {"reference": f"exp_{number}_2026-01-01-T000000", "experiment_name": "exp", "run_number": number}

    for _ in range(3):
        store.register_run(block, "exp")
    with mapped_store(store.path) as (view, stamp):
        data = view[:]
    assert (tmp_path / ("store.json" + LAYOUT_SUFFIX)).read_text().strip() == stamp == stamp_of(os.stat(store.path))
    # another tool rewrites it framed like ours but over several lines, its highest run last but one
    runs = json.loads(data)
    runs = [runs[0], runs[2], runs[1]]
    (tmp_path / "store.json").write_text("[\n" + ",\n".join(json.dumps(r, indent=1) for r in runs) + "\n]\n")
    assert store.register_run(block, "exp")["run_number"] == 4  # not 3: its layout was checked, not trusted
    assert [r["run_number"] for r in store.load()] == [1, 3, 2, 4]


def test_a_store_reordered_by_hand_still_gives_the_next_number(tmp_path):
    from curifactory.store import ManagerStore, json_lines_list

    store = ManagerStore(str(tmp_path))
    runs = [{"reference": f"exp_{n}_x", "experiment_name": "exp", "run_number": n} for n in (1, 3, 2)]
    (tmp_path / "store.json").write_text(json_lines_list(runs))  # one block a line, not in order, no stamp
    made = store.register_run(lambda n: {"reference": f"exp_{n}_x", "experiment_name": "exp", "run_number": n}, "exp")
    assert made["run_number"] == 4


def test_run_numbers_stay_unique_when_a_block_comes_back_at_the_end(tmp_path):
    from curifactory.store import ManagerStore

    store = ManagerStore(str(tmp_path))

    def block(number: int) -> dict:
        return {"reference": f"exp_{number}_x", "experiment_name": "exp", "run_number": number, "status": "running"}

    first, _ = store.register_run(block, "exp"), store.register_run(block, "exp")
    runs = store.load()
    (tmp_path / "store.json").write_text(json.dumps(runs[1:], indent=1))  # run 1's block deleted by hand
    store.replace_run(dict(first, status="complete"))  # gone: appended after run 2
    assert [r["run_number"] for r in store.load()] == [2, 1]
    assert store.register_run(block, "exp")["run_number"] == 3


def test_a_lock_timeout_says_so_and_names_what_it_waits_for(tmp_path, monkeypatch):
    from curifactory import store as store_module
    from curifactory.errors import StoreError

    path = str(tmp_path / "store.json")
    holder = _holder(path + ".lock", 2.0)
    try:
        monkeypatch.setattr(store_module, "LOCK_TIMEOUT", 0.2)
        with pytest.raises(StoreError) as caught:
            with store_module.locked(path, waiting_for="'curifactory cache gc' to finish"):
                pass
        assert "Waited 0 s for 'curifactory cache gc' to finish" in str(caught.value)
        with pytest.raises(StoreError) as plain:
            with store_module.locked(path):
                pass
        assert "held by another curifactory process" in str(plain.value) and "writable" not in str(plain.value)
    finally:
        holder.wait(timeout=10)


def test_the_run_index_lists_the_newest_runs_of_an_old_experiment_too(tmp_path):
    from curifactory.reporting.index import load_runs
    from curifactory.store import ManagerStore

    store = ManagerStore(str(tmp_path))
    for experiment, count in (("old", 30), ("new", 5)):
        for _ in range(count):
            store.register_run(lambda n, e=experiment: {"reference": f"{e}_{n}_x", "experiment_name": e,
                                                        "run_number": n}, experiment)
    runs, older = load_runs(str(tmp_path), per_experiment=25)
    assert [r["reference"] for r in runs] == [f"old_{n}_x" for n in range(6, 31)] + [f"new_{n}_x" for n in range(1, 6)]
    assert older == {"old": 5}
    # a block written by another tool, its keys in another order: read whole, nothing lost
    text = (tmp_path / "store.json").read_text().replace('{"reference": "new_5_x", "experiment_name": "new"',
                                                         '{"experiment_name": "new", "reference": "new_5_x"')
    (tmp_path / "store.json").write_text(text)
    runs, older = load_runs(str(tmp_path), per_experiment=25)
    assert "new_5_x" in [r["reference"] for r in runs] and older == {"old": 5}
