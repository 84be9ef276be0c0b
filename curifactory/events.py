"""Progress events emitted by the execution core.

The core only emits; progress bars, logs, reports and notebooks listen. A listener
is any object with an ``on_event(event)`` method (see :class:`Listener`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from curifactory.history import StageStatus


@dataclass(frozen=True)
class Event:
    """Base of every event."""


@dataclass(frozen=True)
class RunStarted(Event):
    """A manager started executing an experiment (after mapping, when there is a plan)."""

    reference: str
    experiment_name: str
    records: int
    planned_stages: int
    planned_to_run: int
    computed_by_workers: int = 0
    """Of the cached calls, how many ``--parallel`` workers computed just before."""
    sweep: str = ""
    """The sweep id when the parameter sets come from a YAML grid or random block."""
    points_done: int = -1
    """Of the parameter sets, how many have nothing left to compute (-1: not known)."""
    planned_not_needed: int = 0
    """Of the calls not run, how many are not needed (entry missing, every reader cached)."""


@dataclass(frozen=True)
class StageStarted(Event):
    """A stage call on a record began; ``will_execute`` is False for a cache hit."""

    stage: str
    record_index: int
    record_name: str
    will_execute: bool


@dataclass(frozen=True)
class CacheHit(Event):
    """An output was found valid in the cache and was not computed."""

    stage: str
    record_index: int
    artifact: str
    path: str


@dataclass(frozen=True)
class CacheInvalid(Event):
    """A cache entry existed but was corrupt or incomplete; the stage will recompute."""

    stage: str
    record_index: int
    artifact: str
    path: str
    reason: str


@dataclass(frozen=True)
class LegacyEntry(Event):
    """A missing entry's curifactory 0.20 counterpart was found: adopted, or refused and why."""

    stage: str
    record_index: int
    artifact: str
    path: str
    adopted: bool
    reason: str = ""


@dataclass(frozen=True)
class StageFinished(Event):
    """A stage call on a record finished (executed, cached or failed)."""

    stage: str
    record_index: int
    record_name: str
    status: StageStatus
    seconds: float
    was: StageStatus | None = None
    """For a call skipped as not needed and computed later (its output was read): ``SKIPPED``."""


@dataclass(frozen=True)
class WorkersStarted(Event):
    """``--parallel`` workers start filling the cache (the parent waits for them)."""

    workers: int
    param_sets: int
    unit: str = "parameter set"
    """What the workers compute: parameter sets (``--parallel``) or stage calls (Dask tasks)."""
    executor: str = "parallel"
    """Who computes: ``parallel`` (``--parallel`` workers) or ``dask``."""


@dataclass(frozen=True)
class WorkersFinished(Event):
    """The ``--parallel`` workers filled the cache (the parent's pass then finds it cached)."""

    workers: int
    executed: int
    failed_workers: int
    by_worker: tuple[tuple[str, int], ...] = ()
    """(worker address, tasks it ran), for executors that know (``--executor dask``)."""
    executor: str = "parallel"


@dataclass(frozen=True)
class RunFinishing(Event):
    """Every stage call of a run is done and the run is being closed (its store entry, run log
    and report follow; e.g. the report starts drawing its stage graph meanwhile)."""

    reference: str


@dataclass(frozen=True)
class RunFinished(Event):
    """A run ended; ``status`` is the store status (complete, error, LIVE)."""

    reference: str
    status: str
    seconds: float
    error: str | None = None


@runtime_checkable
class Listener(Protocol):
    """Anything that wants progress: implement ``on_event``."""

    def on_event(self, event: Event) -> None:  # pragma: no cover - protocol
        ...


class NullListener:
    """The default listener: ignores everything."""

    def on_event(self, event: Event) -> None:
        return None


def emit(listeners: list[Listener], event: Event) -> None:
    """Send ``event`` to every listener; a failing listener never breaks a run.

    A listener with a ``listens_to`` attribute (a tuple of event classes) gets only those.
    """
    for listener in listeners:
        wanted = getattr(listener, "listens_to", None)
        if wanted is not None and not isinstance(event, wanted):
            continue
        try:
            listener.on_event(event)
        except Exception:  # a progress bar must not kill an experiment
            import logging

            logging.getLogger(__name__).debug("listener %r failed", listener, exc_info=True)
