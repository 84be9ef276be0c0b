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
        manager: the manager for the records (or given to :meth:`run`).
        name: a label for the procedure.
        previous_proc: a leading aggregate combines this procedure's records.
        records: a leading aggregate combines these records.
    """

    def __init__(self, stages: list[Callable[..., Any]], manager: Any = None, name: str | None = None,
                 previous_proc: Procedure | None = None, records: list[Record] | None = None):
        self.stages = list(stages)
        self.manager = manager
        self.name = name
        self.previous_proc = previous_proc
        self.use_records = records
        self.records: list[Record] = []
        self.record: Record | None = None

    def run(self, param_set: Any, record: Record | None = None, hide: bool = False, manager: Any = None,
            records: list[Record] | None = None) -> Record:
        """Run every stage on a record for ``param_set`` and return that record (as 0.20 does).

        Args:
            param_set: the parameter set of the new record.
            record: a record to use instead of a new one (e.g. one from an earlier procedure).
            hide: keep the new record out of the manager's records.
            manager: the manager, when the procedure was made without one.
            records: the records a leading aggregate combines, when not given at creation.

        Returns:
            The record; the last stage's output is ``record.output``.
        """
        if self.manager is None:
            if manager is None:
                raise NoArtifactManagerError(
                    f"Procedure {self.name or ''!r} has no ArtifactManager: pass one when making it, "
                    "Procedure(stages, manager), or to run(), proc.run(params, manager=manager).")
            self.manager = manager
        elif manager is not None and manager is not self.manager:
            # a module-level procedure run by a new experiment run: the new manager's records
            self.manager, self.records = manager, []
        if records is not None:
            self.use_records = records
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
        return record
