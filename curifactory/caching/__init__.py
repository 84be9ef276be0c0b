"""Cachers: how a stage output is saved to and loaded from the cache, and ``Lazy``.

A cacher subclasses :class:`Cacheable` and implements ``save(obj)`` and ``load()``
using ``self.get_path()`` (or ``self.get_dir()``). Every ``save`` is made atomic
for you: while it runs, ``get_path``/``get_dir`` hand out temporary names in the
destination folder, and when it returns they are renamed into place, then the
metadata file (which carries a content hash of everything written) is written
last. An entry is valid only when its metadata is there and the hash matches, so a
killed save or a corrupted file is recomputed, never loaded.
"""

from __future__ import annotations

from curifactory.caching.base import (
    ALTERNATE_METADATA_SUFFIX,
    METADATA_SUFFIX,
    TRUST_STAT_BYTES,
    Cacheable,
    file_stat,
    instantiate,
    preview,
)
from curifactory.caching.builtin import (
    FileReferenceCacher,
    JsonCacher,
    PandasCacher,
    PandasCsvCacher,
    PandasJsonCacher,
    PathRef,
    PickleCacher,
    RawJupyterNotebookCacher,
)
from curifactory.caching.lazy import Deferred, Lazy
from curifactory.caching.location import ArtifactLocation, location_of_record

__all__ = [
    "ArtifactLocation",
    "location_of_record",
    "ALTERNATE_METADATA_SUFFIX",
    "METADATA_SUFFIX",
    "TRUST_STAT_BYTES",
    "Cacheable",
    "Deferred",
    "FileReferenceCacher",
    "JsonCacher",
    "Lazy",
    "PandasCacher",
    "PandasCsvCacher",
    "PandasJsonCacher",
    "PathRef",
    "PickleCacher",
    "RawJupyterNotebookCacher",
    "file_stat",
    "instantiate",
    "preview",
]
