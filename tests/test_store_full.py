"""--store-full run folders and reproducing a run from one, in real git repositories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from curifactory.errors import RunFolderExistsError
from curifactory.experiment import run_experiment

from test_experiment import PIPELINE

EXTRA = '''

@cf.stage(["score"], ["files"], [FileReferenceCacher])
def export(record, score):
    path = os.path.join("outputs", f"{record.params.name}.txt")
    os.makedirs("outputs", exist_ok=True)
    with open(path, "w") as f:
        f.write(str(score))
    return [path]


@cf.stage(["score"], ["pinned"], [JsonCacher(path_override="shared/{params.name}_pinned.json")])
def pin(record, score):
    return {"score": score}


def run(param_sets, manager):
    records = [pin(export(score(summarize(load(cf.Record(manager, p)))))) for p in param_sets]
    return best(cf.Record(manager, None), records)
'''


def git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                            GIT_COMMITTER_EMAIL="t@t"))


@pytest.fixture
def repo(project, tmp_path, monkeypatch):
    source = PIPELINE.replace("from curifactory.caching import JsonCacher, PandasCsvCacher, PickleCacher",
                              "from curifactory.caching import FileReferenceCacher, JsonCacher, "
                              "PandasCsvCacher, PickleCacher") + EXTRA
    root = project({"experiments/pipeline.py": source})
    (root / ".gitignore").write_text("data/\nlogs/\nreports/\noutputs/\nshared/\n__pycache__/\n")
    monkeypatch.setenv("CF_TEST_LOG", str(tmp_path / "calls.log"))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def calls(tmp_path):
    log = tmp_path / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.write_text("")
    return [c for c in lines if c.startswith("run")]


def test_clean_repo_run_folder_contents(repo):
    _, manager = run_experiment("pipeline", store_full=True)
    ref = manager.get_reference_name()
    run_dir = repo / "data" / "runs" / ref
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["commit"] == commit and len(commit) == 40 and info["workdir_dirty"] is False
    assert info["status"] == "complete" and info["reproduce"].endswith("--dry-cache")
    store = json.loads((repo / "data" / "store.json").read_text())
    assert store[-1]["commit"] == commit and store[-1]["reproduce"] == info["reproduce"]
    gitinfo = json.loads((run_dir / "git.json").read_text())
    assert gitinfo["commit"] == commit
    requirements = (run_dir / "requirements.txt").read_text().strip().splitlines()
    assert any(line.lower().startswith("pandas==") for line in requirements)
    assert "==" in requirements[-1] or " @ " in requirements[-1]
    assert (run_dir / "environment.json").exists()
    assert (run_dir / "environment.yml").exists() or (run_dir / "environment.txt").exists()
    assert (run_dir / "report" / "index.html").exists()
    assert manager.log_path is None  # run_experiment from Python writes no log (the CLI does)
    artifacts = run_dir / "artifacts"
    h = manager.records[0].get_hash()
    stored = artifacts / f"pipeline_{h}_load_data.csv"
    original = repo / "data" / "cache" / f"pipeline_{h}_load_data.csv"
    assert stored.exists() and (artifacts / f"pipeline_{h}_load_data_metadata.json").exists()
    assert os.stat(stored).st_ino == os.stat(original).st_ino, "hard link on the same file system"
    manifest = json.loads((artifacts / "_manifest.json").read_text())
    originals = {os.path.relpath(e["original"], repo) for e in manifest["files"]}
    assert "outputs/small.txt" in originals and "shared/small_pinned.json" in originals


def test_dirty_repo_records_patch_and_untracked(repo):
    (repo / "experiments" / "pipeline.py").write_text((repo / "experiments" / "pipeline.py").read_text() + "\n# edit\n")
    (repo / "notes.txt").write_text("untracked")
    _, manager = run_experiment("pipeline", store_full=True)
    run_dir = repo / "data" / "runs" / manager.get_reference_name()
    assert json.loads((run_dir / "run_info.json").read_text())["workdir_dirty"] is True
    assert "# edit" in (run_dir / "git.patch").read_text()
    assert "notes.txt" in json.loads((run_dir / "git.json").read_text())["untracked"]


def test_reproduce_from_run_folder_without_cache(repo, tmp_path):
    _, manager = run_experiment("pipeline", store_full=True)
    ref = manager.get_reference_name()
    run_dir = repo / "data" / "runs" / ref
    line = manager.reproduction_line
    assert line == f"experiment pipeline --cache data/runs/{ref}/artifacts --dry-cache"
    shutil.rmtree(repo / "data" / "cache")
    shutil.rmtree(repo / "outputs")
    shutil.rmtree(repo / "shared")
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    calls(tmp_path)
    agg, again = run_experiment("pipeline", cache_dir_override=str(run_dir / "artifacts"), dry_cache=True)
    assert calls(tmp_path) == []
    assert {r.status.value for rec in again.records for r in rec.history} == {"cached"}
    assert agg.state["best"] == {"small": 20.0, "mid": 180.0, "big": 1140.0}
    files = again.records[0].state["files"]
    assert os.path.exists(files[0]) and str(run_dir) in os.path.abspath(files[0])
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before
    assert not (repo / "data" / "cache").exists()


def test_failing_run_keeps_folder_and_never_overwrites(repo, monkeypatch):
    from curifactory import runfolder

    monkeypatch.setenv("CF_TEST_LOG", str(repo / "missing-folder" / "calls.log"))
    with pytest.raises(FileNotFoundError):
        run_experiment("pipeline", store_full=True)
    runs = list((repo / "data" / "runs").iterdir())
    assert len(runs) == 1
    info = json.loads((runs[0] / "run_info.json").read_text())
    assert info["status"] == "error" and "missing-folder" in info["error"]
    with pytest.raises(RunFolderExistsError):
        runfolder.create_run_dir(str(repo / "data" / "runs"), runs[0].name)


def test_outside_git_repo(project, tmp_path, monkeypatch):
    root = project({"experiments/pipeline.py": PIPELINE})
    monkeypatch.setenv("CF_TEST_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(root.parent))
    _, manager = run_experiment("pipeline", store_full=True)
    run_dir = root / "data" / "runs" / manager.get_reference_name()
    assert json.loads((run_dir / "git.json").read_text())["is_repo"] is False
    assert json.loads((run_dir / "run_info.json").read_text())["commit"] is None


def test_reproduction_keeps_the_selection_and_prefix(repo, tmp_path):
    _, manager = run_experiment("pipeline", store_full=True, param_set_indices=["1-3"], prefix="px")
    line = manager.reproduction_line
    assert "--indices 1-3" in line and "--prefix px" in line
    run_dir = repo / "data" / "runs" / manager.get_reference_name()
    shutil.rmtree(repo / "data" / "cache")
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    calls(tmp_path)
    _, again = run_experiment("pipeline", param_set_indices=["1-3"], prefix="px",
                              cache_dir_override=str(run_dir / "artifacts"), dry_cache=True)
    assert calls(tmp_path) == []
    assert {r.status.value for rec in again.records for r in rec.history} == {"cached"}
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before


LIVE_SCRIPT = '''
import os, sys
sys.path.insert(0, os.getcwd())
import curifactory as cf
from experiments import pipeline as p
m = cf.ArtifactManager("live", store_full=True)
for s in p.get_params():
    p.score(p.summarize(p.load(cf.Record(m, s))))
print(m.get_reference_name())
'''


def test_live_store_full_manager_fills_its_folder_at_exit(repo, tmp_path):
    script = tmp_path / "live.py"
    script.write_text(LIVE_SCRIPT)
    result = subprocess.run([sys.executable, str(script)], cwd=repo, capture_output=True, text=True,
                            env=dict(os.environ, CF_TEST_LOG=str(tmp_path / "calls.log")))
    assert result.returncode == 0, result.stderr
    run_dir = repo / "data" / "runs" / result.stdout.strip()
    assert (run_dir / "run_info.json").is_file() and (run_dir / "requirements.txt").is_file()
    assert len(list((run_dir / "artifacts").glob("live_*_score_score.pkl"))) == 3
