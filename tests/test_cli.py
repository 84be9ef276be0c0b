"""The ``experiment`` command on real projects in ``tmp_path``, run as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import CliProject, files_under

EXPERIMENT = '''
"""A two-stage test experiment.

The stages append to the file named by CF_TEST_SIDE, so tests see what executed.
"""
import os
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import JsonCacher


@dataclass
class P(cf.ExperimentParameters):
    a: int = 1
    fail: bool = False


def note(stage, record):
    with open(os.environ["CF_TEST_SIDE"], "a") as handle:
        handle.write(f"{stage}:{record.params.name}\\n")


@cf.stage(None, ["one"], [JsonCacher])
def first(record):
    note("first", record)
    return record.params.a


@cf.stage(["one"], ["two"], [JsonCacher])
def second(record, one):
    note("second", record)
    if record.params.fail:
        raise ValueError("boom " + record.params.name)
    return one * 2


def run(param_sets, manager):
    for param_set in param_sets:
        second(first(cf.Record(manager, param_set)))
'''

PARAMS = {
    "params/y.py": '''
        """Two parameter sets."""
        from experiments.x import P

        def get_params():
            return [P(name="a", a=1), P(name="b", a=2)]
        ''',
    "params/z.py": '''
        from experiments.x import P

        def get_params():
            return [P(name="c", a=3)]
        ''',
    "params/failing.py": '''
        from experiments.x import P

        def get_params():
            return [P(name="ok", a=1), P(name="bad", a=5, fail=True)]
        ''',
    "params/notalist.py": '''
        def get_params():
            return {"a": 1}
        ''',
    "params/notsets.py": '''
        def get_params():
            return [1, 2]
        ''',
    "params/raises.py": '''
        def get_params():
            raise RuntimeError("no sets today")
        ''',
    "experiments/broken.py": '''
        import no_such_module_here

        def run(param_sets, manager):
            pass
        ''',
    "experiments/badrun.py": '''
        from experiments.x import P

        def get_params():
            return [P(name="only")]

        def run(param_sets, manager):
            raise RuntimeError("run() is broken")
        ''',
}


@pytest.fixture
def proj(tmp_path) -> CliProject:
    return CliProject(tmp_path, {"experiments/x.py": EXPERIMENT, **{k: textwrap.dedent(v) for k, v in PARAMS.items()}})


# -- user errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("args, expected", [
    (["nope"], "No experiment 'nope'"),
    (["x", "-p", "nope"], "No parameter file 'nope'"),
    (["x", "-p", "notalist"], "returned a dict"),
    (["x", "-p", "notsets"], "not a parameter set"),
    (["x", "-p", "y", "-n", "zzz"], "'zzz'"),
])
def test_usage_errors_exit_2_with_one_message_and_leave_no_run(proj, args, expected):
    result = proj.run(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ")
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not (proj.root / "data" / "store.json").exists()


@pytest.mark.parametrize("args, expected", [
    (["broken"], "ModuleNotFoundError: No module named 'no_such_module_here'"),
    (["x", "-p", "raises"], "RuntimeError: no sets today"),
    (["x", "-p", "raises", "--hashes"], "RuntimeError: no sets today"),
])
def test_errors_in_project_code_before_the_run_exit_1(proj, args, expected):
    result = proj.run(*args)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: loading experiment '{args[0]}'")
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (proj.root / "data" / "store.json").exists()


def test_a_failing_run_function_is_stored_as_error(proj):
    result = proj.run("badrun")
    assert result.returncode == 1
    assert "error: experiment 'badrun' failed: RuntimeError: run() is broken" in result.stderr
    assert "Traceback" not in result.stderr
    assert proj.store()[-1]["status"] == "error"


def test_a_bad_flag_is_a_usage_error(proj):
    result = proj.run("x", "--parallel", "zero")
    assert result.returncode == 2
    assert "--parallel" in result.stderr


# -- running -----------------------------------------------------------------------------------


def test_a_run_then_a_fully_cached_run(proj):
    first = proj.run("x", "-p", "y")
    assert first.returncode == 0, first.stderr
    assert sorted(proj.executed()) == ["first:a", "first:b", "second:a", "second:b"]
    assert "done: 4 stages executed, 0 cached" in first.stdout
    reference = proj.store()[-1]["reference"]
    assert f"report: reports/{reference}/index.html" in first.stdout
    assert (proj.root / "reports" / reference / "index.html").exists()
    assert f"log: logs/{reference}.log" in first.stdout
    assert "Stage 'first'" in (proj.root / "logs" / f"{reference}.log").read_text()

    second = proj.run("x", "-p", "y")
    assert second.returncode == 0, second.stderr
    assert proj.executed() == []
    assert "done: 0 stages executed, 4 cached" in second.stdout
    runs = proj.store()
    assert [r["status"] for r in runs] == ["complete", "complete"]
    assert runs[-1]["cli"] == "experiment x -p y"


def test_dry_runs_the_stages_but_writes_nothing(proj):
    before = files_under(proj.root)
    result = proj.run("x", "-p", "y", "--dry")
    assert result.returncode == 0, result.stderr
    assert sorted(proj.executed()) == ["first:a", "first:b", "second:a", "second:b"]
    assert files_under(proj.root) == before


def test_overwrite_stage_reruns_the_stages_downstream(proj):
    assert proj.run("x", "-p", "y").returncode == 0
    proj.executed()
    result = proj.run("x", "-p", "y", "--overwrite-stage", "first")
    assert result.returncode == 0, result.stderr
    assert sorted(proj.executed()) == ["first:a", "first:b", "second:a", "second:b"]
    unknown = proj.run("x", "-p", "y", "--overwrite-stage", "nope", "--no-report", "--no-log")
    assert unknown.returncode == 0
    assert "--overwrite-stage nope" in unknown.stderr and "first, second" in unknown.stderr


def test_a_failing_stage_is_stored_as_error_and_earlier_outputs_stay_cached(proj):
    result = proj.run("x", "-p", "failing")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    for part in ("error: stage 'second'", "record 1:bad", "parameter set 'bad'", "ValueError: boom bad", "-v",
                 "traceback is in the log"):
        assert part in message
    run = proj.store()[-1]
    assert run["status"] == "error" and "boom bad" in run["error"]
    assert run["params"]["failing"][1][1] in message  # the hash of 'bad'
    log = (proj.root / "logs" / f"{run['reference']}.log").read_text()
    assert "boom bad" in log and "Traceback" in log and 'raise ValueError("boom "' in log  # always in the log
    report = (proj.root / "reports" / run["reference"] / "index.html").read_text()
    assert "Traceback" in report and "raise ValueError(&#34;boom &#34;" in report
    assert sorted(proj.executed()) == ["first:bad", "first:ok", "second:bad", "second:ok"]

    again = proj.run("x", "-p", "failing", "-v", "--log-errors")
    assert again.returncode == 1
    assert "Traceback" in again.stderr
    assert proj.executed() == ["second:bad"]  # everything before the failure came from the cache
    log = (proj.root / "logs" / f"{proj.store()[-1]['reference']}.log").read_text()
    assert "Traceback" in log


def test_names_and_indices_select_parameter_sets(proj):
    assert proj.run("x", "-p", "y", "-n", "b", "--dry").returncode == 0
    assert sorted(proj.executed()) == ["first:b", "second:b"]
    assert proj.run("x", "-p", "y", "--indices", "0-1", "--dry").returncode == 0
    assert sorted(proj.executed()) == ["first:a", "second:a"]
    result = proj.run("x", "-p", "y", "-p", "z", "--global-indices", "1-3", "--hashes")
    assert result.returncode == 0
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["b", "c"]  # HASH NAME lines


def test_notes_quiet_and_no_log(proj):
    result = proj.run("x", "-p", "y", "--notes", "--quiet", "--no-log")
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["report"]
    assert proj.store()[-1]["notes"] == ""
    assert not (proj.root / "logs").exists()
    noted = proj.run("x", "-p", "y", "--notes", "a note", "--no-report")
    assert noted.returncode == 0
    assert proj.store()[-1]["notes"] == "a note"
    assert "report:" not in noted.stdout


def test_parallel_runs_every_stage_once_and_stores_one_run(proj):
    result = proj.run("x", "-p", "y", "-p", "z", "--parallel", "2", "--no-report")
    assert result.returncode == 0, result.stderr
    assert sorted(proj.executed()) == ["first:a", "first:b", "first:c", "second:a", "second:b", "second:c"]
    assert len(proj.store()) == 1


# -- inspecting --------------------------------------------------------------------------------


def test_map_shows_what_runs_and_why(proj):
    fresh = proj.run("x", "-p", "y", "--map")
    assert fresh.returncode == 0, fresh.stderr
    assert "4 stage calls, 4 to run, 0 cached" in fresh.stdout
    assert "record 0  a" in fresh.stdout and "an output is not cached" in fresh.stdout
    assert proj.run("x", "-p", "y", "--no-report").returncode == 0
    cached = proj.run("x", "-p", "y", "--map", "--overwrite-stage", "second", "-n", "a")
    lines = [line.split() for line in cached.stdout.splitlines()]
    assert ["first", "cached"] in lines
    assert ["second", "run", "overwrite", "applies"] in lines
    assert "record 1" not in cached.stdout
    upstream = proj.run("x", "-p", "y", "--map", "--overwrite-stage", "first", "-n", "a")
    assert "second  run     an upstream stage reruns ('first')" in upstream.stdout
    (proj.root / "data" / "cache").rename(proj.root / "data" / "moved")
    missing = proj.run("x", "-p", "y", "--map", "-n", "a")
    assert "first   run     an output is not cached ('one')" in missing.stdout


def test_paths_hashes_and_print_params_print_what_scripts_parse(proj):
    assert proj.run("x", "-p", "y", "--no-report", "--no-log").returncode == 0
    hashes = proj.run("x", "-p", "y", "--hashes")
    assert hashes.returncode == 0, hashes.stderr
    pairs = [line.split() for line in hashes.stdout.splitlines()]  # HASH NAME, as 0.20 prints them
    stored = {name: hash_ for name, hash_ in proj.store()[-1]["params"]["y"]}
    assert pairs == [[stored["a"], "a"], [stored["b"], "b"]]
    shown = json.loads(proj.run("x", "-p", "y", "--print-params", "b").stdout)
    assert shown == {stored["b"]: {"name": "b", "a": "2", "fail": "False"}}
    assert json.loads(proj.run("x", "-p", "y", "--print-params", stored["b"][:8]).stdout) == shown
    assert set(json.loads(proj.run("x", "-p", "y", "--print-params").stdout)) == set(stored.values())
    # a set known only to the registry (an earlier run's) is found by its hash
    assert json.loads(proj.run("x", "-p", "y", "-n", "a", "--print-params", stored["b"][:6]).stdout) == shown
    missing = proj.run("x", "-p", "y", "--print-params", "nothing")
    assert missing.returncode == 2 and "nothing" in missing.stderr
    paths = proj.run("x", "-p", "y", "--paths").stdout.splitlines()
    assert len(paths) == 8 and all((proj.root / p).is_file() for p in paths)  # 4 entries: file + metadata
    assert sum(p.endswith("_metadata.json") for p in paths) == 4
    subprocess.run(["xargs", "rm", "-f"], input="\n".join(paths), text=True, cwd=proj.root, check=True)
    assert proj.run("x", "-p", "y", "--map").stdout.count("(to be written)") == 4
    again = proj.run("x", "-p", "y", "--no-report", "--no-log")
    mapped = proj.run("x", "-p", "y", "--map").stdout
    assert mapped.count(f"(cached, from run {proj.store()[-1]['reference']})") == 4


def test_inspecting_writes_nothing(proj):
    before = files_under(proj.root)
    assert proj.run("x", "-p", "y", "--map", "--paths", "--hashes", "--print-params").returncode == 0
    assert files_under(proj.root) == before
    assert proj.executed() == []


def test_store_full_prints_and_honours_the_reproduce_line(proj):
    import shutil

    first = proj.run("x", "-p", "y", "--store-full", "--plain")
    assert first.returncode == 0, first.stderr
    line = [ln for ln in first.stdout.splitlines() if ln.startswith("reproduce: ")][0][len("reproduce: "):]
    assert line == proj.store()[-1]["reproduce"]
    assert line.startswith("experiment x -p y --cache data/runs/") and line.endswith(" --dry-cache")
    run_dir = (proj.root / line.split("--cache ")[1].split(" ")[0]).parent
    assert (run_dir / "run_info.json").is_file() and (run_dir / "report" / "index.html").is_file()
    assert (run_dir / f"{run_dir.name}.log").is_file(), "the run's log is in its folder"
    proj.executed()
    shutil.rmtree(proj.root / "data" / "cache")
    before = {str(p): p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    again = proj.run(*line.split()[1:], "--plain")
    assert again.returncode == 0, again.stderr
    assert proj.executed() == [] and "0 stages executed, 4 cached" in again.stdout
    assert {str(p): p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before
    assert len(list(run_dir.parent.iterdir())) == 1, "the reproduction made no run folder of its own"
    assert not (proj.root / "data" / "cache").exists()


SLOW = '''
"""Sleeps in its second stage, so it can be killed while running."""
import time
from dataclasses import dataclass
import curifactory as cf
from curifactory.caching import JsonCacher

@dataclass
class P(cf.ExperimentParameters):
    a: int = 1

@cf.stage(None, ["one"], [JsonCacher])
def quick(record):
    return 1

@cf.stage(["one"], ["two"], [JsonCacher])
def slow(record, one):
    print("slow stage started", flush=True)
    time.sleep(60)
    return 2

def get_params():
    return [P(name="only")]

def run(param_sets, manager):
    for p in param_sets:
        slow(quick(cf.Record(manager, p)))
'''


def test_a_terminated_run_is_stored_as_error_and_keeps_its_cache(proj):
    import signal
    import time

    (proj.root / "experiments" / "slow.py").write_text(SLOW)
    env = dict(os.environ, CF_TEST_SIDE=str(proj.side))
    process = subprocess.Popen([sys.executable, "-m", "curifactory", "slow", "--plain"], cwd=proj.root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.time() + 30
    for line in process.stdout:
        if "slow stage started" in line or time.time() > deadline:
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "Traceback" not in err
    run = proj.store()[-1]
    assert run["status"] == "error"
    cached = list((proj.root / "data" / "cache").glob("*_quick_one.json"))
    assert len(cached) == 1 and not list((proj.root / "data" / "cache").glob("*_slow_*"))


def test_corrupt_entry_is_reported_once_and_recomputed(proj):
    assert proj.run("x", "-p", "y", "--plain").returncode == 0
    proj.executed()
    for path in (proj.root / "data" / "cache").glob("x_*_second_two.json"):
        path.write_text("{broken")
    result = proj.run("x", "-p", "y", "--plain")
    assert result.returncode == 0
    assert result.stderr.count("is not usable") == 2 and "Traceback" not in result.stderr
    assert sorted(proj.executed()) == ["second:a", "second:b"]


def test_non_zero_rank_writes_nothing(proj):
    before = files_under(proj.root)
    env = dict(os.environ, CF_TEST_SIDE=str(proj.side), LOCAL_RANK="1")
    result = subprocess.run([sys.executable, "-m", "curifactory", "x", "-p", "y", "--plain"], cwd=proj.root,
                            env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(proj.executed()) == ["first:a", "first:b", "second:a", "second:b"]
    assert {f for f in files_under(proj.root) - before if "__pycache__" not in f} == set()


def test_paths_never_prints_a_name_a_tampered_metadata_file_points_outside(proj):
    assert proj.run("x", "-p", "y", "--no-report", "--no-log").returncode == 0
    meta = sorted((proj.root / "data" / "cache").glob("*_metadata.json"))[0]
    document = json.loads(meta.read_text())
    document["files"] = ["../../outside.txt"]
    meta.write_text(json.dumps(document))
    paths = proj.run("x", "-p", "y", "--paths").stdout.splitlines()
    assert len(paths) == 8 and not any("outside" in p for p in paths)
    assert all(p.startswith("data/cache/") for p in paths)


def test_parallel_safe_caches_but_writes_no_store_entry_registry_or_report(proj):
    assert proj.run("x", "-p", "y", "--no-report", "--no-log").returncode == 0
    store_before = (proj.root / "data" / "store.json").read_bytes()
    registry_before = (proj.root / "data" / "params_registry.json").read_bytes()
    reports_before = sorted(p.name for p in (proj.root / "reports").iterdir()) if (proj.root / "reports").exists() else []
    proj.executed()
    result = proj.run("x", "-p", "z", "--parallel-safe")  # sets never run before
    assert result.returncode == 0, result.stderr
    assert sorted(proj.executed()) == ["first:c", "second:c"]
    assert (proj.root / "data" / "store.json").read_bytes() == store_before
    assert (proj.root / "data" / "params_registry.json").read_bytes() == registry_before
    reports_after = sorted(p.name for p in (proj.root / "reports").iterdir()) if (proj.root / "reports").exists() else []
    assert reports_after == reports_before and "report:" not in result.stdout
    assert list((proj.root / "data" / "cache" / ".locks").glob("*.lock"))  # each artifact computed under a lock
    again = proj.run("x", "-p", "z")  # the values it cached are used
    assert again.returncode == 0 and proj.executed() == []
