"""Record and State: lazy values, copies, aggregate hashes, the notebook view."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import curifactory as cf
from curifactory.caching import JsonCacher, Lazy
from curifactory.record import Record, State


@dataclass
class P(cf.ExperimentParameters):
    n: int = 1


class Counting(Lazy):
    memoize = True

    def __init__(self, value):
        super().__init__("v")
        self.value, self.loads = value, 0

    def load(self):
        self.loads += 1
        return self.value


def test_state_loads_a_deferred_value_once_and_raw_leaves_it():
    state = State()
    state["v"] = deferred = Counting(5)
    assert not state.is_loaded("v") and state.raw("v") is deferred
    assert state["v"] == 5 and state["v"] == 5 and deferred.loads == 1 and state.is_loaded("v")


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return cf.ArtifactManager("rec", suppress_live_log=True)


def test_make_copy_carries_only_the_state(manager):
    @cf.stage(None, ["x"], [JsonCacher])
    def make(record):
        return [record.params.n]

    first = make(Record(manager, P(name="a", n=3)))
    copy = first.make_copy(P(name="b", n=4))
    assert copy.state["x"] == [3] and copy.state["x"] is not first.state["x"]
    assert copy.stages == [] and copy.input_records == [first] and copy in manager.records


def test_an_aggregate_hash_combines_its_records(manager):
    a, b = Record(manager, P(name="a", n=1)), Record(manager, P(name="b", n=2))
    agg = Record(manager, None)
    agg.set_aggregate([a, b])
    other = Record(manager, None)
    other.set_aggregate([a])
    assert agg.get_hash() != other.get_hash() and agg.name == "aggregate"


def test_the_notebook_view_goes_through_the_manager_and_is_escaped_without_one(manager):
    record = Record(manager, P(name="<b>x</b>"))
    assert "&lt;b&gt;x&lt;/b&gt;" in record._repr_html_()
    orphan = Record(None, P(name="<i>y</i>"))
    assert orphan._repr_html_().startswith("<pre>") and "<i>" not in orphan._repr_html_()


def test_a_state_that_does_not_resolve_hands_out_the_placeholder():
    state = State()
    state["v"] = deferred = Counting(5)
    state.resolve = False  # 0.20's switch
    assert state["v"] is deferred and deferred.loads == 0 and state.copy().resolve is False
    state.resolve = True
    assert state["v"] == 5 and deferred.loads == 1


def test_an_aggregate_warns_about_a_record_without_its_input(manager, caplog):
    @cf.stage(None, ["x"])
    def make(record):
        return record.params.n

    @cf.aggregate(["x"], ["total"])
    def total(record, records, x):
        return sum(x.values())

    with_x = make(cf.Record(manager, P(name="a", n=2)))
    without = cf.Record(manager, P(name="b", n=3))
    with caplog.at_level("WARNING"):
        result = total(cf.Record(manager, None), [with_x, without])
    assert result.state["total"] == 2
    assert f"artifact 'x' not found in record {without.get_reference_name()}" in caplog.text
