"""``curifactory cache status|verify|gc``, ``pin``/``unpin``, large-entry checks and malformed
metadata, on real projects run through the real commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import SIDE_HELPER, CliProject

from curifactory import maintenance

EXPERIMENT = """
import os
import curifactory as cf
from dataclasses import dataclass
from curifactory.caching import JsonCacher, PickleCacher

@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1

def get_params():
    return [Params(name=f"s{n}", n=int(n)) for n in os.environ.get("CF_SETS", "1,2").split(",")]

""" + SIDE_HELPER + """
@cf.stage(None, ["x"], [PickleCacher])
def load(record):
    side(f"load:{record.params.n}")
    size = int(os.environ.get("CF_BYTES", "10"))
    return bytes([record.params.n % 256]) * size

@cf.stage(["x"], ["y"], [JsonCacher])
def count(record, x):
    side(f"count:{record.params.n}")
    import time
    time.sleep(float(os.environ.get("CF_SLEEP", "0")))
    return {"length": len(x), "first": x[0], "last": x[-1], "middle": x[len(x) // 2]}

def run(param_sets, manager):
    for p in param_sets:
        count(load(cf.Record(manager, p)))
"""


@pytest.fixture
def cli(tmp_path):
    return CliProject(tmp_path, {"experiments/exp.py": EXPERIMENT})


def run_sets(cli: CliProject, sets: str, *flags: str, **env: str) -> subprocess.CompletedProcess:
    cli_env = dict(cli.env(), CF_SETS=sets, **env)
    result = subprocess.run([sys.executable, "-m", "curifactory", "exp", *flags], cwd=cli.root, env=cli_env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result


def entries(cli: CliProject) -> set[str]:
    return {os.path.basename(e.metadata_path) for e in maintenance.scan(str(cli.root / "data" / "cache"))}


def set_names(cli: CliProject) -> list[str]:
    return sorted(json.loads(open(e.metadata_path).read())["params_name"]
                  for e in maintenance.scan(str(cli.root / "data" / "cache")))


def test_status_counts_entries_per_stage_and_unreferenced_ones(cli):
    run_sets(cli, "1,2")
    out = cli.curifactory("cache", "status")
    assert out.returncode == 0, out.stderr
    assert "4 entries" in out.stdout
    assert any(line.split()[:3] == ["exp", "load", "2"] for line in out.stdout.splitlines())
    assert "referenced by no run in the run log: 0" in out.stdout
    for folder in (cli.root / "data" / "runlog").iterdir():  # forget the runs: every entry is unreferenced
        (folder / "run.json").unlink()
    status = json.loads(cli.curifactory("cache", "status", "--format", "json").stdout)
    assert status["entries"] == 4 and len(status["unreferenced"]) == 4
    assert {g["stage"]: g["entries"] for g in status["groups"]} == {"load": 2, "count": 2}


def test_gc_keeps_the_newest_and_pinned_runs_and_frees_the_rest(cli):
    run_sets(cli, "1")            # run 1: set 1
    run_sets(cli, "2")            # run 2: set 2 (pinned below)
    run_sets(cli, "3")            # run 3: set 3
    run_sets(cli, "4")            # run 4: set 4, the newest
    before = entries(cli)
    assert len(before) == 8
    pinned = cli.curifactory("pin", "exp#2")
    assert pinned.returncode == 0 and "pinned exp_2_" in pinned.stdout
    dry = cli.curifactory("cache", "gc", "--keep-last", "1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove 4 entries" in dry.stdout and entries(cli) == before
    out = cli.curifactory("cache", "gc", "--keep-last", "1")
    assert out.returncode == 0, out.stderr
    assert "removed 4 entries" in out.stdout and "freed" in out.stdout
    assert set_names(cli) == ["s2", "s2", "s4", "s4"]  # pinned and newest
    cli.executed()
    run_sets(cli, "2,4")
    assert cli.executed() == []  # nothing kept was lost
    run_sets(cli, "1")
    assert cli.executed() == ["load:1", "count:1"]  # what gc freed is recomputed
    assert cli.curifactory("unpin", "exp#2").returncode == 0
    again = cli.curifactory("unpin", "exp#2")
    assert again.returncode == 2 and "is not pinned" in again.stderr


def test_gc_keeps_store_full_runs_and_respects_max_size(cli):
    run_sets(cli, "1", "--store-full")
    run_sets(cli, "2")
    run_sets(cli, "3")
    out = cli.curifactory("cache", "gc", "--keep-last", "0")
    assert out.returncode == 0, out.stderr
    assert set_names(cli) == ["s1", "s1"]  # only the --store-full run's entries stay
    run_sets(cli, "5,6,7")
    total = sum(e.size for e in maintenance.scan(str(cli.root / "data" / "cache")))
    out = cli.curifactory("cache", "gc", "--max-size", str(total - 1))
    assert out.returncode == 0, out.stderr
    assert "removed 0 entries" in out.stdout  # the newest run of the experiment and the store-full one stay
    bad = cli.curifactory("cache", "gc", "--max-size", "lots")
    assert bad.returncode == 2 and "is not a size" in bad.stderr and "Traceback" not in bad.stderr


def tamper_large_entry(cli: CliProject, big: str, offset_from_end: int | None = None,
                       offset: int = 0) -> None:
    """Run set 1 with a large ``load`` output, then flip one byte of it (at ``offset``, or
    ``offset_from_end`` bytes before its end) and put its modification time back."""
    run_sets(cli, "1", CF_BYTES=big)
    cli.executed()
    [artifact] = (cli.root / "data" / "cache").glob("*_load_x.pkl")
    stat = artifact.stat()
    with open(artifact, "r+b") as handle:
        handle.seek(stat.st_size - offset_from_end if offset_from_end is not None else offset)
        handle.write(b"\xfe")
    os.utime(artifact, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_verify_finds_a_tampered_large_entry_and_fix_quarantines_it(cli):
    big = str(20 * 1024 * 1024)
    tamper_large_entry(cli, big, offset=10 * 1024 * 1024 + 12345)  # in the middle, outside every sampled block
    # a warm run whose stages are all cached trusts the sample and loads nothing
    run_sets(cli, "1", CF_BYTES=big)
    assert cli.executed() == []
    # a stage about to read the entry hashes it whole first: never handed the tampered bytes
    result = subprocess.run([sys.executable, "-m", "curifactory", "exp", "--overwrite-stage", "count"],
                            cwd=cli.root, env=dict(cli.env(), CF_SETS="1", CF_BYTES=big), capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 1
    assert "does not match the hash" in result.stderr and "cache verify --fix" in result.stderr
    assert "count:1" not in cli.executed()
    out = cli.curifactory("cache", "verify")
    assert out.returncode == 1 and "1 failed" in out.stdout and "_load_x" in out.stdout
    fixed = cli.curifactory("cache", "verify", "--fix")
    assert fixed.returncode == 0 and "moved to" in fixed.stdout
    assert cli.curifactory("cache", "verify").returncode == 0
    run_sets(cli, "1", CF_BYTES=big)
    assert cli.executed() == []  # the entry is gone, but count, which reads it, is cached: not needed
    again = subprocess.run([sys.executable, "-m", "curifactory", "exp", "--overwrite-stage", "count"],
                           cwd=cli.root, env=dict(cli.env(), CF_SETS="1", CF_BYTES=big), capture_output=True,
                           text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert sorted(cli.executed()) == ["count:1", "load:1"]  # count needs it now: recomputed
    assert "quarantined entries: 1" in cli.curifactory("cache", "status").stdout
    assert "1 leftovers" in cli.curifactory("cache", "gc").stdout  # gc empties the quarantine


def test_a_sampled_block_change_is_found_at_lookup(cli):
    big = str(20 * 1024 * 1024)
    tamper_large_entry(cli, big, offset_from_end=100)  # inside the sampled tail
    result = run_sets(cli, "1", CF_BYTES=big)
    assert "sample hash" in result.stderr
    assert cli.executed() == ["load:1"]


@pytest.mark.parametrize("broken", [
    {"files": 5}, [5], None, {"content_hash": "x"}, {"files": ["../../etc/passwd"], "content_hash": "x"},
    {"files": ["a"], "content_hash": 5}, {"code": 7},
])
def test_malformed_metadata_is_a_miss_with_a_warning(cli, broken):
    run_sets(cli, "1")
    cli.executed()
    [meta] = (cli.root / "data" / "cache").glob("*_count_y_metadata.json")
    if isinstance(broken, dict) and "code" in broken:
        broken = {**json.loads(meta.read_text()), **broken}
    meta.write_text(json.dumps(broken))
    result = run_sets(cli, "1")
    assert "not usable" in result.stderr
    assert cli.executed() == ["count:1"]
    assert "broken" in cli.curifactory("cache", "status").stdout


def test_cache_commands_outside_a_project_say_what_to_do(tmp_path):
    result = subprocess.run([sys.executable, "-c", "import sys; from curifactory.cli import curifactory_main; "
                             "sys.exit(curifactory_main())", "cache", "status"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "no cache folder" in result.stderr and "--cache" in result.stderr and "Traceback" not in result.stderr


def test_a_run_waits_while_gc_deletes(cli):
    run_sets(cli, "1")
    cache = str(cli.root / "data" / "cache")
    from filelock import FileLock

    lock = FileLock(maintenance.gc_lock_path(cache) + ".lock")
    with lock:
        started = time.time()
        process = subprocess.Popen([sys.executable, "-m", "curifactory", "exp"], cwd=cli.root,
                                   env=dict(cli.env(), CF_SETS="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(3)
        assert process.poll() is None  # still waiting for the lock
        assert len(list((cli.root / "data" / "runlog").iterdir())) == 1  # not started yet
    process.wait(timeout=120)
    assert process.returncode == 0 and time.time() - started >= 3
    assert len(list((cli.root / "data" / "runlog").iterdir())) == 2


JSON_OUTPUT_NAMED_METADATA = """
import os
import curifactory as cf
from curifactory.caching import JsonCacher

def get_params():
    return [cf.ExperimentParameters(name="a")]

@cf.stage(None, ["model", "model_metadata"], [JsonCacher, JsonCacher])
def fit(record):
    return {"weights": [1, 2]}, {"trained_on": "a"}

def run(param_sets, manager):
    for p in param_sets:
        fit(cf.Record(manager, p))
"""


def test_an_output_named_like_metadata_is_an_entry_not_a_broken_one(tmp_path):
    cli = CliProject(tmp_path, {"experiments/fit.py": JSON_OUTPUT_NAMED_METADATA})
    assert cli.run("fit").returncode == 0
    status = json.loads(cli.curifactory("cache", "status", "--format", "json").stdout)
    assert status["entries"] == 2 and status["broken"] == []
    assert cli.curifactory("cache", "verify", "--fix").returncode == 0
    assert len(list((cli.root / "data" / "cache").glob("*.json"))) == 4  # nothing quarantined


def test_sizes_with_a_byte_unit_parse():
    assert [maintenance.parse_size(t) for t in ("500B", "10 b", "1k", "1.5GiB")] == [
        500, 10, 1024, int(1.5 * 1024**3)]


def test_gc_keeps_every_entry_a_running_run_may_still_read(cli):
    run_sets(cli, "1")
    run_sets(cli, "2")
    cli.executed()
    running = subprocess.Popen([sys.executable, "-m", "curifactory", "exp"], cwd=cli.root,
                               env=dict(cli.env(), CF_SETS="3", CF_SLEEP="60"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and "count:3" not in (cli.side.read_text() if cli.side.exists() else ""):
            time.sleep(0.05)
        out = cli.curifactory("cache", "gc", "--keep-last", "0")
        assert out.returncode == 0, out.stderr
        assert "removed 0 entries" in out.stdout
        assert set_names(cli) == ["s1", "s1", "s2", "s2", "s3"]
    finally:
        running.kill()
        running.wait(timeout=30)
    out = cli.curifactory("cache", "gc", "--keep-last", "0")
    assert "removed 5 entries" in out.stdout  # once it is gone (interrupted), nothing is protected


def test_gc_removes_checkpoints_of_calls_whose_outputs_are_cached(cli):
    run_sets(cli, "1")
    cache = cli.root / "data" / "cache"
    [meta] = cache.glob("*_count_y_metadata.json")
    stem = meta.name[:meta.name.index("_count_") + len("_count")]
    (cache / ".checkpoints").mkdir()
    finished = cache / ".checkpoints" / f"{stem}_0123456789abcdef.pkl"   # left by a killed run
    finished.write_bytes(b"x")
    unfinished = cache / ".checkpoints" / "exp_ffffffffffffffffffffffffffffffff_count_0123456789abcdef.pkl"
    unfinished.write_bytes(b"x")
    out = cli.curifactory("cache", "gc")
    assert out.returncode == 0, out.stderr
    assert not finished.exists() and unfinished.exists()
