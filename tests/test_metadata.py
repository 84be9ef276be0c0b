"""Metadata providers: what a run records about its environment comes from
``cf.metadata_providers`` and the config's ``"metadata"`` section, each provider with a
time limit; a failing or hanging provider records its error and never fails the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import CHAIN_EXPERIMENT, CliProject

SCRIPT = """
import time
import curifactory as cf
import curifactory.metadata
from curifactory.experiment import run_experiment

curifactory.metadata.default_timeout = 4
curifactory.metadata.timeouts["hangs"] = 1

cf.metadata_providers["dataset"] = lambda: {"version": 3, "rows": 1200}
cf.metadata_providers["user"] = lambda: "someone-else"
cf.metadata_providers["hangs"] = lambda: time.sleep(120)
cf.metadata_providers["boom"] = lambda: 1 / 0
cf.metadata_providers["odd"] = lambda: object
del cf.metadata_providers["pip"]
del cf.metadata_providers["git"]
_, manager = run_experiment("chain")
print(manager.get_reference_name())
"""


def _processes_running(command_line: str) -> list[int]:
    """The PIDs whose command line is ``command_line`` (read from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if handle.read().replace(b"\0", b" ").strip() == command_line.encode():
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def _document(project: CliProject, ref: str = "latest") -> dict:
    shown = project.curifactory("show", ref, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_the_built_in_providers_and_the_configs_commands_are_recorded(tmp_path):
    project = CliProject(tmp_path, {"experiments/chain.py": CHAIN_EXPERIMENT})
    subprocess.run(["git", "init", "-q"], cwd=project.root, check=True)
    (project.root / "curifactory_config.json").write_text(json.dumps({"metadata": {
        "disable": ["conda"], "commands": {"k8s": "echo client v1.29", "broken": "echo nope >&2; exit 3",
                                           "slow": "sleep 30"}, "timeout": 1.5}}))
    started = time.monotonic()
    done = project.run("chain")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 20  # the slow command was stopped at its limit
    metadata = _document(project)["metadata"]
    assert set(metadata) == {"git", "python", "platform", "host", "user", "cpus", "pip", "gpu", "k8s", "broken",
                             "slow"}
    assert metadata["git"]["is_repo"] is True and metadata["git"]["commit"] is None  # no commit yet
    assert metadata["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert metadata["python"]["executable"] == sys.executable
    assert isinstance(metadata["cpus"], int) and metadata["cpus"] >= 1
    assert any(line.lower().startswith("pyyaml==") for line in metadata["pip"])
    assert metadata["k8s"] == "client v1.29"
    assert "exited with 3" in metadata["broken"]["error"] and "nope" in metadata["broken"]["error"]
    assert "1.5 s" in metadata["slow"]["error"]
    assert not _processes_running("sleep 30")  # the stopped command's own children were stopped too
    document = _document(project)
    assert document["user"] == metadata["user"] and document["platform"] == metadata["platform"]
    text = project.curifactory("show", "latest").stdout
    assert "k8s=client v1.29" in text and "broken=error: " in text and "pip=" in text


def test_providers_added_removed_and_replaced_in_python(tmp_path):
    project = CliProject(tmp_path, {"experiments/chain.py": CHAIN_EXPERIMENT, "script.py": SCRIPT})
    started = time.monotonic()
    done = subprocess.run([sys.executable, "script.py"], cwd=project.root, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 4  # a hung provider neither blocks the run nor the interpreter's exit
    reference = done.stdout.strip().splitlines()[-1]
    document = _document(project, reference)
    metadata = document["metadata"]
    assert document["status"] == "complete"
    assert metadata["dataset"] == {"version": 3, "rows": 1200}
    assert "pip" not in metadata and "git" not in metadata
    assert document["commit"] is None
    assert metadata["user"] == document["user"] == "someone-else"
    assert metadata["hangs"] == {"error": metadata["hangs"]["error"]} and "took more than 1 s" in \
        metadata["hangs"]["error"]
    assert metadata["boom"]["error"].startswith("ZeroDivisionError")
    assert metadata["odd"] == "<class 'object'>"  # not JSON: kept as its repr


@pytest.mark.parametrize("section, wanted", [
    ([1], '"metadata" must be an object'),
    ({"disable": "conda"}, "metadata.disable must be a list"),
    ({"commands": {"k": ""}}, "metadata.commands must map"),
    ({"timeout": 0}, "metadata.timeout is 0"),
    ({"disabled": ["pip"]}, "with the keys disable, commands and timeout (not 'disabled')"),
])
def test_a_malformed_metadata_section_is_a_usage_error(tmp_path, section, wanted):
    project = CliProject(tmp_path, {"experiments/chain.py": CHAIN_EXPERIMENT})
    (project.root / "curifactory_config.json").write_text(json.dumps({"metadata": section}))
    done = project.run("chain")
    assert done.returncode == 2
    assert wanted in done.stderr and "curifactory_config.json" in done.stderr and "Traceback" not in done.stderr
    assert not (project.root / "data").exists()


FAKE_CONDA = """#!/bin/sh
echo called >> "$CF_TEST_SIDE"
sleep "${FAKE_CONDA_SLEEP:-1}"
echo "name: lab"
echo "dependencies:"
echo "  - numpy"
"""


def test_conda_export_is_kept_until_the_environment_changes_and_stopped_at_its_limit(tmp_path):
    project = CliProject(tmp_path, {"experiments/chain.py": CHAIN_EXPERIMENT})
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "conda").write_text(FAKE_CONDA)
    (tools / "conda").chmod(0o755)
    env = dict(project.env(), PATH=f"{tools}:{os.environ['PATH']}")
    first = subprocess.run([sys.executable, "-m", "curifactory", "chain"], cwd=project.root, env=env,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert _document(project)["metadata"]["conda"].startswith("name: lab")
    started = time.monotonic()
    again = subprocess.run([sys.executable, "-m", "curifactory", "chain"], cwd=project.root, env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and time.monotonic() - started < 10
    assert project.side.read_text().count("called") == 1  # the second run took the kept export
    assert _document(project)["metadata"]["conda"].startswith("name: lab")
    for cached in (project.root / "data").glob("conda_export_cache.json"):
        cached.unlink()
    (project.root / "curifactory_config.json").write_text(json.dumps({"metadata": {"timeout": 1}}))
    slow = subprocess.run([sys.executable, "-m", "curifactory", "chain"], cwd=project.root,
                          env=dict(env, FAKE_CONDA_SLEEP="30"), capture_output=True, text=True, timeout=120)
    assert slow.returncode == 0
    assert "took more than" in _document(project)["metadata"]["conda"]["error"]
    assert not _processes_running("sleep 30")
