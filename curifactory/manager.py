"""``ArtifactManager``: owns the settings, the store, the records and the listeners.

It is deliberately thin: stage calls are handed to :mod:`curifactory.execution`,
storage to :mod:`curifactory.store`, environment capture to
:mod:`curifactory.environment`, and the report and notebook views (imported only
inside the methods that need them) to the presentation layer.
"""

from __future__ import annotations

import datetime
import logging
import os
import platform
import socket
import time
from typing import Any

from curifactory import dag, execution, fileio, hashing
from curifactory.config import Settings, load_settings
from curifactory.events import Listener, RunFinished, emit
from curifactory.executors import InProcessExecutor
from curifactory.store import ManagerStore, ParamsRegistry

logger = logging.getLogger(__name__)

TIMESTAMP_FORMAT = "%Y-%m-%d-T%H%M%S"
_PATH_ARGS = ("manager_cache_path", "cache_path", "runs_path", "logs_path", "notebooks_path",
              "reports_path", "report_css_path")


class ArtifactManager:
    """The records, options and bookkeeping of one experiment run.

    Every argument of curifactory 0.20 is accepted. Paths default to the project's
    ``curifactory_config.json`` (found in the working directory or up to 3
    parents); explicit arguments win. Created from a script or notebook the run's
    status is ``LIVE`` and it is entered in the store right away.

    Args:
        experiment_name: names the run and prefixes cached artifacts.
        store_full: write a ``--store-full`` run folder.
        dry: write no file at all (cache, store, logs, report).
        dry_cache: write no cache entries (the store and report are written).
        prefix: artifact prefix instead of the experiment name.
        run_line: the command line that started the run.
        parallel_lock: a lock shared by parallel workers.
        parallel_mode: this manager is a worker of a ``--parallel`` run.
        lazy: make every output ``Lazy`` (``PickleCacher`` where none is given).
        ignore_lazy: keep every output in memory.
        notes: notes for the store and report.
        status_override: ``LIVE`` unless started by ``run_experiment``.
        suppress_live_log: no log file for a live manager.
        live_log_debug: log at DEBUG level in a live manager's log file.
        disable_non_cf_loggers: accepted for compatibility (logging of other
            libraries is the CLI's business).
        settings: a ready :class:`~curifactory.config.Settings` (skips the config lookup).
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        store_full: bool = False,
        dry: bool = False,
        dry_cache: bool = False,
        prefix: str | None = None,
        run_line: str = "",
        parallel_lock: Any = None,
        parallel_mode: bool = False,
        lazy: bool = False,
        ignore_lazy: bool = False,
        notes: str | None = None,
        manager_cache_path: str | None = None,
        cache_path: str | None = None,
        runs_path: str | None = None,
        logs_path: str | None = None,
        notebooks_path: str | None = None,
        reports_path: str | None = None,
        report_css_path: str | None = None,
        status_override: str = "LIVE",
        suppress_live_log: bool = False,
        live_log_debug: bool = False,
        disable_non_cf_loggers: bool = True,
        settings: Settings | None = None,
    ):
        overrides = dict(manager_cache_path=manager_cache_path, cache_path=cache_path, runs_path=runs_path,
                         logs_path=logs_path, notebooks_path=notebooks_path, reports_path=reports_path,
                         report_css_path=report_css_path)
        self.settings: Settings = (settings or load_settings()).with_paths(**overrides)
        self.config = self.settings.as_dict()
        for key in _PATH_ARGS:
            setattr(self, key, getattr(self.settings, key))

        self.experiment_name = experiment_name or "live"
        self.store_full = store_full
        self.dry = dry
        self.dry_cache = dry_cache
        self.prefix = prefix
        self.run_line = run_line
        self.parallel_lock = parallel_lock
        self.parallel_mode = parallel_mode
        self.lazy = lazy
        self.ignore_lazy = ignore_lazy
        self.notes = notes
        self.status = status_override
        self.interactive = status_override == "LIVE"
        self.suppress_live_log = suppress_live_log
        self.live_log_debug = live_log_debug
        self.disable_non_cf_loggers = disable_non_cf_loggers

        self.records: list[Any] = []
        self.reportables: list[Any] = []
        self.listeners: list[Listener] = []
        self.overwrite = False
        self.overwrite_stages: list[str] = []
        self.parameter_files: list[str] = []
        self.param_file_param_sets: dict[str, list[list[str]]] = {}
        self.current_stage_name: str | None = None
        self.stage_active = False
        self.map_mode = False
        self.mapped_nodes: list[dag.Node] = []
        self.plan: dag.Plan | None = None
        self.map_error: str | None = None  # why the map pass failed, if it did
        self.error: str | None = None
        self.error_thrown = False
        self.error_stage: dict[str, Any] | None = None
        self.reproduction_line: str | None = None
        self.log_path: str | None = None
        self.stored = False
        self.live_report_path_generated = False  # 0.20 attribute; displays need no folder here
        self.artifact_locks = parallel_mode
        self.writes_store = not parallel_mode  # False for workers and non-zero distributed ranks
        self.executor: Any = InProcessExecutor()  # where stage calls that must run run

        self.run_timestamp = datetime.datetime.now()
        self.hostname = socket.gethostname()
        self.os = platform.platform()
        self.git_commit_hash: str | None = None
        self.git_workdir_dirty: bool | None = None
        self.git_info: Any = None
        self.pip_freeze: str | None = None
        self.conda_env: str | None = None
        self.experiment_run_number = 0
        self._started = time.perf_counter()
        self._store = ManagerStore(self.manager_cache_path)
        self._registry = ParamsRegistry(self.manager_cache_path)
        self.artifact_manifest: Any = None
        self._run_dir: str | None = None
        self._environment: Any = None
        self._capture_git()
        self._register_run()
        self._load_manifest()
        if store_full and not dry and self.writes_store:
            self._start_store_full()
        if self.interactive and not suppress_live_log and not dry:
            self._start_live_log()

    # -- identity ------------------------------------------------------------------
    def get_str_timestamp(self) -> str:
        """The run timestamp as used in references: ``YYYY-MM-DD-THHMMSS``."""
        return self.run_timestamp.strftime(TIMESTAMP_FORMAT)

    def get_reference_name(self) -> str:
        """``<experiment>_<run number>_<timestamp>``."""
        return f"{self.experiment_name}_{self.experiment_run_number}_{self.get_str_timestamp()}"

    @property
    def may_write_cache(self) -> bool:
        """Whether cache entries may be written (not ``dry`` nor ``dry_cache``)."""
        return not (self.dry or self.dry_cache)

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
        stage_name = stage_name or self.current_stage_name
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
    def _capture_git(self) -> None:
        try:
            from curifactory.environment import capture_git
        except ImportError:  # pragma: no cover - environment.py always ships
            return
        self.git_info = capture_git(self.settings.root)
        self.git_commit_hash = self.git_info.commit
        self.git_workdir_dirty = self.git_info.dirty

    @property
    def run_info(self) -> dict[str, Any]:
        """This run's block in ``store.json``."""
        block: dict[str, Any] = {
            "reference": self.get_reference_name(),
            "experiment_name": self.experiment_name,
            "run_number": self.experiment_run_number,
            "timestamp": self.get_str_timestamp(),
            "commit": self.git_commit_hash,
            "workdir_dirty": self.git_workdir_dirty,
            "param_files": list(self.parameter_files),
            "params": self._params_block(),
            "full_store": self.store_full,
            "status": self.status,
            "cli": self.run_line,
            "hostname": self.hostname,
            "notes": self.notes,
        }
        if self.git_info is not None:
            block["git_branch"] = self.git_info.branch
        if self.error is not None:
            block["error"] = self.error
        if self.store_full and self.reproduction_line:
            block["reproduce"] = self.reproduction_line
        return block

    def _params_block(self) -> dict[str, list[list[str]]]:
        if self.param_file_param_sets:
            return self.param_file_param_sets
        sets = [[str(p.name), hashing.hash_param_set(p)] for p in self.get_all_param_sets()]
        return {"live": sets} if sets else {}

    def _register_run(self) -> None:
        if not self.writes_store:
            return
        if self.dry:
            self.experiment_run_number = self._store.next_run_number(self.experiment_name)
            return

        def build(number: int) -> dict[str, Any]:
            self.experiment_run_number = number
            return self.run_info

        self._store.register_run(build, self.experiment_name)
        self.stored = True

    def store(self) -> None:
        """Write this run's block to the store and its sets to the registry."""
        if self.dry or not self.writes_store:
            return
        self._store.replace_run(self.run_info)
        self._registry.add({hashing.hash_param_set(p): hashing.param_set_string_hash_representations(p)
                            for p in self.get_all_param_sets()})
        self.stored = True
        if self.interactive and self.store_full:
            self.write_run_env_output()  # a live run's folder follows its latest store

    def note_failure(self, stage: str, record: Any, exc: BaseException) -> None:
        """Remember which stage of which record raised (for the store and the CLI)."""
        if self.error_stage is not None:
            return
        params = record.params
        self.error_stage = {"stage": stage, "record": record.get_reference_name(),
                            "params_name": getattr(params, "name", None), "params_hash": record.get_hash()}
        self.error = f"{type(exc).__name__} in stage '{stage}' of record {record.get_reference_name()}: {exc}"
        self.error_thrown = True
        note = (f"(curifactory: raised in stage '{stage}' of record {record.get_reference_name()}, "
                f"parameter set '{getattr(params, 'name', None)}' {record.get_hash()})")
        if hasattr(exc, "add_note"):
            exc.add_note(note)

    def finish(self, status: str, error: str | None = None) -> None:
        """Close the run: record its status, update the store, tell listeners."""
        self.status = status
        if error is not None and self.error is None:
            self.error = error
            self.error_thrown = True
        logger.info("Run %s finished: %s%s", self.get_reference_name(), status,
                    f" ({self.error})" if self.error else "")
        self.store()
        if self.may_write_cache and self.writes_store:
            fileio.remove_stale_temps(self.cache_path)
        emit(self.listeners, RunFinished(self.get_reference_name(), status,
                                         time.perf_counter() - self._started, self.error))

    # -- map pass ------------------------------------------------------------------------
    def map_experiment(self, run: Any, param_sets: list[Any]) -> dag.Plan | None:
        """Call ``run`` in map mode to record the stage calls, then plan them.

        Nothing executes. When ``run`` cannot be mapped (it reads values that only
        exist after stages ran), there is no plan and each call decides as it runs.
        """
        records, reportables = list(self.records), list(self.reportables)
        self.map_mode, self.mapped_nodes = True, []
        try:
            run(param_sets, self)
            nodes: list[dag.Node] | None = self.mapped_nodes
        except Exception as exc:
            self.map_error = f"{type(exc).__name__}: {exc}"
            logger.info("The experiment could not be mapped ahead of running (%s); each stage "
                        "decides from the cache as it is called.", self.map_error)
            nodes = None
        finally:
            self.map_mode = False
            self.records[:] = records
            self.reportables[:] = reportables
        self.plan = dag.plan(nodes) if nodes is not None else None
        return self.plan

    def map_records(self) -> None:
        """Compatibility no-op: mapping happens in :meth:`map_experiment`."""

    def update_map_progress(self, record: Any, update_type: str = "") -> None:
        """Compatibility no-op: progress displays listen to :mod:`curifactory.events`."""

    @property
    def artifacts(self) -> list[Any]:
        """Every output of every stage call of this run (``history.ArtifactInfo``)."""
        return [artifact for record in self.records for run in record.history for artifact in run.outputs]

    @property
    def mapped_artifacts(self) -> list[tuple[Any, str, str | None]]:
        """(stage call key, output name, artifact path) of every output the map pass saw."""
        if self.plan is None:
            return []
        return [(node.key, name, path) for node in self.plan.nodes for name, path in zip(node.outputs, node.paths)]

    # -- --store-full run folders -----------------------------------------------------------
    def _load_manifest(self) -> None:
        # a reproduction run reads from a run folder's artifacts/: map outside paths into it
        if os.path.exists(os.path.join(self.cache_path, "_manifest.json")):
            from curifactory.runfolder import ArtifactManifest

            self.artifact_manifest = ArtifactManifest.load(self.cache_path)

    def _start_store_full(self) -> None:
        from curifactory import environment, runfolder

        try:
            self._run_dir = runfolder.create_run_dir(self.runs_path, self.get_reference_name())
        except Exception as exc:
            self.finish("error", error=str(exc))  # the store must not keep it 'incomplete'
            raise
        self._environment = environment.start_environment_capture(
            self.settings.root, pip_cache_dir=self.manager_cache_path)
        if self.interactive:
            # a script or notebook may never call store() or generate_report(): fill the folder at exit
            import atexit
            import weakref

            atexit.register(_write_run_folder_at_exit, weakref.ref(self))

    def used_artifact_paths(self) -> list[str]:
        """Every artifact file this run computed or loaded, and files stages wrote via ``get_path``."""
        paths: list[str] = []
        for record in self.records:
            for run in record.history:
                for artifact in run.outputs:
                    if artifact.path is None:
                        continue
                    paths.append(artifact.path)
                    if artifact.cacher == "FileReferenceCacher":
                        from curifactory.caching import FileReferenceCacher

                        targets = FileReferenceCacher(path_override=artifact.path).referenced_files()
                        paths.extend(t for t in targets if os.path.exists(t))
            paths.extend(entry["path"] for entry in record.unstored_tracked_paths if os.path.exists(entry["path"]))
        return list(dict.fromkeys(paths))

    def write_run_env_output(self) -> str | None:
        """Write (or refresh) this run's ``--store-full`` folder; returns its path."""
        if self._run_dir is None:
            return None
        from curifactory import runfolder

        report_dir = os.path.join(self.reports_path, self.get_reference_name())
        registry = {hashing.hash_param_set(p): hashing.param_set_string_hash_representations(p)
                    for p in self.get_all_param_sets()}
        runfolder.write_run_folder(
            self._run_dir, run_info=self.run_info, artifacts=self.used_artifact_paths(),
            registry_entries=registry, project_root=self.settings.root, cache_root=self.cache_path,
            log_path=self.log_path, report_dir=report_dir if os.path.isdir(report_dir) else None,
            environment=self._environment.result() if self._environment is not None else None,
            pip_cache_dir=self.manager_cache_path,
        )
        return self._run_dir

    # -- parallel locks ---------------------------------------------------------------------
    def lock(self) -> None:
        """Acquire the lock shared with parallel workers, if any."""
        if self.parallel_lock is not None:
            self.parallel_lock.acquire()

    def unlock(self) -> None:
        """Release the lock shared with parallel workers, if any."""
        if self.parallel_lock is not None:
            self.parallel_lock.release()

    # -- logging ---------------------------------------------------------------------------
    def _start_live_log(self) -> None:
        os.makedirs(self.logs_path, exist_ok=True)
        self.log_path = os.path.join(self.logs_path, f"{self.get_reference_name()}.log")
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
        handler.setLevel(logging.DEBUG if self.live_log_debug else logging.INFO)
        package_logger = logging.getLogger("curifactory")
        for old in [h for h in package_logger.handlers if getattr(h, "_cf_live", False)]:
            package_logger.removeHandler(old)
            old.close()
        handler._cf_live = True  # type: ignore[attr-defined]
        package_logger.addHandler(handler)
        if package_logger.level == logging.NOTSET or package_logger.level > handler.level:
            package_logger.setLevel(handler.level)

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

    # -- presentation (layer 4, imported on use) ------------------------------------------------
    def generate_report(self) -> str | None:
        """Write this run's HTML report; returns the path of its ``index.html``."""
        if self.dry:
            return None
        from curifactory.reporting import write_report

        page = write_report(self)
        if self.interactive and self.store_full:
            self.write_run_env_output()  # a live run's folder follows its latest report
        return page

    def display_info(self) -> Any:
        """The report's run-info block, for a notebook."""
        from curifactory import notebook

        return notebook.display_info(self)

    def display_all_reportables(self) -> Any:
        """Every reportable, for a notebook."""
        from curifactory import notebook

        return notebook.display_reportables(self, self.reportables)

    def display_record_reportables(self, record: Any) -> Any:
        """The reportables of one record, for a notebook."""
        from curifactory import notebook

        return notebook.display_reportables(self, record.reportables)

    def display_group_reportables(self, group_name: str) -> Any:
        """The reportables of one group, for a notebook."""
        from curifactory import notebook

        return notebook.display_reportables(self, [r for r in self.reportables if r.group == group_name])

    def display_stage_reportables(self, stage_name: str) -> Any:
        """The reportables produced by one stage, for a notebook."""
        from curifactory import notebook

        return notebook.display_reportables(self, [r for r in self.reportables if r.stage == stage_name])

    def display_reportable(self, reportable: Any) -> Any:
        """One reportable, for a notebook."""
        from curifactory import notebook

        return notebook.display_reportables(self, [reportable])

    def display_stage_graph(self) -> Any:
        """The stage graph as SVG, for a notebook."""
        from curifactory import notebook

        return notebook.display_stage_graph(self)

    def _repr_html_(self) -> str:
        from curifactory import notebook

        return notebook.manager_html(self)

    def __repr__(self) -> str:
        return f"<ArtifactManager {self.get_reference_name()} status={self.status} records={len(self.records)}>"


def _write_run_folder_at_exit(ref: Any) -> None:
    manager = ref()
    if manager is None:
        return
    try:
        manager.write_run_env_output()
    except Exception:  # the interpreter is exiting: never turn that into a traceback
        logger.warning("Could not write the run folder of %s at exit", manager.get_reference_name(), exc_info=True)
