"""Tests of curifactory.environment with real git, pip and subprocesses."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from curifactory import environment
from curifactory.environment import (
    FALLBACK_MARK,
    GitInfo,
    capture_environment,
    capture_git,
    conda_export,
    git_patch,
    git_untracked,
    host_info,
    pip_freeze,
)

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep git from seeing repositories above tmp_path or the user's config."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit holding a text and a binary file."""
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "code.py").write_text("x = 1\n")
    (root / "blob.bin").write_bytes(bytes(range(256)))
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_clean_repo(repo: Path) -> None:
    info = capture_git(repo)
    assert info == GitInfo(
        is_repo=True,
        commit=git(repo, "rev-parse", "HEAD").strip(),
        branch="main",
        dirty=False,
        root=str(repo.resolve()),
    )
    assert len(info.commit or "") == 40  # the full hash, not 0.20's truncated one


def test_subfolder_reports_the_root(repo: Path) -> None:
    sub = repo / "experiments"
    sub.mkdir()
    assert capture_git(sub).root == str(repo.resolve())


def test_modified_tracked_file_is_dirty(repo: Path) -> None:
    (repo / "code.py").write_text("x = 2\n")
    assert capture_git(repo).dirty is True


def test_staged_change_is_dirty(repo: Path) -> None:
    (repo / "code.py").write_text("x = 2\n")
    git(repo, "add", "code.py")
    assert capture_git(repo).dirty is True


def test_untracked_file_is_not_dirty_but_listed(repo: Path) -> None:
    (repo / "notes.txt").write_text("todo\n")
    (repo / "data").mkdir()
    (repo / "data" / "raw.csv").write_text("a\n")
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "debug.log").write_text("ignored\n")
    assert capture_git(repo).dirty is False
    assert git_untracked(repo) == [".gitignore", "data/raw.csv", "notes.txt"]
    assert git_untracked(repo / "data") == [".gitignore", "data/raw.csv", "notes.txt"]


def test_not_a_repo(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    assert capture_git(folder) == GitInfo(is_repo=False)
    assert git_patch(folder) == ""
    assert git_untracked(folder) == []


def test_git_missing_is_recorded(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    info = capture_git(repo)
    assert info.is_repo is False
    assert "not installed" in (info.error or "")
    assert git_patch(repo) == ""


def test_missing_folder_is_recorded(tmp_path: Path) -> None:
    info = capture_git(tmp_path / "does-not-exist")
    assert info.is_repo is False and "does not exist" in (info.error or "")


def test_repo_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "trunk")
    info = capture_git(tmp_path)
    assert (info.is_repo, info.commit, info.branch, info.dirty) == (True, None, "trunk", False)
    assert git_patch(tmp_path) == ""


def test_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    info = capture_git(repo)
    assert info.branch is None and info.commit and len(info.commit) == 40


def test_patch_rebuilds_the_work_tree(repo: Path, tmp_path: Path) -> None:
    (repo / "code.py").write_text("x = 2\ny = 'é'\n")
    (repo / "blob.bin").write_bytes(bytes(reversed(range(256))) + b"\xff\x00")
    patch = git_patch(repo)
    assert "GIT binary patch" in patch
    commit = capture_git(repo).commit
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "checkout", "-q", commit or "")
    patch_file = tmp_path / "run.patch"
    patch_file.write_bytes(patch.encode("utf-8", "surrogateescape"))
    git(clone, "apply", str(patch_file))
    for name in ("code.py", "blob.bin"):
        assert (clone / name).read_bytes() == (repo / name).read_bytes()


def test_clean_repo_has_empty_patch(repo: Path) -> None:
    assert git_patch(repo) == ""


def test_capture_git_is_fast(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture_git(repo)  # warm the OS caches
    runs = []
    for _ in range(10):
        start = time.perf_counter()
        capture_git(repo)
        runs.append(time.perf_counter() - start)
    best, median = min(runs), sorted(runs)[len(runs) // 2]
    with capsys.disabled():
        print(f"\ncapture_git: best {best * 1000:.1f} ms, median {median * 1000:.1f} ms")
    assert median < 0.1  # aim is ~15 ms; generous for loaded CI machines


def _last_requirement(text: str) -> str:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return lines[-1]


def _check_requirement_line(line: str) -> None:
    if " @ " in line:
        name = line.split(" @ ")[0]
        assert metadata.distribution(name)  # raises when unknown
    elif line.startswith("-e "):
        assert len(line) > 3
    else:
        name, version = line.split("==")
        assert metadata.version(name) == version


def test_pip_freeze_last_line_is_complete() -> None:
    text = pip_freeze()
    assert text.endswith("\n")
    assert not text.startswith(FALLBACK_MARK)
    for line in text.splitlines()[-3:]:
        if line and not line.startswith("#"):
            _check_requirement_line(line)
    _check_requirement_line(_last_requirement(text))


def test_pip_freeze_matches_pip_exactly() -> None:
    expected = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert pip_freeze() == expected


def test_pip_freeze_falls_back_to_metadata(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    text = pip_freeze()
    first, *lines = text.splitlines()
    assert first.startswith(FALLBACK_MARK)
    assert lines == sorted(lines, key=str.lower)
    assert f"pytest=={metadata.version('pytest')}" in lines
    _check_requirement_line(lines[-1])


def test_pip_freeze_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    # pip's real output, minus editable VCS lines (never cached by design: a
    # checkout's commit moves without any install, and CI installs this repo so)
    real = environment._run_pip_freeze()
    stable = re.sub(rb"(?m)^-e \w+\+.*\n?", b"", real.stdout)
    calls = []
    monkeypatch.setattr(environment, "_run_pip_freeze",
                        lambda: calls.append(1) or environment._Result(True, stable))
    first = pip_freeze(cache_dir=tmp_path)
    assert (tmp_path / "pip_freeze_cache.json").is_file() and calls == [1]
    calls.clear()
    assert pip_freeze(cache_dir=tmp_path) == first and calls == []
    (site / "newpkg-1.0.dist-info").mkdir()  # an install changes the folder's mtime
    os.utime(site, ns=(0, 10**9))
    assert pip_freeze(cache_dir=tmp_path) == first and calls == [1]


def test_pip_freeze_does_not_cache_editable_vcs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = environment._Result(True, b"-e git+https://example.com/x.git@abc#egg=x\nrich==13.0\n")
    monkeypatch.setattr(environment, "_run_pip_freeze", lambda: fake)
    assert pip_freeze(cache_dir=tmp_path).startswith("-e git+")
    assert not (tmp_path / "pip_freeze_cache.json").exists()


def _fake_tool(folder: Path, name: str, script: str) -> None:
    folder.mkdir(exist_ok=True)
    tool = folder / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


def test_conda_missing_gives_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert conda_export() is None


def test_conda_export_uses_the_tool_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir, "micromamba", 'echo "name: demo"\necho "args: $*"\n')
    monkeypatch.setenv("PATH", str(bin_dir))
    text = conda_export()
    assert text is not None and text.startswith("name: demo\n")
    assert "env export --from-history" in text


def test_conda_failure_gives_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir, "conda", "echo broken >&2\nexit 3\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert conda_export() is None


def test_host_info() -> None:
    info = host_info()
    json.dumps(info)
    assert info["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert info["python_executable"] == sys.executable
    assert info["cpu_count"] == os.cpu_count()
    assert info["hostname"] and info["platform"]
    assert set(info) >= {"python_implementation", "user", "curifactory_version"}


def test_capture_environment(repo: Path) -> None:
    (repo / "code.py").write_text("x = 3\n")
    (repo / "new.txt").write_text("new\n")
    snapshot = capture_environment(repo)
    assert snapshot.git.dirty is True
    assert "x = 3" in snapshot.patch
    assert snapshot.untracked == ("new.txt",)
    assert snapshot.requirements.endswith("\n")
    assert snapshot.host["cpu_count"] == os.cpu_count()


def test_editable_vcs_installs_are_never_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    output = b"-e git+https://example.invalid/x.git@abc#egg=x\nsix==1.16.0\n"
    monkeypatch.setattr(environment, "_run_pip_freeze", lambda: environment._Result(True, output))
    assert pip_freeze(cache_dir=tmp_path) == output.decode()
    assert not (tmp_path / "pip_freeze_cache.json").exists()
