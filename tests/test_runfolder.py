"""Tests of curifactory.runfolder: layout, hard links, copies, the manifest, errors."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

from curifactory import fileio, runfolder
from curifactory.environment import EnvironmentSnapshot, GitInfo
from curifactory.errors import CurifactoryError, RunFolderExistsError
from curifactory.runfolder import (
    ArtifactManifest,
    create_run_dir,
    expand_artifacts,
    store_artifacts,
    write_run_folder,
)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

RUN_INFO = {"reference": "exp_3_2024-01-01-T000000", "status": "complete", "commit": "abc"}
REGISTRY = {"h1": {"name": "'a'", "x": "1"}, "h2": {"name": "'b'", "x": "2"}}


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


def write_artifact(path: Path, content: str, extra: list[str] | None = None) -> Path:
    """An artifact file plus its metadata sibling listing it (and extra files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    names = [path.name]
    for name in extra or []:
        (path.parent / name).write_text(f"extra {name}")
        names.append(name)
    files = sorted(str(path.parent / n) for n in names)
    meta = {"files": sorted(names), "content_hash": fileio.hash_files(files)}
    (path.parent / (path.stem + "_metadata.json")).write_text(json.dumps(meta))
    return path


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    """A project in a git repository with a cache, a log and a report."""
    root = tmp_path / "project"
    cache = root / "data" / "cache"
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    (root / "experiments").mkdir(parents=True)
    (root / "experiments" / "exp.py").write_text("def run(p, m): pass\n")
    (root / ".gitignore").write_text("data/\nlogs/\nreports/\noutputs/\n")
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=root, check=True)
    paths = {
        "root": root,
        "cache": cache,
        "csv": write_artifact(cache / "exp_h1_load_data.csv", "a,b\n1,2\n"),
        "multi": write_artifact(cache / "exp_h1_fit_model.pkl", "model", extra=["exp_h1_fit_model.pkl.aux"]),
        "sub": write_artifact(cache / "models" / "exp_h2_fit_model.json", "{}"),
        "inside": write_artifact(root / "outputs" / "table.csv", "inside project"),
        "outside": write_artifact(tmp_path / "elsewhere" / "shared.bin", "outside project"),
        "log": root / "logs" / "exp_3.log",
        "report": root / "reports" / "exp_3",
    }
    paths["log"].parent.mkdir(parents=True)
    paths["log"].write_text("line 1\nline 2\n")
    (paths["report"] / "graphs").mkdir(parents=True)
    (paths["report"] / "index.html").write_text("<html></html>")
    (paths["report"] / "graphs" / "g.svg").write_text("<svg/>")
    return paths


def fake_environment(git: GitInfo | None = None, patch: str = "", conda: str | None = None) -> EnvironmentSnapshot:
    return EnvironmentSnapshot(
        git=git or GitInfo(is_repo=True, commit="a" * 40, branch="main", dirty=True, root="/p"),
        patch=patch,
        untracked=("notes.txt",),
        requirements="rich==13.0\nzzz==1.0\n",
        conda=conda,
        conda_tool="/usr/bin/conda" if conda else None,
        host={"python_version": "3.11.7", "hostname": "vm"},
    )


def all_artifacts(p: dict[str, Path]) -> list[str]:
    return [str(p[k]) for k in ("csv", "multi", "sub", "inside", "outside")]


def test_create_run_dir(tmp_path: Path) -> None:
    run_dir = create_run_dir(tmp_path / "runs", "exp_1_x")
    assert os.path.isdir(run_dir) and os.listdir(run_dir) == []


def test_existing_run_folder_is_never_overwritten(tmp_path: Path) -> None:
    run_dir = create_run_dir(tmp_path / "runs", "exp_1_x")
    Path(run_dir, "keep.txt").write_text("earlier run")
    with pytest.raises(RunFolderExistsError, match="already exists") as info:
        create_run_dir(tmp_path / "runs", "exp_1_x")
    assert isinstance(info.value, CurifactoryError) and isinstance(info.value, FileExistsError)
    assert run_dir in str(info.value)
    assert Path(run_dir, "keep.txt").read_text() == "earlier run"


def test_full_run_folder_with_real_environment(project: dict[str, Path], tmp_path: Path) -> None:
    root = project["root"]
    (root / "experiments" / "exp.py").write_text("def run(p, m): return 1\n")
    (root / "untracked.py").write_text("x = 1\n")
    run_dir = Path(create_run_dir(root / "data" / "runs", RUN_INFO["reference"]))
    result = write_run_folder(
        run_dir,
        run_info=RUN_INFO,
        artifacts=all_artifacts(project),
        registry_entries=REGISTRY,
        project_root=root,
        cache_root=project["cache"],
        log_path=project["log"],
        report_dir=project["report"],
    )
    assert result.problems == []
    assert json.loads((run_dir / "run_info.json").read_text()) == RUN_INFO
    assert json.loads((run_dir / "params_registry.json").read_text()) == REGISTRY
    requirements = (run_dir / "requirements.txt").read_text()
    assert requirements.endswith("\n") and "pytest==" in requirements
    git = json.loads((run_dir / "git.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    assert (git["commit"], git["branch"], git["dirty"], git["is_repo"]) == (head, "main", True, True)
    assert git["untracked"] == ["untracked.py"]
    assert "return 1" in (run_dir / "git.patch").read_text()
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["cpu_count"] == os.cpu_count() and env["hostname"]
    if env["conda_tool"] is None:
        assert "not found" in (run_dir / "environment.txt").read_text()
    assert (run_dir / "exp_3.log").read_text() == "line 1\nline 2\n"
    assert (run_dir / "report" / "graphs" / "g.svg").read_text() == "<svg/>"
    assert not [p for p in run_dir.rglob("*") if fileio.TEMP_MARK in p.name]


def test_artifact_layout_and_hard_links(project: dict[str, Path], tmp_path: Path) -> None:
    artifacts = tmp_path / "run" / "artifacts"
    result = store_artifacts(
        str(artifacts), all_artifacts(project), cache_root=project["cache"], project_root=project["root"]
    )
    stored = {f.stored for f in result.files}
    assert stored == {
        "exp_h1_load_data.csv",
        "exp_h1_load_data_metadata.json",
        "exp_h1_fit_model.pkl",
        "exp_h1_fit_model.pkl.aux",
        "exp_h1_fit_model_metadata.json",
        "models/exp_h2_fit_model.json",
        "models/exp_h2_fit_model_metadata.json",
        "_external/outputs/table.csv",
        "_external/outputs/table_metadata.json",
        f"_external/_absolute/{str(tmp_path / 'elsewhere').lstrip('/')}/shared.bin",
        f"_external/_absolute/{str(tmp_path / 'elsewhere').lstrip('/')}/shared_metadata.json",
    }
    assert result.linked == len(result.files)
    for entry in result.files:
        original, copy = os.stat(entry.original), os.stat(artifacts / entry.stored)
        assert original.st_ino == copy.st_ino and copy.st_nlink >= 2


def test_metadata_hashes_still_match_in_the_run_folder(project: dict[str, Path], tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    store_artifacts(str(artifacts), all_artifacts(project), cache_root=project["cache"], project_root=project["root"])
    for meta_path in artifacts.rglob("*_metadata.json"):
        meta = json.loads(meta_path.read_text())
        files = sorted(str(meta_path.parent / name) for name in meta["files"])
        assert fileio.hash_files(files) == meta["content_hash"]


def test_replacing_a_cache_file_leaves_the_run_folder_alone(project: dict[str, Path], tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    store_artifacts(str(artifacts), [project["csv"]], cache_root=project["cache"], project_root=project["root"])
    fileio.atomic_write_text(project["csv"], "rewritten\n")  # how the cache layer rewrites
    assert (artifacts / "exp_h1_load_data.csv").read_text() == "a,b\n1,2\n"


def test_copies_when_asked(project: dict[str, Path], tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    result = store_artifacts(
        str(artifacts), [project["csv"]], cache_root=project["cache"], project_root=project["root"], link=False
    )
    copy = artifacts / "exp_h1_load_data.csv"
    assert {f.method for f in result.files} == {"copy"}
    assert os.stat(copy).st_ino != os.stat(project["csv"]).st_ino
    assert copy.read_text() == "a,b\n1,2\n"


def test_falls_back_to_copies_when_links_fail(
    project: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = []

    def cross_device(src: str, dst: str, **kwargs: object) -> None:
        attempts.append(src)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    artifacts = tmp_path / "artifacts"
    result = store_artifacts(
        str(artifacts), all_artifacts(project), cache_root=project["cache"], project_root=project["root"]
    )
    assert len(attempts) == 1  # linking is not retried for every file once it failed
    assert result.problems == [] and result.linked == 0 and len(result.files) == 11
    for entry in result.files:
        assert Path(entry.original).read_bytes() == (artifacts / entry.stored).read_bytes()


def test_missing_artifact_is_a_problem_not_an_error(project: dict[str, Path], tmp_path: Path) -> None:
    missing = project["cache"] / "exp_h9_gone.pkl"
    result = store_artifacts(
        str(tmp_path / "artifacts"), [missing, project["csv"]], cache_root=project["cache"], project_root=project["root"]
    )
    assert len(result.problems) == 1 and str(missing) in result.problems[0]
    assert {f.stored for f in result.files} == {"exp_h1_load_data.csv", "exp_h1_load_data_metadata.json"}


def test_expand_artifacts(project: dict[str, Path], tmp_path: Path) -> None:
    folder = project["cache"] / "exp_h1_images"
    folder.mkdir()
    (folder / "a.png").write_text("a")
    (project["cache"] / "exp_h1_images_metadata.json").write_text(json.dumps({"files": ["exp_h1_images"]}))
    expanded = expand_artifacts([project["multi"], project["multi"], folder])
    cache = str(project["cache"])
    assert expanded == [
        f"{cache}/exp_h1_fit_model.pkl",
        f"{cache}/exp_h1_fit_model_metadata.json",
        f"{cache}/exp_h1_fit_model.pkl.aux",
        f"{cache}/exp_h1_images/a.png",
        f"{cache}/exp_h1_images_metadata.json",
    ]


def test_manifest_locates_external_files(project: dict[str, Path], tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    store_artifacts(str(artifacts), all_artifacts(project), cache_root=project["cache"], project_root=project["root"])
    manifest = ArtifactManifest.load(artifacts)
    assert manifest is not None
    for key in ("inside", "outside", "csv"):
        located = manifest.locate(project[key])
        assert located is not None and Path(located).read_text() == project[key].read_text()
    assert manifest.locate(tmp_path / "unknown.csv") is None
    moved_root = tmp_path / "moved-checkout"
    located = manifest.locate(moved_root / "outputs" / "table.csv", project_root=moved_root)
    assert located == str(artifacts / "_external" / "outputs" / "table.csv")
    assert ArtifactManifest.load(tmp_path / "nothing-here") is None


def empty_run_folder(tmp_path: Path, environment: EnvironmentSnapshot) -> Path:
    """A run folder written for a run with no artifacts, log or report."""
    run_dir = Path(create_run_dir(tmp_path / "runs", "r"))
    write_run_folder(run_dir, run_info=RUN_INFO, artifacts=[], registry_entries={}, project_root=tmp_path,
                     environment=environment)
    return run_dir


def test_outside_a_repo_is_recorded(tmp_path: Path) -> None:
    run_dir = empty_run_folder(tmp_path, fake_environment(git=GitInfo(is_repo=False)))
    git = json.loads((run_dir / "git.json").read_text())
    assert git["is_repo"] is False and git["commit"] is None and "not inside a git" in git["note"]
    assert not (run_dir / "git.patch").exists()
    assert json.loads((run_dir / "artifacts" / "_manifest.json").read_text()) == {"files": []}


def test_conda_environment_file(tmp_path: Path) -> None:
    run_dir = empty_run_folder(tmp_path, fake_environment(conda="name: demo\n"))
    assert (run_dir / "environment.yml").read_text() == "name: demo\n"
    assert not (run_dir / "environment.txt").exists()
    assert json.loads((run_dir / "environment.json").read_text())["conda_tool"] == "/usr/bin/conda"


def test_binary_patch_bytes_are_kept(tmp_path: Path) -> None:
    raw = b"diff --git a/x b/x\n+caf\xe9 \xff\n"
    patch = raw.decode("utf-8", "surrogateescape")
    run_dir = Path(create_run_dir(tmp_path / "runs", "r"))
    runfolder.write_environment(str(run_dir), fake_environment(patch=patch))
    assert (run_dir / "git.patch").read_bytes() == raw


def test_log_and_report_are_copies(project: dict[str, Path], tmp_path: Path) -> None:
    run_dir = Path(create_run_dir(tmp_path / "runs", "r"))
    write_run_folder(
        run_dir,
        run_info={**RUN_INFO, "status": "error", "error": "boom"},
        artifacts=[project["csv"]],
        registry_entries=REGISTRY,
        project_root=project["root"],
        cache_root=project["cache"],
        log_path=project["log"],
        report_dir=project["report"],
        environment=fake_environment(),
    )
    assert os.stat(run_dir / "exp_3.log").st_ino != os.stat(project["log"]).st_ino
    index = run_dir / "report" / "index.html"
    assert os.stat(index).st_ino != os.stat(project["report"] / "index.html").st_ino
    assert json.loads((run_dir / "run_info.json").read_text())["status"] == "error"


def test_no_log_and_no_report(tmp_path: Path) -> None:
    run_dir = empty_run_folder(tmp_path, fake_environment())
    assert not (run_dir / "report").exists()
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "artifacts",
        "environment.json",
        "environment.txt",
        "git.json",
        "git.patch",
        "params_registry.json",
        "requirements.txt",
        "run_info.json",
    ]


def test_writing_twice_keeps_one_consistent_folder(project: dict[str, Path], tmp_path: Path) -> None:
    run_dir = Path(create_run_dir(tmp_path / "runs", "r"))
    kwargs = dict(
        artifacts=[project["csv"]],
        registry_entries=REGISTRY,
        project_root=project["root"],
        cache_root=project["cache"],
        report_dir=project["report"],
        environment=fake_environment(),
    )
    write_run_folder(run_dir, run_info={**RUN_INFO, "status": "LIVE"}, **kwargs)
    write_run_folder(run_dir, run_info=RUN_INFO, **kwargs)
    assert json.loads((run_dir / "run_info.json").read_text())["status"] == "complete"
    assert (run_dir / "report" / "index.html").is_file()
    assert not [p for p in run_dir.rglob("*") if fileio.TEMP_MARK in p.name]
