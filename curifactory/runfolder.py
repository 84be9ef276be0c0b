"""Writing the ``--store-full`` folder of a run: ``<runs_path>/<reference>/``.

Layout of a run folder::

    artifacts/                 every artifact the run used, with its metadata
        <path relative to the cache root>       (cache files keep their place)
        _external/<path relative to the project root>   (files outside the cache)
        _external/_absolute/<absolute path>              (files outside the project)
        _manifest.json         original path -> stored path of every file above
    requirements.txt           pip freeze (or an importlib.metadata listing)
    environment.yml            conda env export --from-history, when conda exists
    environment.txt            ... or a note saying why there is no environment.yml
    environment.json           host facts (python, platform, hostname, user, cpus, version)
    git.json                   full commit, branch, dirty flag, untracked files
    git.patch                  git diff HEAD --binary (only inside a repository)
    run_info.json              the run block of store.json
    params_registry.json       the registry entries of the run's parameter sets
    <reference>.log            a copy of the run's log
    report/                    a copy of the run's report folder

Reproduction: ``experiment NAME ... --cache <run folder>/artifacts --dry-cache``
uses ``artifacts/`` as the cache root. Files that were inside the cache root keep
their relative path, so every cacher without a ``path_override`` (and every
``path_override`` built on ``{cache}``) finds its file there unchanged. Files that
were outside it (a ``path_override`` to another folder, ``FileReferenceCacher``
targets) cannot be found by their path alone: they are stored under
``artifacts/_external/`` and listed in ``artifacts/_manifest.json``;
:meth:`ArtifactManifest.locate` maps an original path (absolute, or relative to the
project root, so it also works from a moved checkout) to the stored copy, and the
cache layer uses it when its cache root holds a manifest.

Artifacts are hard-linked when the file system allows it (no extra space, near
instant) and copied otherwise. A hard link shares the file's content, which is safe
because curifactory never rewrites a cache file in place: a new version is written
to a temporary name and renamed over the old one, leaving the run folder's link on
the old content. The log and the report are small and rewritten by other tools, so
they are always copied. Every file is written atomically (temporary name, then
``os.replace``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Iterable

from curifactory import fileio
from curifactory.environment import EnvironmentSnapshot, capture_environment
from curifactory.errors import RunFolderExistsError

logger = logging.getLogger(__name__)

ARTIFACTS_DIR = "artifacts"
EXTERNAL_DIR = "_external"
ABSOLUTE_DIR = "_absolute"
MANIFEST_NAME = "_manifest.json"
REPORT_DIR = "report"
METADATA_SUFFIX = "_metadata.json"
ALTERNATE_METADATA_SUFFIX = "_cf_metadata.json"  # see curifactory.caching


def create_run_dir(runs_path: str | os.PathLike[str], reference: str) -> str:
    """Create the empty run folder ``<runs_path>/<reference>`` and return its path.

    Call it when the run starts, so a clash is reported before any work is done.
    Creation is atomic (``os.mkdir``), so two processes can never share a folder.

    Raises:
        RunFolderExistsError: the folder already exists; it is left untouched.
    """
    runs_path = os.fspath(runs_path)
    os.makedirs(runs_path, exist_ok=True)
    run_dir = os.path.join(runs_path, reference)
    try:
        os.mkdir(run_dir)
    except FileExistsError:
        raise RunFolderExistsError(
            f"The --store-full run folder {run_dir} already exists, and an earlier run "
            f"folder is never overwritten. Move or delete it, or rerun so the run gets a "
            f"new reference."
        ) from None
    return run_dir


@dataclass(frozen=True)
class StoredFile:
    """One file placed in ``artifacts/``.

    Attributes:
        original: the absolute path it was taken from.
        stored: its path relative to ``artifacts/`` (``/``-separated).
        project_relative: ``original`` relative to the project root, or None when
            it lies outside the project.
        method: ``"link"`` or ``"copy"``.
    """

    original: str
    stored: str
    project_relative: str | None
    method: str


@dataclass
class RunFolderResult:
    """What :func:`write_run_folder` did.

    Attributes:
        run_dir: the run folder.
        files: the artifact files stored.
        problems: artifacts that could not be stored (missing, unreadable), one
            message each; these are also logged as warnings.
    """

    run_dir: str
    files: list[StoredFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def linked(self) -> int:
        """How many artifact files were hard-linked rather than copied."""
        return sum(1 for f in self.files if f.method == "link")


class _Linker:
    """Hard-links files into place, switching to copies once linking fails."""

    def __init__(self, allow_link: bool):
        self.allow_link = allow_link
        self._made: set[str] = set()

    def place(self, src: str, dst: str) -> str:
        """Put a link or copy of ``src`` at ``dst``; returns ``"link"`` or ``"copy"``."""
        folder = os.path.dirname(dst)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        if self.allow_link:
            try:
                self._link(src, dst)
                return "link"
            except FileNotFoundError:
                raise  # the source is gone: copying would fail the same way
            except OSError as exc:
                # cross-device, no hard-link support, link count limit, protected links
                logger.debug("hard link %s -> %s failed (%s); copying from now on", src, dst, exc)
                self.allow_link = False
        with fileio.replacing(dst) as tmp:
            shutil.copy2(src, tmp)
        return "copy"

    @staticmethod
    def _link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)  # a fresh run folder: the name is free, the link is atomic
        except FileExistsError:
            if os.path.samefile(src, dst):
                return
            with fileio.replacing(dst) as tmp:
                os.link(src, tmp)


def _is_within(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives on Windows
        return False


def _posix(rel: str) -> str:
    return rel.replace(os.sep, "/")


def _stored_name(path: str, cache_root: str | None, project_root: str) -> str:
    """Where an artifact file goes, relative to ``artifacts/`` (see the module doc)."""
    if cache_root is not None and _is_within(path, cache_root):
        return _posix(os.path.relpath(path, cache_root))
    if _is_within(path, project_root):
        return f"{EXTERNAL_DIR}/{_posix(os.path.relpath(path, project_root))}"
    drive, rest = os.path.splitdrive(path)
    parts = [drive.rstrip(":\\/").replace(":", "")] if drive else []
    return "/".join([EXTERNAL_DIR, ABSOLUTE_DIR, *parts, _posix(rest.lstrip("\\/"))])


def _metadata_siblings(path: str) -> list[str]:
    """Existing ``*_metadata.json`` files beside an artifact file or folder.

    The cache layer names them after the artifact's stem (extension dropped) or,
    for a folder or a file without the cacher's extension, after the whole name.
    """
    stems = {os.path.splitext(path)[0], path}
    candidates = {stem + suffix for stem in stems for suffix in (METADATA_SUFFIX, ALTERNATE_METADATA_SUFFIX)}
    return sorted(c for c in candidates if c != path and os.path.isfile(c))


def _files_named_by_metadata(meta_path: str) -> list[str]:
    """The files a cacher's metadata lists (relative to the metadata's folder)."""
    try:
        with open(meta_path, encoding="utf-8") as handle:
            metadata = json.load(handle)
    except (OSError, ValueError):
        return []
    names = metadata.get("files") if isinstance(metadata, dict) else None
    if not isinstance(names, list):
        return []
    folder = os.path.dirname(meta_path)
    return [os.path.join(folder, n) for n in names if isinstance(n, str)]


def expand_artifacts(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Absolute paths of the given artifacts plus their metadata and listed files.

    For each path, the ``<stem>_metadata.json`` sibling is added when it exists,
    and so is every file that metadata names. Folders are expanded to the files
    inside them. The order is kept and duplicates dropped.
    """
    seen: dict[str, None] = {}

    def add(path: str) -> None:
        if path in seen:
            return
        seen[path] = None
        if path.endswith(METADATA_SUFFIX):
            for named in _files_named_by_metadata(path):
                add(os.path.abspath(named))

    for given in paths:
        path = os.path.abspath(os.fspath(given))
        add(path)
        if not path.endswith(METADATA_SUFFIX):
            for sibling in _metadata_siblings(path):
                add(sibling)
    return [f for p in seen for f in _walk(p)]


def _walk(path: str) -> list[str]:
    if not os.path.isdir(path):
        return [path]
    return sorted(os.path.join(d, f) for d, _, names in os.walk(path) for f in names)


def store_artifacts(
    artifacts_dir: str,
    artifacts: Iterable[str | os.PathLike[str]],
    *,
    cache_root: str | os.PathLike[str] | None,
    project_root: str | os.PathLike[str],
    link: bool = True,
) -> RunFolderResult:
    """Link or copy artifacts into ``artifacts_dir`` and write its manifest.

    Args:
        artifacts_dir: the ``artifacts/`` folder of a run folder.
        artifacts: artifact files or folders (see :func:`expand_artifacts`).
        cache_root: the run's cache folder; files inside it keep their relative path.
        project_root: the project folder; other files go under ``_external/``.
        link: try hard links first (copies are the fallback either way).

    Returns:
        The stored files and the problems met (missing or unreadable artifacts are
        logged and skipped, never raised).
    """
    root = os.path.abspath(os.fspath(project_root))
    cache = os.path.abspath(os.fspath(cache_root)) if cache_root is not None else None
    result = RunFolderResult(run_dir=os.path.dirname(os.path.abspath(artifacts_dir)))
    linker = _Linker(link)
    for path in expand_artifacts(artifacts):
        stored = _stored_name(path, cache, root)
        try:
            method = linker.place(path, os.path.join(artifacts_dir, *stored.split("/")))
        except OSError as exc:
            message = f"artifact {path} was not stored in the run folder: {exc}"
            logger.warning(message)
            result.problems.append(message)
            continue
        rel = _posix(os.path.relpath(path, root)) if _is_within(path, root) else None
        result.files.append(StoredFile(path, stored, rel, method))
    ArtifactManifest(result.files).write(artifacts_dir)
    return result


class ArtifactManifest:
    """The ``artifacts/_manifest.json`` of a run folder: where each file came from.

    The cache layer of a reproduction run (``--cache <run>/artifacts``) uses
    :meth:`locate` for artifact paths outside its cache root.
    """

    def __init__(self, files: Iterable[StoredFile], artifacts_dir: str | None = None):
        self.files = list(files)
        self.artifacts_dir = artifacts_dir
        self._by_original = {f.original: f.stored for f in self.files}
        self._by_project_path = {f.project_relative: f.stored for f in self.files if f.project_relative}

    def write(self, artifacts_dir: str) -> None:
        """Write the manifest into ``artifacts_dir`` (atomically)."""
        entries = [
            {"original": f.original, "project_relative": f.project_relative, "stored": f.stored, "method": f.method}
            for f in self.files
        ]
        os.makedirs(artifacts_dir, exist_ok=True)
        fileio.atomic_write_json(os.path.join(artifacts_dir, MANIFEST_NAME), {"files": entries})

    @classmethod
    def load(cls, artifacts_dir: str | os.PathLike[str]) -> ArtifactManifest | None:
        """Read the manifest of an ``artifacts/`` folder; None when there is none."""
        try:
            with open(os.path.join(artifacts_dir, MANIFEST_NAME), encoding="utf-8") as handle:
                raw = json.load(handle)
            files = [
                StoredFile(e["original"], e["stored"], e.get("project_relative"), e.get("method", "copy"))
                for e in raw["files"]
            ]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(files, os.path.abspath(os.fspath(artifacts_dir)))

    def locate(self, original: str | os.PathLike[str], project_root: str | os.PathLike[str] | None = None) -> str | None:
        """The stored copy of a file given its original path, or None.

        Args:
            original: the path the run used (absolute, or relative to the working
                directory).
            project_root: the current project folder; when given, a match on the
                path relative to the project is tried too (a moved checkout).
        """
        if self.artifacts_dir is None:
            return None  # a manifest being built, not one read from a folder
        path = os.path.abspath(os.fspath(original))
        stored = self._by_original.get(path)
        if stored is None and project_root is not None:
            root = os.path.abspath(os.fspath(project_root))
            if _is_within(path, root):
                stored = self._by_project_path.get(_posix(os.path.relpath(path, root)))
        if stored is None:
            return None
        return os.path.join(self.artifacts_dir, *stored.split("/"))


def write_environment(run_dir: str, env: EnvironmentSnapshot) -> None:
    """Write ``requirements.txt``, the conda files, ``environment.json`` and git files."""
    join = os.path.join
    fileio.atomic_write_text(join(run_dir, "requirements.txt"), env.requirements)
    if env.conda is not None:
        fileio.atomic_write_text(join(run_dir, "environment.yml"), env.conda)
        conda_note = f"exported with {env.conda_tool} env export --from-history"
    elif env.conda_tool is None:
        conda_note = "conda, mamba and micromamba were not found on PATH: no environment.yml"
    else:
        conda_note = f"{env.conda_tool} env export --from-history failed: no environment.yml"
    if env.conda is None:
        fileio.atomic_write_text(join(run_dir, "environment.txt"), conda_note + "\n")
    host = dict(env.host, conda_tool=env.conda_tool, conda=conda_note)
    fileio.atomic_write_json(join(run_dir, "environment.json"), host)
    git = dict(env.git.as_dict(), untracked=list(env.untracked))
    if env.git.is_repo:
        git["patch_file"] = "git.patch"
        # surrogateescape gives back the exact bytes git produced
        fileio.atomic_write_bytes(join(run_dir, "git.patch"), env.patch.encode("utf-8", "surrogateescape"))
    else:
        git["note"] = "the project folder was not inside a git repository" + (
            f" ({env.git.error})" if env.git.error else ""
        )
    fileio.atomic_write_json(join(run_dir, "git.json"), git)


def copy_log(run_dir: str, log_path: str | os.PathLike[str] | None) -> str | None:
    """Copy the run's log into the run folder (same file name); returns the copy's path."""
    if log_path is None or not os.path.isfile(log_path):
        return None
    target = os.path.join(run_dir, os.path.basename(os.fspath(log_path)))
    with open(log_path, "rb") as handle:
        fileio.atomic_write_bytes(target, handle.read())
    return target


def copy_report(run_dir: str, report_dir: str | os.PathLike[str] | None) -> str | None:
    """Copy the run's report folder to ``<run_dir>/report``; returns its path."""
    if report_dir is None or not os.path.isdir(report_dir):
        return None
    target = os.path.join(run_dir, REPORT_DIR)
    fileio.copy_tree(report_dir, target)
    return target


def write_run_info(run_dir: str, run_info: dict[str, Any]) -> None:
    """Write (or rewrite, e.g. with a final status) ``run_info.json``."""
    fileio.atomic_write_json(os.path.join(run_dir, "run_info.json"), run_info)


def write_run_folder(
    run_dir: str | os.PathLike[str],
    *,
    run_info: dict[str, Any],
    artifacts: Iterable[str | os.PathLike[str]],
    registry_entries: dict[str, Any],
    project_root: str | os.PathLike[str],
    cache_root: str | os.PathLike[str] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    report_dir: str | os.PathLike[str] | None = None,
    environment: EnvironmentSnapshot | None = None,
    pip_cache_dir: str | os.PathLike[str] | None = None,
    link: bool = True,
) -> RunFolderResult:
    """Fill a run folder made by :func:`create_run_dir` (layout: the module doc).

    Args:
        run_dir: the run folder.
        run_info: the run block of ``store.json``.
        artifacts: every artifact file or folder the run used (computed or loaded);
            metadata siblings and the files they list are added automatically.
        registry_entries: ``{hash: registry entry}`` of the run's parameter sets.
        project_root: the project folder (git is asked about it; files outside the
            cache but inside it are stored by their path relative to it).
        cache_root: the run's cache folder; None stores every file as external.
        log_path: the run's log file, if any.
        report_dir: the run's report folder, if any.
        environment: a snapshot from
            :func:`curifactory.environment.start_environment_capture` started with
            the run; captured now when None.
        pip_cache_dir: passed to ``pip_freeze`` when capturing now.
        link: hard-link artifacts when possible (False always copies).

    Returns:
        What was stored, with per-artifact problems (which are not raised).

    Raises:
        OSError: a file of the run folder itself could not be written.
    """
    run_dir = os.fspath(run_dir)
    write_run_info(run_dir, run_info)
    fileio.atomic_write_json(os.path.join(run_dir, "params_registry.json"), registry_entries)
    result = store_artifacts(
        os.path.join(run_dir, ARTIFACTS_DIR),
        artifacts,
        cache_root=cache_root,
        project_root=project_root,
        link=link,
    )
    if environment is None:
        environment = capture_environment(project_root, pip_cache_dir=pip_cache_dir)
    write_environment(run_dir, environment)
    copy_log(run_dir, log_path)
    copy_report(run_dir, report_dir)
    logger.debug("run folder %s: %d artifact files (%d linked), %d problems",
                 run_dir, len(result.files), result.linked, len(result.problems))
    return result


def used_artifact_paths(records: Iterable[Any]) -> list[str]:
    """Every artifact file the records' stage calls computed or loaded (with the files a
    ``FileReferenceCacher`` names), and the files stages wrote through ``record.get_path``."""
    from curifactory.caching import FileReferenceCacher

    paths: list[str] = []
    for record in records:
        for run in record.history:
            for artifact in run.outputs:
                if artifact.path is None:
                    continue
                paths.append(artifact.path)
                if artifact.cacher == "FileReferenceCacher":
                    targets = FileReferenceCacher(path_override=artifact.path).referenced_files()
                    paths.extend(t for t in targets if os.path.exists(t))
        paths.extend(entry["path"] for entry in record.unstored_tracked_paths if os.path.exists(entry["path"]))
    return list(dict.fromkeys(paths))
