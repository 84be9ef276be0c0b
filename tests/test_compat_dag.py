"""0.20's ``manager.map``: the DAG of a map pass, made by hand or by a run (issue 15, item 1)."""

from __future__ import annotations

import pytest

import curifactory as cf
from curifactory.caching import JsonCacher
from curifactory.dag import DAG, ExecutionNode, MapArtifactRepresentation
from curifactory.experiment import run_experiment
from conftest import CHAIN_EXPERIMENT


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return cf.ArtifactManager("mapped", suppress_live_log=True)


@cf.stage(None, ["raw"], [JsonCacher])
def make_raw(record):
    return 1


@cf.stage(["raw"], ["doubled"], [JsonCacher])
def double_raw(record, raw):
    return raw * 2


@cf.stage(["doubled"], [])
def show(record, doubled):
    return doubled


def test_a_hand_made_map_pass_gives_the_dag_of_its_calls(manager):
    manager.map_mode = True
    first = cf.Record(manager, cf.ExperimentParameters("a"))
    double_raw(make_raw(first))
    copy = first.make_copy(cf.ExperimentParameters("b"))
    show(copy)
    manager.map_mode = False
    manager.map_records()
    dag = manager.map
    assert isinstance(dag, DAG)
    assert dag.records == [first, copy] and dag.child_records(first) == [copy]
    assert [(a.record_index, a.stage_name, a.name, a.cached) for a in dag.artifacts] == [
        (0, "make_raw", "raw", False), (0, "double_raw", "doubled", False)]
    assert all(isinstance(a, MapArtifactRepresentation) for a in dag.artifacts)
    assert not dag.is_leaf(first, "make_raw") and not dag.is_leaf(first, "double_raw")
    assert dag.is_leaf(copy, "show") and dag.find_leaves() == [(1, "show")]
    assert dag.is_output_used_anywhere(first, 2, "doubled")  # by show, on the copy
    assert not dag.is_output_used_anywhere(first, 0, "nothing")
    [tree] = dag.execution_trees
    assert isinstance(tree, ExecutionNode) and tree.chain_rep() == (1, "show")
    assert [d.chain_rep() for d in tree.dependencies] == [(0, "double_raw")]
    assert tree.dependencies[0].dependencies[0].chain_rep() == (0, "make_raw")
    assert sorted(dag.execution_list) == [(0, "double_raw"), (0, "make_raw"), (1, "show")]
    # "what if": with raw cached, make_raw is left out; with both cached, only show runs
    dag.artifacts[0].cached = True
    dag.determine_execution_list()
    assert sorted(dag.execution_list) == [(0, "double_raw"), (1, "show")]
    dag.artifacts[1].cached = True
    dag.artifacts[0].cached = False  # not needed: double_raw, its only reader, is cached
    dag.determine_execution_list()
    assert dag.execution_list == [(1, "show")]


def test_an_input_nothing_provides_is_a_key_error_naming_it(manager):
    manager.map_mode = True
    record = cf.Record(manager, cf.ExperimentParameters("a"))
    double_raw(record)
    manager.map_mode = False
    with pytest.raises(KeyError, match="needs input 'raw'"):
        manager.map_records()
    other = cf.ArtifactManager("given", suppress_live_log=True)
    other.map_mode = True
    double_raw(cf.Record(other, cf.ExperimentParameters("b")), raw=3)  # passed as a keyword: fine
    other.map_mode = False
    other.map_records()
    assert other.map.execution_list == [(0, "double_raw")]


def test_a_run_leaves_its_map_with_what_it_executed(project, capsys):
    project({"experiments/chain.py": CHAIN_EXPERIMENT})
    _, manager = run_experiment("chain", report=False)
    dag = manager.map
    assert sorted(dag.execution_list) == [(0, "double"), (0, "load"), (1, "double"), (1, "load"), (2, "total")]
    assert len(dag.records) == 3 and len(dag.artifacts) == 5
    _, warm = run_experiment("chain", report=False)
    assert warm.map.execution_list == []
    assert all(a.cached for a in warm.map.artifacts)
    assert [a.name for a in warm.mapped_artifacts] == ["x", "y", "x", "y", "total"]  # 0.20's list
    assert warm.map.artifacts[0].metadata["run_reference"] == manager.get_reference_name()
    warm.map.print_experiment_map()
    printed = capsys.readouterr().out
    assert "Stage: load" in printed and "Stage: total (leaf)" in printed
    assert f"x (cached) [{manager.get_reference_name()}]" in printed


def test_a_hidden_records_calls_are_left_out_of_the_trees(manager):
    manager.map_mode = True
    base = make_raw(cf.Record(manager, cf.ExperimentParameters("base"), hide=True))
    copy = base.make_copy(cf.ExperimentParameters("seen"))
    double_raw(copy)
    manager.map_mode = False
    manager.map_records()  # 0.20 raised nothing here either
    dag = manager.map
    assert [tree.chain_rep() for tree in dag.execution_trees] == [(0, "double_raw")]
    assert dag.execution_trees[0].dependencies == []
    assert dag.execution_list == [(0, "double_raw")]
