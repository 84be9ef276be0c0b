"""Stage and aggregate declarations and calling conventions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import curifactory as cf
from curifactory.caching import PickleCacher


@dataclass
class P(cf.ExperimentParameters):
    n: int = 2


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return cf.ArtifactManager("staging", suppress_live_log=True)


def test_signature_errors_at_decoration():
    with pytest.raises(cf.InputSignatureError, match="'b'"):
        @cf.stage(["a", "b"], ["c"])
        def f(record, a):
            return a

    with pytest.raises(cf.EmptyCachersError):
        @cf.stage(None, ["c"], [])
        def g(record):
            return 1

    with pytest.raises(cf.CachersMismatchError, match="2 cachers for 1"):
        @cf.stage(None, ["c"], [PickleCacher, PickleCacher])
        def h(record):
            return 1

    with pytest.raises(cf.InputSignatureError, match="records"):
        @cf.aggregate(["a"], ["b"])
        def agg(record):
            return 1


def test_outputs_inputs_overrides_and_counts(manager):
    @cf.stage(None, ["a", "b"])
    def two(record):
        return record.params.n, record.params.n * 10

    @cf.stage(["a", "b"], ["total"])
    def add(record, a, b):
        return a + b

    @cf.stage(None, ["x", "y"])
    def wrong(record):
        return 1

    r = add(two(cf.Record(manager, P())))
    assert r.state["total"] == 22 and r.output == 22
    assert add(r, b=100).state["total"] == 102
    with pytest.raises(cf.OutputSignatureError, match="wrong"):
        wrong(cf.Record(manager, P()))


def test_missing_input_is_a_keyerror_naming_stage_input_and_record(manager):
    @cf.stage(["data"], ["out"])
    def needs(record, data):
        return data

    @cf.stage(["data"], ["out"], suppress_missing_inputs=True)
    def tolerant(record, data=5):
        return data

    @cf.stage(["data", "weights"], ["out"], suppress_missing_inputs=True)
    def partly(record, data, weights=None):
        return data

    record = cf.Record(manager, P(name="setA"))
    with pytest.raises(cf.MissingInputError, match="default value in the function signature"):
        partly(record)
    with pytest.raises(KeyError) as info:
        needs(record)
    assert isinstance(info.value, cf.MissingInputError)
    message = str(info.value)
    assert "'needs'" in message and "'data'" in message and "setA" in message
    assert tolerant(record).state["out"] == 5


@cf.stage(None, ["v"])
def n_value(record):
    return record.params.n


@cf.aggregate(["v"], ["sum"])
def v_total(record, records, v):
    return sum(v.values())


def test_aggregate_defaults_to_all_other_records(manager):
    value, total = n_value, v_total
    for n in (1, 2, 3):
        value(cf.Record(manager, P(n=n)))
    agg = total(cf.Record(manager, None))
    assert agg.state["sum"] == 6 and agg.is_aggregate and len(agg.input_records) == 3


def test_procedure_runs_stages_in_order(manager):
    @cf.stage(None, ["v"])
    def value(record):
        return record.params.n

    @cf.stage(["v"], ["double"])
    def double(record, v):
        return v * 2

    proc = cf.Procedure([value, double], manager)
    record = proc.run(P(n=4))
    assert isinstance(record, cf.Record) and record.output == 8 and record.state["double"] == 8
    assert proc.records == [record] and record in manager.records


def test_procedure_takes_its_manager_and_records_in_run(manager):
    value, total = n_value, v_total
    first = cf.Procedure([value])
    made = [first.run(P(n=n), manager=manager) for n in (1, 2)]
    assert first.manager is manager and all(r.manager is manager for r in made)
    combined = cf.Procedure([total], manager).run(None, records=made)
    assert combined.state["sum"] == 3
    again = cf.ArtifactManager("again")
    rebound = first.run(P(n=5), manager=again)  # a second run with a new manager uses it
    assert first.manager is again and first.records == [rebound] and rebound.state["v"] == 5
    with pytest.raises(cf.procedure.NoArtifactManagerError, match="manager=manager"):
        cf.Procedure([value]).run(P(n=1))


def test_calling_a_stage_without_a_record_is_a_clear_error():
    @cf.stage(None, ["v"])
    def value(record):
        return 1

    with pytest.raises(TypeError, match="Record"):
        value("not a record")
