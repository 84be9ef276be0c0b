"""``--executor dask`` with the real engine: an in-process ``LocalCluster``, a real ``dask
scheduler`` with two ``dask worker`` processes on 127.0.0.1 (one killed mid-run), and a
remote cache on a real S3 endpoint (moto in server mode, through s3fs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import CliProject, write_project
from test_runsources import s3_endpoint  # noqa: F401  (the moto server fixture)

distributed = pytest.importorskip("distributed")

from curifactory.config import load_settings  # noqa: E402
from curifactory.dask_executor import DaskExecutor  # noqa: E402
from curifactory.experiment import run_experiment  # noqa: E402

GRID = """
import os, time
import curifactory as cf
from dataclasses import dataclass
from curifactory.caching import JsonCacher

@dataclass
class Params(cf.ExperimentParameters):
    a: int = 0

def get_params():
    # 24 records over 16 distinct sets: sets 0-7 appear twice
    count = int(os.environ.get("CF_DISTINCT", "16"))
    return [Params(name=f"r{i}", a=i % count) for i in range(int(os.environ.get("CF_RECORDS", "24")))]

def side(text):
    with open(os.environ["CF_TEST_SIDE"], "a") as f:
        f.write(f"{text} {os.getpid()}\\n")

@cf.stage(None, ["x"], [JsonCacher])
def load(record):
    side(f"load:{record.params.a}")
    time.sleep(float(os.environ.get("CF_SLEEP", "0")))
    return record.params.a * 3

@cf.stage(["x"], ["y"], [JsonCacher])
def square(record, x):
    side(f"square:{record.params.a}")
    if str(record.params.a) == os.environ.get("CF_FAIL"):
        raise ValueError(f"bad value {x}")
    record.log_metric("root", float(x))
    return x * x

@cf.aggregate(["y"], ["total"], [JsonCacher])
def total(record, records, y):
    side("total")
    return sum(y.values())

def run(param_sets, manager):
    records = [square(load(cf.Record(manager, p))) for p in param_sets]
    return total(cf.Record(manager, None), records)
"""


@pytest.fixture(scope="module")
def client():
    """An in-process cluster of two workers (threads of this process)."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    with distributed.Client(cluster) as connected:
        yield connected
    cluster.close()


@pytest.fixture
def grid(tmp_path, monkeypatch):
    root = write_project(tmp_path / "grid", {"experiments/grid.py": GRID})
    side = tmp_path / "side.log"
    monkeypatch.setenv("CF_TEST_SIDE", str(side))
    monkeypatch.chdir(root)
    yield root, side
    for name in [m for m in sys.modules if m.split(".")[0] == "experiments"]:
        del sys.modules[name]


def calls(side: Path) -> Counter:
    lines = side.read_text().split("\n") if side.exists() else []
    side.unlink(missing_ok=True)
    return Counter(line.split()[0] for line in lines if line)


def entries(root: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in (root / "data" / "cache").glob("*.json") if "metadata" not in p.name}


def test_each_distinct_stage_call_runs_once_and_equals_a_serial_run(grid, client, tmp_path):
    root, side = grid
    executor = DaskExecutor(client=client)
    results, manager = run_experiment("grid", settings=load_settings(root), executor=executor)
    assert manager.status == "complete"
    ran = calls(side)
    assert sum(ran.values()) == 16 + 16 + 1 and set(ran.values()) == {1}  # 32 distinct calls and the aggregate
    assert sum(executor.tasks_by_worker.values()) == 33 and len(executor.tasks_by_worker) == 2
    serial_root = write_project(tmp_path / "serial", {"experiments/grid.py": GRID})
    os.chdir(serial_root)
    serial, _ = run_experiment("grid", settings=load_settings(serial_root))
    assert results.state["total"] == serial.state["total"] == sum((a * 3) ** 2 for a in [*range(16), *range(8)])
    assert entries(root) == entries(serial_root)
    from curifactory import load_runs

    os.chdir(root)
    frame = load_runs("grid")
    assert sorted(frame["metrics.root"].dropna()) == sorted(float(a * 3) for a in [*range(16), *range(8)])
    calls(side)
    second = DaskExecutor(client=client)
    run_experiment("grid", settings=load_settings(root), executor=second)
    assert calls(side) == Counter()  # a second run executes nothing
    assert second.tasks_by_worker == Counter()


def test_a_failing_stage_comes_back_with_its_stage_record_and_worker(grid, client, monkeypatch):
    root, side = grid
    monkeypatch.setenv("CF_FAIL", "5")
    with pytest.raises(Exception) as raised:
        run_experiment("grid", settings=load_settings(root), executor=DaskExecutor(client=client))
    text = str(raised.value)
    assert "ValueError: bad value 15" in text and "on the Dask worker" in text and "\n" not in text  # one paragraph
    assert "Traceback" in "".join(getattr(raised.value, "__notes__", []))  # the worker's, for the log and -v
    store = json.loads((root / "data" / "store.json").read_text())
    assert store[-1]["status"] == "error"
    assert "stage 'square'" in store[-1]["error"] and "bad value 15" in store[-1]["error"]
    monkeypatch.delenv("CF_FAIL")
    calls(side)
    run_experiment("grid", settings=load_settings(root), executor=DaskExecutor(client=client))
    ran = calls(side)
    assert ran["square:5"] == 1 and ran["load:5"] == 0  # what was committed before the failure stayed valid


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], log: Path, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


def test_a_real_scheduler_and_two_workers_survive_a_killed_worker(tmp_path):
    cli = CliProject(tmp_path, {"experiments/grid.py": GRID})
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                         "--dashboard-address", ":0"], tmp_path / "scheduler.log", cli.root)]
    try:
        for number in range(2):
            processes.append(_start(["distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1",
                                     "--no-dashboard", "--host", "127.0.0.1"], tmp_path / f"worker{number}.log",
                                    cli.root, dict(cli.env(), CF_SLEEP="0.5")))  # the stages' environment
        with distributed.Client(address, timeout="30s") as probe:
            probe.wait_for_workers(2, timeout=60)
        env = dict(cli.env(), CF_RECORDS="8", CF_DISTINCT="8", CF_SLEEP="0.5")
        run = subprocess.Popen([sys.executable, "-m", "curifactory", "grid", "--executor", "dask", "--scheduler",
                                address], cwd=cli.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        deadline = time.time() + 60
        while time.time() < deadline and not (cli.side.exists() and cli.side.read_text().count("load:") >= 2):
            time.sleep(0.05)
        pids = {int(line.split()[1]) for line in cli.side.read_text().splitlines()}
        assert len(pids) == 2  # both workers took tasks
        victim = next(p for p in processes[1:] if _children_or_self(p.pid) & pids)
        for pid in _children_or_self(victim.pid):
            os.kill(pid, signal.SIGKILL)  # a worker killed mid-run
        stdout, stderr = run.communicate(timeout=180)
        assert run.returncode == 0, stderr
        store = json.loads((cli.root / "data" / "store.json").read_text())
        assert store[-1]["status"] == "complete"
        totals = json.loads(next((cli.root / "data" / "cache").glob("*_total_total.json")).read_text())
        assert totals == sum((a * 3) ** 2 for a in range(8))
        second = run_in(cli, ["grid", "--executor", "dask", "--scheduler", address], env)
        assert second.returncode == 0 and "0 stages executed" in second.stdout + second.stderr
    finally:
        for process in reversed(processes):
            for pid in _children_or_self(process.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            process.wait(timeout=30)


def run_in(cli: CliProject, args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curifactory", *args], cwd=cli.root, env=env,
                          capture_output=True, text=True, timeout=300)


def _children_or_self(pid: int) -> set[int]:
    """``pid`` and its descendants (a dask worker runs its work in a child process)."""
    import psutil

    try:
        return {pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))}
    except psutil.NoSuchProcess:
        return {pid}


def test_a_remote_cache_filled_by_one_project_is_reused_by_an_empty_one(tmp_path, s3_endpoint,  # noqa: F811
                                                                         monkeypatch):
    import s3fs

    for key, value in s3_endpoint.items():
        monkeypatch.setenv(key, value)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint["AWS_ENDPOINT_URL"]})
    fs.mkdir("cf-remote")
    env_extra = dict(s3_endpoint, CF_RECORDS="6", CF_DISTINCT="6")
    first = CliProject(tmp_path / "one", {"experiments/grid.py": GRID})
    (first.root / "curifactory_config.json").write_text(json.dumps({"remote_cache": "s3://cf-remote/cache"}))
    result = run_in(first, ["grid"], dict(first.env(), **env_extra))
    assert result.returncode == 0, result.stderr
    assert sum(calls(first.side).values()) == 6 + 6 + 1
    outputs = [p for p in fs.ls("cf-remote/cache") if p.endswith(("_x.json", "_y.json", "_total.json"))]
    assert len(outputs) == 6 + 6 + 1  # every output entry (and its metadata, and the logged metrics' entries)
    assert all(fs.exists(p[:-len(".json")] + "_metadata.json") for p in outputs)
    second = CliProject(tmp_path / "two", {"experiments/grid.py": GRID})
    (second.root / "curifactory_config.json").write_text(json.dumps({"remote_cache": "s3://cf-remote/cache"}))
    result = run_in(second, ["grid"], dict(second.env(), **env_extra))
    assert result.returncode == 0, result.stderr
    assert calls(second.side) == Counter()  # everything came from the remote
    assert entries(second.root) == entries(first.root)
    # a remote entry whose content was changed is a miss, never a wrong value
    remote = sorted(p for p in fs.ls("cf-remote/cache") if p.endswith("_load_x.json"))[0]
    fs.pipe(remote, b"999")
    shutil.rmtree(second.root / "data" / "cache")
    result = run_in(second, ["grid"], dict(second.env(), **env_extra))
    assert result.returncode == 0, result.stderr
    ran = calls(second.side)
    assert sum(n for call, n in ran.items() if call.startswith("load:")) == 1  # only the tampered one
    assert entries(second.root) == entries(first.root)


def test_without_distributed_the_flag_says_what_to_install(tmp_path):
    cli = CliProject(tmp_path, {"experiments/grid.py": GRID})
    code = ("import sys; sys.modules['distributed'] = None; from curifactory.cli import main; "
            "sys.exit(main())")
    result = subprocess.run([sys.executable, "-c", code, "grid", "--executor", "dask"], cwd=cli.root,
                            env=cli.env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "pip install 'curifactory[dask]'" in result.stderr and "Traceback" not in result.stderr


def test_overwrite_stage_reruns_that_stage_on_the_workers(grid, client):
    root, side = grid
    run_experiment("grid", settings=load_settings(root), executor=DaskExecutor(client=client))
    calls(side)
    executor = DaskExecutor(client=client)
    run_experiment("grid", settings=load_settings(root), executor=executor, stage_overwrites=["square"])
    ran = calls(side)
    assert sum(n for call, n in ran.items() if call.startswith("square:")) == 16
    assert not any(call.startswith("load:") for call in ran)
    assert sum(executor.tasks_by_worker.values()) >= 16


def test_scheduler_without_the_dask_executor_is_a_usage_error(tmp_path):
    cli = CliProject(tmp_path, {"experiments/grid.py": GRID})
    result = run_in(cli, ["grid", "--scheduler", "tcp://127.0.0.1:1"], cli.env())
    assert result.returncode == 2 and "--executor dask" in result.stderr
