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

from curifactory.cli.common import (
    EDIT_NOTES,
    display_path,
    freeze_imported,
    load_error,
    load_project_code,
    print_error,
    quote_argv,
    selection_lists,
    warn_unknown_stages,
)
from curifactory.logs import CliLogging, LogOptions
from curifactory.progress import make_progress

logger = logging.getLogger("curifactory.cli")


def run_command(args: argparse.Namespace, argv: list[str]) -> int:
    """Run or inspect the experiment ``args.experiment``; returns the exit code."""
    inspect = bool(args.map or args.explain or args.hashes or args.paths or args.print_params is not None)
    dry = args.dry or inspect
    bytecode = sys.dont_write_bytecode
    if dry:  # "writes nothing" includes the __pycache__ of the project's modules
        sys.dont_write_bytecode = True
    try:
        return _run_or_inspect(args, argv, inspect, dry)
    finally:
        sys.dont_write_bytecode = bytecode


def _run_or_inspect(args: argparse.Namespace, argv: list[str], inspect: bool, dry: bool) -> int:
    from curifactory.config import load_settings

    settings = load_settings()
    options = LogOptions(verbose=args.verbose, quiet=args.quiet, to_file=not (args.no_log or dry),
                         all_loggers=args.all_loggers, log_errors=args.log_errors)
    logs = CliLogging(options, ("curifactory", settings.experiments_module_name, settings.params_module_name))
    logs.start()
    try:
        if inspect:
            from curifactory.cli.inspect import inspect_command

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


def execute(args: argparse.Namespace, argv: list[str], settings: Any, logs: CliLogging) -> int:
    """Run the experiment with a progress display; print where the results are."""
    from curifactory.experiment import load_experiment, run_experiment

    module = load_project_code(lambda: load_experiment(args.experiment, settings), args.experiment)
    freeze_imported()
    session = RunSession(module.run, logs, list(args.overwrite_stage or []))
    notes = resolve_notes(args.notes)
    progress = make_progress(progress_mode(args), args.no_color)
    try:
        _, manager = run_experiment(
            args.experiment, param_files=args.params, overwrite_override=args.overwrite,
            code_changes=args.code_changes, tags=dict(args.tag or ()),
            cache_dir_override=args.cache, dry=args.dry, dry_cache=args.dry_cache,
            store_full=args.store_full or args.docker,
            lazy=args.lazy, ignore_lazy=args.ignore_lazy, no_dag=args.no_dag, prefix=args.prefix,
            stage_overwrites=args.overwrite_stage, param_set_names=args.names, overrides=args.overrides,
            params_from=args.params_from, original_run=args.original_run,
            param_set_indices=selection_lists(args.indices),
            global_param_set_indices=selection_lists(args.global_indices), run_string=quote_argv(argv),
            notes=notes, report=not args.no_report, listeners=[progress], settings=settings,
            runner=session, parallel=args.parallel, parallel_safe=args.parallel_safe, on_manager=session.attach,
            executor=args.executor, scheduler=args.scheduler,
        )
    except KeyboardInterrupt:
        progress.close()
        if session.manager is None or session.manager.dry:
            raise
        logs.log_failure("interrupted", None)
        print(f"\ninterrupted: run {session.manager.get_reference_name()} is kept as 'interrupted' (status "
              f"'error' in store.json); the outputs cached before the interruption stay valid", file=sys.stderr)
        return 130
    except Exception as exc:
        progress.close()
        if session.manager is None:  # nothing ran: a usage error or a broken parameter file
            raise load_error(exc, args.experiment)
        return report_failure(session.manager, exc, args, logs)
    progress.close()
    report_success(manager, args)
    return build_image(manager) if args.docker and not args.dry else 0


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


def build_image(manager: Any) -> int:
    """Write the run's Docker build context; build the image when ``docker`` is on PATH.
    Returns the exit code (the build's, when it fails)."""
    import shutil

    from curifactory import dockerfiles

    run_folder = manager.get_run_output_path()
    if not manager.writes_store or not os.path.isdir(run_folder) or not manager.reproduction_line:
        print("docker: skipped: this run has no run folder (--parallel-safe, or a worker rank)")
        return 0
    command = shlex.split(manager.reproduction_line)[1:]
    root = manager.settings.root
    if dockerfiles.outside_project(root, run_folder):
        print(f"docker: cannot build: the run folder {run_folder} is outside the project folder {root}, "
              "and docker copies only what is inside the folder it builds from. Set runs_path in "
              "curifactory_config.json to a folder inside the project, then rerun with --docker.", file=sys.stderr)
        return 2
    folders = [manager.manager_cache_path, manager.cache_path, manager.runs_path, manager.logs_path,
               manager.reports_path, os.path.join(manager.notebooks_path, "experiments")]
    dockerfile = dockerfiles.write_run_context(root, run_folder, command, folders)
    name = manager.experiment_name.lower()
    version = f"{manager.experiment_run_number}_{manager.run_timestamp.strftime('%Y-%m-%d')}"
    build = dockerfiles.build_command(root, dockerfile, name, version)
    print(f"docker: wrote {display_path(dockerfile)}")
    if shutil.which("docker") is None:
        print(f"docker: not on PATH; build the image with: {shlex.join(build)}")
        return 0
    done = subprocess.run(build, cwd=root, check=False)
    if done.returncode != 0:
        print(f"docker: the build failed (exit {done.returncode}); rerun it with: {shlex.join(build)}",
              file=sys.stderr)
        return done.returncode
    print(f"docker: built {name}:{version}; run it with: docker run {name}:{version}")
    return 0


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
    problem = f"{type(exc).__name__}: {str(exc).rstrip('.')}" if str(exc) else type(exc).__name__
    where = manager.error_stage
    if where:
        text = (f"stage '{where['stage']}' failed on record {where['record']} (parameter set "
                f"'{where['params_name']}', hash {where['params_hash']}): {problem}.")
    else:
        text = f"experiment '{manager.experiment_name}' failed: {problem}."
    if manager.dry:
        return text
    if getattr(manager, "store_failed", False):
        return (f"{text} The run {manager.get_reference_name()}'s block in store.json could not be updated (it "
                f"still says 'running', which curifactory reads as interrupted once this process ends); its run "
                f"log says 'error'. The outputs cached before the failure stay valid.")
    return (f"{text} The run {manager.get_reference_name()} is stored with status 'error'; "
            f"the outputs cached before the failure stay valid.")


def report_failure(manager: Any, exc: BaseException, args: argparse.Namespace, logs: CliLogging) -> int:
    """Print and log a failing run; returns its exit code (1)."""
    message = describe_failure(manager, exc)
    logs.log_failure(message, exc)
    if args.verbose:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    elif getattr(manager, "error_traceback", None) and getattr(manager, "log_path", None):
        message += f" Its traceback is in the log ({display_path(manager.log_path)}) and the report; -v prints it here."
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
        from curifactory.notebook import write_run_notebook
    except ImportError as exc:
        logger.warning("--notebook: notebooks are not available in this installation (%s)", exc)
        return None
    try:
        return write_run_notebook(manager, args.experiment, list(args.params or []),
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
