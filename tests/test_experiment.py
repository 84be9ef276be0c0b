"""End-to-end runs of a real experiment through ``run_experiment`` and plain scripts."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from curifactory.experiment import run_experiment

PIPELINE = '''
"""Three chained stages (csv -> json -> pickle) and an aggregate."""
import os
from dataclasses import dataclass, field

import curifactory as cf
from curifactory.caching import JsonCacher, PandasCsvCacher, PickleCacher


class CountingPickle(PickleCacher):
    def load(self):
        with open(os.path.join(os.environ["CF_TEST_LOG"]), "a") as log:
            log.write(f"load {self.stage} {self.name}\\n")
        return super().load()


def note(what):
    with open(os.environ["CF_TEST_LOG"], "a") as log:
        log.write(what + "\\n")


@dataclass
class Model:
    degree: int = 1
    scale: float = 1.0


@dataclass
class Params(cf.ExperimentParameters):
    rows: int = 10
    model: Model = field(default_factory=Model)


@cf.stage(None, ["data"], [PandasCsvCacher])
def load(record):
    import pandas as pd
    note(f"run load {record.params.name}")
    n = record.params.rows
    return pd.DataFrame({"x": range(n), "y": [2 * i for i in range(n)]})


@cf.stage(["data"], ["stats"], [JsonCacher])
def summarize(record, data):
    note(f"run summarize {record.params.name}")
    return {"total": int(data.y.sum()) * record.params.model.degree}


@cf.stage(["stats"], ["score"], [CountingPickle])
def score(record, stats):
    note(f"run score {record.params.name}")
    return stats["total"] * record.params.model.scale


@cf.aggregate(["score"], ["best"], [JsonCacher])
def best(record, records, score):
    note("run best")
    return {r.params.name: v for r, v in score.items()}


def get_params():
    return [
        Params(name="small", rows=5),
        Params(name="mid", rows=10, model=Model(degree=2)),
        Params(name="big", rows=20, model=Model(degree=3, scale=float(os.environ.get("CF_SCALE", "1.0")))),
    ]


def run(param_sets, manager):
    records = [score(summarize(load(cf.Record(manager, p)))) for p in param_sets]
    return best(cf.Record(manager, None), records)
'''


@pytest.fixture
def pipeline(project, tmp_path, monkeypatch):
    root = project({"experiments/pipeline.py": PIPELINE})
    log = tmp_path / "calls.log"
    monkeypatch.setenv("CF_TEST_LOG", str(log))

    def calls() -> list[str]:
        lines = log.read_text().splitlines() if log.exists() else []
        log.write_text("")
        return lines

    return root, calls


def test_first_run_computes_and_names_artifacts(pipeline):
    root, calls = pipeline
    agg, manager = run_experiment("pipeline", report=False)
    assert sorted(calls()) == sorted(
        [f"run {s} {n}" for n in ("small", "mid", "big") for s in ("load", "summarize", "score")] + ["run best"]
    )
    assert agg.state["best"] == {"small": 20.0, "mid": 180.0, "big": 1140.0}
    cache = root / "data" / "cache"
    small = manager.records[0]
    h = small.get_hash()
    assert len(h) == 32 and all(c in "0123456789abcdef" for c in h)
    for stage, name, ext in [("load", "data", ".csv"), ("summarize", "stats", ".json"), ("score", "score", ".pkl")]:
        artifact = cache / f"pipeline_{h}_{stage}_{name}{ext}"
        meta = cache / f"pipeline_{h}_{stage}_{name}_metadata.json"
        assert artifact.is_file() and meta.is_file()
        info = json.loads(meta.read_text())
        assert info["stage"] == stage and info["artifact_name"] == name
        assert info["params_hash"] == h and info["params_name"] == "small"
        assert info["run_reference"] == manager.get_reference_name()
        assert info["content_hash"] and info["preview"]
        assert "params" not in info and "manager_run_info" not in info
    agg_hash = agg.get_hash()
    assert (cache / f"pipeline_{agg_hash}_best_best.json").is_file()
    store = json.loads((root / "data" / "store.json").read_text())
    assert [r["status"] for r in store] == ["complete"]
    assert store[0]["params"] == {"pipeline": [[r.params.name, r.get_hash()] for r in manager.records[:3]]}
    registry = json.loads((root / "data" / "params_registry.json").read_text())
    assert registry[h]["model.degree"] == "1"


def test_second_run_executes_and_loads_nothing(pipeline):
    root, calls = pipeline
    run_experiment("pipeline", report=False)
    calls()
    agg, manager = run_experiment("pipeline", report=False)
    assert calls() == []
    for record in manager.records:
        assert {run.status.value for run in record.history} == {"cached"}
        assert all(not record.state.is_loaded(k) for k in record.state.keys())
    # values are right when read, and reading loads exactly what is read
    assert manager.records[1].state["score"] == 180.0
    assert calls() == ["load score score"]
    assert manager.records[0].state["data"].y.sum() == 20


def test_changing_one_set_reruns_only_it_and_the_aggregate(pipeline, monkeypatch):
    root, calls = pipeline
    run_experiment("pipeline", report=False)
    calls()
    monkeypatch.setenv("CF_SCALE", "2.0")
    agg, manager = run_experiment("pipeline", report=False)
    ran = calls()
    assert sorted(c for c in ran if c.startswith("run")) == sorted(
        ["run load big", "run summarize big", "run score big", "run best"])
    # the aggregate reads the cached scores of the unchanged sets
    assert sorted(c for c in ran if c.startswith("load")) == ["load score score"] * 2
    assert agg.state["best"]["big"] == 2280.0


def test_corrupt_entries_warn_and_recompute(pipeline, caplog):
    root, calls = pipeline
    _, manager = run_experiment("pipeline", report=False)
    calls()
    h = manager.records[0].get_hash()
    cache = root / "data" / "cache"
    (cache / f"pipeline_{h}_score_score.pkl").write_bytes(b"\x80\x04garbage")
    (cache / f"pipeline_{h}_summarize_stats.json").write_text('{"total": ')
    from curifactory.errors import CacheWarning

    with caplog.at_level(logging.WARNING, logger="curifactory"), pytest.warns(CacheWarning):
        agg, _ = run_experiment("pipeline", report=False)
    ran = calls()
    # the recomputed values equal the saved ones, so the cached aggregate stays valid
    assert sorted(c for c in ran if c.startswith("run")) == ["run score small", "run summarize small"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("summarize" in w and "corrupt" in w for w in warnings)
    assert any("score" in w and "small" in w for w in warnings)
    assert agg.state["best"]["small"] == 20.0


def test_overwrite_stage_cascades_downstream(pipeline):
    root, calls = pipeline
    run_experiment("pipeline", report=False)
    calls()
    run_experiment("pipeline", report=False, stage_overwrites=["summarize"])
    assert sorted(calls()) == sorted(
        [f"run {s} {n}" for n in ("small", "mid", "big") for s in ("summarize", "score")] + ["run best"]
    )


KILLER = '''
import os, sys
sys.path.insert(0, os.getcwd())
import curifactory as cf
from curifactory.caching import Cacheable
from curifactory.experiment import run_experiment

class DyingCacher(Cacheable):
    def __init__(self, *a, **k):
        super().__init__(*a, extension=".bin", **k)
    def save(self, obj):
        with open(self.get_path(), "wb") as f:
            f.write(b"partial")
            f.flush()
            os._exit(9)   # killed in the middle of the save
    def load(self):
        with open(self.get_path(), "rb") as f:
            return f.read()

import experiments.pipeline as p
p.score = cf.stage(["stats"], ["score"], [DyingCacher])(p.score.__wrapped__)
run_experiment("pipeline", report=False)
'''


def test_killed_save_leaves_nothing_loadable(pipeline, tmp_path):
    root, calls = pipeline
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    result = subprocess.run([sys.executable, str(script)], cwd=root, env=os.environ.copy())
    assert result.returncode == 9
    cache = root / "data" / "cache"
    assert not [p for p in cache.glob("*_score_score*") if not p.name.startswith(".cftmp-")]
    calls()
    agg, manager = run_experiment("pipeline", report=False)
    assert not list(cache.glob(".cftmp-*")), "the killed save's temporary file is swept away"
    assert "run score small" in calls()
    assert agg.state["best"]["small"] == 20.0


def write_script(root, tail: str):
    """A plain script running the pipeline's sets with a live ``ArtifactManager``, then ``tail``."""
    script = root / "script.py"
    script.write_text(
        "import os, sys\nsys.path.insert(0, os.getcwd())\n"
        "import curifactory as cf\nfrom experiments import pipeline as p\n"
        "m = cf.ArtifactManager('script')\n"
        "recs = [p.score(p.summarize(p.load(cf.Record(m, s)))) for s in p.get_params()]\n" + tail
    )
    return script


def test_plain_script_twice(project, tmp_path):
    root = project({"experiments/pipeline.py": PIPELINE})
    script = write_script(root, "agg = p.best(cf.Record(m, None), recs)\n"
                                "print(m.status, [h.status.value for r in m.records for h in r.history])\n"
                                "print(agg.state['best'])\n")
    env = dict(os.environ, CF_TEST_LOG=str(tmp_path / "s.log"))
    first = subprocess.run([sys.executable, str(script)], cwd=root, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, str(script)], cwd=root, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "LIVE ['cached'" in second.stdout and "executed" not in second.stdout
    assert "{'small': 20.0, 'mid': 180.0, 'big': 1140.0}" in second.stdout
    store = json.loads((root / "data" / "store.json").read_text())
    assert [r["status"] for r in store] == ["LIVE", "LIVE"]
    assert [r["run_number"] for r in store] == [1, 2]
    assert (root / "logs" / f"{store[1]['reference']}.log").exists()


def test_failing_stage_is_stored_and_keeps_cache(project, tmp_path, monkeypatch):
    root = project({"experiments/boom.py": PIPELINE.replace(
        'note(f"run score {record.params.name}")',
        'note(f"run score {record.params.name}")\n    if os.environ.get("CF_BOOM") and record.params.name == "mid":\n'
        '        raise ValueError("boom")')})
    monkeypatch.setenv("CF_TEST_LOG", str(tmp_path / "b.log"))
    monkeypatch.setenv("CF_BOOM", "1")
    with pytest.raises(ValueError, match="boom"):
        run_experiment("boom", report=False)
    store = json.loads((root / "data" / "store.json").read_text())
    assert store[-1]["status"] == "error" and "boom" in store[-1]["error"]
    monkeypatch.delenv("CF_BOOM")
    (tmp_path / "b.log").write_text("")
    run_experiment("boom", report=False)
    ran = (tmp_path / "b.log").read_text().splitlines()
    assert "run load small" not in ran and "run score mid" in ran


def test_user_errors(project):
    from curifactory.errors import ExperimentNotFoundError, ParamsError, ParamsNotFoundError

    project({"experiments/pipeline.py": PIPELINE,
             "params/wrong.py": "def get_params():\n    return {'a': 1}\n",
             "params/items.py": "def get_params():\n    return [1, 2]\n"})
    with pytest.raises(ExperimentNotFoundError, match="nope"):
        run_experiment("nope")
    with pytest.raises(ParamsNotFoundError, match="missing"):
        run_experiment("pipeline", ["missing"])
    with pytest.raises(ParamsError, match="must return a list"):
        run_experiment("pipeline", ["wrong"])
    with pytest.raises(ParamsError, match="item 0"):
        run_experiment("pipeline", ["items"])
    with pytest.raises(ParamsError, match="'ghost'"):
        run_experiment("pipeline", param_set_names=["ghost"])


def test_selection_by_name_and_index(pipeline):
    root, calls = pipeline
    _, manager = run_experiment("pipeline", param_set_names=["mid"], report=False)
    assert [r.params.name for r in manager.records if not r.is_aggregate] == ["mid"]
    _, manager = run_experiment("pipeline", param_set_indices=["1-3"], report=False)
    assert [r.params.name for r in manager.records if not r.is_aggregate] == ["mid", "big"]


def test_dry_run_writes_nothing(pipeline):
    root, calls = pipeline
    before = sorted(p for p in root.rglob("*") if "__pycache__" not in str(p))
    agg, manager = run_experiment("pipeline", dry=True)
    assert agg.state["best"]["small"] == 20.0
    after = sorted(p for p in root.rglob("*") if "__pycache__" not in str(p))
    assert before == after


def test_plain_script_shows_corrupt_entry_warning_on_stderr(project, tmp_path):
    root = project({"experiments/pipeline.py": PIPELINE})
    script = write_script(root, "print([r.state['score'] for r in recs])\n")
    env = dict(os.environ, CF_TEST_LOG=str(tmp_path / "s.log"))
    subprocess.run([sys.executable, str(script)], cwd=root, env=env, check=True, capture_output=True)
    for pkl in (root / "data" / "cache").glob("script_*_score_score.pkl"):
        pkl.write_bytes(b"not a pickle")
    second = subprocess.run([sys.executable, str(script)], cwd=root, env=env, capture_output=True, text=True)
    assert second.returncode == 0 and "[20.0, 180.0, 1140.0]" in second.stdout
    assert second.stderr.count("is not usable") == 3 and "score" in second.stderr
