"""The one decision, case by case, with no files: every Reason and every rule's order."""

from __future__ import annotations

import pytest

from curifactory.decision import CallFacts, Decision, Entry, OutputFact, Reason, decide, needed

VALID = OutputFact("a", Entry.VALID)
MISSING = OutputFact("b", Entry.MISSING)
INVALID = OutputFact("c", Entry.INVALID, "corrupt")
NO_CACHER = OutputFact("d", Entry.NO_CACHER)

# (facts, expected decision)
TABLE = [
    (CallFacts("s", ()), Decision(Reason.NO_OUTPUTS)),
    (CallFacts("s", (), overwrite=True, upstream_rerun=("u",)), Decision(Reason.NO_OUTPUTS)),
    (CallFacts("s", (VALID,)), Decision(Reason.CACHED)),
    (CallFacts("s", (VALID, VALID)), Decision(Reason.CACHED)),
    (CallFacts("s", (VALID, MISSING)), Decision(Reason.NOT_CACHED, "b")),
    (CallFacts("s", (NO_CACHER, VALID)), Decision(Reason.NOT_CACHED, "d")),
    (CallFacts("s", (VALID, INVALID)), Decision(Reason.INVALID, "c")),
    # a corrupt entry is named even when an earlier output is only missing
    (CallFacts("s", (MISSING, INVALID)), Decision(Reason.INVALID, "c")),
    (CallFacts("s", (VALID,), overwrite=True), Decision(Reason.OVERWRITE)),
    (CallFacts("s", (MISSING,), overwrite=True), Decision(Reason.OVERWRITE)),
    (CallFacts("s", (VALID,), upstream_rerun=("fit", "load")), Decision(Reason.UPSTREAM, "fit")),
    # upstream reruns win over a missing or corrupt entry, so the cascade goes on
    (CallFacts("s", (MISSING,), upstream_rerun=("fit",)), Decision(Reason.UPSTREAM, "fit")),
    (CallFacts("s", (INVALID,), upstream_rerun=("fit",)), Decision(Reason.UPSTREAM, "fit")),
    (CallFacts("s", (VALID,), overwrite=True, upstream_rerun=("fit",)), Decision(Reason.OVERWRITE)),
    # after --parallel workers filled the cache, overwrites apply to aggregates only
    (CallFacts("s", (VALID,), overwrite=True, prefilled=True), Decision(Reason.CACHED)),
    (CallFacts("s", (VALID,), overwrite=True, prefilled=True, aggregate=True), Decision(Reason.OVERWRITE)),
    (CallFacts("s", (VALID,), prefilled=True, aggregate=True, inputs_overwritten=True), Decision(Reason.OVERWRITE)),
    (CallFacts("s", (VALID,), prefilled=True, aggregate=True), Decision(Reason.CACHED)),
    (CallFacts("s", (VALID,), inputs_overwritten=True, aggregate=True), Decision(Reason.CACHED)),
    # code changes: rerun (the default), warn (cached, marked stale), ignore
    (CallFacts("s", (VALID,), code_change="code of helper 'h' (m.py:3) changed"),
     Decision(Reason.CODE_CHANGED, "code of helper 'h' (m.py:3) changed")),
    (CallFacts("s", (VALID,), code_change="x changed", code_changes="warn"), Decision(Reason.CACHED, stale="x changed")),
    (CallFacts("s", (VALID,), code_change="x changed", code_changes="ignore"), Decision(Reason.CACHED)),
    # a missing entry, an overwrite or an upstream rerun say more than a code change
    (CallFacts("s", (MISSING,), code_change="x changed"), Decision(Reason.NOT_CACHED, "b")),
    (CallFacts("s", (VALID,), overwrite=True, code_change="x changed"), Decision(Reason.OVERWRITE)),
    (CallFacts("s", (VALID,), upstream_rerun=("u",), code_change="x"), Decision(Reason.UPSTREAM, "u")),
    # an input recomputed with other content reruns; a code change is named first
    (CallFacts("s", (VALID,), input_change="input 'd' changed content"),
     Decision(Reason.INPUT_CHANGED, "input 'd' changed content")),
    (CallFacts("s", (VALID,), input_change="i", code_change="c"), Decision(Reason.CODE_CHANGED, "c")),
    (CallFacts("s", (VALID,), input_change="i", code_change="c", code_changes="warn"),
     Decision(Reason.INPUT_CHANGED, "i")),
    (CallFacts("s", (MISSING,), input_change="i"), Decision(Reason.NOT_CACHED, "b")),
]


@pytest.mark.parametrize("facts, expected", TABLE)
def test_decide(facts, expected):
    assert decide(facts) == expected


def test_the_table_covers_every_reason():
    # NOT_NEEDED needs the whole graph: needed() makes it (below), decide() never does
    assert {expected.reason for _, expected in TABLE} == set(Reason) - {Reason.NOT_NEEDED}


def test_a_call_run_only_for_a_missing_entry_is_not_needed_when_no_reader_runs():
    missing, corrupt = Decision(Reason.NOT_CACHED, "x"), Decision(Reason.INVALID, "x")
    cached, running = Decision(Reason.CACHED), Decision(Reason.NOT_CACHED, "y")
    assert needed(missing, [cached, cached], read_outside=False).reason is Reason.NOT_NEEDED
    assert needed(corrupt, [cached], read_outside=False) is corrupt  # rerun: the cache is repaired
    assert needed(missing, [cached, running], read_outside=False) is missing  # a reader runs
    assert needed(missing, [], read_outside=False) is missing  # a leaf: nothing else would make it
    assert needed(missing, [cached], read_outside=True) is missing  # run() reads it itself
    for reason in (Reason.OVERWRITE, Reason.CODE_CHANGED, Reason.NO_OUTPUTS, Reason.UPSTREAM):
        assert needed(Decision(reason), [cached], read_outside=False).reason is reason
    assert not Decision(Reason.NOT_NEEDED).runs


def test_cascading_and_running_reasons():
    assert {r for r in Reason if r.cascades} == {Reason.OVERWRITE, Reason.UPSTREAM, Reason.CODE_CHANGED}
    assert {r for r in Reason if not r.runs} == {Reason.CACHED, Reason.NOT_NEEDED}
    assert {r for r in Reason if r.for_missing_entry} == {Reason.NOT_CACHED, Reason.INVALID}


def test_describe_names_the_detail():
    assert Decision(Reason.NOT_CACHED, "model").describe() == "an output is not cached ('model')"
    assert Decision(Reason.OVERWRITE).describe() == "overwrite applies"
    assert Decision(Reason.CODE_CHANGED, "code of stage 'fit' (e.py:3) changed").describe() == \
        "code of stage 'fit' (e.py:3) changed"
    assert Decision(Reason.CACHED, stale="x changed").describe() == "cached, but stale: x changed"


NEEDS_MORE = (Reason.UPSTREAM, Reason.CODE_CHANGED, Reason.INPUT_CHANGED, Reason.NOT_NEEDED)


@pytest.mark.parametrize("reason", [r for r in Reason if r not in NEEDS_MORE])
def test_facts_for_a_calls_own_reason_decide_that_reason(reason):
    assert decide(CallFacts.for_reason("s", reason)).reason is reason


@pytest.mark.parametrize("reason", NEEDS_MORE)
def test_reasons_that_need_more_facts_are_not_made_from_a_reason(reason):
    assert decide(CallFacts.for_reason("s", reason)).reason is Reason.CACHED
