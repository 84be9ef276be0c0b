"""Atomic writes and the sweep of temporary files left by killed saves."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from curifactory import fileio


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_replacing_commits_on_success_and_discards_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with fileio.replacing(target) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    fileio.atomic_write_json(target, {"a": 1}, durable=True)
    assert target.read_text().strip().startswith("{") and os.listdir(tmp_path) == ["out.txt"]


def test_sweep_removes_dead_local_temps_and_old_foreign_ones(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    host = fileio._HOST
    other = "zzzz" if host != "zzzz" else "yyyy"
    dead = sub / f"{fileio.TEMP_MARK}{dead_pid()}-{host}-1abc-x.pkl"
    alive = tmp_path / f"{fileio.TEMP_MARK}{os.getppid()}-{host}-2abc-y.pkl"
    fresh_foreign = tmp_path / f"{fileio.TEMP_MARK}123-{other}-3abc-z.pkl"
    old_foreign = tmp_path / f"{fileio.TEMP_MARK}123-{other}-4abc-w.pkl"
    for path in (dead, alive, fresh_foreign, old_foreign):
        path.write_text("partial")
    os.utime(old_foreign, (0, 0))
    removed = fileio.remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted([str(dead), str(old_foreign)])
    assert alive.exists() and fresh_foreign.exists()
