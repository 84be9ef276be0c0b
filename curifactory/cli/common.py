"""What every command module shares: errors it explains, how it prints them, paths and argv."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from typing import Any, Callable, Sequence

from curifactory import __version__

logger = logging.getLogger("curifactory.cli")

EDIT_NOTES = "\0edit"
"""The value of a bare ``--notes``: ask for the notes (editor or prompt)."""
VERSION = f"curifactory {__version__}"


class CommandError(Exception):
    """A failure the command explains in its own words (exit code 1); the cause is chained."""

    exit_code = 1


def print_error(message: str) -> None:
    """``error: <message>`` as one paragraph on stderr."""
    text = " ".join(message.split())
    print(f"error: {text}", file=sys.stderr, flush=True)


def quote_argv(argv: Sequence[str]) -> str:
    """The run line stored with a run: ``experiment`` and the arguments as typed."""
    return shlex.join(["experiment", *argv])


def display_path(path: str) -> str:
    """``path`` relative to the working directory when it is inside it."""
    from curifactory.fileio import relative_inside

    return relative_inside(path)


def selection_lists(values: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated ``--indices`` values as one list."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def warn_unknown_stages(names: list[str], nodes: list[Any]) -> None:
    """Warn about ``--overwrite-stage`` names that no mapped stage call has."""
    called = sorted({node.stage for node in nodes})
    for name in names:
        if name not in called:
            logger.warning("--overwrite-stage %s: the experiment calls no stage of that name (its stages: %s)",
                           name, ", ".join(called) or "none")


GC_FREEZE_VARIABLE = "CURIFACTORY_GC_FREEZE"
whole_process = False
"""Set by the console entry points: the command owns its process (not ``main([...])`` called from Python)."""


def freeze_imported() -> None:
    """Move every object that exists once the project's code is imported (modules, classes,
    numpy's and pandas' internals) out of the cyclic garbage collector's reach (:func:`gc.freeze`).

    They live until the process ends anyway; the collector then no longer walks them in each
    full collection during the run, nor in the last one at exit, which with numpy and pandas
    loaded took about 0.1 s of every ``experiment`` command. Objects created later are
    collected as usual; cyclic garbage that already exists then (rare in import-time objects)
    is not, for the rest of the process. Only when the command owns its process (never in a notebook or a
    test calling ``main([...])``); ``CURIFACTORY_GC_FREEZE=0`` turns it off."""
    import gc

    if whole_process and os.environ.get(GC_FREEZE_VARIABLE, "1").strip().lower() not in ("0", "false", "no", "off"):
        gc.freeze()


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
