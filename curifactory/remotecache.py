"""A remote copy of the cache (``"remote_cache": "s3://bucket/prefix"``, any fsspec URL).

Cachers always write to and read from the local cache folder (so 0.20 custom cachers,
which write local paths, keep working). Once an entry is committed locally, its files
are uploaded under the same relative path, the metadata last, so an entry whose metadata
is on the remote is complete there. A local miss is looked up on the remote: its files
are downloaded (each to a temporary name, then renamed), the metadata last, and the
entry is then checked against its content hash like any local one, so a partial or
corrupt remote entry is a miss, never a wrong value. ``fsspec`` (and ``s3fs`` for S3)
are imported only when a remote is configured (``pip install 'curifactory[remote]'``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import Any

from curifactory import fileio
from curifactory.errors import CacheError

logger = logging.getLogger(__name__)
INSTALL_HINT = "remote_cache needs fsspec (and s3fs for s3:// URLs): pip install 'curifactory[remote]'."


@functools.lru_cache(maxsize=8)
def _filesystem(url: str) -> tuple[Any, str]:
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise CacheError(INSTALL_HINT) from None
    try:
        fs, root = url_to_fs(url)
    except ImportError as exc:
        raise CacheError(f"{INSTALL_HINT} ({exc})") from None
    return fs, root.rstrip("/")


def _remote_path(url: str, cache_path: str, local: str) -> tuple[Any, str] | None:
    relative = os.path.relpath(local, cache_path)
    if relative.startswith(".."):
        return None  # a path_override outside the cache: not mirrored
    fs, root = _filesystem(url)
    return fs, f"{root}/{relative.replace(os.sep, '/')}"


def upload(url: str, cache_path: str, files: list[str], metadata_path: str) -> None:
    """Copy a committed entry's files, then its metadata, to the remote (a failure is a warning:
    the local entry stays valid)."""
    try:
        for local in [*files, metadata_path]:
            target = _remote_path(url, cache_path, local)
            if target is None:
                return
            fs, remote = target
            fs.put(local, remote, recursive=os.path.isdir(local))
    except CacheError:
        raise
    except Exception as exc:  # the network, permissions: the local entry is fine
        logger.warning("Could not upload the cache entry %s to %s: %s: %s", metadata_path, url,
                       type(exc).__name__, exc)


def download(url: str, cache_path: str, metadata_path: str) -> bool:
    """Fetch the remote entry whose metadata is ``metadata_path`` (files first, metadata last);
    False when the remote has none."""
    target = _remote_path(url, cache_path, metadata_path)
    if target is None:
        return False
    fs, remote_meta = target
    try:
        if not fs.exists(remote_meta):
            return False
        metadata = json.loads(fs.cat_file(remote_meta))
        names = metadata.get("files") if isinstance(metadata, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) and ".." not in n for n in names):
            return False
        folder = os.path.dirname(metadata_path)
        for name in names:
            local = os.path.join(folder, name)
            _, remote = _remote_path(url, cache_path, local)  # type: ignore[misc]
            with fileio.replacing(local) as tmp:
                fs.get(remote, tmp, recursive=fs.isdir(remote))
        with fileio.replacing(metadata_path) as tmp:
            fs.get(remote_meta, tmp)
    except Exception as exc:
        logger.warning("Could not download the cache entry %s from %s: %s: %s", metadata_path, url,
                       type(exc).__name__, exc)
        return False
    logger.info("Downloaded the cache entry %s from %s", metadata_path, url)
    return True
