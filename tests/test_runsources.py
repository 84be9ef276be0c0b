"""Runs from anywhere: ``cf.load_runs(store=...)`` and ``curifactory runs --store`` read other
project folders, several folders, a glob, and an S3 bucket (a real moto server on
127.0.0.1, read through s3fs), without needing those projects' SQLite index."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import curifactory as cf
from curifactory.errors import RunNotFoundError, UsageError
from curifactory.runindex import INDEX_NAME

from conftest import CHAIN_EXPERIMENT, CURIFACTORY, CliProject


def _project(tmp_path: Path, name: str, runs: int) -> CliProject:
    project = CliProject(tmp_path / name, {"experiments/chain.py": CHAIN_EXPERIMENT})
    for number in range(runs):
        done = project.run("chain", "--no-report", "--tag", f"project={name}", "--tag", f"n={number}")
        assert done.returncode == 0, done.stderr
    return project


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory):
    root = tmp_path_factory.mktemp("projects")
    alpha = _project(root, "alpha", 2)
    time.sleep(1.1)  # references hold the start second: the two projects' first runs differ
    return alpha, _project(root, "beta", 1)


def test_runs_are_read_from_other_project_folders_several_and_a_glob(two_projects, tmp_path):
    alpha, beta = two_projects
    (alpha.root / "data" / INDEX_NAME).unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        (alpha.root / "data" / (INDEX_NAME + suffix)).unlink(missing_ok=True)
    before = sorted(p.name for p in (alpha.root / "data").iterdir())
    by_project = cf.load_runs(store=alpha.root, level="run")  # a project folder: its data/ is found
    assert len(by_project) == 2 and set(by_project["tags.project"]) == {"alpha"}
    assert sorted(p.name for p in (alpha.root / "data").iterdir()) == before  # indexed in memory: nothing written
    both = cf.load_runs(store=[alpha.root / "data", beta.root], level="run")
    assert sorted(both["tags.project"]) == ["alpha", "alpha", "beta"]
    assert set(both["store"]) == {str(alpha.root / "data"), str(beta.root)}
    assert list(both["start"]) == sorted(both["start"])
    globbed = cf.load_runs("chain", store=str(alpha.root.parent.parent / "*" / "proj" / "data"))
    assert len(globbed) == 3 * 3  # three runs of three records
    reference = beta.curifactory("runs", "--format", "json", "--level", "run")
    beta_ref = json.loads(reference.stdout)[0]["reference"]
    assert cf.load_run(beta_ref, store=[alpha.root, beta.root])["tags"]["project"] == "beta"
    twin = alpha.root.parent.parent / "twin"
    shutil.copytree(beta.root, twin)  # the same run in two stores: which one is meant is asked
    with pytest.raises(RunNotFoundError, match="is in 2 of the stores read"):
        cf.load_run(beta_ref, store=[beta.root, twin])
    shutil.rmtree(twin)
    listed = alpha.curifactory("runs", "--store", str(beta.root), "--store", str(alpha.root), "--level", "run",
                               "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(row["tags.project"] for row in json.loads(listed.stdout)) == ["alpha", "alpha", "beta"]
    shown = alpha.curifactory("show", beta_ref, "--store", str(beta.root))
    assert shown.returncode == 0 and "project=beta" in shown.stdout


def test_a_store_that_names_nothing_is_a_clear_error(two_projects, tmp_path):
    alpha, beta = two_projects
    (tmp_path / "empty").mkdir()
    for wrong in (tmp_path / "empty", alpha.root / "curifactory_config.json"):
        with pytest.raises(UsageError, match="no run log under|it is a file"):
            cf.load_runs(store=wrong)
    runlog_folder = cf.load_runs(store=alpha.root / "data" / "runlog", level="run")  # the run log itself
    assert len(runlog_folder) == 2
    twice = cf.load_runs(store=[alpha.root, alpha.root / "data", str(alpha.root.parent / "*")], level="run")
    assert len(twice) == 2 and "store" not in twice.columns  # one folder named three ways is read once
    newest = cf.find_run("chain#latest", store=[alpha.root, beta.root])  # by time, not by run number
    assert newest == cf.find_run("latest", store=beta.root)
    with pytest.raises(RunNotFoundError, match=r"names 2 runs: .*\(in .*alpha.*read one store"):
        cf.find_run("chain#1", store=[alpha.root, beta.root])
    with pytest.raises(UsageError, match="does not exist"):
        cf.load_runs(store=tmp_path / "nowhere")
    with pytest.raises(UsageError, match="matches no folder"):
        cf.load_runs(store=str(tmp_path / "no*match"))
    with pytest.raises(RunNotFoundError):
        cf.load_run("nope", store=alpha.root)
    done = alpha.curifactory("runs", "--store", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """A real S3 endpoint: moto in server mode on 127.0.0.1, stopped by PID at the end."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        os.kill(server.pid, signal.SIGKILL)
        pytest.fail(f"moto server did not start: {log.read_text()}")
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": url}
    yield env
    os.kill(server.pid, signal.SIGTERM)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        os.kill(server.pid, signal.SIGKILL)


def test_runs_are_read_from_an_s3_bucket(two_projects, s3_endpoint, tmp_path, monkeypatch):
    import s3fs

    alpha, beta = two_projects
    for key, value in s3_endpoint.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint["AWS_ENDPOINT_URL"]})
    fs.mkdir("lab-runs")
    fs.put(str(alpha.root / "data" / "runlog"), "lab-runs/alpha/data/runlog", recursive=True)
    fs.invalidate_cache()
    url = "s3://lab-runs/alpha/data"
    remote = cf.load_runs(store=url, level="run")
    local = cf.load_runs(store=alpha.root, level="run")
    assert list(remote["reference"]) == list(local["reference"]) and list(remote["tags.n"]) == ["0", "1"]
    first = remote["reference"][0]
    assert cf.load_run(first, store=url)["records"][1]["params"] == {"n": 2}
    assert list(cf.load_runs(store="s3://lab-runs/alpha", level="run")["reference"]) == list(local["reference"])
    with pytest.raises(UsageError, match="it has no runlog/ folder"):
        cf.load_runs(store="s3://lab-runs")
    mirror = next((tmp_path / "cache" / "curifactory" / "remote").iterdir())
    copied = {p: p.stat().st_mtime_ns for p in mirror.rglob("run.json")}
    cf.load_runs(store=url)
    assert {p: p.stat().st_mtime_ns for p in mirror.rglob("run.json")} == copied  # unchanged: nothing copied again
    # a run deleted remotely is gone on the next read; a new one appears
    fs.rm(f"lab-runs/alpha/data/runlog/{first}", recursive=True)
    beta_ref = next((beta.root / "data" / "runlog").iterdir()).name
    fs.put(str(beta.root / "data" / "runlog" / beta_ref), f"lab-runs/alpha/data/runlog/{beta_ref}", recursive=True)
    fs.invalidate_cache()
    assert list(cf.load_runs(store=url, level="run")["reference"]) == [remote["reference"][1], beta_ref]
    fsspec_env = dict(os.environ)
    fsspec_env["FSSPEC_S3_ENDPOINT_URL"] = fsspec_env.pop("AWS_ENDPOINT_URL")  # fsspec's own config works too
    listed = subprocess.run([sys.executable, "-c", CURIFACTORY, "runs", "--store", url, "--format", "json"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=fsspec_env)
    assert listed.returncode == 0, listed.stderr
    assert {row["reference"] for row in json.loads(listed.stdout)} == {remote["reference"][1], beta_ref}
    with pytest.raises(UsageError, match="Could not list the runs under s3://no-such-bucket"):
        cf.load_runs(store="s3://no-such-bucket/data")
