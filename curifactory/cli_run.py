"""``experiment NAME``: run (or inspect) an experiment from parsed command-line flags."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import traceback
from typing import Any, Callable

from curifactory.cli import EDIT_NOTES, CommandError, display_path, print_error, quote_argv
from curifactory.logs import CliLogging, LogOptions
from curifactory.progress import make_progress

logger = logging.getLogger("curifactory.cli")


def run_command(args: argparse.Namespace, argv: list[str]) -> int:
    """Run or inspect the experiment ``args.experiment``; returns the exit code."""
    from curifactory.config import load_settings

    inspect = bool(args.map or args.hashes or args.paths or args.print_params is not None)
    dry = args.dry or inspect
    if dry:  # "writes nothing" includes the __pycache__ of the project's modules
        sys.dont_write_bytecode = True
    settings = load_settings()
    options = LogOptions(verbose=args.verbose, quiet=args.quiet, to_file=not (args.no_log or dry),
                         all_loggers=args.all_loggers, log_errors=args.log_errors)
    logs = CliLogging(options, ("curifactory", settings.experiments_module_name, settings.params_module_name))
    logs.start()
    try:
        if inspect:
            return inspect_command(args, settings)
        return execute(args, argv, settings, logs)
    finally:
        logs.close()


def progress_mode(args: argparse.Namespace) -> str:
    """``quiet``, ``plain`` or ``rich`` from the flags and whether stdout is a terminal."""
    if args.quiet:
        return "quiet"
    if args.plain:
        return "plain"
    if args.progress or _isatty(sys.stdout):
        return "rich"
    return "plain"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def selection_lists(values: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated ``--indices`` values as one list."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


class RunSession:
    """Meets the manager ``run_experiment`` creates and wraps the experiment's ``run``.

    The manager exists only once the experiment and its parameter sets loaded
    without a usage error, so a mistyped name never leaves a run in the store.
    ``attach`` (run_experiment's ``on_manager``) opens the run's log file; after
    the map pass, ``--overwrite-stage`` names are checked.
    """

    def __init__(self, run: Callable[..., Any], logs: CliLogging, overwrite_stages: list[str]):
        self.experiment_run = run
        self.logs = logs
        self.overwrite_stages = overwrite_stages
        self.manager: Any = None

    def attach(self, manager: Any) -> None:
        """Open the run's log as soon as the manager exists (before parallel workers fork)."""
        self.manager = manager
        self.logs.attach_run_log(manager)
        logger.info("run %s: %s", manager.get_reference_name(), manager.run_line)

    def __call__(self, param_sets: list[Any], manager: Any) -> Any:
        result = self.experiment_run(param_sets, manager)
        if manager.map_mode and manager is self.manager:
            self._check_overwrite_stages(manager.mapped_nodes)
        return result

    def _check_overwrite_stages(self, nodes: list[Any]) -> None:
        warn_unknown_stages(self.overwrite_stages, nodes)


def warn_unknown_stages(names: list[str], nodes: list[Any]) -> None:
    """Warn about ``--overwrite-stage`` names that no mapped stage call has."""
    called = sorted({node.stage for node in nodes})
    for name in names:
        if name not in called:
            logger.warning("--overwrite-stage %s: the experiment calls no stage of that name (its stages: %s)",
                           name, ", ".join(called) or "none")


def execute(args: argparse.Namespace, argv: list[str], settings: Any, logs: CliLogging) -> int:
    """Run the experiment with a progress display; print where the results are."""
    from curifactory.experiment import load_experiment, run_experiment

    module = load_project_code(lambda: load_experiment(args.experiment, settings), args.experiment)
    session = RunSession(module.run, logs, list(args.overwrite_stage or []))
    notes = resolve_notes(args.notes)
    progress = make_progress(progress_mode(args), args.no_color)
    try:
        _, manager = run_experiment(
            args.experiment, param_files=args.params, overwrite_override=args.overwrite,
            cache_dir_override=args.cache, dry=args.dry, dry_cache=args.dry_cache, store_full=args.store_full,
            lazy=args.lazy, ignore_lazy=args.ignore_lazy, no_dag=args.no_dag, prefix=args.prefix,
            stage_overwrites=args.overwrite_stage, param_set_names=args.names,
            param_set_indices=selection_lists(args.indices),
            global_param_set_indices=selection_lists(args.global_indices), run_string=quote_argv(argv),
            notes=notes, report=not args.no_report, listeners=[progress], settings=settings,
            runner=session, parallel=args.parallel, parallel_safe=args.parallel_safe, on_manager=session.attach,
        )
    except KeyboardInterrupt:
        progress.close()
        if session.manager is None or session.manager.dry:
            raise
        logs.log_failure("interrupted", None)
        print(f"\ninterrupted: run {session.manager.get_reference_name()} is stored with status 'error'",
              file=sys.stderr)
        return 130
    except Exception as exc:
        progress.close()
        if session.manager is None:  # nothing ran: a usage error or a broken parameter file
            raise load_error(exc, args.experiment)
        return report_failure(session.manager, exc, args, logs)
    progress.close()
    report_success(manager, args)
    return 0


def load_project_code(load: Callable[[], Any], experiment: str) -> Any:
    """``load()``, with a failure of the project's own code explained (see :func:`load_error`)."""
    try:
        return load()
    except Exception as exc:
        raise load_error(exc, experiment)


def load_error(exc: Exception, experiment: str) -> Exception:
    """The error to show for ``exc`` raised before the run began.

    curifactory's errors (unknown experiment, bad ``get_params`` result, ...) are
    shown as they are; anything else came from importing the experiment or a
    parameter file, or from a ``get_params()``, and becomes a :class:`CommandError`
    saying so (the original is its cause).
    """
    from curifactory.errors import CurifactoryError

    if isinstance(exc, CurifactoryError):
        return exc
    error = CommandError(f"loading experiment '{experiment}' or its parameter sets failed: "
                         f"{type(exc).__name__}: {exc}.")
    error.__cause__ = exc
    return error


def report_success(manager: Any, args: argparse.Namespace) -> None:
    """Print the report and log paths (and write the notebook) after a complete run."""
    if args.dry:
        if not args.quiet:
            print("dry run: nothing was written")
        return
    report = _report_path(manager, args)
    notebook = write_notebook(manager, args) if args.notebook else None
    if report:
        print(f"report: {display_path(report)}")
    if args.quiet:
        return
    if manager.log_path:
        print(f"log: {display_path(manager.log_path)}")
    if args.store_full and os.path.isdir(manager.get_run_output_path()):
        print(f"run folder: {display_path(manager.get_run_output_path())}")
        if manager.reproduction_line:
            print(f"reproduce: {manager.reproduction_line}")
    if notebook:
        print(f"notebook: {display_path(notebook)}")


def _report_path(manager: Any, args: argparse.Namespace) -> str | None:
    if args.no_report or manager.dry or not manager.writes_store:  # a non-zero rank writes no report
        return None
    path = os.path.join(manager.reports_path, manager.get_reference_name(), "index.html")
    if not os.path.exists(path):
        logger.warning("the report of %s was not written (see the log)", manager.get_reference_name())
        return None
    return path


def describe_failure(manager: Any, exc: BaseException) -> str:
    """One paragraph: what failed where, and what state the run was left in."""
    problem = f"{type(exc).__name__}: {exc}"
    where = manager.error_stage
    if where:
        text = (f"stage '{where['stage']}' failed on record {where['record']} (parameter set "
                f"'{where['params_name']}', hash {where['params_hash']}): {problem}.")
    else:
        text = f"experiment '{manager.experiment_name}' failed: {problem}."
    if manager.dry:
        return text
    return (f"{text} The run {manager.get_reference_name()} is stored with status 'error'; "
            f"the outputs cached before the failure stay valid.")


def report_failure(manager: Any, exc: BaseException, args: argparse.Namespace, logs: CliLogging) -> int:
    """Print and log a failing run; returns its exit code (1)."""
    message = describe_failure(manager, exc)
    logs.log_failure(message, exc)
    if args.verbose:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    else:
        message += " Run with -v to see the traceback."
    print_error(message)
    report = _report_path(manager, args)
    if report:
        print(f"report: {display_path(report)}")
    if manager.log_path and not args.quiet:
        print(f"log: {display_path(manager.log_path)}")
    return 1


def write_notebook(manager: Any, args: argparse.Namespace) -> str | None:
    """``--notebook``: the notebook module's file for this run, if it is available."""
    try:
        from curifactory.notebook import write_experiment_notebook
    except ImportError as exc:
        logger.warning("--notebook: notebooks are not available in this installation (%s)", exc)
        return None
    try:
        return write_experiment_notebook(manager, args.experiment, list(args.params or []),
                                         names=list(args.names) if args.names else None,
                                         indices=selection_lists(args.indices),
                                         global_indices=selection_lists(args.global_indices))
    except Exception as exc:  # the run succeeded; a notebook problem must not fail it
        logger.warning("--notebook: the notebook could not be written: %s: %s", type(exc).__name__, exc)
        return None


# -- notes ------------------------------------------------------------------------------------


def resolve_notes(value: str | None) -> str | None:
    """The notes to store: the ``--notes`` text, or asked for when ``--notes`` has no value.

    Without a terminal on stdin nothing is asked (the notes are empty), so a
    scripted run never blocks.
    """
    if value != EDIT_NOTES:
        return value
    if not _isatty(sys.stdin):
        return ""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if editor:
        return _notes_from_editor(editor)
    return _notes_from_prompt()


def _notes_from_editor(editor: str) -> str:
    handle, path = tempfile.mkstemp(prefix="curifactory-notes-", suffix=".md")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write("\n# Notes for this run. Lines starting with '#' are ignored.\n")
        subprocess.call([*shlex.split(editor), path])
        with open(path, encoding="utf-8") as file:
            lines = [line for line in file.read().splitlines() if not line.startswith("#")]
    finally:
        os.unlink(path)
    return "\n".join(lines).strip()


def _notes_from_prompt() -> str:
    print("Notes for this run (finish with an empty line):", file=sys.stderr)
    lines = []
    while True:
        try:
            line = input()
        except EOFError:
            break
        if not line:
            break
        lines.append(line)
    return "\n".join(lines)


# -- inspecting -------------------------------------------------------------------------------


def inspect_command(args: argparse.Namespace, settings: Any) -> int:
    """``--hashes``, ``--print-params``, ``--map``, ``--paths``: print, run nothing, write nothing."""
    from curifactory import cli_inspect
    from curifactory.experiment import ParamSelection, collect_param_sets, load_experiment

    module = load_project_code(lambda: load_experiment(args.experiment, settings), args.experiment)
    selection = ParamSelection(tuple(args.names or ()), tuple(selection_lists(args.indices) or ()),
                               tuple(selection_lists(args.global_indices) or ()))
    param_sets, block = load_project_code(lambda: collect_param_sets(module, args.params, settings, selection),
                                          args.experiment)
    out = sys.stdout
    sections: list[Callable[[], None]] = []
    if args.hashes:
        sections.append(lambda: cli_inspect.print_hashes(block, out))
    if args.print_params is not None:
        chosen = cli_inspect.select_param_sets(param_sets, args.print_params)
        sections.append(lambda: cli_inspect.print_params(chosen, out))
    if args.map or args.paths:
        manager = dry_manager(args, settings, block)
        mapped = cli_inspect.map_run(module.run, param_sets, manager)
        if mapped.plan is not None:
            warn_unknown_stages(list(args.overwrite_stage or []), list(mapped.plan.nodes))
        if args.map:
            sections.append(lambda: cli_inspect.print_map(mapped, args.experiment, out))
        if args.paths:
            sections.append(lambda: cli_inspect.print_paths(mapped, out))
    for number, section in enumerate(sections):
        if number:
            print(file=out)
        section()
    return 0


def dry_manager(args: argparse.Namespace, settings: Any, block: dict[str, list[list[str]]]) -> Any:
    """A manager that writes nothing, with the run's cache, prefix and overwrite flags."""
    from curifactory.manager import ArtifactManager

    manager = ArtifactManager(args.experiment, dry=True, prefix=args.prefix, lazy=args.lazy,
                              ignore_lazy=args.ignore_lazy, cache_path=args.cache,
                              status_override="incomplete", settings=settings)
    manager.overwrite = bool(args.overwrite)
    manager.overwrite_stages = list(args.overwrite_stage or [])
    manager.parameter_files = list(block)
    manager.param_file_param_sets = block
    return manager
