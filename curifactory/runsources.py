"""Where runs are read from: the project's own store, other project folders, globs, or an
fsspec URL (``s3://bucket/project/data``).

A source resolves to a local folder holding ``runlog/``: a project folder gives its
``manager_cache_path`` (from its ``curifactory_config.json``, else ``data/``), a glob
every folder it matches, and a URL a local mirror of its run log
(``~/.cache/curifactory/remote/<digest>/``) that copies only the files that changed
since the last read. The SQLite index of a folder is used when it is there; a folder
without one is indexed in memory, so reading another project writes nothing into it.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from typing import Any, Iterable

from curifactory import fileio, runlog
from curifactory.errors import UsageError

REMOTE_HINT = ("pip install 'curifactory[remote]' (fsspec and s3fs; for another file system, the fsspec "
               "implementation of its protocol)")
MIRROR_MANIFEST = "_mirror.json"


@dataclass(frozen=True)
class RunSource:
    """One folder runs are read from.

    Attributes:
        folder: the local folder holding ``runlog/`` (a mirror for a URL).
        label: what the user named (a folder or URL), shown in the ``store`` column.
        own: the project's own store (its index is kept on disk as usual).
    """

    folder: str
    label: str
    own: bool = False

    @property
    def index_in_memory(self) -> bool:
        """Whether this source is indexed in memory (another folder without an index of its own)."""
        from curifactory.runindex import INDEX_NAME

        return not self.own and not os.path.exists(os.path.join(self.folder, INDEX_NAME))


def cache_home() -> str:
    """``$XDG_CACHE_HOME/curifactory`` (default ``~/.cache/curifactory``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "curifactory")


def resolve(store: Any = None) -> list[RunSource]:
    """The sources ``store`` names: ``None`` (the project's own), a folder, a glob, a URL, or a
    list of them.

    Raises:
        UsageError: a folder that does not exist, a glob that matches nothing, a URL whose
            file system is not installed or cannot be read.
    """
    if store is None:
        from curifactory.config import load_settings

        return [RunSource(load_settings().manager_cache_path, "", own=True)]
    items: Iterable[Any] = store if isinstance(store, (list, tuple)) else [store]  # one name, or a RunSource
    sources: list[RunSource] = []
    for item in items:
        for source in [item] if isinstance(item, RunSource) else _resolve_one(os.fspath(item)):
            if all(os.path.realpath(source.folder) != os.path.realpath(known.folder) for known in sources):
                sources.append(source)  # a folder named twice (or matched by two globs) is read once
    if not sources:
        raise UsageError("store=[] names no folder; give a project folder, its data folder, a glob or a URL.")
    return sources


def _resolve_one(spec: str) -> list[RunSource]:
    if "://" in spec and not spec.startswith("file://"):
        return [RunSource(mirror(spec), spec)]
    path = os.path.expanduser(spec[len("file://"):] if spec.startswith("file://") else spec)
    if glob.has_magic(path):
        matches = sorted(m for m in glob.glob(path) if os.path.isdir(m))
        if not matches:
            raise UsageError(f"The store pattern {spec!r} matches no folder; give project folders or their data "
                             f"folders, e.g. '~/projects/*/data'.")
        return [RunSource(data_folder(m), m) for m in matches]
    if os.path.isfile(path):
        raise UsageError(f"There is no run log under {spec!r}: it is a file. Give a project folder or its data "
                         f"folder (the one holding runlog/).")
    if not os.path.isdir(path) and not _unused_data_folder(path):
        raise UsageError(f"The store folder {spec!r} does not exist; give a project folder, its data folder "
                         f"(the one holding runlog/), a glob or a URL such as s3://bucket/project/data.")
    folder = data_folder(path)
    if not os.path.isdir(runlog.runlog_root(folder)) and not _unused_data_folder(folder) and \
            not _is_project(folder):
        raise UsageError(f"There is no run log under {spec!r} (no runlog/ folder, nor a project whose data folder "
                         f"has one); give a project folder or its data folder, e.g. ~/projects/polyfit or "
                         f"~/projects/polyfit/data.")
    return [RunSource(folder, spec)]


def _unused_data_folder(path: str) -> bool:
    """Whether ``path`` is the data folder of a project that has not run anything yet."""
    from curifactory.config import CONFIG_FILENAME

    return os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(path)), CONFIG_FILENAME))


def _is_project(path: str) -> bool:
    from curifactory.config import CONFIG_FILENAME

    return os.path.isfile(os.path.join(path, CONFIG_FILENAME))


def data_folder(path: str) -> str:
    """The folder holding the run log for a path naming a project, its data folder or the run
    log folder itself."""
    path = os.path.abspath(path)
    if os.path.isdir(runlog.runlog_root(path)):
        return path
    if os.path.basename(path) == runlog.RUNLOG_DIR:
        return os.path.dirname(path)
    from curifactory.config import CONFIG_FILENAME, load_settings

    if os.path.isfile(os.path.join(path, CONFIG_FILENAME)):
        return load_settings(path).manager_cache_path
    data = os.path.join(path, "data")
    return data if os.path.isdir(runlog.runlog_root(data)) else path


# -- a remote run log -----------------------------------------------------------------------------


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise UsageError(f"Reading runs from {url} needs fsspec: {REMOTE_HINT}.") from None
    try:
        return fsspec.core.url_to_fs(url)  # type: ignore[no-any-return]
    except (ImportError, ValueError) as exc:
        raise UsageError(f"Reading runs from {url} needs the fsspec file system of its protocol ({exc}): "
                         f"{REMOTE_HINT}.") from None


def _stamp(info: dict[str, Any]) -> list[Any]:
    """What tells a remote file changed: its size and its ETag or modification time."""
    changed = info.get("ETag") or info.get("etag") or info.get("LastModified") or info.get("mtime") or ""
    return [info.get("size"), str(changed)]


def mirror(url: str) -> str:
    """Bring the run log under ``url`` into a local mirror (changed files only); its folder.

    Raises:
        UsageError: the file system is not installed, or listing or reading failed.
    """
    fs, root = _filesystem(url)
    root = root.rstrip("/")
    if root.endswith("/" + runlog.RUNLOG_DIR):
        root = root[: -len(runlog.RUNLOG_DIR) - 1]
    local = os.path.join(cache_home(), "remote", hashlib.blake2b(url.encode(), digest_size=8).hexdigest())
    problem = (f"Check the URL and the credentials (for S3: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, and "
               f"AWS_ENDPOINT_URL for an endpoint of your own).")
    try:
        listing = fs.find(f"{root}/{runlog.RUNLOG_DIR}", detail=True)
        if not listing and fs.exists(f"{root}/data/{runlog.RUNLOG_DIR}"):
            root += "/data"  # a project folder: its data folder holds the run log
            listing = fs.find(f"{root}/{runlog.RUNLOG_DIR}", detail=True)
        if not listing:
            there = "there is nothing there" if not fs.exists(root) else f"it has no {runlog.RUNLOG_DIR}/ folder"
            raise UsageError(f"Could not list the runs under {url}: {there}. Give the data folder of a project "
                             f"whose runs were copied there (the one holding {runlog.RUNLOG_DIR}/). {problem}")
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"Could not list the runs under {url} ({type(exc).__name__}: {exc}). {problem}") from None
    manifest = _read_manifest(local)
    wanted: dict[str, list[Any]] = {}
    for path, info in listing.items():
        if info.get("type", "file") != "file":
            continue
        relative = path[len(root) + 1:] if path.startswith(root + "/") else path.lstrip("/")
        wanted[relative] = _stamp(info)
        target = os.path.join(local, relative)
        if manifest.get(relative) == wanted[relative] and os.path.exists(target):
            continue
        try:
            data = fs.cat_file(path)
        except Exception as exc:
            raise UsageError(f"Could not read {url.rstrip('/')}/{relative} ({type(exc).__name__}: {exc}).") from None
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fileio.atomic_write_bytes(target, data)
    _drop_gone(local, wanted)
    os.makedirs(local, exist_ok=True)
    fileio.atomic_write_text(os.path.join(local, MIRROR_MANIFEST), json.dumps({"url": url, "files": wanted}))
    return local


def _read_manifest(local: str) -> dict[str, Any]:
    try:
        with open(os.path.join(local, MIRROR_MANIFEST), encoding="utf-8") as handle:
            files = json.load(handle).get("files")
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def _drop_gone(local: str, wanted: dict[str, Any]) -> None:
    """Remove the mirror's files (and run folders) that are gone remotely."""
    root = runlog.runlog_root(local)
    if not os.path.isdir(root):
        return
    runs = {relative.split("/")[1] for relative in wanted if relative.count("/") >= 2}
    for name in os.listdir(root):
        if name not in runs:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    for folder, _, files in os.walk(root):
        for name in files:
            relative = os.path.relpath(os.path.join(folder, name), local).replace(os.sep, "/")
            if relative not in wanted:
                os.remove(os.path.join(folder, name))
