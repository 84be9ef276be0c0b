"""The options of one run, as a frozen value, and the manager attributes that read them.

0.20 code reads and sets options as manager attributes (``manager.dry = True``);
:class:`Option` keeps that working while the options themselves stay one frozen
:class:`RunOptions` value: setting an attribute replaces the value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunOptions:
    """How a run behaves (all of it settable from the ``experiment`` command line).

    Attributes:
        store_full: write a ``--store-full`` run folder.
        dry: write no file at all (cache, store, logs, report).
        dry_cache: write no cache entries (the store and report are written).
        prefix: artifact prefix instead of the experiment name.
        run_line: the command line that started the run.
        lazy: make every output ``Lazy``.
        ignore_lazy: keep every output in memory.
        notes: notes for the store and report.
        overwrite: recompute every stage.
        overwrite_stages: recompute these stages (and what depends on them).
        parallel_mode: this manager is a worker of a ``--parallel`` run (or a
            non-zero distributed rank): it leaves aggregates and the store alone.
        artifact_locks: compute each artifact under an inter-process file lock.
    """

    store_full: bool = False
    dry: bool = False
    dry_cache: bool = False
    prefix: str | None = None
    run_line: str = ""
    lazy: bool = False
    ignore_lazy: bool = False
    notes: str | None = None
    overwrite: bool = False
    overwrite_stages: tuple[str, ...] = ()
    parallel_mode: bool = False
    artifact_locks: bool = False

    @property
    def may_write_cache(self) -> bool:
        return not (self.dry or self.dry_cache)


class Option:
    """A data descriptor: ``manager.<name>`` reads and replaces ``manager.options.<name>``.

    Sequences are stored as tuples and handed out as lists (0.20 code expects lists).
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = getattr(obj.options, self.name)
        return list(value) if isinstance(value, tuple) else value

    def __set__(self, obj: Any, value: Any) -> None:
        if isinstance(value, list):
            value = tuple(value)
        obj.options = dataclasses.replace(obj.options, **{self.name: value})
