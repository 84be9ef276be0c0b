"""``Record``: one parameter set's state as it flows through stages."""

from __future__ import annotations

import copy
import os
from contextlib import AbstractContextManager
from typing import IO, Any, Iterator

from curifactory import hashing
from curifactory.caching import Lazy
from curifactory.history import StageRun


class State(dict):
    """A record's outputs by name; ``Lazy`` values load when read.

    A cached output that was never needed stays on disk until somebody reads it;
    then it is loaded once and kept. A user's ``Lazy`` output is loaded on every
    read, so it is never held in memory longer than the caller needs it.
    """

    resolve = True
    """Set to ``False`` (``record.state.resolve = False``, as in 0.20) and every read hands out
    the ``Lazy`` placeholder itself instead of loading it."""

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        if isinstance(value, Lazy) and value.resolve and self.resolve:
            loaded = value.load()
            if value.memoize:
                dict.__setitem__(self, key, loaded)
            return loaded
        if getattr(type(value), "map_placeholder", False):  # read outside a stage in the map pass
            value.mark_read()
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        return (self[k] for k in list(self.keys()))

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        return ((k, self[k]) for k in list(self.keys()))

    def raw(self, key: str) -> Any:
        """The stored value without loading it (a ``Lazy`` stays a ``Lazy``)."""
        return dict.__getitem__(self, key)

    def is_loaded(self, key: str) -> bool:
        """Whether the value is in memory."""
        return not isinstance(dict.__getitem__(self, key), Lazy)

    def copy(self) -> State:
        copied = State(dict.items(self))
        copied.resolve = self.resolve
        return copied


class Record:
    """The parameter set, state and stage history of one line of an experiment.

    Args:
        manager: the ``ArtifactManager`` the record belongs to.
        param_set: the parameter set (``None`` for e.g. an aggregate's own record).
        hide: keep the record out of the report and the stage graph.
    """

    def __init__(self, manager: Any, param_set: Any, hide: bool = False):
        self.manager = manager
        self.params = param_set
        self.hide = hide
        self.state = State()
        self._output: Any = None
        self.stages: list[str] = []
        self.stage_inputs: list[list[str]] = []
        self.stage_outputs: list[list[str]] = []
        self.history: list[StageRun] = []
        self.reportables: list[Any] = []
        self.input_records: list[Record] = []
        self.is_aggregate = False
        self.combo_hash: str | None = None
        self.stage_cachers: list[Any] | None = None
        self.unstored_tracked_paths: list[dict[str, Any]] = []
        # state keys recomputed in this run for a reason that cascades (an overwrite, a code
        # change), and the stage that recomputed each
        self.overwritten: dict[str, str] = {}
        self.content: dict[str, tuple[str, str]] = {}  # state key -> (content hash, stage), when cached
        self.tags: dict[str, str] = {}
        self.info: dict[str, Any] = {}
        self._checkpoint: Any = None  # the running stage call's (see checkpoint())
        if manager is not None and not hide:
            manager.add_record(self)

    # -- identity ---------------------------------------------------------------
    @property
    def args(self) -> Any:
        """The parameter set (its 0.20 name)."""
        return self.params

    @args.setter
    def args(self, value: Any) -> None:
        self.params = value

    @property
    def output(self) -> Any:
        """The value(s) the last stage returned (loaded on access when cached)."""
        value = self._output
        if isinstance(value, Lazy) and value.resolve:
            return value.load()
        if isinstance(value, tuple) and any(isinstance(v, Lazy) for v in value):
            return tuple(v.load() if isinstance(v, Lazy) and v.resolve else v for v in value)
        return value

    @output.setter
    def output(self, value: Any) -> None:
        self._output = value

    def get_hash(self) -> str:
        """The parameter set's hash; for an aggregate, the combined hash."""
        if self.is_aggregate:
            if self.combo_hash is None:
                self.combo_hash = hashing.combine_hashes(
                    self._own_hash(), (r.get_hash() for r in self.input_records)
                )
            return self.combo_hash
        return self._own_hash()

    def _own_hash(self) -> str:
        if self.params is None:
            return "none"
        return hashing.hash_param_set(self.params)

    @property
    def name(self) -> str:
        """The parameter set's name (``"aggregate"`` or ``"None"`` for a record without one)."""
        if self.params is None:
            return "aggregate" if self.is_aggregate else "None"
        return str(getattr(self.params, "name", None))

    def get_reference_name(self) -> str:
        """``<index>:<param set name>`` as shown in logs and reports."""
        index = self.manager.records.index(self) if self.manager and self in self.manager.records else "?"
        return f"{index}:{self.name}"

    def set_aggregate(self, aggregate_records: list[Record]) -> None:
        """Mark this record as combining ``aggregate_records`` (changes its hash)."""
        self.is_aggregate = True
        self.input_records = list(aggregate_records)
        self.combo_hash = None

    # -- paths --------------------------------------------------------------------
    def get_path(self, obj_name: str, subdir: str | None = None, prefix: str | None = None,
                 stage_name: str | None = None, track: bool = True) -> str:
        """A cache path for a file this record's current stage writes itself."""
        path = self.manager.get_artifact_path(obj_name, self, subdir=subdir, prefix=prefix, stage_name=stage_name)
        if not self.manager.dry:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        if track:
            self.unstored_tracked_paths.append({"obj_name": obj_name, "path": path})
        return path

    def get_dir(self, dir_name: str, subdir: str | None = None, prefix: str | None = None,
                stage_name: str | None = None, track: bool = True) -> str:
        """Like :meth:`get_path`, but creates and returns a folder."""
        path = self.get_path(dir_name, subdir=subdir, prefix=prefix, stage_name=stage_name, track=track)
        if not self.manager.dry:
            os.makedirs(path, exist_ok=True)
        return path

    # -- checkpoints ------------------------------------------------------------------
    def checkpoint(self, state: Any, every: float = 0.0) -> bool:
        """Save the running stage's progress so a killed run resumes it (see
        :meth:`last_checkpoint`): saved when ``every`` seconds have passed since the stage
        started or last saved (``0``: every call). Returns whether it saved. The checkpoint is
        kept under the stage call's cache key and code, and removed once its outputs are cached.

        Raises:
            CheckpointError: called outside a stage, or ``state`` cannot be pickled.
        """
        return bool(self._running_checkpoint("checkpoint").save(state, every))

    def last_checkpoint(self, default: Any = None) -> Any:
        """The state the running stage last saved with :meth:`checkpoint` (in this run or a
        killed one, same parameters and code), else ``default``."""
        return self._running_checkpoint("last_checkpoint").load(default)

    def _running_checkpoint(self, call: str) -> Any:
        checkpoint = getattr(self, "_checkpoint", None)
        if checkpoint is None:
            from curifactory.errors import CheckpointError

            raise CheckpointError(f"record.{call}() works only inside a stage of this record (it saves that "
                                  f"stage call's progress), not in {self.name!r} outside one.")
        return checkpoint

    # -- tracking ---------------------------------------------------------------------
    def _tracker(self) -> Any:
        tracker = getattr(self.manager, "tracker", None)
        if tracker is None:
            from curifactory.errors import TrackingError

            raise TrackingError(f"Record {self.name!r} belongs to no ArtifactManager, so there is no run to log "
                                f"to; make it with cf.Record(manager, params).")
        return tracker

    @property
    def metrics(self) -> dict[str, float]:
        """The last value of each metric this record logged (in this run, or replayed from the cache)."""
        tracker = getattr(self.manager, "tracker", None)
        return dict(tracker.metrics_of(self)) if tracker is not None else {}

    def log_metric(self, name: str, value: float, step: float | None = None) -> None:
        """Log one value of metric ``name`` (a number) at ``step`` (default: the metric's
        previous step + 1, starting at 0); call it inside a stage."""
        self._tracker().log_metric(self, name, value, step)

    def log_metrics(self, metrics: dict[str, float], step: float | None = None) -> None:
        """Log several metrics at once, at the same step."""
        self._tracker().log_metrics(self, metrics, step)

    def set_tag(self, key: str, value: Any) -> None:
        """Tag this record (``tags.<key>`` in :func:`curifactory.load_runs`); the value is kept as text."""
        self._tracker().set_tag(self, key, value)

    def inform(self, **fields: Any) -> None:
        """Keep free-form facts about this record (JSON values; ``info.<key>`` in ``load_runs``)."""
        self._tracker().inform(self, fields)

    def attach(self, filename: str, mode: str = "w", encoding: str | None = None) -> AbstractContextManager[IO[Any]]:
        """``with record.attach("confusion.txt") as f:`` writes a file kept with the run
        (``mode="wb"`` for bytes); it appears only once the block ends without error."""
        return self._tracker().attach(self, filename, mode, encoding)  # type: ignore[no-any-return]

    # -- reporting and copies -------------------------------------------------------
    def report(self, reportable: Any) -> Any:
        """Attach a reportable to this record and the current stage; returns it."""
        stage = getattr(self.manager, "current_stage_name", None) or (self.stages[-1] if self.stages else None)
        reportable.record = self
        reportable.stage = stage
        count = len(self.manager.reportables) if self.manager is not None else len(self.reportables)
        qualified = "(Aggregate)_" if self.is_aggregate else ""
        if self.params is not None:
            qualified += f"{getattr(self.params, 'name', '')}_"
        reportable.qualified_name = f"{qualified}{stage}_{reportable.name if reportable.name else count}"
        self.reportables.append(reportable)
        if self.manager is not None:
            self.manager.reportables.append(reportable)
        return reportable

    def store_tracked_paths(self) -> None:
        """Kept for 0.20 code: files from ``get_path`` go into the run folder when the run closes."""

    def make_copy(self, param_set: Any = None, add_to_manager: bool = True) -> Record:
        """A new record starting from a copy of this one's state (as in 0.20).

        Only the state carries over (and which of its values were overwritten in
        this run); the new record's stage lists start empty and its
        ``input_records`` is ``[self]``. Useful when an expensive common stage feeds
        several parameter sets.
        """
        new = Record(self.manager, param_set if param_set is not None else self.params, hide=not add_to_manager)
        new.state = State({k: _copy_value(dict.__getitem__(self.state, k)) for k in self.state.keys()})
        new.input_records = [self]
        new.overwritten = dict(self.overwritten)
        new.content = dict(self.content)
        new.tags, new.info = dict(self.tags), dict(self.info)
        return new

    def __repr__(self) -> str:
        return f"<Record {self.name!r} hash={self.get_hash()[:10]} stages={self.stages}>"

    def _repr_html_(self) -> str:
        """Jupyter's view, drawn by the manager's notebook views (escaped text without a manager)."""
        render = getattr(self.manager, "record_html", None)
        if render is None:
            import html

            return f"<pre>{html.escape(repr(self))}</pre>"
        return str(render(self))


def _copy_value(value: Any) -> Any:
    # a Lazy points at its cacher, record and manager: share it, never deep-copy it
    return value if isinstance(value, Lazy) else copy.deepcopy(value)
