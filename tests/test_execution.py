"""Executor behaviours: cached reportables, unmappable experiments, hidden records, ranks."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

import curifactory as cf
from curifactory.caching import JsonCacher
from curifactory.experiment import run_experiment


@dataclass
class P(cf.ExperimentParameters):
    n: int = 1


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return cf.ArtifactManager("exec", suppress_live_log=True)


def test_reportables_are_cached_with_the_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from curifactory.reporting import JsonReporter

    @cf.stage(None, ["v"], [JsonCacher])
    def value(record):
        record.report(JsonReporter({"n": record.params.n}, name="numbers", group="g"))
        return record.params.n

    first = cf.ArtifactManager("rep", suppress_live_log=True)
    value(cf.Record(first, P(n=3)))
    second = cf.ArtifactManager("rep", suppress_live_log=True)
    record = value(cf.Record(second, P(n=3)))
    assert record.history[-1].status.value == "cached"
    assert [r.name for r in second.reportables] == ["numbers"]
    assert second.reportables[0].record is record and second.reportables[0].stage == "value"


def test_hidden_records_are_not_managed(manager):
    @cf.stage(None, ["v"], [JsonCacher])
    def value(record):
        return 2

    hidden = value(cf.Record(manager, P(), hide=True))
    assert hidden.state["v"] == 2 and manager.records == []


UNMAPPABLE = '''
from dataclasses import dataclass
import curifactory as cf
from curifactory.caching import JsonCacher

@dataclass
class P(cf.ExperimentParameters):
    n: int = 1

@cf.stage(None, ["v"], [JsonCacher])
def value(record):
    return record.params.n

@cf.stage(["v"], ["w"], [JsonCacher])
def double(record, v):
    return v * 2

def get_params():
    return [P(name="a", n=1), P(name="b", n=2)]

def run(param_sets, manager):
    out = []
    for p in param_sets:
        r = value(cf.Record(manager, p))
        if r.state["v"] + 1 > 1:      # reads a value: cannot be mapped ahead
            out.append(double(r).state["w"])
    return out
'''


def test_experiment_that_reads_values_still_runs_without_a_plan(project):
    project({"experiments/unmappable.py": UNMAPPABLE})
    results, manager = run_experiment("unmappable", report=False)
    assert results == [2, 4] and manager.plan is None
    results, manager = run_experiment("unmappable", report=False)
    assert results == [2, 4]
    assert {h.status.value for r in manager.records for h in r.history} == {"cached"}


def test_non_zero_rank_writes_no_store_nor_cache(project, monkeypatch):
    root = project({"experiments/unmappable.py": UNMAPPABLE})
    monkeypatch.setenv("LOCAL_RANK", "1")
    results, _ = run_experiment("unmappable")
    assert results == [2, 4]
    assert not (root / "data" / "store.json").exists()
    assert not (root / "data" / "cache").exists() or not list((root / "data" / "cache").iterdir())
    monkeypatch.setenv("LOCAL_RANK", "0")
    run_experiment("unmappable", report=False)
    assert len(json.loads((root / "data" / "store.json").read_text())) == 1
