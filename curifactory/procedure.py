"""``Procedure``: a fixed list of stages run on one new record per parameter set."""

from __future__ import annotations

from typing import Any, Callable

from curifactory.errors import UsageError
from curifactory.record import Record


class NoArtifactManagerError(UsageError):
    """A procedure or record is used without an ``ArtifactManager`` where one is needed (0.20's name)."""


class Procedure:
    """Run the same stages, in order, on a record made for each parameter set.

    Args:
        stages: stage functions; an aggregate may only come first.
        manager: the manager for the records (a new live one when ``None``).
        name: a label for the procedure.
        previous_proc: a leading aggregate combines this procedure's records.
        records: a leading aggregate combines these records.
    """

    def __init__(self, stages: list[Callable[..., Any]], manager: Any = None, name: str | None = None,
                 previous_proc: Procedure | None = None, records: list[Record] | None = None):
        if manager is None:
            from curifactory.manager import ArtifactManager

            manager = ArtifactManager()
        self.stages = list(stages)
        self.manager = manager
        self.name = name
        self.previous_proc = previous_proc
        self.use_records = records
        self.records: list[Record] = []
        self.record: Record | None = None

    def run(self, param_set: Any, record: Record | None = None, hide: bool = False) -> Any:
        """Run every stage on a record for ``param_set``; returns the last stage's output."""
        if record is None:
            record = Record(self.manager, param_set, hide=hide)
            self.records.append(record)
        self.record = record
        for index, stage_fn in enumerate(self.stages):
            spec = getattr(stage_fn, "stage_spec", None)
            if index == 0 and spec is not None and spec.aggregate:
                source = self.previous_proc.records if self.previous_proc is not None else self.use_records
                record = stage_fn(record, source)
            else:
                record = stage_fn(record)
        return record.output
