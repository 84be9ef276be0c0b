"""``experiment ls``, ``curifactory init``, ``--version`` and shell completion."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import curifactory
from curifactory.config import DEFAULTS

from conftest import CURIFACTORY


def experiment(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curifactory", *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)


def curifactory_cmd(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CURIFACTORY, *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)


def test_ls_lists_docstrings_and_flags_a_module_that_fails_to_import(tmp_path):
    (tmp_path / "curifactory_config.json").write_text("{}")
    (tmp_path / "experiments").mkdir()
    (tmp_path / "params").mkdir()
    (tmp_path / "experiments" / "good.py").write_text('"""Fits a line.\n\nDetails."""\nimport no_such_module\n\n'
                                                      'def run(param_sets, manager):\n    pass\n')
    (tmp_path / "experiments" / "broken.py").write_text('"""Broken."""\ndef run(:\n')
    (tmp_path / "experiments" / "norun.py").write_text('"""Has no run."""\n')
    (tmp_path / "experiments" / "own.py").write_text('"""Own sets."""\nimport curifactory as cf\n\ndef get_params():'
                                                     '\n    return [cf.ExperimentParameters(name="a")]\n\n'
                                                     'def run(param_sets, manager):\n    pass\n')
    (tmp_path / "params" / "grid.py").write_text('"""A grid of sets."""\ndef get_params():\n    return []\n')
    result = experiment(tmp_path, "ls")
    assert result.returncode == 0, result.stderr
    experiments, params = result.stdout.split("\n\n")
    found = {name: text for name, text in (line.split(None, 1) for line in experiments.splitlines()[1:])}
    assert found["good"] == "(fails to import: ModuleNotFoundError: No module named 'no_such_module')"
    assert "cannot be parsed" in found["broken"]
    assert "no run()" in found["norun"] and found["own"] == "Own sets."
    files = {name: text for name, text in (line.split(None, 1) for line in params.splitlines()[1:])}
    assert files == {"grid": "A grid of sets.", "own": "Own sets. (the experiment's own get_params())"}
    names = experiment(tmp_path, "ls", "--names", "experiments")  # for shell completion: nothing imported
    assert names.stdout.split() == ["broken", "good", "norun", "own"]


def test_version():
    expected = f"curifactory {curifactory.__version__}"
    assert experiment(Path.cwd(), "--version").stdout.strip() == expected
    assert curifactory_cmd(Path.cwd(), "--version").stdout.strip() == expected


def test_init_sets_up_an_empty_folder(tmp_path):
    (tmp_path / ".gitignore").write_text("logs\n*.pyc")
    result = curifactory_cmd(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "curifactory_config.json").read_text()) == DEFAULTS
    for folder in ("experiments", "params", "data/cache", "data/runs", "logs", "notebooks", "reports"):
        assert (tmp_path / folder).is_dir(), folder
    assert (tmp_path / "experiments" / "__init__.py").exists()
    assert (tmp_path / "reports" / "style.css").stat().st_size > 0
    assert (tmp_path / ".gitignore").read_text().splitlines() == ["logs", "*.pyc", "", "# curifactory paths",
                                                                  "data/", "reports/"]
    # the project works at once
    assert experiment(tmp_path, "ls").returncode == 0


def test_init_never_overwrites_an_existing_config(tmp_path):
    (tmp_path / "curifactory_config.json").write_text('{"cache_path": "elsewhere"}')
    result = curifactory_cmd(tmp_path, "init", "--yes")
    assert result.returncode == 0, result.stderr
    assert "kept the existing" in result.stdout
    assert json.loads((tmp_path / "curifactory_config.json").read_text()) == {"cache_path": "elsewhere"}
    assert (tmp_path / "elsewhere").is_dir()
    again = curifactory_cmd(tmp_path, "init", "--yes")
    assert "added to .gitignore" not in again.stdout
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert len(lines) == len(set(lines))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts(tmp_path, shell):
    result = curifactory_cmd(tmp_path, "completion", shell)
    assert result.returncode == 0
    assert "--overwrite-stage" in result.stdout and "complete -F _cf_experiment experiment" in result.stdout
    if shell == "bash":
        check = subprocess.run(["bash", "-n"], input=result.stdout, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_reports_serves_the_configured_reports_folder(tmp_path):
    (tmp_path / "curifactory_config.json").write_text('{"reports_path": "out/html"}')
    (tmp_path / "out" / "html").mkdir(parents=True)
    (tmp_path / "out" / "html" / "index.html").write_text("<p>the index</p>")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "curifactory", "reports", "--port", str(port)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as response:
                    body = response.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        assert body == "<p>the index</p>"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_init_asks_on_a_terminal(tmp_path):
    import io

    from curifactory.cli.project import InitOptions, init_project

    answers = {"cache_path": "store/cache"}

    def ask(question: str) -> str:
        return answers.get(question.split(" ")[0], "")

    assert init_project(str(tmp_path), InitOptions(interactive=True, ask=ask), io.StringIO()) == 0
    config = json.loads((tmp_path / "curifactory_config.json").read_text())
    assert config["cache_path"] == "store/cache" and (tmp_path / "store" / "cache").is_dir()
    answers = {"curifactory_config.json": "y", "logs_path": "log-files/"}
    init_project(str(tmp_path), InitOptions(interactive=True, ask=ask), io.StringIO())
    config = json.loads((tmp_path / "curifactory_config.json").read_text())
    assert config["logs_path"] == "log-files/" and config["cache_path"] == "data/cache"


def test_init_creates_the_docker_folder_and_offers_git(tmp_path):
    result = curifactory_cmd(tmp_path, "init", "--yes")
    assert result.returncode == 0, result.stderr
    dockerfile = (tmp_path / "docker" / "dockerfile").read_text()
    assert "FROM python:" in dockerfile and 'ENTRYPOINT ["experiment"]' in dockerfile
    assert "data" in (tmp_path / "docker" / "dockerfile.dockerignore").read_text().split()
    # not a repository, and not asked to: a hint, no repository
    assert not (tmp_path / ".git").exists() and "curifactory init --git" in result.stdout
    other = tmp_path / "other"
    other.mkdir()
    result = curifactory_cmd(other, "init", "--yes", "--git", "--no-docker")
    assert result.returncode == 0, result.stderr
    assert (other / ".git").is_dir() and not (other / "docker").exists() and "ran git init" in result.stdout
    # inside a repository, nothing is offered
    again = curifactory_cmd(other, "init", "--yes")
    assert "git init" not in again.stdout and (other / "docker" / "dockerfile").exists()


def test_init_on_a_terminal_runs_git_init_when_asked(tmp_path):
    import io

    from curifactory.cli.project import InitOptions, init_project

    def ask(question: str) -> str:
        return "y" if "git init" in question else ""

    out = io.StringIO()
    assert init_project(str(tmp_path), InitOptions(interactive=True, ask=ask), out) == 0
    assert (tmp_path / ".git").is_dir() and "ran git init" in out.getvalue()
