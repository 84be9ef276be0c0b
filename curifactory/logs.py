"""Logging for the command line: a console handler and the run's log file.

The library only creates loggers (``logging.getLogger(__name__)``); configuring
handlers is the command line's business, done here:

* a console handler on stderr at WARNING (INFO with ``-v``, ERROR with ``--quiet``);
* the run's log file ``<logs_path>/<reference>.log`` at INFO (DEBUG with ``-v``),
  unless ``--no-log`` or ``--dry``. Messages logged before the run's reference is
  known (loading the experiment, mapping) are buffered and written to the file
  once it opens.

By default only curifactory's loggers, the project's experiment and parameter
modules' loggers and the root logger pass below WARNING; ``--all-loggers`` lets
every library's messages through.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from dataclasses import dataclass
from typing import Any

FILE_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"
FILE_ONLY = {"cf_file_only": True}
"""``extra=`` for a message meant for the log file only (the CLI prints its own version)."""
_BUFFER_CAPACITY = 10_000


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler writing to whatever ``sys.stderr`` is when a message arrives.

    A live progress display redirects ``sys.stderr`` so that messages print above
    it; a handler holding the original stream would scramble the display.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # set by StreamHandler.__init__; ignored
        pass


class ConsoleFormatter(logging.Formatter):
    """``warning: message`` (with the logger name when verbose)."""

    def __init__(self, verbose: bool):
        super().__init__()
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        prefix = record.levelname.lower()
        if self.verbose:
            prefix = f"{prefix} [{record.name}]"
        text = f"{prefix}: {message}"
        if record.exc_info and self.verbose:
            text += "\n" + self.formatException(record.exc_info)
        return text


class SourceFilter(logging.Filter):
    """Let project and curifactory messages through; others only from WARNING up.

    Args:
        prefixes: logger name prefixes always let through.
        all_loggers: let every logger through (``--all-loggers``).
    """

    def __init__(self, prefixes: tuple[str, ...], all_loggers: bool = False):
        super().__init__()
        self.prefixes = prefixes
        self.all_loggers = all_loggers

    def filter(self, record: logging.LogRecord) -> bool:
        if self.all_loggers or record.levelno >= logging.WARNING:
            return True
        name = record.name
        return name in ("root", "__main__") or any(name == p or name.startswith(p + ".") for p in self.prefixes)


class ConsoleFilter(logging.Filter):
    """Keep file-only messages off the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "cf_file_only", False)


@dataclass
class LogOptions:
    """The logging flags of the command line."""

    verbose: bool = False
    quiet: bool = False
    to_file: bool = True
    all_loggers: bool = False
    log_errors: bool = False


class CliLogging:
    """The handlers one CLI invocation installs on the root logger, and their removal.

    Args:
        options: the logging flags.
        prefixes: logger name prefixes of the project (curifactory, experiments, params).
    """

    def __init__(self, options: LogOptions, prefixes: tuple[str, ...] = ("curifactory",)):
        self.options = options
        self.filter = SourceFilter(prefixes, options.all_loggers)
        self.console: logging.Handler | None = None
        self.buffer: logging.handlers.MemoryHandler | None = None
        self.file: logging.FileHandler | None = None
        self._root_level = logging.NOTSET
        self._warning_filters: list[Any] | None = None
        self.log_path: str | None = None

    @property
    def file_level(self) -> int:
        return logging.DEBUG if self.options.verbose else logging.INFO

    def start(self) -> None:
        """Install the console handler (and the buffer for the log file)."""
        import warnings

        from curifactory.errors import CacheWarning

        # the executor logs a corrupt cache entry too: show it once, as a log line
        self._warning_filters = list(warnings.filters)
        warnings.filterwarnings("ignore", category=CacheWarning)
        root = logging.getLogger()
        self._root_level = root.level
        console = CurrentStderrHandler()
        if self.options.quiet:
            console.setLevel(logging.ERROR)
        else:
            console.setLevel(logging.INFO if self.options.verbose else logging.WARNING)
        console.setFormatter(ConsoleFormatter(self.options.verbose))
        console.addFilter(self.filter)
        console.addFilter(ConsoleFilter())
        root.addHandler(console)
        self.console = console
        level = console.level
        if self.options.to_file:
            self.buffer = logging.handlers.MemoryHandler(_BUFFER_CAPACITY, flushLevel=logging.CRITICAL + 1,
                                                         flushOnClose=False)
            self.buffer.setLevel(self.file_level)
            root.addHandler(self.buffer)
            level = min(level, self.file_level)
        root.setLevel(level)

    def attach_run_log(self, manager: Any) -> str | None:
        """Open ``<logs_path>/<reference>.log`` for ``manager``'s run and set its ``log_path``."""
        if not self.options.to_file or self.file is not None or getattr(manager, "dry", False):
            return self.log_path
        if not getattr(manager, "writes_store", True):  # a non-zero distributed rank: rank 0 logs
            return self.log_path
        os.makedirs(manager.logs_path, exist_ok=True)
        path = os.path.join(manager.logs_path, f"{manager.get_reference_name()}.log")
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(FILE_FORMAT))
        handler.setLevel(self.file_level)
        handler.addFilter(self.filter)
        root = logging.getLogger()
        if self.buffer is not None:
            self.buffer.setTarget(handler)
            self.buffer.flush()
            root.removeHandler(self.buffer)
            self.buffer.close()
            self.buffer = None
        root.addHandler(handler)
        self.file = handler
        self.log_path = path
        manager.log_path = path
        return path

    def log_failure(self, message: str, exc: BaseException | None) -> None:
        """Write a failure into the log file (with its traceback under ``--log-errors`` or ``-v``)."""
        with_traceback = exc is not None and (self.options.log_errors or self.options.verbose)
        exc_info = (type(exc), exc, exc.__traceback__) if with_traceback and exc is not None else None
        logging.getLogger("curifactory.cli").error(message, exc_info=exc_info, extra=FILE_ONLY)

    def close(self) -> None:
        """Remove every handler this object installed and restore the root level."""
        root = logging.getLogger()
        for handler in (self.console, self.buffer, self.file):
            if handler is not None:
                root.removeHandler(handler)
                handler.close()
        self.console = self.buffer = self.file = None
        root.setLevel(self._root_level)
        if self._warning_filters is not None:
            import warnings

            warnings.filters[:] = self._warning_filters
            warnings._filters_mutated()  # type: ignore[attr-defined]  # the module caches its filters
            self._warning_filters = None


def start_live_log(manager: Any) -> str:
    """A live (script or notebook) manager's log file ``<logs_path>/<reference>.log``.

    The one handler it adds goes on the ``curifactory`` logger and replaces the
    handler of an earlier live manager; it sets ``manager.log_path``.
    """
    os.makedirs(manager.logs_path, exist_ok=True)
    manager.log_path = os.path.join(manager.logs_path, f"{manager.get_reference_name()}.log")
    handler = logging.FileHandler(manager.log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    handler.setLevel(logging.DEBUG if manager.live_log_debug else logging.INFO)
    package_logger = logging.getLogger("curifactory")
    for old in [h for h in package_logger.handlers if getattr(h, "_cf_live", False)]:
        package_logger.removeHandler(old)
        old.close()
    handler._cf_live = True  # type: ignore[attr-defined]
    package_logger.addHandler(handler)
    if package_logger.level == logging.NOTSET or package_logger.level > handler.level:
        package_logger.setLevel(handler.level)
    return manager.log_path
