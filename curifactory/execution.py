"""One stage call as small steps: map or decide, resolve inputs, call, save, emit.

The executor is the only place where stages, cachers and records meet. In map mode
it records a :class:`~curifactory.dag.Node` per call and executes nothing; in a
real pass it follows the plan (or, without one, decides per call by the same
rules), so a skipped stage only leaves ``Deferred`` values in the record's state
that load if somebody reads them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any

from curifactory import adoption, caching, callfacts, dag
from curifactory.checkpoints import Checkpoint
from curifactory.dag import Node, NodeKey, Plan
from curifactory.decision import CallFacts, Decision, Entry, Reason, decide
from curifactory.errors import CacheError, HashingError, MissingInputError, NameTooLongError
from curifactory.executors import JobResult, StageJob
from curifactory.fingerprint import Fingerprint, fingerprint
from curifactory.events import CacheHit, StageFinished, StageStarted, emit
from curifactory.history import ArtifactInfo, Attempt, StageRun, StageStatus
from curifactory.staging import StageSpec

logger = logging.getLogger(__name__)

REPORTABLES_NAME = "_reportables"
TRACKED_KEY = "__curifactory_tracked__"  # in the reportables entry: what the call logged


class MappedValue:
    """What a record's state holds for an output during the map pass.

    It remembers the stage call that will produce it, so the planner links a
    consumer to its producer even across ``record.make_copy()`` or when the value
    is passed to another record's stage as a keyword argument.
    """

    map_placeholder = True  # State marks it read (see mark_read)

    def __init__(self, name: str, stage: str, key: NodeKey, reads: set[NodeKey] | None = None):
        self.name = name
        self.stage = stage
        self.key = key
        self.reads = reads

    def __deepcopy__(self, memo: dict[int, Any]) -> MappedValue:
        return self  # a record's copy reads the same call's output (and marks the same reads)

    def mark_read(self) -> None:
        """The experiment read this value outside a stage (``record.state[name]`` in ``run()``):
        the call that makes it is needed, whatever reads it later."""
        if self.reads is not None:
            self.reads.add(self.key)

    def __repr__(self) -> str:
        return f"<output {self.name!r} of stage {self.stage!r}, not computed (map pass)>"


class NotComputed(caching.Lazy):
    """What a record's state holds for an output of a call the plan skipped as not needed.

    Read (by a stage that did not declare it as an input, by ``run()`` after the stage, or after the
    run), it runs the call then, once for all of its outputs, and hands out the value: a value the
    plan did not foresee being read costs its computation, never a wrong or missing value.
    """

    memoize = True
    not_needed = True  # (displays say so)

    def __init__(self, name: str, pending: _Pending):
        super().__init__(name)
        self.pending = pending
        self.stage = pending.call.spec.name

    def load(self) -> Any:
        value = _compute_when_read(self.pending, self.name)
        return value.load() if isinstance(value, caching.Lazy) and value.resolve else value

    def __deepcopy__(self, memo: dict[int, Any]) -> NotComputed:
        return self  # the copies of a record share the one computation

    def __repr__(self) -> str:
        return f"<{self.name!r} of stage {self.stage!r}, not computed: not needed>"


class _Pending:
    """A call skipped as not needed, until one of its outputs is read."""

    def __init__(self, call: StageCall, overrides: dict[str, Any], restored: list[Any]):
        self.call = call
        self.overrides = overrides
        self.restored = restored  # the reportables taken from its cache entry when it was skipped
        self.values: dict[str, Any] | None = None


class StageCall:
    """Everything about one call of a stage on a record."""

    def __init__(self, manager: Any, spec: StageSpec, record: Any, records: list[Any] | None,
                 overrides: dict[str, Any] | None = None):
        self.manager = manager
        self.overrides = overrides or {}
        self.spec = spec
        self.record = record
        self.records = records
        self.attempts: list[Attempt] = []  # of a stage declared with retries
        occurrence = record.stages.count(spec.name)
        self.key: NodeKey = (manager.record_index(record), spec.name, occurrence)
        self.code_changes: str = manager.code_changes or manager.settings.code_changes
        self.code: Fingerprint | None = None
        if self.code_changes != "ignore":
            self.code = _code_of(manager, spec)
        self.lazy_flags = self._lazy_flags()
        self.inputs = callfacts.input_contents(self)
        self.cachers = self._make_cachers()

    def _lazy_flags(self) -> list[caching.Lazy | None]:
        flags: list[caching.Lazy | None] = []
        for output in self.spec.outputs:
            if self.manager.ignore_lazy:
                flags.append(None)
            elif isinstance(output, caching.Lazy):
                flags.append(output)
            elif self.manager.lazy:
                flags.append(caching.Lazy(output))
            else:
                flags.append(None)
        return flags

    def _make_cachers(self) -> list[caching.Cacheable | None]:
        declared = self.spec.cachers or (None,) * len(self.spec.outputs)
        code = self.code.as_metadata() if self.code is not None else None
        location = self.location = caching.location_of_record(self.record, self.spec.name, code,
                                                              {k: v[0] for k, v in self.inputs.items()} or None)
        cachers: list[caching.Cacheable | None] = []
        for name, template, lazy in zip(self.spec.output_names, declared, self.lazy_flags):
            if template is None and lazy is not None:
                template = caching.PickleCacher
            if template is None:
                cachers.append(None)
                continue
            cacher = caching.instantiate(template)
            if cacher.name is None:
                cacher.name = name
            cacher.record = self.record  # 0.20 custom cachers read it
            cacher.stage = self.spec.name
            cacher.location = location
            cachers.append(cacher)
        _separate_metadata_from_artifacts([c for c in cachers if c is not None])
        _check_name_lengths(self.spec.name, [c for c in cachers if c is not None])
        return cachers

    # -- deciding ----------------------------------------------------------------
    def facts(self, warn: bool = True, upstream_rerun: tuple[str, ...] = ()) -> CallFacts:
        """What is known about this call now (see :func:`curifactory.callfacts.gather`)."""
        return callfacts.gather(self, warn, upstream_rerun)

    def upstream_overwritten(self) -> tuple[str, ...]:
        """Without a plan: the stages that recomputed an input of this call earlier in this run
        for a reason that cascades (an overwrite, a code change)."""
        stages = [r.overwritten[name] for name in self.spec.inputs for r in self.input_records()
                  if name in r.overwritten]
        return tuple(dict.fromkeys(stages))

    def input_records(self) -> list[Any]:
        return list(self.records) if self.spec.aggregate else [self.record]

    def decide(self) -> Decision:
        """The plan's decision, or, without one, :func:`decide` on the facts gathered now."""
        plan = self.manager.plan
        if self.spec.aggregate and self.manager.executor.prefilled:
            # the workers' reasons are known only now: an input they reran by a cascade reruns it
            return decide(self.facts(upstream_rerun=self.upstream_overwritten()))
        if plan is not None and self.key[0] >= 0 and self.key in plan.verdicts:
            planned = plan.verdicts[self.key]
            if planned.reason.for_missing_entry or self.key in plan.rechecks:
                # an earlier call of this run may have saved the same entry meanwhile
                return decide(self.facts(warn=False, upstream_rerun=plan.upstream.get(self.key, ())))
            return planned
        return decide(self.facts(upstream_rerun=self.upstream_overwritten()))

    # -- the map pass ---------------------------------------------------------------
    def map(self, overrides: dict[str, Any] | None = None) -> Node:
        """Record this call in the graph without running it."""
        facts = self.facts()
        sources = [v.key for v in (overrides or {}).values() if isinstance(v, MappedValue)]
        for record in self.input_records():
            for name in self.spec.inputs:
                value = record.state.raw(name) if name in record.state else None
                if isinstance(value, MappedValue) and name not in (overrides or {}):
                    sources.append(value.key)
        own = decide(facts)
        for name, cacher in zip(self.spec.output_names, self.cachers):
            self.record.state[name] = MappedValue(name, self.spec.name, self.key, self.manager.mapped_reads)
            # what a later call reads: this entry's content if it stays, unknown if it is recomputed
            self._note_content(name, None if own.runs or cacher is None else cacher.metadata)
        return Node(
            key=self.key,
            inputs=self.spec.inputs,
            outputs=self.spec.output_names,
            input_records=tuple(self.manager.record_index(r) for r in self.input_records()),
            status=own.reason,
            facts=facts,
            paths=tuple(c._final_path() if c is not None else None for c in self.cachers),
            aggregate=self.spec.aggregate,
            sources=tuple(dict.fromkeys(sources)),
            entries=tuple(_entry_summary(c) for c in self.cachers),
            metadata_paths=tuple(c.metadata_path() if c is not None else None for c in self.cachers),
            missing_inputs=_missing_inputs(self, overrides or {}),
        )

    # -- skipping ----------------------------------------------------------------------
    def skip(self) -> list[ArtifactInfo]:
        """Leave the cached outputs in the state, unloaded, and restore reportables."""
        infos = []
        values = []
        for index, (name, cacher, lazy) in enumerate(zip(self.spec.output_names, self.cachers, self.lazy_flags)):
            assert cacher is not None  # a cached call has a cacher per output
            if not self.manager.may_write_cache and not os.path.exists(cacher.metadata_path()):
                adoption.adopt(self, cacher)  # planned as a 0.20 entry read where it is
            if lazy is not None:
                value: caching.Lazy = caching.Lazy(name, resolve=lazy.resolve)
                value.cacher = cacher
            else:
                value = caching.Deferred(name, cacher)
            self.record.state[name] = value
            values.append(value)
            path = cacher._final_path()
            meta = cacher.metadata or _planned_entry(self, index)
            self._note_content(name, meta)
            infos.append(ArtifactInfo(name, path, type(cacher).__name__, False, meta.get("preview", ""),
                                      tuple(cacher.cache_paths), str(meta.get("content_hash") or ""), _size(meta),
                                      str(meta.get("run_reference") or "")))
            emit(self.manager.listeners, CacheHit(self.spec.name, self.key[0], name, path))
        self.record.output = values[0] if len(values) == 1 else tuple(values)
        self._restore_reportables()
        return infos

    def _note_content(self, name: str, metadata: dict[str, Any] | None) -> None:
        content = (metadata or {}).get("content_hash")
        if content:
            self.record.content[name] = (content, self.spec.name)
        else:
            self.record.content.pop(name, None)

    def _reportables_cacher(self) -> caching.PickleCacher:
        cacher = caching.PickleCacher(name=REPORTABLES_NAME, record=self.record, location=self.location)
        cacher.stage = self.spec.name
        return cacher

    def _restore_reportables(self) -> None:
        cacher = self._reportables_cacher()
        try:
            reportables = _cached_reportables(self, cacher)
        except Exception as exc:  # a report must not break a cached run
            logger.warning("Could not load the cached reportables of stage '%s' from %s: %s",
                           self.spec.name, cacher.get_path(), exc)
            return
        if reportables is None:
            return
        if isinstance(reportables, dict) and TRACKED_KEY in reportables:
            self.manager.tracker.replay(self.record, reportables[TRACKED_KEY])
            reportables = reportables["reportables"]
        self.manager.current_stage_name = self.spec.name
        try:
            for reportable in reportables:
                self.record.report(reportable)
        finally:
            self.manager.current_stage_name = None

    # -- executing ------------------------------------------------------------------------
    def resolve_inputs(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the stage function from state and overrides."""
        kwargs: dict[str, Any] = {}
        for name in self.spec.inputs:
            if name in overrides:
                continue
            if self.spec.aggregate:
                kwargs[name] = {r: _read(r.state, name) for r in self.records or [] if name in r.state}
                for missing in [r for r in self.records or [] if name not in r.state]:  # as 0.20.5 warns
                    logger.warning("Aggregate stage '%s': artifact '%s' not found in record %s", self.spec.name,
                                   name, missing.get_reference_name())
            elif name in self.record.state:
                kwargs[name] = _read(self.record.state, name)
            elif not (self.spec.suppress_missing_inputs and name in self.spec.defaulted_inputs):
                raise MissingInputError(self.spec.name, name, self.record.get_reference_name(),
                                        list(self.record.state.keys()), self.spec.suppress_missing_inputs)
        kwargs.update(overrides)
        return kwargs

    def run_job(self, job: StageJob) -> JobResult:
        """Execute the call for ``job``; with artifact locks, under the lock of its first
        artifact, unless another process cached it meanwhile."""
        reason = job.decision.reason
        first = self.cachers[0] if self.cachers else None
        if not self.manager.artifact_locks or first is None or not self.manager.may_write_cache:
            return JobResult(StageStatus.EXECUTED, *self.execute(job.overrides, reason))
        from curifactory.parallel import artifact_lock

        with artifact_lock(self.manager.cache_path, first._final_path()):
            if reason.for_missing_entry and not decide(self.facts(warn=False)).runs:
                return JobResult(StageStatus.CACHED, tuple(self.skip()), 0)
            return JobResult(StageStatus.EXECUTED, *self.execute(job.overrides, reason))

    def execute(self, overrides: dict[str, Any], reason: Reason) -> tuple[tuple[ArtifactInfo, ...], int]:
        """Call the stage function, store and save its outputs."""
        spec, record, manager = self.spec, self.record, self.manager
        kwargs = self.resolve_inputs(overrides)
        before = len(record.reportables)
        record.stage_cachers = self.cachers
        result, tracked = _with_retries(self, kwargs, before) if spec.retry else self._call(kwargs)
        values = spec.split_result(result)
        infos = tuple(self._store(name, value, cacher, lazy, reason)
                      for name, value, cacher, lazy in zip(spec.output_names, values, self.cachers, self.lazy_flags))
        _checkpoint_of(self).clear()  # the outputs are committed: nothing to resume
        if spec.outputs:
            stored = [record.state.raw(name) for name in spec.output_names]
            record.output = stored[0] if len(stored) == 1 else tuple(stored)
        else:
            record.output = result
        produced = record.reportables[before:]
        if manager.may_write_cache:
            self._save_reportables(produced, tracked)
        return infos, len(produced)

    def _call(self, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        """Call the stage function once; returns its result and what it logged (for the cache)."""
        spec, record, manager = self.spec, self.record, self.manager
        manager.current_stage_name = spec.name
        manager.stage_active = True
        manager.tracker.begin_call(record, spec.name)
        record._checkpoint = _checkpoint_of(self)
        try:
            if spec.aggregate:
                result = spec.function(record, self.records, **kwargs)
            else:
                result = spec.function(record, **kwargs)
        finally:
            record._checkpoint = None
            manager.stage_active = False
            manager.current_stage_name = None
            tracked = manager.tracker.end_call()
        return result, tracked

    def _store(self, name: str, value: Any, cacher: caching.Cacheable | None,
               lazy: caching.Lazy | None, reason: Reason) -> ArtifactInfo:
        record, manager = self.record, self.manager
        if reason.cascades:
            record.overwritten[name] = self.spec.name
        else:
            record.overwritten.pop(name, None)
        saved = False
        if cacher is not None and manager.may_write_cache:
            try:
                cacher.save(value)
                saved = True
            except Exception as exc:
                raise _save_error(cacher, name, self.spec.name, record, value, exc) from exc
        self._note_content(name, cacher.metadata if saved and cacher is not None else None)
        if lazy is not None and saved:
            stored: Any = caching.Lazy(name, resolve=lazy.resolve)
            stored.cacher = cacher
        else:
            stored = value
        record.state[name] = stored
        path = cacher._final_path() if cacher is not None else None
        files = tuple(cacher.cache_paths) if cacher is not None and saved else ()
        meta = (cacher.metadata or {}) if cacher is not None and saved else {}
        return ArtifactInfo(name, path, type(cacher).__name__ if cacher else None, True,
                            caching.preview(value), files, str(meta.get("content_hash") or ""), _size(meta),
                            manager.get_reference_name() if saved else "")

    def _save_reportables(self, reportables: list[Any], tracked: dict[str, Any] | None = None) -> None:
        """Keep the call's reportables (and what it logged: points, tags, info, attachments)
        with its cache entry, for a rerun that takes the call from the cache."""
        cacher = self._reportables_cacher()
        if not reportables and not tracked:  # a rerun that reports nothing must not show the old ones
            for path in (cacher.metadata_path(), cacher._final_path()):
                if os.path.exists(path):
                    os.remove(path)
            return
        try:
            cacher.save({TRACKED_KEY: tracked, "reportables": list(reportables)} if tracked else list(reportables))
        except Exception as exc:
            logger.warning("The reportables of stage '%s' could not be cached (%s: %s); "
                           "they are in this run's report but a cached rerun will not show them.",
                           self.spec.name, type(exc).__name__, exc)


def _with_retries(call: StageCall, kwargs: dict[str, Any], before: int) -> tuple[Any, dict[str, Any] | None]:
    """Call a stage declared with ``retries`` until an attempt returns or none is left.

    Each attempt goes into ``call.attempts``; a failed attempt's reportables are dropped
    (its logged points stay in the run log: they happened)."""
    policy, record, manager = call.spec.retry, call.record, call.manager
    assert policy is not None
    for number in range(1, policy.retries + 2):
        started = time.time()
        try:
            outcome = call._call(kwargs)
        except BaseException as exc:
            call.attempts.append(Attempt(number, started, time.time(), "failed", f"{type(exc).__name__}: {exc}"))
            if number > policy.retries or not policy.retries_after(exc):
                if number > 1:
                    logger.warning("Stage '%s' on record %s failed on all %d attempts.", call.spec.name,
                                   record.get_reference_name(), number)
                raise
            dropped = {id(r) for r in record.reportables[before:]}
            del record.reportables[before:]
            manager.reportables[:] = [r for r in manager.reportables if id(r) not in dropped]
            logger.warning("Stage '%s' on record %s failed (attempt %d of %d: %s: %s); trying again%s.",
                           call.spec.name, record.get_reference_name(), number, policy.retries + 1,
                           type(exc).__name__, exc, f" in {policy.delay:g} s" if policy.delay else "")
            time.sleep(policy.delay)
            continue
        call.attempts.append(Attempt(number, started, time.time(), "executed"))
        return outcome
    raise AssertionError("unreachable")  # pragma: no cover


class TargetReached(Exception):
    """Raised in target mode (a Dask task) once the targeted call ran: the rest of the
    experiment is another task's."""

    def __init__(self, executed: bool, computed: tuple[tuple[str, str, str, str, bool], ...]):
        super().__init__("target reached")
        self.executed, self.computed = executed, computed


def _run_target(manager: Any, call: StageCall, overrides: dict[str, Any]) -> Any:
    """Target mode: only the call ``manager.target`` (record hash, stage) executes; any other
    call is taken from the cache, or left unrun (mapped) when it is not cached."""
    record, spec = call.record, call.spec
    if (record.get_hash(), spec.name) != manager.target[:2]:
        # another task's call: its outputs are read from the cache if they are there (the task
        # that had to recompute them did, overwrites included), else left unrun
        facts = call.facts(warn=False)
        if facts.outputs and all(o.entry is Entry.VALID for o in facts.outputs):
            call.skip()
        else:
            call.map(overrides)
        return record
    decision = manager.target[2] if len(manager.target) > 2 and manager.target[2] is not None else call.decide()
    for name in spec.inputs:
        for source in call.input_records():
            if name in source.state and isinstance(source.state.raw(name), MappedValue):
                raise CacheError(f"The input '{name}' of stage '{spec.name}' is not in the cache: the task that "
                                 f"computes it did not commit it. Run the experiment again.")
    if not decision.runs:
        raise TargetReached(False, ())
    try:  # the plan's reason: a missing entry is checked again under its lock, anything else runs
        result = call.run_job(StageJob(call, overrides, decision))
    except BaseException as exc:
        manager.note_failure(spec.name, record, exc)
        raise
    first = result.artifacts[0].path if result.artifacts else ""
    executed = result.status is StageStatus.EXECUTED
    computed = ((record.get_hash(), spec.name, first or "", decision.describe(), decision.reason.cascades),) \
        if executed else ()
    raise TargetReached(executed, computed)


def _checkpoint_of(call: StageCall) -> Checkpoint:
    """The call's checkpoint (``record.checkpoint()``), keyed like its artifacts and by its code."""
    code = call.code.digest if call.code is not None else ""
    return Checkpoint(call.location.cache_path or call.manager.cache_path, call.location.filename("")[:-1],
                      code, writable=call.manager.may_write_cache)


_OS_HINTS = {
    "ENOSPC": "The disk is full: free space (e.g. 'curifactory cache gc') and run again.",
    "EDQUOT": "The disk quota is used up: free space (e.g. 'curifactory cache gc') and run again.",
    "EACCES": "There is no permission to write there: fix the folder's permissions or use another cache (--cache).",
    "EPERM": "The operation is not permitted there: fix the folder's permissions or use another cache (--cache).",
    "EROFS": "The file system is read-only: use a writable cache folder (--cache DIR).",
    "ENAMETOOLONG": "The file name is too long: use a shorter output, stage or experiment name, or --prefix.",
}


def _save_error(cacher: caching.Cacheable, name: str, stage: str, record: Any, value: Any,
                exc: Exception) -> CacheError:
    """What failed when saving an output: the path and OS error, or the cacher that cannot store the value."""
    import errno

    where = f"output '{name}' of stage '{stage}' (record {record.get_reference_name()})"
    if isinstance(exc, OSError):
        code = errno.errorcode.get(exc.errno or 0, "")
        path = exc.filename or cacher._final_path()
        return CacheError(f"{type(cacher).__name__} could not save {where} to {path}: {code or type(exc).__name__} "
                          f"({exc.strerror or exc}). {_OS_HINTS.get(code, '')}".rstrip())
    return CacheError(f"{type(cacher).__name__} could not save {where} to {cacher._final_path()}: "
                      f"{type(exc).__name__}: {exc}. Choose a cacher that can store a {type(value).__name__}.")


def _check_name_lengths(stage: str, cachers: list[caching.Cacheable]) -> None:
    """Fail before any stage runs when an artifact or metadata file name is too long to create."""
    from curifactory import fileio

    for cacher in cachers:
        for path in (cacher._final_path(), cacher.metadata_path()):
            if fileio.name_too_long(path):
                raise NameTooLongError(
                    f"The cache file name {os.path.basename(path)!r} of output '{cacher.name}' (stage '{stage}') is "
                    f"{len(os.path.basename(path).encode())} bytes, over the {fileio.NAME_MAX}-byte limit of file "
                    f"names. Use a shorter output, stage or experiment name, or --prefix.")


def _read(state: Any, name: str) -> Any:
    raw = state.raw(name)
    if isinstance(raw, caching.Lazy) and not raw.resolve:
        return raw
    return state[name]


def map_experiment(manager: Any, run: Any, param_sets: list[Any]) -> Plan | None:
    """Call ``run`` with ``manager`` in map mode to record its stage calls, then plan them.

    Nothing executes, and the manager's records and reportables are as before.
    When ``run`` cannot be mapped (it reads values that only exist after stages
    ran), there is no plan (``manager.map_error`` says why) and each call decides
    as it runs.
    """
    records, reportables = list(manager.records), list(manager.reportables)
    manager.map_mode, manager.mapped_nodes, manager.mapped_reads = True, [], set()
    manager.mapped_hidden = False
    try:
        run(param_sets, manager)
        nodes: list[Node] | None = manager.mapped_nodes
    except (NameTooLongError, HashingError):  # it would fail the same way later, after stages ran
        raise
    except Exception as exc:
        manager.map_error = f"{type(exc).__name__}: {exc}"
        logger.info("The experiment could not be mapped ahead of running (%s); each stage "
                    "decides from the cache as it is called.", manager.map_error)
        nodes = None
    finally:
        manager.map_mode = False
        mapped_records = list(manager.records)
        manager.records[:] = records
        manager.reportables[:] = reportables
    # not with hidden calls (decided when they run, they may read anything) or after workers ran
    prune = not manager.mapped_hidden and not manager.executor.prefilled
    manager.plan = dag.plan(nodes, manager.mapped_reads, prune) if nodes is not None else None
    if manager.plan is not None:  # 0.20's manager.map (its artifacts are made only when read)
        manager.map = dag.DAG(mapped_records, nodes, manager.mapped_reads, manager.plan, prune)
    return manager.plan


def run_stage(manager: Any, spec: StageSpec, record: Any, records: list[Any] | None,
              overrides: dict[str, Any]) -> Any:
    """Run (or map, or skip) one stage call on ``record``; returns the record."""
    if spec.aggregate:
        if records is None:
            records = [r for r in manager.records if r is not record]
        record.set_aggregate(records)
    if manager.stage_active:
        logger.warning("Stage '%s' was called from inside another stage; the DAG cannot see such "
                       "calls. Call stages from the experiment's run() instead.", spec.name)
    call = StageCall(manager, spec, record, records, overrides)
    record.stages.append(spec.name)
    record.stage_inputs.append(list(spec.inputs))
    record.stage_outputs.append(list(spec.output_names))
    if getattr(manager, "target", None) is not None and not manager.map_mode:
        return _run_target(manager, call, overrides)
    if manager.parallel_mode and (spec.aggregate or _needs_unmapped(call)):
        call.map()  # a worker leaves aggregates (and what follows them) to the parent
        return record
    if manager.map_mode:
        node = call.map(overrides)
        if node.record_index >= 0:  # hidden records are decided when they run
            manager.mapped_nodes.append(node)
        else:
            manager.mapped_hidden = True
        return record

    decision = call.decide()
    emit(manager.listeners, StageStarted(spec.name, call.key[0], record.name, decision.runs))
    started = time.perf_counter()
    if decision.reason is Reason.NOT_NEEDED:
        return _finished(call, StageStatus.SKIPPED, _leave_unneeded(call, overrides), 0, started,
                         decision.describe())
    if not decision.runs:
        if decision.stale:
            logger.warning("Stage '%s' on record %s uses its cache although %s (code_changes: warn); "
                           "rerun it with --overwrite-stage %s.", spec.name, record.get_reference_name(),
                           decision.stale, spec.name)
        infos = call.skip()
        elsewhere = manager.executor.computed_elsewhere(record.get_hash(), spec.name, infos[0].path) if infos else None
        if elsewhere is not None:  # computed in this run, by another process (a --parallel worker)
            reason, cascades = elsewhere
            if cascades:  # so that an aggregate reading it reruns too
                record.overwritten.update(dict.fromkeys(spec.output_names, spec.name))
            infos = [dataclasses.replace(info, computed=True) for info in infos]
            return _finished(call, StageStatus.EXECUTED, infos, 0, started, f"{reason} ({manager.executor.elsewhere})",
                             cascades)
        return _finished(call, StageStatus.CACHED, infos, 0, started, decision.describe())
    logger.info("Stage '%s' on record %s runs (%s)", spec.name, record.get_reference_name(), decision.describe())
    executor = manager.executor
    try:
        [result] = executor.gather([executor.submit(StageJob(call, overrides, decision))])
    except BaseException as exc:
        manager.note_failure(spec.name, record, exc)
        _finished(call, StageStatus.FAILED, [], 0, started, decision.describe(), error=f"{type(exc).__name__}: {exc}")
        raise
    executed = result.status is StageStatus.EXECUTED
    reason = decision.describe() if executed else "cached (another process computed it)"
    return _finished(call, result.status, list(result.artifacts), result.reportables, started, reason,
                     executed and decision.reason.cascades)


def _leave_unneeded(call: StageCall, overrides: dict[str, Any]) -> list[ArtifactInfo]:
    """A call skipped as not needed: its outputs are placeholders that compute it when read; what
    it reported (and logged) when it last ran is shown, as for a cached call."""
    before = len(call.record.reportables)
    call._restore_reportables()
    pending = _Pending(call, dict(overrides), call.record.reportables[before:])
    values = [NotComputed(name, pending) for name in call.spec.output_names]
    for value in values:
        call.record.state[value.name] = value
    call.record.output = values[0] if len(values) == 1 else tuple(values)
    return [ArtifactInfo(value.name, None, None, False, "not computed: not needed") for value in values]


def _compute_when_read(pending: _Pending, name: str) -> Any:
    """Run a call skipped as not needed because ``name`` was read (inside another stage too: the
    manager's and record's stage state are put back afterwards); returns ``name``'s value."""
    call = pending.call
    record, manager = call.record, call.manager
    if pending.values is None:
        logger.info("Stage '%s' on record %s runs now: its output '%s' was read, although the plan found "
                    "it not needed.", call.spec.name, record.get_reference_name(), name)
        for reportable in pending.restored:  # it reports afresh
            for holder in (record.reportables, manager.reportables):
                if any(r is reportable for r in holder):
                    holder.remove(reportable)
        saved = (manager.current_stage_name, manager.stage_active, record.stage_cachers, record._checkpoint,
                 record._output)
        started = time.perf_counter()
        try:
            result = call.run_job(StageJob(call, pending.overrides, Decision(Reason.NOT_CACHED, name)))
        finally:
            (manager.current_stage_name, manager.stage_active, record.stage_cachers, record._checkpoint,
             record._output) = saved
        pending.values = {output: record.state.raw(output) for output in call.spec.output_names}
        skipped = [i for i, run in enumerate(record.history)
                   if run.stage == call.spec.name and run.status is StageStatus.SKIPPED]
        _finished(call, result.status, list(result.artifacts), result.reportables, started,
                  f"computed when '{name}' was read (the plan found it not needed)", was=StageStatus.SKIPPED)
        if skipped:  # the call's place in the record's history, now executed
            record.history[skipped[-1]] = record.history.pop()
    return pending.values[name]


def _finished(call: StageCall, status: StageStatus, infos: list[ArtifactInfo], produced: int,
              started: float, reason: str = "", cascades: bool = False, error: str = "",
              was: StageStatus | None = None) -> Any:
    """Record the call in the record's history and tell the listeners."""
    now = time.perf_counter()
    seconds = 0.0 if status in (StageStatus.CACHED, StageStatus.SKIPPED) else now - started
    spec, record = call.spec, call.record
    run = StageRun(spec.name, call.key[0], spec.inputs, tuple(infos), status, seconds, spec.aggregate,
                   _indices(call.manager, call.records), produced, reason, cascades,
                   time.time() - (now - started), error, tuple(call.attempts))
    record.history.append(run)
    call.manager.tracker.stage_finished(record, run)
    emit(call.manager.listeners, StageFinished(spec.name, call.key[0], record.name, status, seconds, was))
    return record


def _code_of(manager: Any, spec: StageSpec) -> Fingerprint:
    """The stage's fingerprint: made once per run (``manager.fingerprints``, reset when a
    run starts); a live manager's, whose code may change between cells, is checked each call."""
    known = getattr(manager, "fingerprints", None)
    code = spec.code or spec.function
    if known is None or manager.interactive:
        return fingerprint(code, manager.settings.root, spec.version)
    made = known.get(id(spec))
    if made is None:
        made = known[id(spec)] = fingerprint(code, manager.settings.root, spec.version)
    return made  # type: ignore[no-any-return]


def _planned_entry(call: StageCall, index: int) -> dict[str, Any]:
    """What the map pass read from output ``index``'s metadata (the plan skips it unread)."""
    plan = call.manager.plan
    node = plan.by_key.get(call.key) if plan is not None and call.key[0] >= 0 else None
    entry = node.entries[index] if node is not None and index < len(node.entries) else None
    if not entry:
        return {}
    return {"content_hash": entry[0], "preview": entry[1], "run_reference": entry[2], "files_stat": [[entry[3], 0]]}


def _cached_reportables(call: StageCall, cacher: caching.Cacheable) -> Any:
    """What the call's reportables entry holds: ours, else the reportables 0.20 cached for the
    same set (taken over under our name when the run writes the cache); None when neither."""
    if cacher.check():
        return cacher.load()
    reportables = adoption.legacy_reportables(call)
    if reportables is not None and call.manager.may_write_cache:
        call._save_reportables(reportables)
    return reportables


def _entry_summary(cacher: caching.Cacheable | None) -> tuple[str, str, str, int] | None:
    meta = cacher.metadata if cacher is not None else None
    if not meta or not meta.get("content_hash") or cacher is None or cacher.invalid_reason is not None:
        return None
    return str(meta["content_hash"]), str(meta.get("preview", "")), str(meta.get("run_reference") or ""), _size(meta)


def _size(meta: dict[str, Any]) -> int:
    """An entry's size in bytes from its metadata's ``files_stat`` (-1 when unknown)."""
    total = 0
    try:
        for stat in meta.get("files_stat") or ((-1,),):
            if stat[0] < 0:
                return -1
            total += stat[0]
    except (TypeError, IndexError):
        return -1
    return int(total)


def _separate_metadata_from_artifacts(cachers: list[caching.Cacheable]) -> None:
    """Give an artifact's metadata another name where ``<stem>_metadata.json`` is
    itself an output of the stage (an output called ``<name>_metadata``)."""
    artifacts = {c._final_path() for c in cachers}
    for cacher in cachers:
        if cacher.metadata_path() in artifacts:
            cacher.metadata_suffix = caching.ALTERNATE_METADATA_SUFFIX


def _missing_inputs(call: StageCall, overrides: dict[str, Any]) -> tuple[str, ...]:
    """The inputs a (non-aggregate) call would not find when it runs (``resolve_inputs`` raises then)."""
    if call.spec.aggregate:
        return ()
    spec, state = call.spec, call.record.state
    return tuple(name for name in spec.inputs if name not in state and name not in overrides
                 and not (spec.suppress_missing_inputs and name in spec.defaulted_inputs))


def _needs_unmapped(call: StageCall) -> bool:
    return any(isinstance(call.record.state.raw(n), MappedValue) for n in call.spec.inputs if n in call.record.state)


def _indices(manager: Any, records: list[Any] | None) -> tuple[int, ...]:
    return tuple(manager.record_index(r) for r in records) if records else ()
