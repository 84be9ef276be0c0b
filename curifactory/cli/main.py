"""The ``experiment`` and ``curifactory`` commands: parse, call the library, report, exit.

``experiment NAME [flags]`` runs ``experiments/NAME.py`` through
:func:`curifactory.experiment.run_experiment`; ``experiment ls`` lists the
project's experiments and parameter files; ``experiment reports`` serves the
reports folder. ``curifactory init`` sets up a project and ``curifactory
completion bash|zsh`` prints a shell completion script.

Exit codes: 0 success, 1 a failing experiment (or any other error), 2 a usage
error (:class:`curifactory.errors.UsageError`), 130 interrupted. Errors print as
one ``error: ...`` paragraph on stderr; the traceback only with ``-v``.

This module imports only the standard library at start-up; the library, rich and
the reporting package are imported when a command needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from curifactory.cli import common
from curifactory.cli.common import CommandError, print_error
from curifactory.cli.parsers import (
    all_parsers,
    build_curifactory_parser,
    build_experiment_parser,
    build_ls_parser,
    build_reports_parser,
    option_strings,
)

# -- entry points ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """The ``experiment`` command (also ``python -m curifactory``); returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    common.whole_process = argv is None
    if not args_list:
        build_experiment_parser().print_usage(sys.stderr)
        print("experiment: error: name an experiment to run (see 'experiment ls')", file=sys.stderr)
        return 2
    verbose = "-v" in args_list or "--verbose" in args_list
    with _sigterm_interrupts():
        return _guarded(lambda: _dispatch(args_list), verbose)


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Treat SIGTERM (a scheduler's kill, ``kill PID``) like Ctrl-C while the command runs, so
    the run is stored as 'error'; the previous handler is put back afterwards."""
    import signal
    import threading

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def curifactory_main(argv: Sequence[str] | None = None) -> int:
    """The ``curifactory`` command; returns the exit code."""
    parser = build_curifactory_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "init":
        from curifactory.cli.project import InitOptions, init_project, stdin_is_interactive

        options = InitOptions(interactive=not args.yes and stdin_is_interactive(), docker=args.docker, git=args.git)
        return _guarded(lambda: init_project(os.getcwd(), options, sys.stdout), False)
    if args.command == "completion":
        shell = args.shell or args.shell_flag
        if shell is None:
            print_error("name the shell: 'curifactory completion bash' or 'zsh' (or --bash, --zsh)")
            return 2
        print(completion(shell), end="")
        return 0
    if args.command == "why":
        from curifactory.cli.inspect import why_command

        return _guarded(lambda: why_command(args, sys.stdout), False)
    if args.command == "rerun":
        from curifactory.cli.runs import rerun_argv

        argv_rerun: list[str] = []

        def prepare() -> int:
            argv_rerun.extend(rerun_argv(args))
            return 0

        status = _guarded(prepare, args.verbose)
        if status:
            return status
        print(f"rerun: experiment {' '.join(argv_rerun)}", file=sys.stderr)
        return main(argv_rerun)
    if args.command in ("runs", "show", "diff", "export"):
        from curifactory.cli import runs

        command = {"runs": runs.runs_command, "show": runs.show_command, "diff": runs.diff_command,
                   "export": runs.export_command}[args.command]
        return _guarded(lambda: command(args, sys.stdout), args.verbose)
    if args.command in ("cache", "pin", "unpin"):
        from curifactory.cli import cache

        action = {"status": cache.status_command, "verify": cache.verify_command, "gc": cache.gc_command}
        command = action[args.action] if args.command == "cache" else cache.pin_command
        return _guarded(lambda: command(args, sys.stdout), args.verbose)
    parser.print_help()
    return 2


def completion(shell: str) -> str:
    """The completion script of ``shell`` built from the parsers' flags."""
    from curifactory.cli.project import completion_script

    parsers = all_parsers()
    experiment = parsers["experiment"]
    completed = {"-p", "--params", "-c", "--cache"}  # the script completes these itself
    takes_value = [flag for action in experiment._actions if action.option_strings and action.nargs is None
                   for flag in action.option_strings if flag not in completed]
    return completion_script(shell, option_strings(experiment) + ["--help"], takes_value,
                             option_strings(parsers["curifactory"]) + ["--help"],
                             option_strings(parsers["curifactory init"]))


def _dispatch(args_list: list[str]) -> int:
    if args_list[0] == "ls":
        from curifactory.cli.project import list_project
        from curifactory.config import load_settings

        ls_args = build_ls_parser().parse_args(args_list[1:])
        list_project(load_settings(), sys.stdout, ls_args.names)
        return 0
    if args_list[0] == "reports":
        return serve(build_reports_parser().parse_args(args_list[1:]))
    args = build_experiment_parser().parse_args(args_list)
    from curifactory.cli.run import run_command

    return run_command(args, args_list)


def serve(args: argparse.Namespace) -> int:
    """``experiment reports``: serve the configured reports folder until Ctrl-C."""
    from curifactory.config import load_settings
    from curifactory.reporting import serve_reports

    settings = load_settings()
    if settings.config_file is None and not os.path.isdir(settings.reports_path):
        from curifactory.errors import UsageError

        raise UsageError(f"No reports to serve: there is no curifactory_config.json here or in the 3 folders "
                         f"above, and no {settings.reports_path} folder. Run 'experiment reports' from a "
                         f"project folder (or create one with 'curifactory init').")

    def announce(host: str, port: int) -> None:
        print(f"serving {settings.reports_path} on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)

    try:
        serve_reports(settings.reports_path, host=args.host, port=args.port, update=args.update,
                      store_path=os.path.join(settings.manager_cache_path, "store.json"), on_ready=announce)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        from curifactory.errors import UsageError

        raise UsageError(f"Cannot serve the reports on {args.host}:{args.port}: {exc.strerror or exc}. "
                         f"Choose another port with --port.") from None
    return 0


def _guarded(command: Callable[[], int], verbose: bool) -> int:
    """Run ``command``; turn an escaping exception into an ``error:`` paragraph and exit code."""
    try:
        return command()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `experiment x --map | head`: the reader has gone, say nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # keep the interpreter's final flush from failing too
        return 1
    except Exception as exc:  # the last line of defence: no traceback unless -v
        from curifactory.errors import CurifactoryError

        if verbose:
            traceback.print_exception(type(exc), exc, exc.__traceback__)
        hint = "" if verbose else " Run with -v for the traceback."
        if isinstance(exc, CurifactoryError):  # a message written for users: no hint needed
            print_error(str(exc))
            return exc.exit_code
        if isinstance(exc, CommandError):
            print_error(f"{exc}{hint}")
            return exc.exit_code
        print_error(f"{type(exc).__name__}: {exc}.{hint}")
        return 1


