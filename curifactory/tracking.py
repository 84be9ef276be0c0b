"""Run tracking during a run: metrics over steps, tags, info and attached files.

``record.log_metric`` and friends land here (``manager.tracker``). Points of a stage
call are buffered and written as one chunk file of the run log when the call ends
(and every few seconds during a long call); the call's points, tags, info and
attachments are also kept with its cache entry, so a rerun that takes the stage
from the cache shows them again (marked as coming from the run that computed
them). :meth:`Tracker.finish` writes the run's ``run.json`` and its index rows.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import os
import sys
import time
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any, Iterator

from curifactory import hashing
from curifactory.errors import TrackingError
from curifactory.runlog import (
    ACTIVE,
    FLUSH_SECONDS,
    FORMAT,
    OUTPUT_FIELDS,
    STAGE_FIELDS,
    PointBuffer,
    RunLogWriter,
    expand_stage,
    final_metrics,
    record_key,
    run_folder,
)

logger = logging.getLogger(__name__)

ATTACHMENT_CACHE_BYTES = 10 * 1024 * 1024
"""Attachments of a stage call up to this size in total are kept with its cache entry."""
_FAST = (int, float)


_CURRENT: contextvars.ContextVar[Any] = contextvars.ContextVar("curifactory_current_record", default=None)


def current() -> Any:
    """The record of the stage (or ``@cf.track`` function) running now, to log from code that
    has no record at hand: ``cf.current().log_metric("loss", 0.3)``.

    Raises:
        TrackingError: nothing is running (called outside a stage or tracked function).
    """
    record = _CURRENT.get()
    if record is None:
        raise TrackingError("cf.current() was called outside a stage: it gives the record of the stage or "
                            "@cf.track function running now. Call it from inside one (or use the record a "
                            "stage receives).")
    return record


class CallLog:
    """What one stage call logged (kept with its cache entry)."""

    def __init__(self, record: Any, stage: str):
        self.record = record
        self.stage = stage
        self.points = PointBuffer()
        self.tags: dict[str, str] = {}
        self.info: dict[str, Any] = {}
        self.attachments: list[str] = []
        self.token: Any = None  # what cf.current() gave before this call

    def payload(self, reference: str, lines: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The call's tracking data for its cache entry (``lines``: its points); ``None`` when it
        logged nothing."""
        if not (lines or self.tags or self.info or self.attachments):
            return None
        files: dict[str, bytes] = {}
        total = 0
        for path in self.attachments:
            try:
                size = os.path.getsize(path)
                if total + size > ATTACHMENT_CACHE_BYTES:
                    logger.warning("The attached file %s (%.1f MB) of stage '%s' is kept with this run but not with "
                                   "its cache entry (over %d MB in all): a rerun that takes the stage from the "
                                   "cache will not have it.", os.path.basename(path), size / 2**20, self.stage,
                                   ATTACHMENT_CACHE_BYTES // 2**20)
                    continue
                with open(path, "rb") as handle:
                    files[os.path.basename(path)] = handle.read()
                total += size
            except OSError:
                continue
        return {"run": reference, "points": lines, "tags": dict(self.tags), "info": dict(self.info),
                "attachments": files}


def _check_name(what: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise TrackingError(f"A {what} name must be a non-empty string, not {name!r}; e.g. "
                            f"record.log_metric('loss', 0.25).")
    return name


def _number(name: str, value: Any, what: str = "value") -> float:
    if type(value) in _FAST:
        return value
    if not isinstance(value, (str, bytes)):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise TrackingError(f"Metric '{name}' got the {what} {value!r} ({type(value).__name__}); metrics are numbers "
                        f"(int, float, numpy scalars); log text with record.inform({name}=...) or "
                        f"record.set_tag('{name}', ...)")


class Tracker:
    """The tracking side of one manager's run."""

    def __init__(self, manager: Any):
        self.manager = manager
        self.writer: RunLogWriter | None = None
        self.writes_run = False
        self.tags: dict[str, str] = {}
        self.info: dict[str, Any] = {}
        self.call: CallLog | None = None
        self.outer_calls: list[CallLog | None] = []  # calls a nested stage call interrupted
        self.next_step: dict[tuple[str, str], Any] = {}
        self.ended = False
        self.flush_after = float("inf")
        self.original_run: str | None = None  # the run this one repeats (curifactory rerun)
        self.sweep: str | None = None  # the sweep (a YAML grid/random file) this run belongs to
        self.status_override: str | None = None  # a live run that ended with its process: complete
        self.result: Any = None  # a @cf.track run's return value (JSON, or a preview)
        self.traceback: str | None = None  # of the exception that ended the run, when one did
        self.metrics_by_key: dict[str, dict[str, float]] = {}
        self._attached: set[str] | None = None  # record hashes with attachments (read once per document)
        self._described: set[str] = set()  # records whose parameters a stage chunk already holds

    # -- the run -------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the run's log folder; the run writing the store writes ``run.json`` (running)."""
        manager = self.manager
        if manager.dry:
            return
        self.writer = RunLogWriter(run_folder(manager.manager_cache_path, manager.get_reference_name()))
        self.writer.to_line = self._stage_line
        self.writes_run = bool(manager.writes_store)
        if self.writes_run:
            self.write_run(final=False)

    @property
    def folder(self) -> str | None:
        """The run's log folder (``None`` for a dry run)."""
        return self.writer.folder if self.writer is not None else None

    def write_run(self, final: bool) -> None:
        """Write ``run.json`` (and, when ``final``, the index rows); failures are warnings."""
        if self.writer is None or not self.writes_run:
            return
        try:
            if final:
                self.writer.pending_stages = []  # run.json holds them all
                self.writer.flush(self.call.points if self.call else None)
                self.metrics_by_key = final_metrics(self.writer.folder)
            self.refresh_attachments()
            document = run_document(self.manager, self)
            self.writer.write_run(document)
            if final:  # a running run reaches the index when it is queried (its folder is new)
                self.writer.drop_stage_chunks()
                _index(self.manager.manager_cache_path, document)
        except OSError as exc:
            logger.warning("The run log of %s could not be written to %s (%s); the run itself is kept.",
                           self.manager.get_reference_name(), self.writer.folder, exc)

    def finish(self) -> None:
        """The run ended: write everything; later logging is an error."""
        if self.ended:
            return
        self.write_run(final=True)
        self.ended = True

    def set_run_tag(self, key: Any, value: Any) -> None:
        """A tag of the whole run (``manager.set_tag``, ``--tag``)."""
        self._check_open("set_tag")
        self.tags[_check_name("tag", key)] = str(value)

    def flush_points(self) -> None:
        """Write the points waiting in memory (e.g. replayed from cache entries), so readers of
        the run log see every point logged so far."""
        if self.writer is not None and self.writer.pending_points:
            try:
                self.writer.flush(None, stages=False)
            except OSError as exc:
                logger.warning("The run log could not be written (%s).", exc)

    def refresh_attachments(self) -> None:
        """Read the attachments folder again on the next :meth:`attached_files`."""
        self._attached = None

    def attached_files(self, record_hash: str) -> list[str]:
        """The names of the files attached to records with this hash (any process of the run)."""
        if self._attached is None:
            root = os.path.join(self.folder, "attachments") if self.folder else None
            self._attached = set(os.listdir(root)) if root and os.path.isdir(root) else set()
        if record_hash not in self._attached:
            return []
        folder = os.path.join(str(self.folder), "attachments", record_hash)
        return sorted(name for name in os.listdir(folder) if not name.startswith("."))

    def metrics_of(self, record: Any) -> dict[str, float]:
        """The final value of each metric ``record`` logged (after the run or a stage call ended)."""
        return self.metrics_by_key.get(record_key(record.get_hash(), record.name), {})

    def _check_open(self, call: str) -> None:
        if self.ended:
            raise TrackingError(f"{call}() was called after run {self.manager.get_reference_name()} ended; log "
                                f"from inside a stage (or before the run finishes).")

    # -- stage calls ------------------------------------------------------------------------------
    def begin_call(self, record: Any, stage: str) -> None:
        """A stage function is about to run on ``record`` (inside another one's, when a stage calls
        a stage: the outer call goes on when this one ends)."""
        self.outer_calls.append(self.call)
        self.call = CallLog(record, stage)
        self.call.token = _CURRENT.set(record)
        self.flush_after = time.time() + FLUSH_SECONDS

    def end_call(self) -> dict[str, Any] | None:
        """The stage function returned (or raised): flush its points; returns its cache payload."""
        call, self.call = self.call, (self.outer_calls.pop() if self.outer_calls else None)
        if call is None:
            return None
        _CURRENT.reset(call.token)
        if self.writer is not None:
            try:  # every point now; the stage calls finished so far only every few seconds
                self.writer.flush(call.points, stages=self.writer.due())
            except OSError as exc:
                logger.warning("Points of stage '%s' could not be written to the run log (%s).", call.stage, exc)
        lines = call.points.lines()
        self._remember_last(lines)
        return call.payload(self.manager.get_reference_name(), lines)

    def _remember_last(self, lines: list[dict[str, Any]]) -> None:
        for line in lines:
            if line["values"]:
                self.metrics_by_key.setdefault(record_key(line["record"], line["record_name"]), {})[
                    line["metric"]] = line["values"][-1]

    def replay(self, record: Any, payload: dict[str, Any]) -> None:
        """A stage call was taken from the cache: show what it logged when it was computed."""
        record.tags.update(payload.get("tags") or {})
        record.info.update(payload.get("info") or {})
        lines = [dict(line, record=record.get_hash(), record_name=record.name, cached_from=payload.get("run"))
                 for line in payload.get("points") or []]
        self._remember_last(lines)
        if self.writer is None:
            return
        self.writer.pending_points.extend(lines)
        try:
            for name, data in (payload.get("attachments") or {}).items():
                with self.writer.attach(record.get_hash(), name, "wb", None) as handle:
                    handle.write(data)
        except OSError as exc:
            logger.warning("The cached points of record %s could not be written to the run log (%s).",
                           record.get_reference_name(), exc)

    def stage_finished(self, record: Any, run: Any) -> None:
        """Note a finished stage call (written now and then, so a killed run keeps it)."""
        if self.writer is None or not self.writes_run:
            return
        self.writer.pending_stages.append((record, run))
        if self.writer.due():
            try:
                self.writer.flush(None)
            except OSError as exc:
                logger.warning("The run log could not be written (%s).", exc)

    def _stage_line(self, pending: tuple[Any, Any]) -> dict[str, Any]:
        """A stage chunk line; the first line of a record also carries its parameters and tags
        (so a run killed before its ``run.json`` was finished still shows them)."""
        record, run = pending
        line = {"record": record.get_hash(), "record_index": run.record_index, "record_name": record.name,
                "aggregate": run.aggregate, "call": stage_row(run, self.manager.cache_path)}
        if line["record"] not in self._described:
            self._described.add(line["record"])
            line["params"] = hashing.flatten_param_set(record.params)
        line["tags"], line["info"] = dict(record.tags), dict(record.info)
        return line

    # -- what stages log ------------------------------------------------------------------------
    def _active(self, what: str) -> CallLog:
        self._check_open(what)
        call = self.call
        if call is None:
            raise TrackingError(f"record.{what}() was called outside a stage. Log from inside a function "
                                f"decorated with @cf.stage (or @cf.aggregate), where the record is at hand; "
                                f"tag the whole run with manager.set_tag().")
        return call

    def log_metric(self, record: Any, name: Any, value: Any, step: Any = None, what: str = "log_metric") -> None:
        """One point of metric ``name`` for ``record`` in the running stage."""
        call = self._active(what)
        if type(name) is not str or not name:
            _check_name("metric", name)
        value = _number(name, value)
        key = (record.get_hash(), record.name, call.stage, name)
        counter = (key[0], name)
        if step is None:
            step = self.next_step.get(counter, 0)
        elif type(step) is not int:
            step = _number(name, step, "step")
        self.next_step[counter] = step + 1
        wall = time.time()
        call.points.add(key, value, step, wall)
        if wall > self.flush_after and self.writer is not None:  # a long stage: write what it logged so far
            self.flush_after = wall + FLUSH_SECONDS
            self.writer.flush(call.points)

    def log_metrics(self, record: Any, metrics: Any, step: Any = None) -> None:
        """Several metrics at the same step."""
        if not isinstance(metrics, dict):
            raise TrackingError(f"log_metrics() takes a dict of name -> number, not {type(metrics).__name__}.")
        for name, value in metrics.items():
            self.log_metric(record, name, value, step, "log_metrics")

    def set_tag(self, record: Any, key: Any, value: Any) -> None:
        """A tag of ``record`` (from inside a stage)."""
        call = self._active("set_tag")
        key = _check_name("tag", key)
        record.tags[key] = call.tags[key] = str(value)

    def inform(self, record: Any, fields: dict[str, Any]) -> None:
        """Free-form facts about ``record`` (JSON values, from inside a stage)."""
        call = self._active("inform")
        for key, value in fields.items():
            try:
                json.dumps(value, allow_nan=True)
            except (TypeError, ValueError) as exc:
                raise TrackingError(f"inform({key}=...) got a {type(value).__name__}, which is not JSON ({exc}); "
                                    f"pass numbers, text, lists or dicts of them.") from None
        record.info.update(fields)
        call.info.update(fields)

    def attach(self, record: Any, filename: str, mode: str = "w",
               encoding: str | None = None) -> AbstractContextManager[IO[Any]]:
        """A file kept with the run (``runlog/<ref>/attachments/<record hash>/<filename>``); checked now,
        written when the ``with`` block ends."""
        call = self._active("attach")
        return self._attached_file(call, record, filename, mode, encoding)

    @contextmanager
    def _attached_file(self, call: CallLog, record: Any, filename: str, mode: str,
                       encoding: str | None) -> Iterator[IO[Any]]:
        if self.writer is None:  # a dry run keeps nothing
            import tempfile

            with tempfile.TemporaryDirectory() as folder, \
                    open(os.path.join(folder, "f"), mode, encoding=None if "b" in mode else "utf-8") as handle:
                yield handle
            return
        try:
            with self.writer.attach(record.get_hash(), filename, mode, encoding) as handle:
                yield handle
        except ValueError as exc:
            raise TrackingError(f"record.attach({filename!r}, mode={mode!r}): {exc}.") from None
        call.attachments.append(os.path.join(self.writer.folder, "attachments", record.get_hash(), filename))


def _index(manager_cache_path: str, document: dict[str, Any]) -> None:
    import sqlite3

    from curifactory.runindex import RunIndex

    try:
        RunIndex(manager_cache_path).upsert([document])
    except (sqlite3.Error, OSError) as exc:
        logger.warning("The run index could not be updated (%s); 'curifactory runs --reindex' rebuilds it "
                       "from the run log.", exc)


# -- the run document -----------------------------------------------------------------------------


def _iso(seconds: float | None) -> str | None:
    if not seconds:
        return None
    return datetime.datetime.fromtimestamp(seconds).isoformat(timespec="milliseconds")


def close_live_run(ref: Any) -> None:
    """At interpreter exit: a live manager's run log gets its last points and status ``complete``."""
    manager = ref()
    if manager is None or manager.tracker.ended or manager.status != "LIVE":
        return
    try:
        manager.tracker.status_override = "complete"
        manager.tracker.finish()
    except Exception:  # the interpreter is exiting: never turn that into a traceback
        logger.warning("Could not close the run log of %s at exit", manager.get_reference_name(), exc_info=True)


def run_status(manager: Any) -> str:
    """The run log's status: ``running``, ``live``, ``complete``, ``error`` or ``interrupted``."""
    if manager.tracker.status_override:
        return str(manager.tracker.status_override)
    status = manager.status
    if status == "incomplete":
        return "running"
    if status == "LIVE":
        return "live"
    if status == "error" and str(manager.error or "").startswith("KeyboardInterrupt"):
        return "interrupted"
    return str(status)


def run_document(manager: Any, tracker: Tracker) -> dict[str, Any]:
    """The ``run.json`` of the manager's run as it stands."""
    from curifactory.environment import user_name

    status = run_status(manager)
    start = manager.run_timestamp.timestamp()
    end = time.time() if status not in ACTIVE else None
    git = manager.git_info
    capture = manager.metadata_capture
    waits = status not in ACTIVE and status != "interrupted"  # Ctrl-C does not wait for slow providers
    metadata = {} if capture is None else capture.results() if waits else capture.ready()
    return {
        "format": FORMAT, "stage_fields": list(STAGE_FIELDS), "output_fields": list(OUTPUT_FIELDS),
        "reference": manager.get_reference_name(), "experiment": manager.experiment_name,
        "run_number": manager.experiment_run_number, "status": status,
        "start": _iso(start), "end": _iso(end), "duration": round(end - start, 3) if end else None,
        "commit": manager.git_commit_hash, "dirty": manager.git_workdir_dirty,
        "branch": getattr(git, "branch", None), "host": manager.hostname, "pid": os.getpid(),
        "user": _provided(metadata, "user", capture, user_name), "notes": manager.notes, "cli": manager.run_line,
        "python": _provided(metadata, "python", capture, lambda: sys.version.split()[0], part="version"),
        "platform": _provided(metadata, "platform", capture, lambda: manager.os),
        "error": manager.error, "error_stage": manager.error_stage, "traceback": tracker.traceback,
        "result": tracker.result, "metadata": metadata,
        "tags": dict(tracker.tags), "info": dict(tracker.info), "param_files": list(manager.parameter_files),
        "store_full": bool(manager.store_full), "run_dir": manager.run_dir, "reproduce": manager.reproduction_line,
        "cache_path": manager.cache_path, "prefix": manager.prefix or manager.experiment_name,
        "original_run": tracker.original_run, "sweep": tracker.sweep,
        "records": [record_document(manager, tracker, index, record) for index, record in enumerate(manager.records)],
    }


def _provided(metadata: dict[str, Any], name: str, capture: Any, fallback: Any, part: str | None = None) -> Any:
    """A top-level fact of ``run.json`` taken from its metadata provider (its ``part`` when the
    provider gives a dict of facts): ``None`` when the provider was removed (or failed), the
    fallback while it runs or without providers."""
    if capture is None or (name in capture.slots and name not in metadata):
        return fallback()
    value = metadata.get(name)
    if isinstance(value, dict) and "error" in value:
        return None
    if part is not None and isinstance(value, dict) and part in value:
        return value[part]
    return value


def record_document(manager: Any, tracker: Tracker, index: int, record: Any) -> dict[str, Any]:
    """One record of ``run.json``: parameters, tags, info, final metrics, attachments, stage calls."""
    record_hash = record.get_hash()
    attached = tracker.attached_files(record_hash)
    return {
        "index": index, "name": record.name, "hash": record_hash, "aggregate": record.is_aggregate,
        "input_records": [manager.record_index(r) for r in record.input_records] if record.is_aggregate else [],
        "params": hashing.flatten_param_set(record.params),
        "params_class": _class_path(record.params),
        "tags": dict(record.tags), "info": dict(record.info), "metrics": dict(tracker.metrics_of(record)),
        "attachments": [{"name": name, "path": f"attachments/{record_hash}/{name}"} for name in attached],
        "stages": [stage_values(run, manager.cache_path) for run in record.history],
    }


def stage_values(run: Any, cache_path: str = "") -> list[Any]:
    """One stage call of the run log as a list in :data:`~curifactory.runlog.STAGE_FIELDS`
    order, its outputs as lists in :data:`~curifactory.runlog.OUTPUT_FIELDS` order (a
    run of 1000 records has thousands: lists keep ``run.json`` small and quick to write).
    Output paths inside ``cache_path`` are relative to it (the document's ``cache_path``)."""
    prefix = os.path.join(cache_path, "") if cache_path else None
    outputs = [[a.name, a.path[len(prefix):] if prefix and a.path and a.path.startswith(prefix) else a.path,
                a.cacher, a.content_hash or None, a.size, a.computed, a.produced_by or None, a.preview[:300]]
               for a in run.outputs]
    return [run.stage, run.status.value, round(run.started_at, 3), round(run.started_at + run.seconds, 3),
            round(run.seconds, 6), run.reason, run.error or None, outputs,
            [attempt.as_dict() for attempt in run.attempts] or None]


def stage_row(run: Any, cache_path: str = "") -> dict[str, Any]:
    """One stage call as a dict (the form readers get, see :func:`curifactory.runlog.expand_stage`)."""
    return expand_stage(stage_values(run, cache_path))


def _class_path(params: Any) -> str | None:
    """``module.Class`` of a parameter set (what ``--params-from`` imports to rebuild it)."""
    return None if params is None else f"{type(params).__module__}.{type(params).__qualname__}"
