"""A stage whose entry is missing is not run when every stage reading it is cached (0.20's DAG rule)."""

from __future__ import annotations

import json
import subprocess
import sys

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


@pytest.fixture
def project_factory(project):
    """The chain experiment as a project in tmp_path (the current folder), for run_experiment."""

    def make_it(report_in_load: bool = False):
        source = EXPERIMENT.format(side="def side(text):\n    pass", extra="", tail="pass")
        if report_in_load:
            source = source.replace('    side("load:" + record.params.name)\n',
                                    '    record.report(JsonReporter({"n": 1}, name="loaded-" + record.params.name))\n')
            source = source.replace("import curifactory as cf\n",
                                    "import curifactory as cf\nfrom curifactory.reporting import JsonReporter\n")
        return project({"experiments/chain.py": source})

    return make_it


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


def test_a_stage_reading_an_undeclared_value_that_was_not_needed_computes_it_then(tmp_path):
    extra = '''
@cf.stage(["score"], [])
def summary(record, score):
    side("summary:" + record.params.name)
    with open(os.environ["CF_TEST_SIDE"] + ".sizes", "a") as out:
        out.write(f"{record.params.name}={len(record.state['data'])}\\n")  # not declared as an input

@cf.aggregate([], ["total"], [JsonCacher])
def total(record, records):
    return sum(sum(r.state["data"]) for r in records)  # 0.20's idiom: undeclared, through the records
'''
    project = make(tmp_path, extra=extra, tail="[summary(r) for r in records]; total(cf.Record(manager, None), records)")
    assert project.run("chain").returncode == 0
    project.executed()
    (tmp_path / "side.log.sizes").unlink()
    result = project.run("chain", "-v")
    assert result.returncode == 0, result.stderr
    # summary always runs (no outputs) and reads data: load runs when it is read, once per set
    assert sorted(project.executed()) == ["load:a", "load:b", "summary:a", "summary:b"]
    assert sorted((tmp_path / "side.log.sizes").read_text().split()) == ["a=3", "b=6"]
    assert "Stage 'load' on record 0:a runs now: its output 'data' was read" in result.stderr
    assert "done: 4 stages executed, 5 cached in" in result.stdout  # summary twice, load twice
    shown = project.curifactory("show", "latest")
    assert "computed when 'data' was read" in shown.stdout
    # with the aggregate's own entry gone, it reruns and reads data through the records: computed
    for path in (project.root / "data" / "cache").glob("*_total_total*"):
        path.unlink()
    rerun = project.run("chain")
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(project.executed()) == ["load:a", "load:b", "summary:a", "summary:b"]
    [entry] = (project.root / "data" / "cache").glob("*_total_total.json")
    assert json.loads(entry.read_text()) == 3 + 15


def test_values_read_after_the_run_and_through_copies_are_computed(project_factory):
    from curifactory.experiment import run_experiment

    project_factory()
    run_experiment("chain", report=False)
    results, manager = run_experiment("chain", report=False)
    assert [r.history[0].status.value for r in results] == ["skipped", "skipped"]
    from curifactory import notebook

    shown = notebook.record_html(results[1])
    assert "not computed: not needed; computed on access" in shown and "data (not computed)" in shown
    assert results[1].state["data"] == [0, 1, 2, 3, 4, 5]  # computed now, for this record only
    assert results[1].output == 150  # still the last stage's output
    assert [r.history[0].status.value for r in results] == ["skipped", "executed"]
    copy = results[0].make_copy(results[0].params)
    assert copy.state["data"] == [0, 1, 2] and results[0].state["data"] == [0, 1, 2]


def test_the_reportables_of_a_call_not_needed_are_shown_as_for_a_cached_one(project_factory):
    from curifactory.experiment import run_experiment

    project_factory(report_in_load=True)
    run_experiment("chain", report=False)
    _, manager = run_experiment("chain", report=False)
    assert sorted(r.name for r in manager.reportables) == ["loaded-a", "loaded-b"]
    assert manager.records[0].state["data"] == [0, 1, 2]  # computed when read: it reports afresh, once
    assert sorted(r.name for r in manager.reportables) == ["loaded-a", "loaded-b"]


def test_a_rechecked_reader_that_reruns_computes_an_input_not_needed_before(tmp_path):
    source = '''
import os
import curifactory as cf
from curifactory.caching import JsonCacher
{side}

def get_params():
    return [cf.ExperimentParameters(name="a")]

@cf.stage(None, ["a"], [JsonCacher])
def load_a(record):
    side("load_a")
    return int(os.environ.get("CF_A", "1"))

@cf.stage(None, ["p"])  # no cacher
def load_p(record):
    side("load_p")
    return 100

@cf.stage(["a", "p"], ["both"], [JsonCacher])
def combine(record, a, p):
    side("combine")
    return a + p

def run(param_sets, manager):
    return [combine(load_p(load_a(cf.Record(manager, p)))) for p in param_sets]
'''.format(side=SIDE_HELPER)
    project = CliProject(tmp_path, {"experiments/mix.py": source})
    assert project.run("mix").returncode == 0
    assert project.run("mix").returncode == 0
    project.executed()  # load_p was not needed on the second run
    [entry] = (project.root / "data" / "cache").glob("*_load_a_a.json")
    entry.write_text("7")  # corrupt: load_a reruns and gives another value, so combine reruns
    env = dict(CF_A="2")
    result = subprocess.run([sys.executable, "-m", "curifactory", "mix"], cwd=project.root,
                            env=dict(project.env(), **env), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert sorted(project.executed()) == ["combine", "load_a", "load_p"]
    [both] = (project.root / "data" / "cache").glob("*_combine_both.json")
    assert json.loads(both.read_text()) == 102


@pytest.mark.parametrize("flag", ["--no-dag"])
def test_without_the_map_pass_every_missing_entry_runs(tmp_path, flag):
    project = make(tmp_path)
    assert project.run("chain").returncode == 0
    project.executed()
    rerun = project.run("chain", flag)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(project.executed()) == ["load:a", "load:b"]
