"""``ArtifactManager``: the records, options and bookkeeping of one experiment run.

It is thin on purpose and keeps curifactory 0.20's arguments, attributes and
methods. The options are one frozen :class:`~curifactory.options.RunOptions`
value; the store entry lives in :mod:`curifactory.registration`, the start of a
run (git, store, run folder) in :func:`curifactory.runner.start_run`, the live log
in :func:`curifactory.logs.start_live_log`, the notebook views in
:class:`~curifactory.views.ManagerViews`, stage calls in
:mod:`curifactory.execution` and their execution in the manager's ``executor``.

Made by a script or notebook (status ``LIVE``, the 0.20 way), the constructor
starts the run at once, as 0.20 did: the live-manager path. ``run_experiment``
makes its manager with ``start=False`` and starts it itself.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
import platform
import socket
import time
import weakref
from typing import Any

from curifactory import dag, execution, explain, fileio, identity, registration, tracking
from curifactory.config import Settings
from curifactory.events import Listener, RunFinished, RunFinishing, emit
from curifactory.executors import InProcessExecutor
from curifactory.options import OptionsMirror, RunOptions
from curifactory.views import ManagerViews

logger = logging.getLogger(__name__)

TIMESTAMP_FORMAT = identity.TIMESTAMP_FORMAT
_PATH_ARGS = ("manager_cache_path", "cache_path", "runs_path", "logs_path", "notebooks_path",
              "reports_path", "report_css_path")



def _configured() -> Settings:
    """The project's settings, read through ``curifactory.utils.get_configuration`` (0.20 code
    and tests replace that function to point a manager elsewhere)."""
    from curifactory import utils

    return utils.settings_from_configuration(utils.get_configuration())

class ArtifactManager(OptionsMirror, ManagerViews):
    """The records, options and bookkeeping of one experiment run.

    Every argument of curifactory 0.20 is accepted (see
    :class:`~curifactory.options.RunOptions` for the run options). Paths default to
    the project's ``curifactory_config.json`` (found in the working directory or up
    to 3 parents); explicit arguments win. Created from a script or notebook the
    run's status is ``LIVE`` and it is entered in the store right away.

    Args:
        experiment_name: names the run and prefixes cached artifacts.
        parallel_lock: a lock shared by parallel workers.
        status_override: ``LIVE`` unless started by ``run_experiment``.
        suppress_live_log: no log file for a live manager.
        live_log_debug: log at DEBUG level in a live manager's log file.
        disable_non_cf_loggers: accepted for compatibility (logging of other
            libraries is the CLI's business).
        settings: a ready :class:`~curifactory.config.Settings` (skips the config lookup).
        start: start the run now (register it, ...); ``run_experiment`` passes False.
        code_changes: ``rerun``, ``warn`` or ``ignore`` for cache entries whose stage's
            code changed (default: the project config's ``code_changes``, else ``rerun``).
    """

    def __init__(self, experiment_name: str | None = None, store_full: bool = False, dry: bool = False,
                 dry_cache: bool = False, prefix: str | None = None, run_line: str = "", parallel_lock: Any = None,
                 parallel_mode: bool = False, lazy: bool = False, ignore_lazy: bool = False,
                 notes: str | None = None, manager_cache_path: str | None = None, cache_path: str | None = None,
                 runs_path: str | None = None, logs_path: str | None = None, notebooks_path: str | None = None,
                 reports_path: str | None = None, report_css_path: str | None = None,
                 status_override: str = "LIVE", suppress_live_log: bool = False, live_log_debug: bool = False,
                 disable_non_cf_loggers: bool = True, settings: Settings | None = None, start: bool = True,
                 code_changes: str | None = None):
        paths = dict(manager_cache_path=manager_cache_path, cache_path=cache_path, runs_path=runs_path,
                     logs_path=logs_path, notebooks_path=notebooks_path, reports_path=reports_path,
                     report_css_path=report_css_path)
        self.settings: Settings = (settings or _configured()).with_paths(**paths)
        self.config = self.settings.as_dict()
        for key in _PATH_ARGS:
            setattr(self, key, getattr(self.settings, key))
        self.options = RunOptions(store_full=store_full, dry=dry, dry_cache=dry_cache, prefix=prefix,
                                  run_line=run_line, lazy=lazy, ignore_lazy=ignore_lazy, notes=notes,
                                  parallel_mode=parallel_mode, artifact_locks=parallel_mode,
                                  code_changes=code_changes)
        self.experiment_name = experiment_name or "live"
        self.experiment_run_number = 0
        self.run_timestamp = datetime.datetime.now()
        self.parallel_lock = parallel_lock
        self.status = status_override
        self.interactive = status_override == "LIVE"
        self.suppress_live_log, self.live_log_debug = suppress_live_log, live_log_debug
        self.disable_non_cf_loggers = disable_non_cf_loggers
        self.writes_store = not parallel_mode  # False for workers and non-zero distributed ranks
        _init_bookkeeping(self)
        if start and self.interactive:
            self.start_live()
        elif start:
            from curifactory.runner import start_run

            start_run(self)

    def start_live(self) -> None:
        """The live-manager path: start the run, open its log, fill a run folder at exit."""
        from curifactory.runner import start_run

        start_run(self)
        if not self.suppress_live_log and not self.dry:
            from curifactory.logs import start_live_log

            start_live_log(self)
        if self.run_dir is not None:
            # a script or notebook may never call store() or generate_report(): fill the folder at exit
            atexit.register(_write_run_folder_at_exit, weakref.ref(self))
        if self.tracker.writer is not None:
            atexit.register(tracking.close_live_run, weakref.ref(self))

    # -- identity ------------------------------------------------------------------
    def get_str_timestamp(self) -> str:
        """The run timestamp as used in references: ``YYYY-MM-DD-THHMMSS``."""
        return identity.str_timestamp(self.run_timestamp)

    def get_reference_name(self) -> str:
        """``<experiment>_<run number>_<timestamp>``."""
        return identity.reference_name(self.experiment_name, self.experiment_run_number, self.run_timestamp)

    @property
    def may_write_cache(self) -> bool:
        """Whether cache entries may be written (not ``dry`` nor ``dry_cache``)."""
        return self.options.may_write_cache

    # -- records ---------------------------------------------------------------------
    def add_record(self, record: Any) -> None:
        """Called by ``Record.__init__``."""
        record._cf_index = len(self.records)
        self.records.append(record)

    def record_index(self, record: Any) -> int:
        """The position of ``record`` in :attr:`records` (-1 for a hidden record)."""
        index = getattr(record, "_cf_index", -1)
        if 0 <= index < len(self.records) and self.records[index] is record:
            return index
        return -1

    def get_all_param_sets(self) -> list[Any]:
        """The distinct parameter sets of this manager's records."""
        seen: dict[str, Any] = {}
        for record in self.records:
            if record.params is not None and not record.is_aggregate:
                seen.setdefault(record.get_hash(), record.params)
        return list(seen.values())

    def run_stage(self, spec: Any, record: Any, records: Any, overrides: dict[str, Any]) -> Any:
        """Run one stage call (the target of every ``@stage`` wrapper)."""
        return execution.run_stage(self, spec, record, records, overrides)

    # -- artifact paths --------------------------------------------------------------
    def get_artifact_filename(self, obj_name: str, record: Any, prefix: str | None = None,
                              stage_name: str | None = None) -> str:
        """``<prefix>_<hash>_<stage>_<name>`` for an artifact of ``record``."""
        stage_name = stage_name or self.current_stage_name or ""  # outside a stage: empty, as in 0.20
        return f"{prefix or self.prefix or self.experiment_name}_{record.get_hash()}_{stage_name}_{obj_name}"

    def get_artifact_path(self, obj_name: str, record: Any, subdir: str | None = None,
                          prefix: str | None = None, stage_name: str | None = None, store: bool = False) -> str:
        """The cache path (or, with ``store=True``, run-folder path) of an artifact."""
        base = os.path.join(self.get_run_output_path(), "artifacts") if store else self.cache_path
        if subdir:
            base = os.path.join(base, subdir)
        return os.path.join(base, self.get_artifact_filename(obj_name, record, prefix, stage_name))

    def get_run_output_path(self, obj_name: str | None = None) -> str:
        """This run's ``--store-full`` folder (or a file in it)."""
        folder = os.path.join(self.runs_path, self.get_reference_name())
        return os.path.join(folder, obj_name) if obj_name else folder

    # -- the store ---------------------------------------------------------------------
    @property
    def run_info(self) -> dict[str, Any]:
        """This run's block in ``store.json``."""
        return registration.run_block(self)

    def store(self, run_log: bool = True) -> None:
        """Write this run's block to the store and its sets to the registry."""
        stored = registration.store_run(self)
        if stored and self.interactive and run_log:
            self.tracker.write_run(final=True)  # a live run's log follows its latest store
        if stored and self.interactive and self.store_full:
            self.write_run_env_output()  # a live run's folder follows its latest store

    def set_tag(self, key: str, value: Any) -> None:
        """Tag the whole run (``tags.<key>`` in :func:`curifactory.load_runs`, like ``--tag KEY=VALUE``)."""
        self.tracker.set_run_tag(key, value)

    def note_failure(self, stage: str, record: Any, exc: BaseException) -> None:
        """Remember which stage of which record raised (for the store and the CLI)."""
        registration.note_failure(self, stage, record, exc)

    def finish(self, status: str, error: str | None = None) -> None:
        """Close the run: record its status, update the store, tell listeners."""
        self.status = status
        emit(self.listeners, RunFinishing(self.get_reference_name()))
        if error is not None and self.error is None:
            self.error = error
            self.error_thrown = True
        logger.info("Run %s finished: %s%s", self.get_reference_name(), status,
                    f" ({self.error})" if self.error else "")
        try:
            self.store(run_log=False)
        finally:
            self.tracker.finish()  # the run log, written once (with 'error' if the store failed)
        explain.write_decisions(self)
        if self.may_write_cache and self.writes_store:
            fileio.remove_stale_temps(self.cache_path)
            fileio.remove_stale_temps(self.reports_path, recursive=False)  # a killed run's report
        emit(self.listeners, RunFinished(self.get_reference_name(), status,
                                         time.perf_counter() - self._started, self.error))

    # -- map pass ------------------------------------------------------------------------
    def map_experiment(self, run: Any, param_sets: list[Any]) -> dag.Plan | None:
        """Call ``run`` in map mode to record the stage calls, then plan them (nothing executes).

        Without a plan (``run`` reads values that only exist after stages ran),
        each call decides as it runs; :attr:`map_error` says why.
        """
        return execution.map_experiment(self, run, param_sets)

    def map_records(self) -> None:
        """0.20's last step of a hand-made map pass (``manager.map_mode = True``, stages called,
        ``map_mode = False``): :attr:`map` becomes the :class:`~curifactory.dag.DAG` of the
        calls made so far, analyzed (a call whose input nothing provides raises ``KeyError``)."""
        self.map = dag.DAG(self.records, self.mapped_nodes, self.mapped_reads, prune=not self.mapped_hidden)
        self.map.analyze()

    def update_map_progress(self, record: Any, update_type: str = "") -> None:
        """Compatibility no-op: progress displays listen to :mod:`curifactory.events`."""

    @property
    def artifacts(self) -> list[Any]:
        """Every output of every stage call of this run (``history.ArtifactInfo``)."""
        return [artifact for record in self.records for run in record.history for artifact in run.outputs]

    @property
    def mapped_artifacts(self) -> list[Any]:
        """Every output the last map pass saw, as 0.20 listed them (``dag.MapArtifactRepresentation``:
        record index, stage, name, ``cached``, metadata, path): :attr:`map`'s artifacts."""
        return list(self.map.artifacts) if self.map is not None else []

    # -- --store-full run folders -----------------------------------------------------------
    def used_artifact_paths(self) -> list[str]:
        """Every artifact file this run computed or loaded, and files stages wrote via ``get_path``."""
        from curifactory.runfolder import used_artifact_paths

        return used_artifact_paths(self.records)

    def write_run_env_output(self) -> str | None:
        """Write (or refresh) this run's ``--store-full`` folder; returns its path."""
        if self.run_dir is None:
            return None
        from curifactory import runfolder

        report_dir = os.path.join(self.reports_path, self.get_reference_name())
        runfolder.write_run_folder(
            self.run_dir, run_info=self.run_info, artifacts=self.used_artifact_paths(),
            registry_entries=registration.registry_entries(self), project_root=self.settings.root,
            cache_root=self.cache_path, log_path=self.log_path,
            report_dir=report_dir if os.path.isdir(report_dir) else None,
            environment=self.environment_capture.result() if self.environment_capture is not None else None,
            pip_cache_dir=self.manager_cache_path,
        )
        return self.run_dir

    # -- parallel locks ---------------------------------------------------------------------
    def lock(self) -> None:
        """Acquire the lock shared with parallel workers, if any."""
        if self.parallel_lock is not None:
            self.parallel_lock.acquire()

    def unlock(self) -> None:
        """Release the lock shared with parallel workers, if any."""
        if self.parallel_lock is not None:
            self.parallel_lock.release()

    # -- reportables ---------------------------------------------------------------------------
    def get_grouped_reportables(self) -> dict[str, list[Any]]:
        """Reportables by group name (ungrouped ones are left out)."""
        groups: dict[str, list[Any]] = {}
        for reportable in self.reportables:
            if reportable.group:
                groups.setdefault(reportable.group, []).append(reportable)
        return groups

    def get_ungrouped_reportables(self) -> list[Any]:
        """Reportables without a group."""
        return [r for r in self.reportables if not r.group]

    def generate_report(self, graph: Any = None) -> str | None:
        """Write this run's HTML report; returns the path of its ``index.html`` (``graph``: its stage
        graph being drawn already, a ``reporting.graph.PendingGraph``)."""
        if self.dry:
            return None
        page = _write_report(self, graph)
        if self.interactive and self.store_full:
            self.write_run_env_output()  # a live run's folder follows its latest report
        return page

    def __repr__(self) -> str:
        return f"<ArtifactManager {self.get_reference_name()} status={self.status} records={len(self.records)}>"


def _init_bookkeeping(self: ArtifactManager) -> None:
    """A manager's run state before its run starts (records, map pass, run information)."""
    self.records: list[Any] = []
    self.reportables: list[Any] = []
    self.listeners: list[Listener] = []
    self.executor: Any = InProcessExecutor()  # where stage calls that must run run
    self.fingerprints: dict[int, Any] | None = None  # per run (see execution._code_of)
    self.param_history: Any = None  # the registry, indexed (see explain.registry_index)
    self.parameter_files: list[str] = []
    self.param_file_param_sets: dict[str, list[list[str]]] = {}
    self.current_stage_name: str | None = None
    self.stage_active = False
    self.map_mode = False
    self.mapped_nodes: list[dag.Node] = []
    self.mapped_reads: set[dag.NodeKey] = set()  # calls whose outputs run() read in the map pass
    self.mapped_hidden = False  # the map pass saw calls of hidden records
    self.map: Any = None  # 0.20's DAG of the last map pass (dag.DAG, built by map_records)
    self.plan: dag.Plan | None = None
    self.map_error: str | None = None  # why the map pass failed, if it did
    self.error: str | None = None
    self.error_thrown = False
    self.error_stage: dict[str, Any] | None = None
    self.reproduction_line: str | None = None
    self.log_path: str | None = None
    self.started = self.stored = False
    self.live_report_path_generated = False  # 0.20 attribute; displays need no folder here
    self.hostname, self.os = socket.gethostname(), platform.platform()
    self.git_info: Any = None
    self.git_commit_hash: str | None = None
    self.git_workdir_dirty: bool | None = None
    self.pip_freeze: str | None = None
    self.conda_env: str | None = None
    self.artifact_manifest: Any = None
    self.run_dir: str | None = None
    self.environment_capture: Any = None
    self.metadata_capture: Any = None  # the metadata providers of this run (see curifactory.metadata)
    self.tracker = tracking.Tracker(self)  # metrics, tags, info, attachments -> the run log
    self._started = time.perf_counter()


def _write_report(manager: ArtifactManager, pending: Any = None) -> str:
    """The report, its stage graph drawn in a thread (``dot`` runs on another core meanwhile),
    started before jinja2 loads unless ``pending`` is its drawing started earlier."""
    if pending is None:
        from curifactory.reporting import graph

        pending = graph.PendingGraph(manager.records, graph.report_graph_cache(manager))
    from curifactory.reporting import render

    return render.write_report(manager, pending)


def _write_run_folder_at_exit(ref: Any) -> None:
    manager = ref()
    if manager is None:
        return
    try:
        manager.write_run_env_output()
    except Exception:  # the interpreter is exiting: never turn that into a traceback
        logger.warning("Could not write the run folder of %s at exit", manager.get_reference_name(), exc_info=True)
