"""curifactory 0.20's ``curifactory.utils`` helpers, for code (and tests) that import them.

New code has better homes: :func:`curifactory.config.load_settings` for the configuration,
:mod:`curifactory.environment` for git, pip and conda. :func:`get_configuration` is what
an ``ArtifactManager`` made without ``settings=`` reads, so replacing it (as 0.20's tests
do with a mock) points the manager at other folders.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import shutil
import subprocess
from typing import Any

from curifactory.config import DEFAULTS, PATH_KEYS, Settings, load_settings

TIMESTAMP_FORMAT = "%Y-%m-%d-T%H%M%S"
CONFIGURATION_FILE = "curifactory_config.json"
EDITORS = ["vim", "nvim", "emacs", "nano", "vi"]
OBJECT_PREVIEW_STRING_LENGTH = 30


class Configuration(dict):
    """The configuration as 0.20's dict (``"cache_path": "data/cache"``, ...), carrying the
    resolved :class:`~curifactory.config.Settings` it was read from."""

    settings: Settings | None = None


def get_configuration() -> dict[str, Any]:
    """The project's configuration (``curifactory_config.json`` here or up to 3 folders above,
    defaults for missing keys) as a dict of 0.20's keys."""
    settings = load_settings()
    config = Configuration({key: getattr(settings, key) for key in DEFAULTS})
    config.settings = settings
    return config


def settings_from_configuration(config: dict[str, Any]) -> Settings:
    """Settings from a configuration dict: the one :func:`get_configuration` read, or any other
    (paths taken relative to the working directory, missing keys from the project's)."""
    own = getattr(config, "settings", None)
    if own is not None:
        return own
    base = load_settings()
    paths = {key: str(config[key]) for key in PATH_KEYS if config.get(key)}
    names = {key: str(config[key]) for key in ("experiments_module_name", "params_module_name") if config.get(key)}
    return dataclasses.replace(base.with_paths(**paths), **names)


def get_editor() -> str:
    """The editor for notes: ``$EDITOR``, else the first of :data:`EDITORS` on the ``PATH``."""
    if os.environ.get("EDITOR"):
        return os.environ["EDITOR"]
    for editor in EDITORS:
        if shutil.which(editor):
            return editor
    return "vi"


def human_readable_mem_usage(byte_count: int) -> str:
    """``1.50MB``-style text of a byte count (powers of 1000, two decimals, a sign kept)."""
    sign, size = ("-", -byte_count) if byte_count < 0 else ("", byte_count)
    for limit, suffix in ((10**9, "GB"), (10**6, "MB"), (10**3, "KB")):
        if size > limit:
            return f"{sign}{size / limit:.2f}{suffix}"
    return f"{sign}{size:.2f}B"


def human_readable_time(seconds: float) -> str:
    """``2.50m``-style text of a duration: h, m, s, ms, us or ns with two decimals."""
    if seconds > 3600:
        return f"{seconds / 3600:.2f}h"
    if seconds > 60:
        return f"{seconds / 60:.2f}m"
    for limit, scale, suffix in ((1e-7, 1e9, "ns"), (1e-4, 1e6, "us"), (0.1, 1e3, "ms")):
        if seconds < limit:
            return f"{seconds * scale:.2f}{suffix}"
    return f"{seconds:.2f}s"


def get_command_output(cmd: list[str], silent: bool = False) -> str:
    """A command's standard output (its errors are not printed); "" when it cannot run."""
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError as exc:
        if not silent:
            logging.getLogger(__name__).debug("could not run %s: %s", cmd, exc)
        return ""
    return result.stdout


def run_command(cmd: list[str]) -> None:
    """Run a command, printing its output as it comes."""
    subprocess.run(cmd)


def get_current_commit() -> str:
    """The git commit of the working directory ("" outside a repository)."""
    from curifactory.environment import capture_git

    return capture_git(".").commit or ""


def check_git_dirty_workingdir() -> bool:
    """Whether the working directory has uncommitted changes."""
    from curifactory.environment import capture_git

    return bool(capture_git(".").dirty)


def get_pip_freeze() -> str:
    """``pip freeze`` of this environment."""
    from curifactory.environment import pip_freeze

    return pip_freeze()


def get_conda_env() -> str:
    """``conda env export`` of the active environment ("" without conda)."""
    from curifactory.environment import conda_export

    return conda_export() or ""


def get_conda_list() -> str:
    """``conda list`` of the active environment ("" without conda)."""
    from curifactory.environment import find_conda

    conda = find_conda()
    return get_command_output([conda, "list"], silent=True) if conda else ""


def get_os() -> str:
    """The operating system and release, e.g. ``Linux-6.1.0-x86_64-with-glibc2.36``."""
    return platform.platform()


def get_py_opening_comment(lines: list[str]) -> str:
    """The docstring (or leading ``#`` comment block) at the top of a module's lines."""
    text = "".join(lines).lstrip()
    for quote in ('"""', "'''"):
        if text.startswith(quote):
            end = text.find(quote, 3)
            return text[3:end].strip() if end != -1 else ""
    comment = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    return "\n".join(comment)


def preview_object(obj: Any) -> str:
    """A short description of a value (a shape for arrays and frames), as the metadata shows it."""
    from curifactory.caching import preview

    return preview(obj, limit=OBJECT_PREVIEW_STRING_LENGTH * 4)


def set_logging_prefix(prefix: str) -> None:
    """Kept for 0.20 code: the command line formats its own log lines."""
