"""What a run records about its environment: a registry of named metadata providers.

``cf.metadata_providers`` is a plain dict of name -> zero-argument callable. When a
run starts, every provider is called in a thread of its own; when the run ends, what
each returned is written under ``metadata`` in its ``run.json`` (``curifactory show``,
``cf.load_run(ref)["metadata"]``). A provider that raises, or that is still busy when
its time limit has passed, records ``{"error": "..."}`` instead: it never fails the run.

The built-in providers are ``git``, ``python``, ``platform``, ``host``, ``user``,
``cpus``, ``pip`` (``name==version`` of every installed distribution), ``conda`` (``conda env export``
when conda is on PATH, kept until the environment changes) and ``gpu`` (``nvidia-smi`` when present). Remove or replace
any of them, or add your own, in Python::

    cf.metadata_providers["dataset"] = lambda: open("data/VERSION").read().strip()
    del cf.metadata_providers["pip"]

or in ``curifactory_config.json``::

    "metadata": {"disable": ["conda"], "commands": {"k8s": "kubectl version"}, "timeout": 10}

Time limits: the config's ``timeout``, else :data:`default_timeout` (10 s), and per
provider :data:`timeouts` (``curifactory.metadata.timeouts["slow"] = 2``), counted from
the start of the run. A provider that needs the project folder calls :func:`project_root`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any, Callable

from curifactory import environment

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
"""Seconds a provider may take (``"metadata": {"timeout": ...}`` in the config)."""
NOT_JSON_LIMIT = 2000
"""A provider's value that is not JSON is kept as its ``repr``, cut to this many characters."""

_ROOT: contextvars.ContextVar[str] = contextvars.ContextVar("curifactory_metadata_root")
_CACHE_DIR: contextvars.ContextVar[str | None] = contextvars.ContextVar("curifactory_metadata_cache", default=None)
_LIMIT: contextvars.ContextVar[float] = contextvars.ContextVar("curifactory_metadata_limit", default=DEFAULT_TIMEOUT)


def project_root() -> str:
    """The project folder of the run being described (for a provider; else the working directory)."""
    return _ROOT.get(os.getcwd())


def _git() -> dict[str, Any]:
    return environment.capture_git(project_root()).as_dict()


def _python() -> dict[str, Any]:
    import platform

    return {"version": platform.python_version(), "implementation": platform.python_implementation(),
            "executable": sys.executable}


def _platform() -> str:
    import platform

    return platform.platform()


def _host() -> str:
    import socket

    return socket.gethostname()


def _pip() -> list[str]:
    return environment.installed_packages(_CACHE_DIR.get())


def _conda() -> str | None:
    if not environment.find_conda():
        return None
    return environment.conda_export(timeout=_LIMIT.get(), cache_dir=_CACHE_DIR.get(), errors=True)


def _gpu() -> list[str] | None:
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    done = environment.run_in_group([tool, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                    None, _LIMIT.get(), None)
    if done.returncode:
        raise RuntimeError(f"nvidia-smi exited with {done.returncode}: {done.stderr.decode('utf-8', 'replace')[:200]}")
    return [line.strip() for line in done.stdout.decode("utf-8", "replace").splitlines() if line.strip()]


BUILTIN_PROVIDERS: dict[str, Callable[[], Any]] = {
    "git": _git, "python": _python, "platform": _platform, "host": _host, "user": environment.user_name,
    "cpus": os.cpu_count, "pip": _pip, "conda": _conda, "gpu": _gpu,
}
metadata_providers: dict[str, Callable[[], Any]] = dict(BUILTIN_PROVIDERS)
"""The providers every run calls (``cf.metadata_providers``): edit it to change what runs record."""
default_timeout: float = DEFAULT_TIMEOUT
"""Seconds a provider may take when the config sets no ``timeout`` (``curifactory.metadata.default_timeout = 3``)."""
timeouts: dict[str, float] = {}
"""Time limits of single providers, by name, over any other (``curifactory.metadata.timeouts["k8s"] = 30``)."""


def command_provider(command: str, timeout: float = DEFAULT_TIMEOUT) -> Callable[[], str]:
    """A provider that runs a shell ``command`` and records what it prints (``"commands"`` in the config)."""

    def run() -> str:
        try:  # in a process group of its own: stopping it stops what the shell started too
            done = environment.run_in_group(["/bin/sh", "-c", command], None, max(timeout * 0.9, timeout - 0.2), None)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"'{command}' took more than {timeout:g} s and was stopped") from None
        stdout, stderr = done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
        if done.returncode:
            raise RuntimeError(f"'{command}' exited with {done.returncode}: {(stderr or stdout).strip()[:300]}")
        return stdout.strip()

    return run


def _plain(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=True)
        return value
    except (TypeError, ValueError):
        text = repr(value)
        return text if len(text) <= NOT_JSON_LIMIT else text[:NOT_JSON_LIMIT - 3] + "..."


class _Slot:
    """One provider running in a daemon thread (a hung provider never keeps the process alive)."""

    def __init__(self, name: str, provider: Callable[[], Any], context: contextvars.Context):
        self.name = name
        self.value: Any = None
        self.error: str | None = None
        self.thread = threading.Thread(target=context.run, args=(self._call, provider),
                                       name=f"cf-metadata-{name}", daemon=True)
        self.thread.start()

    def _call(self, provider: Callable[[], Any]) -> None:
        try:
            self.value = _plain(provider())
        except BaseException as exc:  # a provider's failure is a fact about the run, never its end
            self.error = f"{type(exc).__name__}: {exc}"


def _with_limit(context: contextvars.Context, limit: float) -> contextvars.Context:
    """A copy of ``context`` in which a provider's subprocesses know its time limit."""
    mine = context.copy()
    mine.run(_LIMIT.set, max(limit * 0.9, limit - 0.2))
    return mine


class MetadataCapture:
    """The providers of one run, started at once; :meth:`results` waits for them (each
    at most until ``timeout`` seconds after the start)."""

    def __init__(self, providers: dict[str, Callable[[], Any]], timeout: float, root: str,
                 cache_dir: str | None = None, limits: dict[str, float] | None = None):
        self.timeout = timeout
        self.limits = {name: float((limits or {}).get(name, timeout)) for name in providers}
        self.started = time.monotonic()
        context = contextvars.copy_context()
        context.run(_ROOT.set, root)
        context.run(_CACHE_DIR.set, cache_dir)
        self.slots = {name: _Slot(name, provider, _with_limit(context, self.limits[name]))
                      for name, provider in providers.items()}
        self._results: dict[str, Any] | None = None

    def result(self, name: str) -> Any:
        """What provider ``name`` returned (waiting for it), ``{"error": ...}``, or ``None`` when
        there is no such provider."""
        slot = self.slots.get(name)
        if slot is None:
            return None
        limit = self.limits[name]
        slot.thread.join(max(0.0, self.started + limit - time.monotonic()))
        if slot.thread.is_alive():
            return {"error": f"took more than {limit:g} s (the time limit; raise it with \"metadata\": "
                             f"{{\"timeout\": SECONDS}} in curifactory_config.json, or "
                             f"curifactory.metadata.timeouts[{name!r}] = SECONDS)"}
        return {"error": slot.error} if slot.error is not None else slot.value

    def results(self) -> dict[str, Any]:
        """Every provider's value (waited for once; later calls return the same dict)."""
        if self._results is None:
            self._results = {name: self.result(name) for name in self.slots}
        return self._results

    def ready(self) -> dict[str, Any]:
        """The values of the providers that are done (without waiting)."""
        return {name: self.result(name) for name, slot in self.slots.items() if not slot.thread.is_alive()}


def providers_for(settings: Any) -> dict[str, Callable[[], Any]]:
    """``cf.metadata_providers`` with the config's ``disable`` and ``commands`` applied."""
    providers = {name: provider for name, provider in metadata_providers.items()
                 if name not in settings.metadata_disable}
    unknown = [name for name in settings.metadata_disable if name not in metadata_providers]
    if unknown:
        logger.warning("metadata.disable in %s names %s, which is no metadata provider (they are: %s).",
                       settings.config_file, ", ".join(map(repr, unknown)), ", ".join(metadata_providers))
    for name, command in settings.metadata_commands:
        providers[name] = command_provider(command, timeouts.get(name, time_limit(settings)))
    return providers


def time_limit(settings: Any) -> float:
    """The time limit of a provider without one of its own: the config's, else :data:`default_timeout`."""
    configured = getattr(settings, "metadata_timeout", None)
    return float(configured) if configured is not None else float(default_timeout)


def start_capture(settings: Any, cache_dir: str | None = None, only: tuple[str, ...] | None = None) -> MetadataCapture:
    """Start every provider (or those named in ``only``) of a run of the project ``settings`` describes;
    ``cache_dir`` keeps a cache of ``pip freeze`` (never for a dry run)."""
    providers = providers_for(settings)
    if only is not None:
        providers = {name: provider for name, provider in providers.items() if name in only}
    return MetadataCapture(providers, time_limit(settings), settings.root, cache_dir, timeouts)


def git_info(value: Any) -> environment.GitInfo:
    """The :class:`~curifactory.environment.GitInfo` of what the ``git`` provider returned
    (not a repository when it was removed, replaced by something else, or failed)."""
    if isinstance(value, dict) and isinstance(value.get("is_repo"), bool):
        known = {name: value.get(name) for name in ("is_repo", "commit", "branch", "dirty", "root", "error")}
        return environment.GitInfo(**known)
    error = value.get("error") if isinstance(value, dict) else None
    return environment.GitInfo(False, error=str(error) if error else None)
