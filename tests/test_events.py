"""Events: what a run emits, in order, and that a broken listener never breaks a run."""

from __future__ import annotations

from curifactory.events import (
    CacheHit,
    NullListener,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
    emit,
)
from curifactory.experiment import run_experiment
from conftest import CHAIN_EXPERIMENT as EXPERIMENT


class Recorder:
    def __init__(self):
        self.events = []

    def on_event(self, event):
        self.events.append(event)


class Broken:
    def on_event(self, event):
        raise RuntimeError("a progress bar bug")


def test_a_run_emits_its_events_in_order(project):
    project({"experiments/ev.py": EXPERIMENT})
    first = Recorder()
    run_experiment("ev", report=False, listeners=[Broken(), first])
    kinds = [type(e).__name__ for e in first.events]
    assert kinds == ["RunStarted", *["StageStarted", "StageFinished"] * 5, "RunFinishing", "RunFinished"]
    started = first.events[0]
    assert isinstance(started, RunStarted) and (started.planned_stages, started.planned_to_run) == (5, 5)
    assert all(e.will_execute for e in first.events if isinstance(e, StageStarted))
    assert [e.status.value for e in first.events if isinstance(e, StageFinished)] == ["executed"] * 5
    assert isinstance(first.events[-1], RunFinished) and first.events[-1].status == "complete"
    again = Recorder()
    run_experiment("ev", report=False, listeners=[again])
    assert [e.artifact for e in again.events if isinstance(e, CacheHit)] == ["x", "y", "x", "y", "total"]
    assert again.events[0].planned_to_run == 0


def test_emit_reaches_every_listener_past_a_failing_one():
    seen = Recorder()
    emit([Broken(), NullListener(), seen], RunFinished("ref", "complete", 1.0))
    assert [e.reference for e in seen.events] == ["ref"]


def test_a_listener_can_ask_for_some_events_only():
    class OnlyFinished(Recorder):
        listens_to = (RunFinished,)

    only = OnlyFinished()
    emit([only], StageStarted("s", 0, "a", True))
    emit([only], RunFinished("ref", "complete", 1.0))
    assert [type(e).__name__ for e in only.events] == ["RunFinished"]
