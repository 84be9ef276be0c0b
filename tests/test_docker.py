"""``experiment --docker``: the run's build context, and the build handed to a ``docker`` on PATH.

The ``docker`` here is a script that records its arguments and working folder (no daemon
runs on the test machines); what it would build from is checked as files.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from conftest import CHAIN_EXPERIMENT, CliProject

FAKE_DOCKER = """#!/bin/sh
printf '%s\\n' "$PWD" "$@" > "{record}"
exit {code}
"""


def _fake_docker(folder, code: int = 0):
    folder.mkdir(exist_ok=True)
    script = folder / "docker"
    record = folder / "calls.txt"
    script.write_text(FAKE_DOCKER.format(record=record, code=code))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return record


def _run(project: CliProject, bin_folder, *args: str):
    env = dict(project.env(), PATH=f"{bin_folder}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([sys.executable, "-m", "curifactory", *args], cwd=project.root, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180)


def test_docker_writes_the_context_and_builds(tmp_path):
    project = CliProject(tmp_path, {"experiments/chain.py": CHAIN_EXPERIMENT})
    record = _fake_docker(tmp_path / "bin")
    result = _run(project, tmp_path / "bin", "chain", "--docker")
    assert result.returncode == 0, result.stderr
    reference = project.store()[-1]["reference"]
    run_folder = project.root / "data" / "runs" / reference
    context = run_folder / "docker"
    # the cache entries this run used are in the run folder, which the context keeps
    artifacts = {p.name for p in (run_folder / "artifacts").iterdir()}
    assert any(name.endswith("_total_total.json") for name in artifacts)
    dockerfile = (context / "Dockerfile").read_text()
    assert f"COPY data/runs/{reference}/docker/curifactory /opt/curifactory/curifactory" in dockerfile
    command = json.loads(dockerfile.split("CMD ", 1)[1].splitlines()[0])
    assert command == ["chain", "--cache", f"data/runs/{reference}/artifacts", "--dry-cache"]
    ignored = (context / "Dockerfile.dockerignore").read_text().split()
    assert "data" in ignored and f"!data/runs/{reference}" in ignored and ".git" in ignored
    assert (context / "curifactory" / "cli" / "main.py").exists()
    assert not list((context / "curifactory").rglob("__pycache__"))
    requirements = (context / "requirements.txt").read_text().lower()
    assert "pandas==" in requirements and "curifactory" not in requirements
    cwd, *arguments = record.read_text().splitlines()
    version = f"{reference.split('_')[1]}_{reference.split('_')[2][:10]}"
    assert cwd == str(project.root)
    assert arguments == ["build", "-f", f"data/runs/{reference}/docker/Dockerfile", "--tag", f"chain:{version}",
                         "--tag", "chain", "."]
    assert f"docker: built chain:{version}" in result.stdout
    assert (run_folder / "requirements.txt").exists()  # --docker implies --store-full


def test_a_failed_build_is_the_exit_code_and_no_docker_is_a_hint(tmp_path):
    project = CliProject(tmp_path, {"experiments/chain.py": CHAIN_EXPERIMENT})
    _fake_docker(tmp_path / "bin", code=3)
    failed = _run(project, tmp_path / "bin", "chain", "--docker")
    assert failed.returncode == 3 and "the build failed (exit 3)" in failed.stderr
    empty = tmp_path / "nodocker"
    empty.mkdir()
    env = dict(project.env(), PATH=str(empty) + os.pathsep + os.path.dirname(sys.executable))
    hint = subprocess.run([sys.executable, "-m", "curifactory", "chain", "--docker"], cwd=project.root, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180)
    assert hint.returncode == 0, hint.stderr
    assert "docker: not on PATH; build the image with: docker build -f data/runs/" in hint.stdout
    dry = _run(project, tmp_path / "bin", "chain", "--docker", "--dry")
    assert dry.returncode == 0 and "docker" not in dry.stdout


def test_the_context_leaves_out_the_configured_folders_and_needs_the_run_folder_inside(tmp_path):
    project = CliProject(tmp_path, {"experiments/chain.py": CHAIN_EXPERIMENT})
    config = {"manager_cache_path": "store", "cache_path": "store/cache", "runs_path": "store/runs",
              "logs_path": "mylogs", "reports_path": "out/reports", "notebooks_path": "nb"}
    (project.root / "curifactory_config.json").write_text(json.dumps(config))
    record = _fake_docker(tmp_path / "bin")
    result = _run(project, tmp_path / "bin", "chain", "--docker")
    assert result.returncode == 0, result.stderr
    reference = json.loads((project.root / "store" / "store.json").read_text())[-1]["reference"]
    context = project.root / "store" / "runs" / reference / "docker"
    ignored = (context / "Dockerfile.dockerignore").read_text().split()
    assert ignored == [".git", "**/__pycache__", "*.pyc", ".venv", "venv", "store", "mylogs", "out/reports",
                       "nb/experiments", f"!store/runs/{reference}"]
    assert f"COPY store/runs/{reference}/docker/curifactory" in (context / "Dockerfile").read_text()
    assert record.read_text().splitlines()[3] == f"store/runs/{reference}/docker/Dockerfile"
    # a run folder outside the project cannot be copied into the image: a clear error, the run kept
    outside = tmp_path / "elsewhere"
    (project.root / "curifactory_config.json").write_text(json.dumps(dict(config, runs_path=str(outside))))
    refused = _run(project, tmp_path / "bin", "chain", "--docker")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    message = " ".join(refused.stderr.split())
    assert "is outside the project folder" in message and "Set runs_path" in message
    assert any(outside.iterdir())  # the run folder was written all the same


def test_init_leaves_the_configured_folders_out_of_the_image(tmp_path):
    from curifactory.dockerfiles import write_docker_folder

    assert write_docker_folder(str(tmp_path), ["results", "results/cache", "/abs/elsewhere", "lg"]) == [
        "docker/dockerfile", "docker/dockerfile.dockerignore"]
    ignored = (tmp_path / "docker" / "dockerfile.dockerignore").read_text().split()
    assert ignored[-2:] == ["results", "lg"] and "/abs/elsewhere" not in ignored
