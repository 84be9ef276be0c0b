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
    assert runs == {(0, "fit"), (0, "score"), (1, "load"), (2, "best"), (2, "plot")}
    assert result.decisions[(0, "score", 0)] is Reason.UPSTREAM
    assert result.decisions[(2, "best", 0)] is Reason.UPSTREAM
    assert result.runs((1, "fit", 0)) is False and result.runs((9, "x", 0)) is None
    assert ((0, "load", 0), (0, "fit", 0), "data") in result.edges


def test_calls_downstream_of_a_missing_entry_are_rechecked_when_it_has_run():
    nodes = [
        node(0, "load", [], ["raw"], Reason.NOT_CACHED),
        node(0, "shift", ["raw"], ["shifted"], Reason.CACHED),
        node(0, "pinned", ["shifted"], ["pinned"], Reason.CACHED),
        node(1, "load", [], ["raw"], Reason.CACHED),
        node(1, "shift", ["raw"], ["shifted"], Reason.CACHED),
    ]
    result = plan(nodes)
    assert {n.key[:2] for n in result.to_run} == {(0, "load")}
    assert result.rechecks == {(0, "shift", 0), (0, "pinned", 0)}
