"""The planner, pure."""

from __future__ import annotations

from curifactory.dag import Node, Reason, plan


def node(record, stage, inputs, outputs, status, input_records=None):
    return Node((record, stage, 0), tuple(inputs), tuple(outputs), tuple(input_records or [record]), status)


def test_only_uncached_and_overwritten_calls_run_and_overwrites_cascade():
    nodes = [
        node(0, "load", [], ["data"], Reason.CACHED),
        node(0, "fit", ["data"], ["model"], Reason.OVERWRITE),
        node(0, "score", ["model"], ["score"], Reason.CACHED),
        node(1, "load", [], ["data"], Reason.NOT_CACHED),
        node(1, "fit", ["data"], ["model"], Reason.CACHED),
        node(1, "score", ["model"], ["score"], Reason.CACHED),
        node(2, "best", ["score"], ["best"], Reason.CACHED, input_records=[0, 1]),
        node(2, "plot", ["best"], [], Reason.NO_OUTPUTS),
    ]
    result = plan(nodes)
    runs = {n.key[:2] for n in result.to_run}
    assert runs == {(0, "fit"), (0, "score"), (2, "best"), (2, "plot")}
    # record 1's data entry is missing, but the one stage reading it (fit) is cached: not needed
    assert result.decisions[(1, "load", 0)] is Reason.NOT_NEEDED
    assert [n.key for n in result.not_needed] == [(1, "load", 0)]
    assert result.decisions[(0, "score", 0)] is Reason.UPSTREAM
    assert result.decisions[(2, "best", 0)] is Reason.UPSTREAM
    assert result.runs((1, "fit", 0)) is False and result.runs((9, "x", 0)) is None
    assert ((0, "load", 0), (0, "fit", 0), "data") in result.edges


def test_calls_downstream_of_a_missing_entry_are_rechecked_when_it_has_run():
    nodes = [
        node(0, "load", [], ["raw"], Reason.NOT_CACHED),
        node(0, "shift", ["raw"], ["shifted"], Reason.CACHED),
        node(0, "pinned", ["shifted"], ["pinned"], Reason.CACHED),
        node(0, "peek", ["raw"], [], Reason.NO_OUTPUTS),  # runs, so load is needed
        node(1, "load", [], ["raw"], Reason.CACHED),
        node(1, "shift", ["raw"], ["shifted"], Reason.CACHED),
    ]
    result = plan(nodes)
    assert {n.key[:2] for n in result.to_run} == {(0, "load"), (0, "peek")}
    assert result.rechecks == {(0, "shift", 0), (0, "pinned", 0)}


def test_a_missing_entry_is_computed_only_when_something_that_runs_reads_it():
    chain = [
        node(0, "t1", [], ["a"], Reason.NOT_CACHED),
        node(0, "t2", ["a"], ["b"], Reason.NOT_CACHED),
        node(0, "t3", ["b"], ["c"], Reason.CACHED),
    ]
    result = plan(chain)  # t3 is cached: neither t2 nor (through it) t1 is needed
    assert result.to_run == [] and result.rechecks == frozenset()
    assert [n.key[1] for n in result.not_needed] == ["t1", "t2"]
    # the last call without readers is a leaf: a missing entry there runs it
    leaf = plan(chain[:2])
    assert [n.key[1] for n in leaf.to_run] == ["t1", "t2"]
    # read by the experiment outside a stage in the map pass: needed
    read = plan(chain, read={(0, "t2", 0)})
    assert [n.key[1] for n in read.to_run] == ["t1", "t2"]
    assert read.rechecks == {(0, "t3", 0)}
    # without pruning (hidden calls, or after --parallel workers ran): every missing entry runs
    assert [n.key[1] for n in plan(chain, prune=False).to_run] == ["t1", "t2"]
    # a corrupt entry is repaired; a code change cascades
    corrupt = plan([node(0, "t1", [], ["a"], Reason.INVALID), node(0, "t3", ["a"], ["c"], Reason.CACHED)])
    assert corrupt.decisions[(0, "t1", 0)] is Reason.INVALID
    changed = plan([node(0, "t1", [], ["a"], Reason.OVERWRITE), node(0, "t3", ["a"], ["c"], Reason.CACHED)])
    assert [n.key[1] for n in changed.to_run] == ["t1", "t3"]
