"""``run_experiment``: load an experiment and its parameter files, map, plan and run.

This is what the ``experiment`` command calls; it can be called from Python too
and returns ``(results, manager)``.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from curifactory import hashing
from curifactory.config import Settings, load_settings
from curifactory.errors import ExperimentNotFoundError, ParamsError, ParamsNotFoundError, UsageError
from curifactory.events import RunStarted, emit
from curifactory.executors import RunContext, make_executor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParamSelection:
    """Which parameter sets of the loaded files to run.

    Attributes:
        names: keep only sets with these names (each must match at least one set).
        indices: per-file ranges (``"2"``, ``"0-3"``: end-exclusive).
        global_indices: ranges over the concatenation of all files.
    """

    names: tuple[str, ...] = ()
    indices: tuple[str, ...] = ()
    global_indices: tuple[str, ...] = ()


def _import_project_module(settings: Settings, dotted: str) -> ModuleType | None:
    """Import ``dotted`` from the project root; ``None`` only if that module is missing."""
    if settings.root not in sys.path:
        sys.path.insert(0, settings.root)
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if dotted == missing or dotted.startswith(missing + "."):
            return None
        raise


def load_experiment(name: str, settings: Settings) -> ModuleType:
    """The experiment module ``<experiments_module_name>.<name>`` with a ``run`` function."""
    module = _import_project_module(settings, f"{settings.experiments_module_name}.{name}")
    if module is None:
        available = ", ".join(list_modules(settings, settings.experiments_module_name)) or "none"
        raise ExperimentNotFoundError(
            f"No experiment '{name}': expected {settings.experiments_module_name}/{name}.py under "
            f"{settings.root} (found: {available}). Check the name, or run 'experiment ls'."
        )
    if not callable(getattr(module, "run", None)):
        raise ExperimentNotFoundError(
            f"The experiment module {module.__file__} has no run(param_sets, manager) function; "
            f"define one."
        )
    return module


def load_param_file(name: str, settings: Settings) -> list[Any]:
    """``get_params()`` of ``params.<name>`` (or ``experiments.<name>``), checked."""
    for package in (settings.params_module_name, settings.experiments_module_name):
        module = _import_project_module(settings, f"{package}.{name}")
        if module is not None and callable(getattr(module, "get_params", None)):
            return check_param_sets(module.get_params(), f"{module.__name__}.get_params()")
    available = ", ".join(list_modules(settings, settings.params_module_name)) or "none"
    raise ParamsNotFoundError(
        f"No parameter file '{name}': expected {settings.params_module_name}/{name}.py (or "
        f"{settings.experiments_module_name}/{name}.py) defining get_params() under {settings.root} "
        f"(found: {available}). Check the -p value, or run 'experiment ls'."
    )


def check_param_sets(value: Any, source: str) -> list[Any]:
    """Raise :class:`ParamsError` unless ``value`` is a list of parameter-set dataclasses."""
    if not isinstance(value, list):
        raise ParamsError(
            f"{source} returned a {type(value).__name__}, but it must return a list of parameter "
            f"sets (e.g. `return [Params(name='a'), Params(name='b')]`)."
        )
    for index, item in enumerate(value):
        if not dataclasses.is_dataclass(item) or isinstance(item, type):
            raise ParamsError(
                f"{source} returned a list whose item {index} is a {type(item).__name__} ({item!r:.60}), "
                f"not a parameter set. Each item must be an instance of a cf.ExperimentParameters dataclass."
            )
    return value


def list_modules(settings: Settings, package: str) -> list[str]:
    """Names of the modules in a project package folder (for messages and ``ls``)."""
    folder = os.path.join(settings.root, package)
    if not os.path.isdir(folder):
        return []
    return sorted(f[:-3] for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_"))


def _parse_ranges(specs: tuple[str, ...], length: int) -> list[int]:
    chosen: list[int] = []
    for spec in specs:
        try:
            if "-" in spec:
                start, end = (int(part) for part in spec.split("-", 1))
                chosen.extend(range(start, min(end, length)))
            else:
                chosen.append(int(spec))
        except ValueError:
            raise UsageError(f"Index range '{spec}' is not 'N' or 'A-B' (end-exclusive), e.g. --indices 0-3.") from None
    return [i for i in chosen if 0 <= i < length]


def collect_param_sets(module: ModuleType, param_files: list[str] | None, settings: Settings,
                       selection: ParamSelection) -> tuple[list[Any], dict[str, list[list[str]]]]:
    """Load and select the parameter sets; returns them and the store's ``params`` block."""
    loaded: list[tuple[str, list[Any]]] = []
    if param_files:
        for name in param_files:
            loaded.append((name, load_param_file(name, settings)))
    elif callable(getattr(module, "get_params", None)):
        name = module.__name__.rsplit(".", 1)[-1]
        loaded.append((name, check_param_sets(module.get_params(), f"{module.__name__}.get_params()")))
    else:
        raise ParamsError(
            f"Experiment {module.__name__} has no get_params() and no parameter file was given. "
            f"Pass one with -p NAME (see 'experiment ls')."
        )
    if selection.indices:
        loaded = [(name, [sets[i] for i in _parse_ranges(selection.indices, len(sets))]) for name, sets in loaded]
    if selection.global_indices:
        flat = [(name, s) for name, sets in loaded for s in sets]
        keep = {id(flat[i][1]) for i in _parse_ranges(selection.global_indices, len(flat))}
        loaded = [(name, [s for s in sets if id(s) in keep]) for name, sets in loaded]
    if selection.names:
        found = {s.name for _, sets in loaded for s in sets}
        unknown = [n for n in selection.names if n not in found]
        if unknown:
            raise ParamsError(
                f"No parameter set is named {', '.join(repr(n) for n in unknown)}; the loaded sets are "
                f"{', '.join(repr(n) for n in sorted(found)) or 'none'}. Check the -n value."
            )
        loaded = [(name, [s for s in sets if s.name in selection.names]) for name, sets in loaded]
    param_sets = [s for _, sets in loaded for s in sets]
    if not param_sets:
        raise ParamsError("The selection leaves no parameter set to run; check -p, -n and --indices.")
    block = {name: [[str(s.name), hashing.hash_param_set(s)] for s in sets] for name, sets in loaded}
    return param_sets, block


def run_experiment(
    experiment_name: str,
    param_files: list[str] | None = None,
    overwrite_override: bool | None = None,
    cache_dir_override: str | None = None,
    mngr: Any = None,
    log: bool = False,
    log_debug: bool = False,
    dry: bool = False,
    dry_cache: bool = False,
    store_full: bool = False,
    lazy: bool = False,
    ignore_lazy: bool = False,
    no_dag: bool = False,
    prefix: str | None = None,
    stage_overwrites: list[str] | None = None,
    param_set_names: list[str] | None = None,
    param_set_indices: list[str] | None = None,
    global_param_set_indices: list[str] | None = None,
    run_string: str | None = None,
    notes: str | None = None,
    report: bool = True,
    listeners: list[Any] | None = None,
    settings: Settings | None = None,
    runner: Callable[..., Any] | None = None,
    parallel: int | None = None,
    parallel_safe: bool = False,
    on_manager: Callable[[Any], None] | None = None,
    executor: Any = None,
    **_ignored: Any,
) -> tuple[Any, Any]:
    """Run an experiment as the ``experiment`` command does; returns ``(results, manager)``.

    With ``mngr`` given (e.g. a live manager in a notebook), the experiment runs on
    it; ``dry=True`` then loads a past run's results from the cache without writing.
    ``on_manager`` is called with the manager once it exists, before any stage
    (or ``--parallel`` worker) runs. ``executor`` runs the stage calls that must
    run (see :mod:`curifactory.executors`); by default they run in this process,
    or, with ``parallel`` > 1, a process pool fills the cache first.

    Raises:
        UsageError: unknown experiment or parameter file, bad ``get_params`` result,
            a selection matching nothing.
        Exception: whatever a stage raised, after the run is stored with status
            ``error`` (the manager's ``error_stage`` says which stage and record).
    """
    from curifactory.manager import ArtifactManager
    from curifactory.parallel import distributed_rank

    follower = distributed_rank() > 0
    if follower:  # a non-zero rank of a distributed launch: only rank 0 writes
        dry_cache, report, store_full = True, False, False
    settings = settings or (mngr.settings if mngr is not None else load_settings())
    module = load_experiment(experiment_name, settings)
    selection = ParamSelection(tuple(param_set_names or ()), tuple(param_set_indices or ()),
                               tuple(global_param_set_indices or ()))
    param_sets, block = collect_param_sets(module, param_files, settings, selection)

    def make_manager(**extra: Any) -> Any:
        return ArtifactManager(experiment_name, store_full=store_full, dry=dry, dry_cache=dry_cache, prefix=prefix,
                               run_line=run_string or "", lazy=lazy, ignore_lazy=ignore_lazy, notes=notes,
                               cache_path=cache_dir_override, status_override="incomplete", settings=settings,
                               **extra)

    given = mngr is not None
    if mngr is None:
        mngr = make_manager(parallel_mode=follower)
        # a follower rank runs every stage (aggregates too), without locks, and never writes the store
        mngr.parallel_mode = mngr.artifact_locks = False
    writes_cache = not (mngr.dry or mngr.dry_cache or dry or dry_cache)
    executor = make_executor(parallel if writes_cache else None, given=executor)
    changes = _run_options(mngr, given, executor, dry=dry, dry_cache=dry_cache, cache_dir_override=cache_dir_override,
                           overwrite=overwrite_override, stage_overwrites=stage_overwrites, listeners=listeners,
                           locks=parallel_safe and not follower)
    # a manager passed in (a notebook's) gets this run's options only for this run
    with _temporarily(mngr, **changes):
        if on_manager is not None:  # e.g. the CLI opens the run's log before anything runs
            on_manager(mngr)
        mngr.parameter_files = list(param_files or block.keys())
        mngr.param_file_param_sets = block
        if mngr.store_full:
            mngr.reproduction_line = reproduction_line(mngr, experiment_name, param_files, selection)
        run = runner or module.run
        mngr.executor.start(RunContext(mngr, run, param_sets, _worker_manager(mngr, make_manager)))
        if not no_dag:
            mngr.map_experiment(run, param_sets)
        return _execute(mngr, run, param_sets, experiment_name, report), mngr


def _run_options(mngr: Any, given: bool, executor: Any, *, dry: bool, dry_cache: bool, cache_dir_override: str | None,
                 overwrite: bool | None, stage_overwrites: list[str] | None, listeners: list[Any] | None,
                 locks: bool) -> dict[str, Any]:
    """The manager attributes this run sets (restored afterwards on a manager passed in)."""
    changes: dict[str, Any] = {
        "dry": mngr.dry or dry,
        "dry_cache": mngr.dry_cache or dry_cache,
        "listeners": [*mngr.listeners, *(listeners or [])],
        "executor": executor,
        # ranks of a distributed launch run every stage together (collectives): no locks for them
        "artifact_locks": mngr.artifact_locks or locks,
    }
    if overwrite:
        changes["overwrite"] = True
    if stage_overwrites:
        changes["overwrite_stages"] = list(stage_overwrites)
    if given and cache_dir_override:
        settings = mngr.settings.with_paths(cache_path=cache_dir_override)
        changes.update(settings=settings, cache_path=settings.cache_path, artifact_manifest=None)
    return changes


@contextmanager
def _temporarily(obj: Any, **changes: Any) -> Iterator[None]:
    saved = {name: getattr(obj, name) for name in changes}
    for name, value in changes.items():
        setattr(obj, name, value)
    if "cache_path" in changes:
        obj._load_manifest()
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
        worker.cache_path, worker.settings = mngr.cache_path, mngr.settings
        return worker

    return worker_manager


def _execute(mngr: Any, run: Callable[..., Any], param_sets: list[Any], experiment_name: str, report: bool) -> Any:
    """The real pass: run, store the outcome, write the report and run folder."""
    plan = mngr.plan
    emit(mngr.listeners, RunStarted(mngr.get_reference_name(), experiment_name, len(param_sets),
                                    len(plan.nodes) if plan else 0, len(plan.to_run) if plan else 0,
                                    len(mngr.executor.computed)))
    try:
        results = run(param_sets, mngr)
    except BaseException as exc:
        mngr.finish("error" if not mngr.interactive else mngr.status, error=f"{type(exc).__name__}: {exc}")
        _close_run(mngr, report)
        raise
    finally:
        mngr.executor.finish()
    mngr.finish("LIVE" if mngr.interactive else "complete")
    _close_run(mngr, report)
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
                         ("--global-indices", selection.global_indices)):
        for value in values:
            parts += [flag, value]
    if mngr.prefix:
        parts += ["--prefix", mngr.prefix]
    parts += ["--cache", artifacts, "--dry-cache"]
    return shlex.join(parts)


def _close_run(mngr: Any, report: bool) -> None:
    """Write the report and the store-full folder; neither may hide the run's outcome."""
    if report and not mngr.dry:
        try:
            mngr.generate_report()
        except Exception:  # the run's results matter more than its report
            logger.warning("Could not write the report of %s", mngr.get_reference_name(), exc_info=True)
    if mngr.store_full:
        try:
            mngr.write_run_env_output()
        except Exception:
            logger.warning("Could not complete the run folder of %s", mngr.get_reference_name(), exc_info=True)
