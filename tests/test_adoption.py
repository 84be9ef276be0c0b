"""A cache written by curifactory 0.20.5, copied into a project, is reused and never misused.

``tests/data/cache020/cache`` was written by a real 0.20.5 (``make.sh`` there says how)
for the experiment beside it; each test copies both into ``tmp_path`` and runs the
``experiment`` command of this package.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import curifactory as cf
from curifactory.legacyhash import legacy_combo_hash, legacy_hash, legacy_representations

from conftest import CliProject

FIXTURE = Path(__file__).parent / "data" / "cache020"
ONE_020, TWO_020 = "1406b7b2bfdcac55ad2cca5c8366cf416", "18adea4beeb8ddd028f7e0aff5a3c68d3"
"""The 0.20.5 hashes of the sets "one" and "two" (the names of its files)."""

MIRROR = """
from experiments.nested import Inner, Params

def get_params():
    return [Params(name="mirror", a=Inner(2), b=Inner(1))]
"""


@pytest.fixture
def old_project(tmp_path):
    """The experiment and the 0.20.5 cache, copied into a new project."""
    project = CliProject(tmp_path, {"params/mirror.py": MIRROR})
    shutil.copytree(FIXTURE / "project" / "experiments", project.root / "experiments")
    shutil.copytree(FIXTURE / "cache", project.root / "data" / "cache")
    return project


def _entry_value(root: Path, stage: str, artifact: str, set_hash: str | None = None) -> object:
    """The value of one of our (non-0.20) entries, found through its metadata."""
    cache = root / "data" / "cache"
    for meta in cache.glob(f"nested_*_{stage}_{artifact}_metadata.json"):
        metadata = json.loads(meta.read_text())
        if "content_hash" in metadata and (set_hash is None or metadata["params_hash"] == set_hash):
            return json.loads((cache / metadata["files"][0]).read_text())
    raise AssertionError(f"no entry of ours for {stage}/{artifact}")


def test_the_020_hashes_are_reproduced():
    from importlib import util
    spec = util.spec_from_file_location("nested020", FIXTURE / "project" / "experiments" / "nested.py")
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    one, two = module.get_params()
    assert (legacy_hash(one), legacy_hash(two)) == (ONE_020, TWO_020)
    # the aggregate's 0.20 hash is the name of the combine entry 0.20.5 wrote
    assert (FIXTURE / "cache" / f"nested_{legacy_combo_hash(None, [ONE_020, TWO_020])}_combine_all.json").exists()
    written = json.loads((FIXTURE / "cache" / f"nested_{ONE_020}_make_numbers_metadata.json").read_text())
    assert legacy_representations(one) == written["params"]
    # the nested collision: another set, the same 0.20 hash, a different parameter record
    mirror = module.Params(name="mirror", a=module.Inner(2), b=module.Inner(1))
    assert legacy_hash(mirror) == ONE_020
    assert legacy_representations(mirror) != written["params"]


def test_a_020_cache_is_adopted_and_nothing_recomputes(old_project):
    result = old_project.run("nested")
    assert result.returncode == 0, result.stderr
    assert old_project.executed() == []
    assert "0 stages executed, 5 cached (0.20 cache: 5 adopted)" in result.stdout
    root = old_project.root
    assert _entry_value(root, "combine", "all") == {"one": 6, "two": 8}
    # the 0.20 files stay, and ours are the same files (hard links)
    cache = root / "data" / "cache"
    old = cache / f"nested_{ONE_020}_make_numbers.pkl"
    ours = [p for p in cache.glob("nested_*_make_numbers.pkl") if ONE_020 not in p.name and p.stat().st_ino
            == old.stat().st_ino]
    assert old.exists() and len(ours) == 1
    # a second run finds our entries directly: nothing adopted, nothing executed
    again = old_project.run("nested")
    assert old_project.executed() == [] and "0 stages executed, 5 cached in" in again.stdout


def test_a_nested_collision_is_refused_and_recomputed(old_project):
    result = old_project.run("nested", "-p", "mirror")
    assert result.returncode == 0, result.stderr
    # "mirror" shares set "one"'s 0.20 hash: its entries hold one's values (a_x = 1), never handed over
    assert old_project.executed() == ["make:mirror", "total:mirror", "combine"]
    assert "0.20 cache: 0 adopted, 2 refused: recorded parameters differ" in result.stdout
    assert "a 0.20 hash collision" in result.stderr + result.stdout
    assert _entry_value(old_project.root, "total", "total") == {"sum": 6, "a_x": 2}


def test_an_aggregate_is_adopted_only_over_confirmed_records(old_project):
    # set "one"'s entries are gone: its 0.20 hash can't be confirmed, so the 0.20 combine entry
    # (which could have been written over a colliding set) is not taken; "two"'s entries are
    cache = old_project.root / "data" / "cache"
    for path in cache.glob(f"nested_{ONE_020}_*"):
        path.unlink()
    result = old_project.run("nested")
    assert result.returncode == 0, result.stderr
    assert old_project.executed() == ["make:one", "total:one", "combine"]
    assert "(0.20 cache: 2 adopted)" in result.stdout


def test_a_changed_parameter_record_is_refused(old_project):
    meta = old_project.root / "data" / "cache" / f"nested_{TWO_020}_total_total_metadata.json"
    metadata = json.loads(meta.read_text())
    metadata["params"]["n"] = "6"
    meta.write_text(json.dumps(metadata))
    result = old_project.run("nested")
    assert result.returncode == 0, result.stderr
    # that entry recomputes, and so does the aggregate: an entry under "two"'s 0.20 hash holds
    # another record, so "two" is not confirmed and the 0.20 aggregate entry is not taken
    assert old_project.executed() == ["total:two", "combine"]
    assert "(0.20 cache: 3 adopted, 1 refused" in result.stdout
    assert _entry_value(old_project.root, "combine", "all") == {"one": 6, "two": 8}


def test_a_refusal_for_one_set_does_not_turn_away_the_owner(old_project):
    (old_project.root / "params" / "both.py").write_text(
        "from experiments.nested import Inner, Params\n\n"
        "def get_params():\n    return [Params(name='mirror', a=Inner(2), b=Inner(1)), Params(name='one')]\n")
    result = old_project.run("nested", "-p", "both")
    assert result.returncode == 0, result.stderr
    assert old_project.executed() == ["make:mirror", "total:mirror", "combine"]
    assert "(0.20 cache: 2 adopted, 2 refused" in result.stdout


def test_a_dry_run_reads_020_entries_where_they_are(old_project):
    before = sorted(os.listdir(old_project.root / "data" / "cache"))
    result = old_project.run("nested", "--dry")
    assert result.returncode == 0, result.stderr
    assert old_project.executed() == []  # nothing to compute: every 0.20 entry is for its own set
    assert sorted(os.listdir(old_project.root / "data" / "cache")) == before


@dataclass
class _Inner:
    x: int = 1


@dataclass
class _Hand(cf.ExperimentParameters):
    a: _Inner = field(default_factory=_Inner)
    f: object = len
    skipped: str | None = None
    hash_representations: dict = cf.set_hash_functions(f=None)


def test_representations_follow_020s_rules():
    rep = legacy_representations(_Hand(name="h"))
    assert rep == {"name": "h", "a": {"x": "1"}, "IGNORED_PARAMS": {"f": str(len), "skipped": "None"}}
    hand = _Hand(name="h", hash="abc")
    assert legacy_hash(hand) == "abc"  # a hash set by hand is 0.20's too


def test_an_entry_takes_its_suffix_files_but_not_another_entrys(tmp_path):
    from curifactory.adoption import _entry_files

    names = ["e_h_s_nb.ipynb", "e_h_s_nb_cells.json", "e_h_s_nb_metadata.json", "e_h_s_nb_other.json",
             "e_h_s_nb_other_metadata.json", "e_h_s_nbx.json"]
    for name in names:
        (tmp_path / name).write_text("x")
    assert [os.path.basename(p) for p in _entry_files(str(tmp_path), "e_h_s_nb")] == [
        "e_h_s_nb.ipynb", "e_h_s_nb_cells.json"]


# -- 0.20 custom cachers, cached reportables, a {hash} path_override, a --store-full run -------
C1_020 = "ed23e9d533a3992b2bfeef6f8601a945"
"""The 0.20.5 hash of the set "c1" of experiments/custom.py."""


def _tree(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_custom_cachers_reportables_and_a_hash_override_are_adopted(old_project):
    result = old_project.run("custom")
    assert result.returncode == 0, result.stderr
    assert old_project.executed() == []
    assert "0 stages executed, 6 cached" in result.stdout
    cache = old_project.root / "data" / "cache"
    # ModelCacher's get_path("_model") is <stem>_model, as in 0.20 (no extension added)
    ours = [p for p in cache.glob("custom_*_fit_model_model") if C1_020 not in p.name and "b5557737" not in p.name]
    assert len(ours) == 2
    assert json.loads(ours[0].read_text())["w"] in (6, 15)
    # the {hash} path_override entry is taken over under our hash, beside 0.20's
    assert len([p for p in cache.glob("scores_*.json") if not p.name.endswith("_metadata.json")]) == 4
    assert not [p for p in cache.rglob("*") if p.name.startswith(".cftmp-")]
    report = (old_project.root / "reports" / "_latest" / "index.html").read_text()
    assert "fitted" in report and "&quot;count&quot;: 4" in report.replace('"', "&quot;")
    # a second run reads our own entries and reportables (0.20's are no longer needed)
    for path in cache.glob(f"custom_*_fit_reportables*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    again = old_project.run("custom")
    assert again.returncode == 0, again.stderr
    assert old_project.executed() == [] and "0 stages executed, 6 cached in" in again.stdout
    report = (old_project.root / "reports" / "_latest" / "index.html").read_text()
    assert "fitted" in report


def test_an_inline_cacher_in_a_save_leaves_no_temporary_files(tmp_path):
    project = CliProject(tmp_path, {})
    shutil.copytree(FIXTURE / "project" / "experiments", project.root / "experiments")
    result = project.run("custom")
    assert result.returncode == 0, result.stderr
    assert project.executed() == ["numbers:c1", "fit:c1", "score:c1", "numbers:c2", "fit:c2", "score:c2"]
    cache = project.root / "data" / "cache"
    assert not [p for p in cache.rglob("*") if p.name.startswith(".cftmp-")]
    summary = next(cache.glob("custom_*_fit_summary_metadata.json"))
    assert json.loads(summary.read_text())["extra"] == {"the_best_number": 13}
    again = project.run("custom")
    assert again.returncode == 0 and project.executed() == []


def test_a_020_store_full_run_is_reproduced_without_writing_it(old_project):
    run = next((FIXTURE / "runs").iterdir())
    artifacts = old_project.root / "data" / "runs" / run.name / "artifacts"
    shutil.copytree(run, artifacts.parent)
    before = _tree(artifacts)
    result = old_project.run("custom", "--cache", str(artifacts), "--dry-cache")
    assert result.returncode == 0, result.stderr
    # 0.20 copies no path_override file into a run folder: only score recomputes, as in 0.20
    assert old_project.executed() == ["score:c1", "score:c2"]
    assert _tree(artifacts) == before
    report = (old_project.root / "reports" / "_latest" / "index.html").read_text()
    assert "fitted" in report


def test_the_map_and_explain_read_020_entries_without_writing(old_project):
    cache = old_project.root / "data" / "cache"
    before = _tree(cache)
    mapped = old_project.run("custom", "--map")
    assert mapped.returncode == 0, mapped.stderr
    assert "6 stage calls, 0 to run, 6 cached" in mapped.stdout, mapped.stdout
    assert mapped.stdout.count("(cached, from run custom_1_2026-12-02-T215136)") == 8
    explained = old_project.run("nested", "-p", "mirror", "--explain")
    assert explained.returncode == 0, explained.stderr
    assert "_DRY_REPS" not in explained.stdout
    assert "0.20 entry was not adopted" in explained.stdout and "hash collision" in explained.stdout
    assert _tree(cache) == before
    assert old_project.executed() == []
