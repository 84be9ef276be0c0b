"""Project settings: ``curifactory_config.json`` and its defaults.

Finding and reading the file is an explicit call (:func:`load_settings`); no
constructor reads it behind your back. Every ``*_path`` in the file is relative to
the folder the file was found in.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from curifactory.errors import ConfigError

CONFIG_FILENAME = "curifactory_config.json"
SEARCH_PARENTS = 3

DEFAULTS: dict[str, str] = {
    "experiments_module_name": "experiments",
    "params_module_name": "params",
    "manager_cache_path": "data/",
    "cache_path": "data/cache",
    "runs_path": "data/runs",
    "logs_path": "logs/",
    "notebooks_path": "notebooks/",
    "reports_path": "reports/",
    "report_css_path": "reports/style.css",
}
PATH_KEYS = tuple(k for k in DEFAULTS if k.endswith("_path"))
CODE_CHANGES = ("rerun", "warn", "ignore")
"""What a cached entry whose code fingerprint changed does: rerun its stage, be used
with a warning, or be used silently (0.20's behaviour)."""


@dataclass(frozen=True)
class Settings:
    """Resolved project settings; every ``*_path`` is absolute.

    Attributes:
        root: the folder holding the config file (or the working directory when
            there is none); experiment and parameter modules are imported from here.
        config_file: the config file that was read, or ``None``.
    """

    root: str
    config_file: str | None
    experiments_module_name: str
    params_module_name: str
    manager_cache_path: str
    cache_path: str
    runs_path: str
    logs_path: str
    notebooks_path: str
    reports_path: str
    report_css_path: str
    code_changes: str = "rerun"
    metadata_disable: tuple[str, ...] = ()
    """Metadata providers a run does not call (``"metadata": {"disable": [...]}``)."""
    metadata_commands: tuple[tuple[str, str], ...] = ()
    """(name, shell command) providers the config adds (``"metadata": {"commands": {...}}``)."""
    dask_scheduler: str | None = None
    """The Dask scheduler ``--executor dask`` connects to (``"dask": {"scheduler": ...}``;
    ``None``: it starts a local cluster)."""
    remote_cache: str | None = None
    """An fsspec URL every committed cache entry is uploaded to and a local miss is looked up
    in (``"remote_cache": "s3://bucket/prefix"``)."""
    metadata_timeout: float | None = None
    """Seconds each metadata provider may take (``"metadata": {"timeout": ...}``; ``None``: the
    default of :mod:`curifactory.metadata`)."""

    def with_paths(self, **overrides: str | None) -> Settings:
        """Return a copy where each given, non-None path replaces the configured one.

        Relative overrides are taken relative to the working directory, as a user
        typing them on the command line means.
        """
        changes = {k: os.path.abspath(v) for k, v in overrides.items() if v is not None}
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (as 0.20's ``manager.config``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def find_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the nearest ``curifactory_config.json`` in ``start`` or up to 3 parents."""
    here = Path(start or os.getcwd()).resolve()
    for folder in [here, *here.parents][: SEARCH_PARENTS + 1]:
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    return None


def load_settings(start: str | os.PathLike[str] | None = None) -> Settings:
    """Find and read the config (see :func:`find_config`) and resolve its paths.

    Raises:
        ConfigError: the file exists but is not a JSON object.
    """
    config_file = find_config(start)
    values: dict[str, Any] = dict(DEFAULTS)
    if config_file is None:
        root = Path(start or os.getcwd()).resolve()
    else:
        root = config_file.parent
        try:
            loaded = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"Could not read the project config {config_file}: {exc}. Fix the JSON "
                f"or delete the file and run 'curifactory init' to write a new one."
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"The project config {config_file} must hold a JSON object of settings "
                f"(e.g. {{\"cache_path\": \"data/cache\"}}), not {type(loaded).__name__}."
            )
        wrong = sorted(k for k, v in loaded.items() if k in DEFAULTS and not isinstance(v, str))
        if wrong:
            raise ConfigError(
                f"In the project config {config_file}, {', '.join(wrong)} must be text (a path or "
                f"module name in quotes, e.g. \"cache_path\": \"data/cache\")."
            )
        values.update({k: v for k, v in loaded.items() if k in DEFAULTS})
        code_changes = loaded.get("code_changes", "rerun")
        if code_changes not in CODE_CHANGES:
            raise ConfigError(
                f"In the project config {config_file}, code_changes is {code_changes!r}; use one of "
                f"{', '.join(repr(c) for c in CODE_CHANGES)} (the default is 'rerun')."
            )
        values["code_changes"] = code_changes
        values.update(_metadata_settings(loaded.get("metadata"), config_file))
        values.update(_distributed_settings(loaded, config_file))
    for key in PATH_KEYS:
        values[key] = str((root / values[key]).resolve())
    return Settings(root=str(root), config_file=str(config_file) if config_file else None, **values)


def _distributed_settings(loaded: dict[str, Any], config_file: Path) -> dict[str, Any]:
    """``"dask": {"scheduler": ADDRESS}`` and ``"remote_cache": URL``, checked."""
    found: dict[str, Any] = {}
    section = loaded.get("dask")
    if section is not None:
        if not isinstance(section, dict) or set(section) - {"scheduler"} or not isinstance(
                section.get("scheduler", ""), str):
            raise ConfigError(f"In the project config {config_file}, \"dask\" must be an object like "
                              f"{{\"scheduler\": \"tcp://HOST:8786\"}}.")
        found["dask_scheduler"] = section.get("scheduler") or None
    remote = loaded.get("remote_cache")
    if remote is not None:
        if not isinstance(remote, str) or "://" not in remote:
            raise ConfigError(f"In the project config {config_file}, remote_cache must be an fsspec URL such as "
                              f"\"s3://bucket/prefix\", not {remote!r}.")
        found["remote_cache"] = remote.rstrip("/")
    return found


def _metadata_settings(section: Any, config_file: Path) -> dict[str, Any]:
    """The ``"metadata"`` section of the config, checked."""
    if section is None:
        return {}
    example = ('"metadata": {"disable": ["conda"], "commands": {"k8s": "kubectl version"}, '
               '"timeout": 10}')
    unknown = sorted(set(section) - {"disable", "commands", "timeout"}) if isinstance(section, dict) else []
    if not isinstance(section, dict) or unknown:
        what = f" (not {', '.join(map(repr, unknown))})" if unknown else ""
        raise ConfigError(f"In the project config {config_file}, \"metadata\" must be an object with the keys "
                          f"disable, commands and timeout{what}, e.g. {example}.")
    disable = section.get("disable", [])
    commands = section.get("commands", {})
    timeout = section.get("timeout", 10.0)  # checked here; left unset when absent
    if not isinstance(disable, list) or not all(isinstance(name, str) for name in disable):
        raise ConfigError(f"In the project config {config_file}, metadata.disable must be a list of provider "
                          f"names, e.g. {example}.")
    if not isinstance(commands, dict) or not all(isinstance(v, str) and v.strip() for v in commands.values()):
        raise ConfigError(f"In the project config {config_file}, metadata.commands must map names to shell "
                          f"commands, e.g. {example}.")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"In the project config {config_file}, metadata.timeout is {timeout!r}; give the "
                          f"seconds a provider may take (more than 0), e.g. {example}.")
    checked = {"metadata_disable": tuple(disable), "metadata_commands": tuple(commands.items())}
    if "timeout" in section:
        checked["metadata_timeout"] = float(timeout)
    return checked
