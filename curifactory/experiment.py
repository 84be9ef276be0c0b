"""``run_experiment``: run an experiment as the ``experiment`` command does.

The 0.20 entry point. It turns its arguments into a
:class:`~curifactory.runner.RunRequest`, registers the listeners that close a run
(the report, the run folder: :mod:`curifactory.listeners`) and hands over to the
run loop, :func:`curifactory.runner.run`. Loading experiments and parameter files
lives in :mod:`curifactory.loading` (re-exported here under the old names).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

from curifactory.config import Settings, load_settings
from curifactory.listeners import closing_listeners
from curifactory.loading import (
    ParamSelection,
    check_param_sets,
    collect_param_sets,
    list_modules,
    load_experiment,
    load_param_file,
)
from curifactory.runner import RunHooks, RunRequest, reproduction_line
from curifactory.runner import run as _run

__all__ = ["ParamSelection", "check_param_sets", "collect_param_sets", "collect_parameter_sets",
           "list_experiments", "list_modules",
           "list_params", "load_experiment", "load_param_file", "reproduction_line", "run_experiment",
           "write_experiment_notebook"]


def _modules_defining(settings: Settings, package: str, function: str) -> list[str]:
    """The modules of a project package whose source defines ``function`` at its top level."""
    import re

    pattern = re.compile(rf"^def {function}\(", re.MULTILINE)
    found = []
    for name in list_modules(settings, package):
        path = os.path.join(settings.root, package.replace(".", os.sep), name + ".py")
        try:
            with open(path, encoding="utf-8") as handle:
                if pattern.search(handle.read()):
                    found.append(name)
        except OSError:
            continue
    return found


def list_experiments(settings: Settings | None = None) -> list[str]:
    """The names of the project's experiments: the modules of its experiments package that
    define ``run()`` (0.20's helper; ``experiment ls`` prints them with their docstrings)."""
    settings = settings or load_settings()
    return sorted(_modules_defining(settings, settings.experiments_module_name, "run"))


def list_params(settings: Settings | None = None) -> list[str]:
    """The names of the project's parameter files: the modules of its parameters package, and
    of its experiments package, that define ``get_params()`` (0.20's helper)."""
    settings = settings or load_settings()
    return sorted(_modules_defining(settings, settings.params_module_name, "get_params")
                  + _modules_defining(settings, settings.experiments_module_name, "get_params"))


def collect_parameter_sets(manager: Any, param_files: list[str], overwrite_override: bool = False,
                           parallel: int | None = None, param_set_names: list[str] | None = None,
                           param_set_indices_resolved: list[int] | None = None, dry: bool = False,
                           store_full: bool = False, parallel_mode: bool = False) -> list[Any]:
    """The parameter sets of ``param_files``, filtered by name and index, each hashed (0.20's helper).

    ``overwrite_override`` sets ``overwrite`` on each set (not when ``parallel``). The
    names and hashes of each file's kept sets go to ``manager.param_file_param_sets``
    when the manager has that dict. ``dry``, ``store_full`` and ``parallel_mode`` are
    accepted for 0.20's callers: nothing is written here (the run writes the registry).
    """
    from curifactory import hashing

    settings = getattr(manager, "settings", None) or load_settings()
    indices = set(param_set_indices_resolved or ())
    chosen: list[Any] = []
    for name in param_files:
        param_sets = load_param_file(name, settings)
        if overwrite_override and parallel is None:
            for param_set in param_sets:
                param_set.overwrite = True
        kept = [s for i, s in enumerate(param_sets)
                if (param_set_names is None or s.name in param_set_names) and (not indices or i in indices)]
        book = getattr(manager, "param_file_param_sets", None)
        if isinstance(book, dict):
            book[name] = [(s.name, hashing.hash_param_set(s)) for s in kept]
        chosen.extend(kept)
    return chosen


def run_experiment(
    experiment_name: str, param_files: list[str] | None = None, overwrite_override: bool | None = None,
    cache_dir_override: str | None = None, mngr: Any = None, log: bool = False, log_debug: bool = False,
    dry: bool = False, dry_cache: bool = False, store_full: bool = False, lazy: bool = False,
    ignore_lazy: bool = False, no_dag: bool = False, prefix: str | None = None,
    stage_overwrites: list[str] | None = None, param_set_names: list[str] | None = None,
    param_set_indices: list[str] | None = None, global_param_set_indices: list[str] | None = None,
    run_string: str | None = None, notes: str | None = None, report: bool = True,
    listeners: list[Any] | None = None, settings: Settings | None = None, runner: Callable[..., Any] | None = None,
    parallel: int | None = None, parallel_safe: bool = False, on_manager: Callable[[Any], None] | None = None,
    executor: Any = None, code_changes: str | None = None, tags: dict[str, Any] | None = None,
    overrides: list[str] | None = None, params_from: str | None = None, original_run: str | None = None,
    scheduler: str | None = None, build_notebook: bool = False, map_only: bool = False, hashes_only: bool = False,
    paths_only: bool = False, print_params: bool | str = False, **_ignored: Any,
) -> tuple[Any, Any]:
    """Run an experiment as the ``experiment`` command does; returns ``(results, manager)``.

    With ``mngr`` given (e.g. a live manager in a notebook), the experiment runs on it; ``dry=True`` then
    loads a past run's results from the cache without writing. ``on_manager`` is called with the manager
    once it exists, before any stage (or ``--parallel`` worker) runs. ``executor`` runs the stage calls that
    must run (see :mod:`curifactory.executors`): an executor, or its name (``"in-process"``,
    ``"process-pool"``, ``"dask"``: a task per distinct stage call on a Dask cluster, the ``scheduler``
    address or a local cluster of ``parallel`` workers); by default they run in this process, or, with
    ``parallel`` > 1, a process pool fills the cache first. ``code_changes`` (``rerun``, ``warn``,
    ``ignore``) overrides the project config's policy for entries whose code changed. ``tags`` tag the run
    (``--tag KEY=VALUE``); ``overrides`` are ``FIELD=VALUE`` texts (``--set``), ``params_from`` a run
    reference (``--params-from``), ``original_run`` the run this one repeats. ``build_notebook`` writes
    the run's notebook. 0.20's ``map_only``, ``hashes_only``, ``paths_only``, ``print_params`` (``True``,
    a name or a hash prefix) print as ``--map``, ``--hashes``, ``--paths``, ``--print-params`` do and run
    nothing (see :func:`_look_only`). ``log`` and ``log_debug`` are accepted for 0.20 code; the command
    line sets up logging.

    Raises:
        UsageError: unknown experiment or parameter file, bad ``get_params`` result, no set selected.
        Exception: whatever a stage raised, after the run is stored with status ``error`` (the manager's
            ``error_stage`` says which stage and record).
    """
    from curifactory.manager import ArtifactManager

    looks = {"map": map_only, "hashes": hashes_only, "paths": paths_only, "params": print_params}
    if any(v is not False and v is not None for v in looks.values()):
        return _look_only(looks, experiment_name, param_files, (param_set_names, param_set_indices,
                          global_param_set_indices), settings, mngr, prefix, cache_dir_override)
    request = RunRequest(
        experiment_name, tuple(param_files) if param_files else None,
        ParamSelection(tuple(param_set_names or ()), tuple(param_set_indices or ()),
                       tuple(global_param_set_indices or ()), tuple(overrides or ()), params_from),
        overwrite_override, cache_dir_override, dry, dry_cache, store_full, lazy, ignore_lazy, no_dag, prefix,
        tuple(stage_overwrites or ()), run_string or "", notes, parallel, parallel_safe, code_changes,
        tuple((str(k), str(v)) for k, v in (tags or {}).items()), original_run,
        executor if isinstance(executor, str) else None, scheduler)

    hooks = RunHooks(ArtifactManager, tuple(listeners or ()), runner, functools.partial(_attach, report, on_manager),
                     None if isinstance(executor, str) else executor)
    results, manager = _run(request, hooks, mngr=mngr, settings=settings)
    if build_notebook:
        _build_notebook(manager, request)
    return results, manager


def _attach(report: bool, on_manager: Callable[[Any], None] | None, manager: Any) -> None:
    """The run's closing listeners (report, run folder), then the caller's ``on_manager``."""
    manager.listeners.extend(closing_listeners(manager, report=report))
    if on_manager is not None:
        on_manager(manager)


def _look_only(looks: dict[str, Any], experiment_name: str, param_files: list[str] | None,
               selection_lists: tuple[Any, Any, Any], settings: Settings | None, manager: Any,
               prefix: str | None, cache_path: str | None) -> tuple[Any, Any]:
    """0.20's ``run_experiment(map_only=True)`` and the like: print, run nothing, write nothing, and
    return what 0.20 returned, with the manager: the DAG (``map_only``), ``{hash: name}``
    (``hashes_only``), the paths (``paths_only``), the printed sets (``print_params``)."""
    import sys

    from curifactory import hashing, inspection
    from curifactory.manager import ArtifactManager

    selection = ParamSelection(*(tuple(values or ()) for values in selection_lists))
    if manager is None:
        manager = ArtifactManager(experiment_name, dry=True, status_override="incomplete", prefix=prefix,
                                  cache_path=cache_path, settings=settings)
    settings = settings or manager.settings
    module = load_experiment(experiment_name, settings)
    param_sets, block = collect_param_sets(module, param_files, settings, selection)
    manager.parameter_files, manager.param_file_param_sets = list(block), block
    out = sys.stdout
    if looks["hashes"]:
        inspection.print_hashes(param_sets, out)
        return {hashing.hash_param_set(p): p.name for p in param_sets}, manager
    if looks["params"] not in (False, None):
        wanted = None if looks["params"] is True else str(looks["params"])
        chosen = inspection.params_to_print(param_sets, wanted, os.path.join(settings.root,
                                                                             settings.manager_cache_path))
        inspection.print_params(chosen, out)
        return chosen, manager
    mapped = inspection.map_run(module.run, param_sets, manager)
    if looks["paths"]:
        return inspection.print_paths(mapped, out), manager
    inspection.print_map(mapped, experiment_name, out)
    return manager.map, manager


def _build_notebook(manager: Any, request: RunRequest) -> None:
    """``build_notebook=True``: the run's notebook, as ``--notebook`` writes it."""
    from curifactory.notebook import write_run_notebook

    selection = request.selection
    write_run_notebook(manager, request.experiment_name, list(request.param_files or []),
                       list(selection.names) or None, list(selection.indices) or None,
                       list(selection.global_indices) or None)


def write_experiment_notebook(manager: Any, path: str, *args: Any, **kwargs: Any) -> str:
    """0.20's ``curifactory.experiment.write_experiment_notebook``: see
    :func:`curifactory.notebook.write_experiment_notebook` (imported only when called)."""
    from curifactory.notebook import write_experiment_notebook as write

    return write(manager, path, *args, **kwargs)
