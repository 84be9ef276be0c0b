"""The options of one run, as a frozen value, and the manager attributes that read them.

0.20 code reads and sets options as manager attributes (``manager.dry = True``);
:class:`OptionsMirror` keeps that working while the options themselves stay one frozen
:class:`RunOptions` value: setting an attribute replaces the value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from curifactory.config import CODE_CHANGES
from curifactory.errors import UsageError


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
        code_changes: ``rerun``, ``warn`` or ``ignore`` for entries whose code
            fingerprint changed (None: the project config's ``code_changes``).
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
    code_changes: str | None = None

    @property
    def may_write_cache(self) -> bool:
        return not (self.dry or self.dry_cache)


OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(RunOptions))


class _OptionList(list):  # type: ignore[type-arg]
    """A list option as 0.20 code sees it: changing it in place changes the options too."""

    def __init__(self, owner: Any, name: str, items: Any):
        super().__init__(items)
        self._owner, self._name = owner, name

    def _changed(self) -> None:
        owner = self._owner
        object.__setattr__(owner, "options", dataclasses.replace(owner.options, **{self._name: tuple(self)}))


def _syncing(method_name: str) -> Any:
    method = getattr(list, method_name)

    def changed(self: _OptionList, *args: Any) -> Any:
        result = method(self, *args)
        self._changed()
        return result if method_name != "__iadd__" else self

    changed.__name__ = method_name
    return changed


for _name in ("append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse", "__setitem__",
              "__delitem__", "__iadd__"):
    setattr(_OptionList, _name, _syncing(_name))


def _check(name: str, value: Any) -> None:
    if name == "code_changes" and value not in (None, *CODE_CHANGES):
        raise UsageError(f"code_changes is {value!r}; use one of {', '.join(repr(c) for c in CODE_CHANGES)} "
                         f"(or None for the project config's).")


class OptionsMirror:
    """A mixin keeping each :class:`RunOptions` field readable as a plain attribute.

    0.20 code reads and sets ``manager.dry`` and friends. Reads are plain attribute
    reads (they happen on every stage call); setting one replaces the frozen
    ``options`` value, and setting ``options`` updates every attribute. Sequences
    are stored in ``options`` as tuples and shown as lists that write changes back.
    """

    options: RunOptions

    def __setattr__(self, name: str, value: Any) -> None:
        if name in OPTION_NAMES:  # one option: a new options value, mirrored below
            stored = tuple(value) if isinstance(value, list) else value
            self.options = dataclasses.replace(self.options, **{name: stored})
        elif name == "options":
            for field in OPTION_NAMES:
                _check(field, getattr(value, field))
            object.__setattr__(self, "options", value)
            for field in OPTION_NAMES:
                current = getattr(value, field)
                shown = _OptionList(self, field, current) if isinstance(current, tuple) else current
                object.__setattr__(self, field, shown)
        else:
            object.__setattr__(self, name, value)
