"""The run loop: load, start the run, map, plan, execute, finish.

:func:`run` is what :func:`curifactory.experiment.run_experiment` (and so the
``experiment`` command) calls. It knows nothing of reports, progress displays or
logs: they are listeners of the run's events, registered by the caller. It starts
the run explicitly (:func:`start_run`: the store entry, git, the run folder), and
hands every stage call that must run to the manager's executor.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from curifactory import registration
from curifactory.config import CODE_CHANGES, Settings, load_settings
from curifactory.errors import UsageError
from curifactory.events import RunStarted, emit
from curifactory.executors import RunContext, make_executor
from curifactory.loading import ParamSelection, collect_param_sets, load_experiment, project_on_path, sweep_id
from curifactory.parallel import distributed_rank
from curifactory.store import no_gc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    """What to run and how, as the ``experiment`` command line says it."""

    experiment_name: str
    param_files: tuple[str, ...] | None = None
    selection: ParamSelection = ParamSelection()
    overwrite: bool | None = None
    cache_dir_override: str | None = None
    dry: bool = False
    dry_cache: bool = False
    store_full: bool = False
    lazy: bool = False
    ignore_lazy: bool = False
    no_dag: bool = False
    prefix: str | None = None
    stage_overwrites: tuple[str, ...] = ()
    run_string: str = ""
    notes: str | None = None
    parallel: int | None = None
    parallel_safe: bool = False
    code_changes: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    original_run: str | None = None
    executor: str | None = None
    """``in-process``, ``process-pool`` or ``dask`` (default: by ``parallel``)."""
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.scheduler and self.executor != "dask":
            raise UsageError(f"--scheduler {self.scheduler} is for --executor dask; add --executor dask (or leave "
                             f"--scheduler out to run here).")
        if self.executor == "dask":  # before the run starts: a missing extra is a usage error
            from curifactory.dask_executor import check_available

            check_available()
        if self.code_changes not in (None, *CODE_CHANGES):
            raise UsageError(f"code_changes is {self.code_changes!r}; use one of "
                             f"{', '.join(repr(c) for c in CODE_CHANGES)}.")


@dataclass(frozen=True)
class RunHooks:
    """How the caller takes part: the manager class, listeners, the ``run`` wrapper, an executor.

    Attributes:
        manager_factory: builds the run's manager (``ArtifactManager``), called
            with ``start=False``: :func:`start_run` starts it.
        listeners: added to the manager's listeners for this run.
        runner: called instead of the experiment's ``run``.
        on_manager: called with the manager once it exists, before anything runs.
        executor: runs the stage calls (default: by ``parallel``).
    """

    manager_factory: Callable[..., Any]
    listeners: tuple[Any, ...] = ()
    runner: Callable[..., Any] | None = None
    on_manager: Callable[[Any], None] | None = None
    executor: Any = None


def start_run(manager: Any) -> None:
    """Start a run once: git, its store entry and number, the reproduction manifest, the run folder."""
    if manager.started:
        return
    manager.started = True
    if manager.writes_store:
        from curifactory import metadata

        dry = manager.dry
        manager.metadata_capture = metadata.start_capture(
            manager.settings, None if dry else manager.manager_cache_path, ("git",) if dry else None)
        manager.git_info = metadata.git_info(manager.metadata_capture.result("git"))
        manager.git_commit_hash, manager.git_workdir_dirty = manager.git_info.commit, manager.git_info.dirty
    registration.check_registry(manager)  # broken: found before any stage runs
    registration.register_run(manager)
    manager.tracker.start()
    load_manifest(manager)
    if manager.store_full and not manager.dry and manager.writes_store:
        from curifactory import environment, runfolder

        try:
            manager.run_dir = runfolder.create_run_dir(manager.runs_path, manager.get_reference_name())
        except Exception as exc:
            manager.finish("error", error=str(exc))  # the store must not keep it 'incomplete'
            raise
        manager.environment_capture = environment.start_environment_capture(
            manager.settings.root, pip_cache_dir=manager.manager_cache_path)


def load_manifest(manager: Any) -> None:
    """A reproduction run reads from a run folder's ``artifacts/``: map outside paths into it."""
    manager.artifact_manifest = None
    if os.path.exists(os.path.join(manager.cache_path, "_manifest.json")):
        from curifactory.runfolder import ArtifactManifest

        manager.artifact_manifest = ArtifactManifest.load(manager.cache_path)


def run(request: RunRequest, hooks: RunHooks, mngr: Any = None, settings: Settings | None = None) -> tuple[Any, Any]:
    """Run ``request``; returns ``(results of run(), manager)``. See ``run_experiment``."""
    follower = distributed_rank() > 0
    if follower:  # a non-zero rank of a distributed launch: only rank 0 writes
        request = dataclasses.replace(request, dry_cache=True, store_full=False)
    settings = settings or (mngr.settings if mngr is not None else load_settings())
    with project_on_path(settings.root):
        module = load_experiment(request.experiment_name, settings)
        param_files = list(request.param_files) if request.param_files else None
        param_sets, block = collect_param_sets(module, param_files, settings, request.selection)
        make_manager = _manager_maker(request, hooks, settings)
        given = mngr is not None
        if mngr is None:
            # a follower rank, and a --parallel-safe run (0.20's meaning), never write the store, the
            # registry or a report; both run every stage (aggregates too)
            mngr = make_manager(parallel_mode=follower or request.parallel_safe)
            mngr.parallel_mode = mngr.artifact_locks = False
        for key, value in request.tags:
            mngr.tracker.set_run_tag(key, value)
        if request.original_run:
            mngr.tracker.original_run = request.original_run
        mngr.tracker.sweep = None if request.selection.params_from else \
            sweep_id(param_files or [], settings, request.selection.overrides)
        with no_gc(mngr.cache_path) if mngr.may_write_cache else nullcontext():
            start_run(mngr)
        changes = _run_options(mngr, given, request, hooks, locks=request.parallel_safe and not follower)
        with _temporarily(mngr, **changes):  # a manager passed in gets this run's options only for this run
            if hooks.on_manager is not None:  # e.g. the CLI opens the run's log before anything runs
                hooks.on_manager(mngr)
            mngr.parameter_files = list(param_files or block.keys())
            mngr.param_file_param_sets = block
            if mngr.store_full:
                mngr.reproduction_line = reproduction_line(mngr, request.experiment_name, param_files,
                                                           request.selection)
            experiment_run = hooks.runner or module.run
            _start_executor(mngr, RunContext(mngr, experiment_run, param_sets, _worker_manager(mngr, make_manager),
                                             mappable=not request.no_dag))
            if not request.no_dag and not mngr.executor.plan_is_current:
                mngr.map_experiment(experiment_run, param_sets)
            return _execute(mngr, experiment_run, param_sets, request.experiment_name), mngr


def _start_executor(mngr: Any, context: RunContext) -> None:
    """The executor's start hook (a pool or cluster may compute here); a failure closes the run
    as ``error``, as one in the real pass does."""
    try:
        mngr.executor.start(context)
    except BaseException as exc:
        mngr.executor.finish()
        mngr.finish("error" if not mngr.interactive else mngr.status, error=f"{type(exc).__name__}: {exc}")
        raise


def _manager_maker(request: RunRequest, hooks: RunHooks, settings: Settings) -> Callable[..., Any]:
    def make_manager(**extra: Any) -> Any:
        return hooks.manager_factory(
            request.experiment_name, store_full=request.store_full, dry=request.dry, dry_cache=request.dry_cache,
            prefix=request.prefix, run_line=request.run_string, lazy=request.lazy, ignore_lazy=request.ignore_lazy,
            notes=request.notes, cache_path=request.cache_dir_override, status_override="incomplete",
            settings=settings, start=False, **extra)

    return make_manager


def _executor(request: RunRequest, hooks: RunHooks, settings: Settings, writes_cache: bool) -> Any:
    if writes_cache and hooks.executor is None and request.executor == "dask":
        from curifactory.dask_executor import DaskExecutor

        return DaskExecutor(request.parallel, request.scheduler or settings.dask_scheduler)
    return make_executor(request.parallel if writes_cache else None, given=hooks.executor,
                         name=request.executor if writes_cache else None)


def _run_options(mngr: Any, given: bool, request: RunRequest, hooks: RunHooks, locks: bool) -> dict[str, Any]:
    """The manager attributes this run sets (restored afterwards on a manager passed in)."""
    writes_cache = not (mngr.dry or mngr.dry_cache or request.dry or request.dry_cache)
    changes: dict[str, Any] = {
        "dry": mngr.dry or request.dry,
        "dry_cache": mngr.dry_cache or request.dry_cache,
        "listeners": [*mngr.listeners, *hooks.listeners],
        "executor": _executor(request, hooks, mngr.settings, writes_cache),
        "fingerprints": {},  # code fingerprints, made once per stage for this run
        "param_history": None,  # the registry as it is when this run starts
        # ranks of a distributed launch run every stage together (collectives): no locks for them
        "artifact_locks": mngr.artifact_locks or locks,
    }
    if request.overwrite:
        changes["overwrite"] = True
    if request.stage_overwrites:
        changes["overwrite_stages"] = list(request.stage_overwrites)
    if request.code_changes:
        changes["code_changes"] = request.code_changes
    if given and request.cache_dir_override:
        settings = mngr.settings.with_paths(cache_path=request.cache_dir_override)
        changes.update(settings=settings, cache_path=settings.cache_path)
    return changes


@contextmanager
def _temporarily(obj: Any, **changes: Any) -> Iterator[None]:
    saved = {name: getattr(obj, name) for name in changes}
    saved["artifact_manifest"] = obj.artifact_manifest
    for name, value in changes.items():
        setattr(obj, name, value)
    if "cache_path" in changes:
        load_manifest(obj)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(obj, name, value)


def _worker_manager(mngr: Any, make_manager: Callable[..., Any]) -> Callable[[], Any]:
    """A factory of managers for this run's worker processes (same run, cache and overwrites)."""

    def worker_manager() -> Any:
        worker = make_manager(parallel_mode=True)
        worker.experiment_run_number, worker.run_timestamp = mngr.experiment_run_number, mngr.run_timestamp
        worker.overwrite, worker.overwrite_stages = mngr.overwrite, list(mngr.overwrite_stages)
        worker.code_changes = mngr.code_changes
        worker.cache_path, worker.settings = mngr.cache_path, mngr.settings
        start_run(worker)
        return worker

    return worker_manager


def _execute(mngr: Any, experiment_run: Callable[..., Any], param_sets: list[Any], experiment_name: str) -> Any:
    """The real pass: run, then finish the run (listeners write the report and run folder)."""
    plan = mngr.plan
    sweep = mngr.tracker.sweep or ""
    done = -1
    if plan is not None and sweep:
        done = plan.records_done()
    emit(mngr.listeners, RunStarted(mngr.get_reference_name(), experiment_name, len(param_sets),
                                    len(plan.nodes) if plan else 0, len(plan.to_run) if plan else 0,
                                    len(mngr.executor.computed), sweep, done,
                                    len(plan.not_needed) if plan else 0))
    try:
        results = experiment_run(param_sets, mngr)
    except BaseException as exc:
        mngr.executor.finish()
        mngr.finish("error" if not mngr.interactive else mngr.status, error=f"{type(exc).__name__}: {exc}")
        raise
    mngr.executor.finish()
    mngr.finish("LIVE" if mngr.interactive else "complete")
    return results


def reproduction_line(mngr: Any, experiment_name: str, param_files: list[str] | None,
                      selection: ParamSelection | None = None) -> str:
    """The command that reruns a ``--store-full`` run from its run folder's artifacts.

    It selects the same parameter sets (``-p``, ``-n``, ``--indices``,
    ``--global-indices``) under the same artifact prefix as the run did.
    """
    import shlex

    artifacts = os.path.relpath(os.path.join(mngr.get_run_output_path(), "artifacts"), mngr.settings.root)
    selection = selection or ParamSelection()
    parts = ["experiment", experiment_name]
    for flag, values in (("-p", param_files or ()), ("-n", selection.names), ("--indices", selection.indices),
                         ("--global-indices", selection.global_indices), ("--set", selection.overrides),
                         ("--params-from", (selection.params_from,) if selection.params_from else ())):
        for value in values:
            parts += [flag, value]
    if mngr.prefix:
        parts += ["--prefix", mngr.prefix]
    parts += ["--cache", artifacts, "--dry-cache"]
    return shlex.join(parts)
