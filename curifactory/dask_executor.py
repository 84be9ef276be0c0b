"""``--executor dask``: each distinct stage call that must run is one task on a Dask cluster.

Before the real pass, :class:`DaskExecutor` maps the experiment, and every call the plan
says runs becomes a task keyed by its artifact key (``<prefix>_<hash>_<stage>`` and the
stage's code digest), so identical calls of different records, or of two experiments
submitted to one scheduler at once, run once. A task depends on the tasks of the calls
it reads from; on its worker it imports the project, makes a worker manager (no store,
no report, artifact locks) and runs the experiment in *target mode*: only the targeted
call executes, every other call is taken from the cache or skipped
(:func:`curifactory.execution.run_stage`). Workers write the cache (a folder every
worker sees at the same path, or a local folder mirrored to a ``remote_cache`` URL);
the values themselves never travel. The real pass then finds everything cached and
reports the tasks' calls as executed; the store, the report and the run log are written
once, by this process.

``distributed`` is imported only here (``pip install 'curifactory[dask]'``).
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
import threading
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any

from curifactory.errors import StageExecutionError, UsageError
from curifactory.events import WorkersFinished, WorkersStarted, emit
from curifactory.executors import InProcessExecutor, RunContext

logger = logging.getLogger(__name__)
_IN_PROCESS = threading.Lock()
"""Workers in one process (``LocalCluster(processes=False)``) share its modules and
``sys.path``: their tasks take turns."""
INSTALL_HINT = ("--executor dask needs the 'distributed' package: pip install 'curifactory[dask]' "
                "(or pip install distributed).")


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to run one call of this run (picklable; the parameter sets are
    pickled bytes, unpickled once the project is importable on the worker)."""

    root: str
    experiment: str
    param_sets: bytes
    settings: Any
    prefix: str | None
    cache_path: str
    lazy: bool
    ignore_lazy: bool
    overwrite: bool
    overwrite_stages: tuple[str, ...]
    code_changes: str | None
    run_number: int | None
    run_timestamp: Any
    manager_class: Any = None
    """The run's manager class (``ArtifactManager`` or a subclass), pickled by reference."""
    start_run: Any = None
    """:func:`curifactory.runner.start_run`, pickled by reference (the runner imports this module)."""


@dataclass(frozen=True)
class TaskOutcome:
    """What a task did: whether its call executed, the calls it computed, where it ran."""

    executed: bool
    computed: tuple[tuple[str, str, str, str, bool], ...]
    worker: str


class RemoteStageError(StageExecutionError):
    """A stage raised on a Dask worker (the message carries its traceback and the worker;
    ``where`` the stage, record, parameter set name and hash)."""

    def __init__(self, message: str, where: dict[str, Any] | None = None, remote_traceback: str = ""):
        super().__init__(message)
        self.where = where or {}
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> Any:  # travels back from the worker whole
        return (RemoteStageError, (str(self), self.where, self.remote_traceback))


def check_available() -> None:
    """Raise a :class:`UsageError` with the install hint when ``distributed`` is not installed
    (without importing it: a run with nothing to compute never does)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("distributed") is not None
    except (ValueError, ImportError):
        found = False
    if not found:
        raise UsageError(INSTALL_HINT)


def _client(workers: int | None, scheduler: str | None) -> tuple[Any, Any]:
    try:
        import distributed
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    if scheduler:
        try:
            return distributed.Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"Cannot reach the Dask scheduler {scheduler}: {exc}. Start it (dask scheduler) or "
                             f"check --scheduler / \"dask\": {{\"scheduler\": ...}} in curifactory_config.json.") from None
    cluster = distributed.LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                       processes=True, dashboard_address=None, host="127.0.0.1")
    return distributed.Client(cluster), cluster


def artifact_key(path: str | None, prefix: str) -> tuple[str, str] | None:
    """(record hash, ``<prefix>_<hash>_<stage>`` stem) of an artifact path in the usual layout, else None."""
    if not path:
        return None
    name = os.path.basename(path)
    head = prefix + "_"
    digest = name[len(head):len(head) + 32]
    if not name.startswith(head) or len(digest) != 32 or any(c not in "0123456789abcdef" for c in digest):
        return None
    return digest, name


class DaskExecutor(InProcessExecutor):
    """Runs the calls that must run as Dask tasks; the real pass runs what is left here.

    Args:
        workers: workers of the local cluster started when no ``scheduler`` is given.
        scheduler: the address of a running scheduler (``tcp://HOST:PORT``).
        client: a ``distributed.Client`` to use as it is (e.g. in tests and notebooks).
    """

    name = "dask"
    elsewhere = "on a dask worker"

    def __init__(self, workers: int | None = None, scheduler: str | None = None, client: Any = None):
        super().__init__()
        self.workers, self.scheduler, self.client = workers, scheduler, client
        self.tasks_by_worker: Counter[str] = Counter()

    def start(self, context: RunContext) -> None:
        manager = context.manager
        plan = manager.map_experiment(context.run, context.param_sets)
        if plan is None:
            logger.warning("--executor dask: the experiment cannot be mapped ahead (%s); running here.",
                           manager.map_error)
            return
        upstream = _upstream(plan)
        chosen = _tasks(plan, manager.prefix or manager.experiment_name, upstream)
        if not chosen:
            self.plan_is_current = True
            return  # everything cached: no cluster, nothing pickled
        spec = _spec(manager, context.param_sets)
        client, cluster = (self.client, None) if self.client is not None else _client(self.workers, self.scheduler)
        try:
            self._run_tasks(client, manager, spec, chosen, plan, upstream)
        finally:
            if self.client is None:
                client.close()
                if cluster is not None:
                    cluster.close()

    def _run_tasks(self, client: Any, manager: Any, spec: WorkerSpec, chosen: dict[Any, tuple[str, str]],
                   plan: Any, upstream: dict[Any, list[Any]]) -> None:
        import distributed

        futures: dict[str, Any] = {}
        by_node: dict[Any, str] = {}
        digests = _stage_digests(manager)
        for node in plan.nodes:
            if node.key not in chosen:
                continue
            record_hash, stem = chosen[node.key]
            key = f"curifactory-{stem}-{digests.get(node.key[1], '')[:12]}"
            by_node[node.key] = key
            if key in futures:
                continue  # the same call of another record: one task
            deps = [futures[by_node[s]] for s in upstream.get(node.key, ()) if s in by_node]
            target = (record_hash, node.key[1], plan.verdicts.get(node.key))
            futures[key] = client.submit(run_target, spec, target, *deps, key=key, pure=False)
        emit(manager.listeners, WorkersStarted(len(client.scheduler_info().get("workers", {})) or 1, len(futures),
                                               "distinct stage call", "dask"))
        try:
            distributed.wait(list(futures.values()))
            self._collect(manager, futures)
        finally:  # forget them on the scheduler: a rerun after a failure computes afresh
            client.cancel(list(futures.values()))

    def _collect(self, manager: Any, futures: dict[str, Any]) -> None:
        failures = []
        for key, future in futures.items():
            if future.status == "error":
                failures.append(future.exception())
                continue
            outcome = future.result()
            if outcome.executed:
                self.tasks_by_worker[outcome.worker] += 1
            for record_hash, stage, path, reason, cascades in outcome.computed:
                self.computed[(record_hash, stage, path)] = (reason, cascades)
        logger.info("dask tasks per worker: %s", dict(self.tasks_by_worker))
        emit(manager.listeners, WorkersFinished(len(self.tasks_by_worker), len(self.computed), len(failures),
                                                tuple(sorted(self.tasks_by_worker.items())), "dask"))
        if failures:
            first = next((f for f in failures if isinstance(f, RemoteStageError)), failures[0])
            if isinstance(first, RemoteStageError) and "stage" in first.where:
                manager.error_stage = {k: first.where.get(k) for k in ("stage", "record", "params_name", "params_hash")}
                manager.error = f"{first} in stage '{first.where['stage']}' of record {first.where['record']}"
                if first.remote_traceback and hasattr(first, "add_note"):
                    first.add_note(f"The traceback on the worker:\n{first.remote_traceback}")  # log and -v
            raise first
        self.prefilled = True


def _stage_digests(manager: Any) -> dict[str, str]:
    """Each stage's code digest as the map pass fingerprinted it (by stage name)."""
    digests = {}
    for made in (getattr(manager, "fingerprints", None) or {}).values():
        for helper in getattr(made, "helpers", ()):
            if helper.kind == "stage":
                digests[helper.name.rsplit(".", 1)[-1]] = made.digest
    return digests


def _upstream(plan: Any) -> dict[Any, list[Any]]:
    """Each call's sources: the producers the map pass saw and the plan's edges into it (one pass
    over the edges, not one per call)."""
    incoming: dict[Any, list[Any]] = {node.key: list(node.sources) for node in plan.nodes}
    for source, target, _ in plan.edges:
        incoming.setdefault(target, []).append(source)
    return {key: list(dict.fromkeys(sources)) for key, sources in incoming.items()}


def _tasks(plan: Any, prefix: str, upstream: dict[Any, list[Any]]) -> dict[Any, tuple[str, str]]:
    """The calls that become tasks: they run, every output has a cacher in the usual layout,
    and every call they read from that runs is a task too."""
    chosen: dict[Any, tuple[str, str]] = {}
    for node in plan.nodes:
        if not plan.runs(node.key) or not node.paths:
            continue
        keys = [artifact_key(path, prefix) for path in node.paths]
        if any(k is None for k in keys):
            continue
        if any(plan.runs(s) and s not in chosen for s in upstream.get(node.key, ())):
            continue  # it reads a value only this process will compute
        record_hash, name = keys[0]  # type: ignore[misc]
        stem = name[:len(prefix) + 34 + len(node.key[1])]
        chosen[node.key] = (record_hash, stem)
    return chosen


def _spec(manager: Any, param_sets: list[Any]) -> WorkerSpec:
    return WorkerSpec(
        manager.settings.root, manager.experiment_name, pickle.dumps(param_sets), manager.settings, manager.prefix,
        manager.cache_path, bool(manager.lazy), bool(manager.ignore_lazy), bool(manager.overwrite),
        tuple(manager.overwrite_stages or ()), manager.code_changes, manager.experiment_run_number,
        manager.run_timestamp, type(manager), sys.modules["curifactory.runner"].start_run,
    )


def _fresh_project_modules(root: str) -> None:
    """Forget the project's modules, so a long-lived worker runs the code as it is now."""
    prefixes = tuple({os.path.join(os.path.realpath(root), ""), os.path.join(os.path.abspath(root), "")})
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.startswith(prefixes):
            del sys.modules[name]


def run_target(spec: WorkerSpec, target: tuple[Any, ...], *dependencies: Any) -> TaskOutcome:
    """On a worker: run the experiment so that only the call ``target`` (record hash, stage,
    the plan's decision) executes, writing its outputs to the cache. ``dependencies`` only
    order the tasks."""
    from curifactory.execution import TargetReached
    from curifactory.loading import load_experiment, project_on_path
    try:
        import distributed

        worker = distributed.get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    with _IN_PROCESS, project_on_path(spec.root):
        _fresh_project_modules(spec.root)
        module = load_experiment(spec.experiment, spec.settings)
        param_sets = pickle.loads(spec.param_sets)
        manager = spec.manager_class(spec.experiment, prefix=spec.prefix, lazy=spec.lazy, ignore_lazy=spec.ignore_lazy,
                                  cache_path=spec.cache_path, settings=spec.settings, parallel_mode=True, start=False)
        manager.experiment_run_number, manager.run_timestamp = spec.run_number, spec.run_timestamp
        manager.overwrite, manager.overwrite_stages = spec.overwrite, list(spec.overwrite_stages)
        if spec.code_changes:
            manager.code_changes = spec.code_changes
        spec.start_run(manager)
        manager.target = target
        try:
            module.run(param_sets, manager)
        except TargetReached as reached:
            return TaskOutcome(reached.executed, reached.computed, worker)
        except Exception as exc:
            where = dict(manager.error_stage or {"stage": target[1], "record": f"with hash {target[0]}",
                                                 "params_name": None, "params_hash": target[0]}, worker=worker)
            raise RemoteStageError(f"{type(exc).__name__}: {exc} (on the Dask worker {worker})", where,
                                   "".join(traceback.format_exception(exc))) from None
    raise StageExecutionError(f"The Dask task for stage '{target[1]}' (parameter set hash {target[0]}) ran the "
                              f"experiment without reaching that call; is the experiment's run() deterministic?")
