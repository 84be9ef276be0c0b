"""The cacher base class: paths, atomic saves, metadata and validity checks.

How saves are made atomic and when an entry counts as valid is described in the
package docstring (:mod:`curifactory.caching`).
"""

from __future__ import annotations

import copy
import datetime
import functools
import json
import logging
import os
import reprlib
from typing import Any, Callable

from curifactory import fileio
from curifactory.caching.location import ArtifactLocation, location_of_record
from curifactory.errors import CacheError

logger = logging.getLogger(__name__)

METADATA_SUFFIX = "_metadata.json"
ALTERNATE_METADATA_SUFFIX = "_cf_metadata.json"
"""Used when ``<stem>_metadata.json`` is another output's artifact (an output named
``<name>_metadata``): the two must not overwrite each other."""
TRUST_STAT_BYTES = 16 * 1024 * 1024
"""Entries at least this large are not re-hashed whole on every lookup while their files
keep the size and modification time recorded at save time: a lookup checks a sample of
their bytes (:func:`curifactory.fileio.sample_hash`), and the whole content is hashed
before a stage is handed the value; smaller entries are re-hashed whole on every lookup."""
_SHAPES: dict[str, tuple[type, ...]] = {"content_hash": (str,), "files_stat": (list,), "code": (dict,),
                                         "inputs": (dict,), "extra": (dict,), "sample_hash": (str,)}


def preview(obj: Any, limit: int = 120) -> str:
    """A short, one-line description of a value for metadata and reports."""
    shape = getattr(obj, "shape", None)
    kind = type(obj).__name__
    if shape is not None and not callable(shape):
        return f"{kind} shape={tuple(shape)}"
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = limit
    try:
        text = shortener.repr(obj)
    except Exception:  # a broken __repr__ must not break a save
        text = f"<{kind}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def file_stat(path: str) -> list[int]:
    """A file's size and modification time as the metadata records them ([-1, -1] for a folder)."""
    if os.path.isdir(path):
        return [-1, -1]  # folders are always hashed
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns]


def _atomic_save(save: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a cacher's ``save`` so every path it writes is committed atomically."""

    @functools.wraps(save)
    def wrapper(self: Cacheable, obj: Any, *args: Any, **kwargs: Any) -> Any:
        if self._session is not None:  # nested call (e.g. super().save): outer commits
            return save(self, obj, *args, **kwargs)
        self._session = {}
        try:
            result = save(self, obj, *args, **kwargs)
            session, self._session = self._session, None
            written = []
            for final, tmp in session.items():
                if os.path.exists(tmp):
                    fileio.commit(tmp, final)
                    written.append(final)
        except BaseException:
            session, self._session = self._session or {}, None
            for tmp in session.values():
                fileio.discard(tmp)
            raise
        if any(os.path.basename(f).startswith(fileio.TEMP_MARK) for f in written):
            # an inline cacher writing into an outer cacher's temporary file (0.20's
            # ``JsonCacher(self.get_path()).save(obj)``): the outer save writes the metadata
            return result
        self._write_metadata(obj, written)
        where = self._where()
        if where is not None and where.remote:
            from curifactory import remotecache

            remotecache.upload(where.remote, where.cache_path, written, self.metadata_path())
        return result

    wrapper._cf_atomic = True  # type: ignore[attr-defined]
    return wrapper


class Cacheable:
    """Base class of every cacher.

    Args:
        path_override: a fixed path (may use ``{hash} {cache} {stage} {name}
            {params.X} {experiment} {artifact_filename}``) instead of the usual
            ``<cache>/[subdir/]<prefix>_<hash>_<stage>_<name><ext>``.
        name: the artifact name (the executor sets the output name).
        subdir: a sub-folder of the cache.
        prefix: a prefix instead of the experiment's.
        extension: the file extension, e.g. ``".pkl"``.
        record: the record the artifact belongs to (set by the executor).
        track: include the artifact in ``--store-full`` run folders.
        location: where the artifact lives (set by the executor; without it,
            the location is derived from ``record``).
    """

    def __init__(
        self,
        path_override: str | None = None,
        name: str | None = None,
        subdir: str | None = None,
        prefix: str | None = None,
        extension: str | None = None,
        record: Any = None,
        track: bool = True,
        location: ArtifactLocation | None = None,
    ):
        self.path_override = path_override
        self.name = name
        self.subdir = subdir
        self.prefix = prefix
        self.extension = extension
        self.record = record
        self.track = track
        self.location = location
        self.stage: str | None = None
        self.metadata: dict[str, Any] | None = None
        self.extra_metadata: dict[str, Any] = {}
        self.cache_paths: list[str] = []
        self.invalid_reason: str | None = None
        self.metadata_suffix = METADATA_SUFFIX
        self._session: dict[str, str] | None = None
        self._path_memo: tuple[Any, ...] | None = None
        self._unverified: bool | None = None  # None: not looked up by this instance

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own_save = cls.__dict__.get("save")
        if own_save is not None and not getattr(own_save, "_cf_atomic", False):
            cls.save = _atomic_save(own_save)  # type: ignore[method-assign]

    # -- paths -----------------------------------------------------------------
    def _where(self) -> ArtifactLocation | None:
        """The artifact's location: the one handed in, else the one of :attr:`record` (0.20 style)."""
        if self.location is not None:
            return self.location
        if self.record is not None:
            return location_of_record(self.record, self.stage)
        return None

    def _final_path(self, suffix: str | None = None) -> str:
        """The artifact's path (``suffix`` added to its name); memoised while nothing it depends on changes."""
        location = self.location
        key = (suffix, self.name, self.stage, self.prefix, self.subdir, self.extension, self.path_override)
        memo = getattr(self, "_path_memo", None)
        if location is not None and memo is not None and memo[0] is location and memo[1] == key:
            return memo[2]  # type: ignore[no-any-return]
        path = self._make_path(suffix)
        if location is not None:
            self._path_memo = (location, key, path)
        return path

    def _make_path(self, suffix: str | None) -> str:
        extension = self.extension or ""
        where = self._where()
        # 0.20's rule: a given suffix replaces the extension (``get_path("_model")`` is ``..._model``).
        if self.path_override is not None:
            path = self._expand_template(self.path_override, where)
            if suffix is not None:
                if extension and path.endswith(extension):
                    path = path[: -len(extension)]
                path += suffix
            return self._relocate(path, where)
        if where is None:
            raise CacheError(
                f"{type(self).__name__} for '{self.name}' has neither a location (or record) nor a "
                f"path_override, so it has no path. Pass location=, record= or path_override=."
            )
        name = self.name or "artifact"
        if suffix is None and not name.endswith(extension):
            suffix = extension
        base = os.path.join(where.cache_path, self.subdir) if self.subdir else where.cache_path
        return os.path.join(base, where.filename(name + (suffix or ""), prefix=self.prefix, stage=self.stage))

    @staticmethod
    def _relocate(path: str, where: ArtifactLocation | None) -> str:
        """Where a reproduction run finds a file stored outside the cache (or ``path``)."""
        if where is None or where.redirect is None:
            return path
        return where.redirect.locate(path, where.project_root) or path

    def _expand_template(self, template: str, where: ArtifactLocation | None) -> str:
        if "{" not in template:
            return template
        fields = {"name": self.name or "", "stage": self.stage or "", "hash": "", "cache": "", "experiment": "",
                  "params": None, "artifact_filename": ""}
        if where is not None:
            fields.update(hash=where.params_hash, cache=where.cache_path, experiment=where.experiment,
                          params=where.params,
                          artifact_filename=where.filename(self.name or "", prefix=self.prefix, stage=self.stage)
                          + (self.extension or ""))
        try:
            return template.format(**fields)
        except (KeyError, AttributeError, IndexError) as exc:
            raise CacheError(
                f"Cannot fill the path_override template '{template}' of "
                f"{type(self).__name__} '{self.name}': {exc!r} is unknown. Use only "
                f"{{hash}} {{cache}} {{stage}} {{name}} {{params.X}} {{experiment}} {{artifact_filename}}."
            ) from None

    def get_path(self, suffix: str | None = None) -> str:
        """The file to write or read (a temporary name while ``save`` runs)."""
        final = self._final_path(suffix)
        tmp = self._hand_out(final, is_folder=False)
        if tmp is not None:
            return tmp
        folder = os.path.dirname(final)
        if folder and not self._dry():
            os.makedirs(folder, exist_ok=True)
        return final

    def _hand_out(self, final: str, is_folder: bool) -> str | None:
        """Track ``final``; while ``save`` runs, return the temporary name standing in for it."""
        if final not in self.cache_paths:
            self.cache_paths.append(final)
        if self._session is None:
            return None
        tmp = self._session.get(final)
        if tmp is None:
            tmp = self._session[final] = fileio.temp_path_for(final)
            if is_folder:
                os.makedirs(tmp)
        return tmp

    def _dry(self) -> bool:
        where = self._where()
        return where is not None and where.dry

    def get_dir(self, suffix: str | None = None) -> str:
        """A folder to write into or read from (created; temporary while ``save`` runs)."""
        saved_ext, self.extension = self.extension, None
        try:
            final = self._final_path(suffix)
        finally:
            self.extension = saved_ext
        tmp = self._hand_out(final, is_folder=True)
        if tmp is not None:
            return tmp
        if not self._dry():
            os.makedirs(final, exist_ok=True)
        return final

    def metadata_path(self) -> str:
        """The metadata file beside the artifact: its stem plus ``_metadata.json``."""
        final = self._final_path()
        stem = os.path.splitext(final)[0] if self.extension and final.endswith(self.extension) else final
        return stem + self.metadata_suffix

    # -- metadata and validity --------------------------------------------------
    def _write_metadata(self, obj: Any, written: list[str]) -> None:
        meta_path = self.metadata_path()
        folder = os.path.dirname(meta_path)
        files = sorted(written)
        where = self._where()
        metadata = {
            "artifact_name": self.name,
            "stage": self.stage,
            "cacher_type": f"{type(self).__module__}.{type(self).__qualname__}",
            "params_name": where.params_name if where else None,
            "params_hash": where.params_hash if where else None,
            "record_is_aggregate": bool(where and where.aggregate),
            "artifact_generated": datetime.datetime.now().isoformat(timespec="seconds"),
            "run_reference": where.run_reference if where else None,
            "experiment_name": where.experiment if where else None,
            "files": [os.path.relpath(f, folder) for f in files],
            "files_stat": [file_stat(f) for f in files],
            "content_hash": fileio.hash_files(files),
            "preview": preview(obj),
            "extra": self.extra_metadata,
        }
        if sum(size for size, _ in metadata["files_stat"]) >= TRUST_STAT_BYTES:
            metadata["sample_hash"] = fileio.sample_hash(files)
        if where is not None and where.code is not None:
            metadata["code"] = where.code
        if where is not None and where.inputs:
            metadata["inputs"] = where.inputs
        fileio.atomic_write_json_lines(meta_path, metadata)
        self.metadata = metadata

    def load_metadata(self) -> dict[str, Any] | None:
        """Read the metadata file (``None`` when it is missing or unreadable)."""
        try:
            with open(self.metadata_path(), encoding="utf-8") as handle:
                self.metadata = json.load(handle)
        except (OSError, ValueError):
            return None
        if isinstance(self.metadata, dict):
            self.extra_metadata = self.metadata.get("extra") or {}
        return self.metadata

    def validate(self) -> str | None:
        """Why the cache entry is not usable, or ``None`` when it is valid.

        Sets :attr:`invalid_reason`; a plainly missing entry gives ``"missing"``.
        """
        reason = self._validate()
        self.invalid_reason = reason
        return reason

    def _validate(self) -> str | None:
        return _check_entry(self)

    def verify_before_load(self) -> None:
        """Hash the whole entry if its lookup only checked a sample (a large entry), so a
        stage is never handed a value whose bytes differ from those saved.

        Raises:
            CacheError: the content no longer matches its metadata.
        """
        _verify_whole(self)

    def _validate_legacy(self, metadata: dict[str, Any], meta_path: str) -> str | None:
        """An entry written by curifactory 0.20 (no content hash): valid while its file exists."""
        if "artifact_name" not in metadata and "params_hash" not in metadata:
            return f"its metadata file {meta_path} is incomplete"
        path = self._final_path()
        if not os.path.exists(path):
            return "missing"
        logger.debug("%s has 0.20 metadata without a content hash; trusting that the file exists", path)
        return None

    def check(self) -> bool:
        """Whether a complete, uncorrupted entry is in the cache."""
        return self.validate() is None

    # -- curifactory 0.20 helpers that custom cachers call ---------------------------
    def set_record(self, record: Any) -> None:
        """Attach the cacher to ``record`` (0.20 API)."""
        self.record = record

    def collect_metadata(self) -> dict[str, Any]:
        """The metadata last written or read (0.20 API); saving writes it for you."""
        return dict(self.metadata or {"artifact_name": self.name, "stage": self.stage, "extra": self.extra_metadata})

    def save_metadata(self) -> None:
        """Kept for 0.20 cachers: metadata is written after every ``save`` already."""

    # -- the plug-in surface ------------------------------------------------------
    def save(self, obj: Any) -> Any:
        """Write ``obj`` to ``self.get_path()``; return the path."""
        raise NotImplementedError(f"{type(self).__name__} does not implement save()")

    def load(self) -> Any:
        """Read the object back from ``self.get_path()``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement load()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, stage={self.stage!r})"


def _check_entry(cacher: Cacheable) -> str | None:
    """Why ``cacher``'s entry is not usable (see :meth:`Cacheable.validate`)."""
    cacher._unverified = False
    meta_path = cacher.metadata_path()
    if not os.path.exists(meta_path) and not _fetched(cacher, meta_path):
        return "missing"
    metadata = cacher.load_metadata()
    if not isinstance(metadata, dict):
        return f"its metadata file {meta_path} is unreadable or not a JSON object"
    if "content_hash" not in metadata:
        return cacher._validate_legacy(metadata, meta_path)
    problem = metadata_problem(metadata)
    if problem is not None:
        return f"its metadata file {meta_path} is malformed ({problem})"
    folder = os.path.dirname(meta_path)
    files = [os.path.join(folder, f) for f in metadata["files"]]
    stats = []
    for path in files:
        if not os.path.exists(path):
            return f"the file {path} named by its metadata is missing"
        stats.append(file_stat(path))
    recorded = metadata.get("files_stat")
    if recorded == stats and sum(size for size, _ in stats) >= TRUST_STAT_BYTES and "sample_hash" in metadata:
        # a large entry untouched since it was saved: a sample of its bytes now, all of them
        # before a stage is handed the value (verify_before_load)
        problem = content_problem(files, metadata["sample_hash"], fileio.sample_hash, "sample hash")
        cacher._unverified = problem is None
        return problem
    return content_problem(files, metadata["content_hash"])


def _fetched(cacher: Cacheable, meta_path: str) -> bool:
    """Whether a missing entry was downloaded from the ``remote_cache`` (checked like a local one next)."""
    where = cacher._where()
    if where is None or not where.remote or where.dry:
        return False
    from curifactory import remotecache

    return remotecache.download(where.remote, where.cache_path, meta_path)


def content_problem(files: list[str], expected: Any, digest: Callable[[list[str]], str] = fileio.hash_files,
                    what: str = "hash") -> str | None:
    """Why ``files`` do not match the ``expected`` digest recorded in their metadata (``None``: they do)."""
    try:
        actual = digest(files)
    except OSError as exc:
        return f"the file could not be read ({exc})"
    if actual != expected:
        return f"the content of {files[0]} does not match the {what} in its metadata (corrupt or edited)"
    return None


def _verify_whole(cacher: Cacheable) -> None:
    unverified = getattr(cacher, "_unverified", None)
    if unverified is None:  # looked up by another instance (the plan's): large entries again
        metadata = cacher.metadata if isinstance(cacher.metadata, dict) else cacher.load_metadata()
        unverified = (isinstance(metadata, dict) and metadata_problem(metadata) is None
                      and sum(s for s, _ in _stats_of(metadata)) >= TRUST_STAT_BYTES)
    if not unverified or not isinstance(cacher.metadata, dict):
        return
    folder = os.path.dirname(cacher.metadata_path())
    problem = content_problem([os.path.join(folder, f) for f in cacher.metadata["files"]],
                              cacher.metadata["content_hash"])
    if problem is not None:
        raise CacheError(
            f"The cache entry '{cacher.name}' of stage '{cacher.stage}' cannot be loaded: {problem}. Run "
            f"'curifactory cache verify --fix' to quarantine it, then run the experiment again to recompute it."
        )
    cacher._unverified = False


def _stats_of(metadata: dict[str, Any]) -> list[tuple[int, int]]:
    recorded = metadata.get("files_stat") or []
    return [(int(pair[0]), 0) for pair in recorded if isinstance(pair, list) and pair and isinstance(pair[0], int)]


def metadata_problem(metadata: dict[str, Any]) -> str | None:
    """What is wrong with the shape of an entry's metadata (``None`` when nothing is): valid JSON
    of the wrong shape is a miss, never a crash."""
    files = metadata.get("files")
    if not isinstance(files, list) or not files:
        return "'files' is not a non-empty list"
    for name in files:
        if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
            return f"'files' holds {name!r}, not a file name beside the metadata"
    for key, types in _SHAPES.items():
        if key in metadata and metadata[key] is not None and not isinstance(metadata[key], types):
            return f"'{key}' is a {type(metadata[key]).__name__}"
    return None


def instantiate(cacher: Any) -> Cacheable:
    """A fresh cacher for one stage call from a class or an instance (copied)."""
    if isinstance(cacher, type):
        return cacher()
    fresh = copy.copy(cacher)
    fresh.extra_metadata = dict(cacher.extra_metadata)
    fresh.cache_paths = []
    fresh._session = None
    fresh._path_memo = None
    fresh._unverified = None
    return fresh
