"""Values describing what happened to a record: one :class:`StageRun` per stage call.

Reports, notebooks and the CLI read these; the execution core writes them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class StageStatus(str, enum.Enum):
    """How a stage call was resolved in a run."""

    EXECUTED = "executed"
    """The stage function ran in this run."""
    CACHED = "cached"
    """Every output was valid in the cache; nothing ran (values load on access)."""
    FAILED = "failed"
    """The stage function raised."""
    SKIPPED = "skipped"
    """Not needed: its entry is missing, but every stage declared to read it was cached, so
    nothing ran and nothing was loaded (reading one of its outputs later runs it then)."""


@dataclass(frozen=True)
class ArtifactInfo:
    """One named output of a stage call.

    Attributes:
        name: the output name (the key in ``record.state``).
        path: the artifact's file in the cache, or ``None`` when it has no cacher.
        cacher: the cacher class name, or ``None``.
        computed: ``True`` when the value was computed in this run, ``False`` when
            it came from the cache.
        preview: a short text preview of the value (empty when it was never loaded).
        files: every file the cacher wrote (the artifact, extra files, metadata).
        content_hash: the hash of the entry's files ("" when it has none).
        size: the entry's size in bytes (-1 when unknown).
        produced_by: the reference of the run that computed the entry ("" when unknown).
    """

    name: str
    path: str | None
    cacher: str | None
    computed: bool
    preview: str = ""
    files: tuple[str, ...] = ()
    content_hash: str = ""
    size: int = -1
    produced_by: str = ""

    @property
    def file(self) -> str | None:
        """0.20's name for :attr:`path`."""
        return self.path


@dataclass(frozen=True)
class Attempt:
    """One attempt of a stage call that may be retried (``@stage(retries=N)``).

    Attributes:
        number: 1 for the first attempt.
        started_at, ended_at: seconds since the epoch.
        status: ``executed`` (it returned) or ``failed`` (it raised).
        error: the exception of a failed attempt (``Type: message``).
    """

    number: int
    started_at: float
    ended_at: float
    status: str
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        """The attempt as the run log keeps it."""
        return {"attempt": self.number, "started_at": round(self.started_at, 3), "ended_at": round(self.ended_at, 3),
                "duration": round(self.ended_at - self.started_at, 6), "status": self.status,
                "error": self.error or None}


@dataclass(frozen=True)
class StageRun:
    """One call of a stage on a record.

    Attributes:
        stage: the stage (function) name.
        record_index: position of the record in ``manager.records``.
        inputs: the input names the stage declared.
        outputs: the artifacts of its outputs, in declaration order.
        status: how the call was resolved.
        seconds: wall time of the call (including saving), 0 when cached.
        aggregate: whether the stage is an aggregate.
        input_records: for an aggregate, indices of the records it combined.
        reportables: how many reportables the stage produced.
        reason: why it ran, or ``cached`` (``Decision.describe()``).
        cascades: the reason reruns what is downstream too (an overwrite, a code change).
        started_at: when the call started (seconds since the epoch).
        error: the exception of a failed call (``Type: message``).
        attempts: every attempt of a stage declared with ``retries`` (empty otherwise).
    """

    stage: str
    record_index: int
    inputs: tuple[str, ...]
    outputs: tuple[ArtifactInfo, ...]
    status: StageStatus
    seconds: float = 0.0
    aggregate: bool = False
    input_records: tuple[int, ...] = field(default_factory=tuple)
    reportables: int = 0
    reason: str = ""
    cascades: bool = False
    started_at: float = 0.0
    error: str = ""
    attempts: tuple[Attempt, ...] = ()
