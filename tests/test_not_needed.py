"""A stage whose entry is missing is not run when every stage reading it is cached (0.20's DAG rule)."""

from __future__ import annotations

import json

import pytest

from conftest import SIDE_HELPER, CliProject

EXPERIMENT = """
import os
import curifactory as cf
from dataclasses import dataclass
from curifactory.caching import JsonCacher, PickleCacher
{side}

@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1

def get_params():
    return [Params(name="a", n=1), Params(name="b", n=2)]

@cf.stage(None, ["data"])  # no cacher: the value lives in memory only
def load(record):
    side("load:" + record.params.name)
    return list(range(record.params.n * 3))

@cf.stage(["data"], ["model"], [PickleCacher])
def train(record, data):
    side("train:" + record.params.name)
    return {{"sum": sum(data)}}

@cf.stage(["model"], ["score"], [JsonCacher])
def score(record, model):
    side("score:" + record.params.name)
    return model["sum"] * 10

{extra}

def run(param_sets, manager):
    records = [score(train(load(cf.Record(manager, p)))) for p in param_sets]
    {tail}
    return records
"""


def make(tmp_path, extra: str = "", tail: str = "") -> CliProject:
    source = EXPERIMENT.format(side=SIDE_HELPER, extra=extra, tail=tail or "pass")
    return CliProject(tmp_path, {"experiments/chain.py": source})


def scores(project: CliProject) -> dict[str, int]:
    values = {}
    for meta in (project.root / "data" / "cache").glob("*_score_metadata.json"):
        entry = json.loads(meta.read_text())
        values[entry["params_name"] if "params_name" in entry else meta.name] = json.loads(
            (meta.parent / entry["files"][0]).read_text())
    return values


def test_a_warm_run_does_not_recompute_an_uncached_output_nobody_needs(tmp_path):
    project = make(tmp_path)
    first = project.run("chain")
    assert first.returncode == 0, first.stderr
    assert sorted(project.executed()) == ["load:a", "load:b", "score:a", "score:b", "train:a", "train:b"]
    cold = scores(project)
    assert sorted(cold.values()) == [30, 150]

    warm = project.run("chain")
    assert warm.returncode == 0, warm.stderr
    assert project.executed() == []  # 0.20 skipped load too; before, it ran on every warm run
    assert "6 stage calls (0 to run, 4 cached, 2 not needed)" in warm.stdout
    assert "0 stages executed, 4 cached, 2 not needed" in warm.stdout
    assert scores(project) == cold
    report = project.report(project.store()[-1]["reference"]).read_text()
    assert 'stage-skipped">skipped</span>' in report and "not computed: not needed" in report
    shown = project.curifactory("show", "latest")
    assert shown.returncode == 0, shown.stderr
    assert "stage load                 skipped" in shown.stdout and "not computed (not needed)" in shown.stdout

    mapped = project.run("chain", "--map")
    assert mapped.returncode == 0, mapped.stderr
    assert "0 to run, 4 cached, 2 not needed" in mapped.stdout
    assert "skip    not needed: every stage reading its outputs is cached" in mapped.stdout


def test_a_deleted_intermediate_entry_is_not_recomputed_while_its_readers_are_cached(tmp_path):
    project = make(tmp_path)
    assert project.run("chain").returncode == 0
    project.executed()
    for path in (project.root / "data" / "cache").glob("*_train_model*"):
        path.unlink()  # model entries gone, score entries still there
    rerun = project.run("chain")
    assert rerun.returncode == 0, rerun.stderr
    assert project.executed() == []
    # asking for score again needs the model: train (and load before it) run again
    overwrite = project.run("chain", "--overwrite-stage", "score")
    assert overwrite.returncode == 0, overwrite.stderr
    assert sorted(project.executed()) == ["load:a", "load:b", "score:a", "score:b", "train:a", "train:b"]
    assert sorted(scores(project).values()) == [30, 150]
    # the model entries are back: only score reruns now, load stays not needed
    again = project.run("chain", "--overwrite-stage", "score")
    assert again.returncode == 0, again.stderr
    assert sorted(project.executed()) == ["score:a", "score:b"]


def test_a_value_the_experiment_reads_outside_a_stage_is_computed(tmp_path):
    project = make(tmp_path, tail='manager.first_data = records[0].state["data"]')
    assert project.run("chain").returncode == 0
    project.executed()
    warm = project.run("chain")
    assert warm.returncode == 0, warm.stderr
    assert project.executed() == ["load:a"]  # read by run(): needed; b's load is not


def test_a_stage_reading_an_undeclared_value_that_was_not_needed_gets_a_clear_error(tmp_path):
    extra = '''
@cf.stage(["score"], [])
def summary(record, score):
    side("summary:" + record.params.name)
    return len(record.state["data"])  # not declared as an input
'''
    project = make(tmp_path, extra=extra, tail="[summary(r) for r in records]")
    assert project.run("chain").returncode == 0
    project.executed()
    failed = project.run("chain")
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr
    message = " ".join(failed.stderr.split())
    assert "'data' of stage 'load' on record" in message
    assert "must list it in inputs=[...]" in message
    assert scores(project)  # nothing lost


@pytest.mark.parametrize("flag", ["--no-dag"])
def test_without_the_map_pass_every_missing_entry_runs(tmp_path, flag):
    project = make(tmp_path)
    assert project.run("chain").returncode == 0
    project.executed()
    rerun = project.run("chain", flag)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(project.executed()) == ["load:a", "load:b"]
