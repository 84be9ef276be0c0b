"""The built-in cachers: pickle, JSON, pandas, file references and path references."""

from __future__ import annotations

import json
import logging
import os
import pickle
import warnings
from typing import Any

from curifactory.caching.base import Cacheable
from curifactory.errors import CacheError, CacheWarning

logger = logging.getLogger(__name__)

class PickleCacher(Cacheable):
    """Saves any picklable object (``.pkl``)."""

    def __init__(self, *args: Any, extension: str = ".pkl", **kwargs: Any):
        super().__init__(*args, extension=extension, **kwargs)

    def save(self, obj: Any) -> str:
        path = self.get_path()
        with open(path, "wb") as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    def load(self) -> Any:
        with open(self.get_path(), "rb") as handle:
            return pickle.load(handle)


class JsonCacher(Cacheable):
    """Saves JSON-serialisable objects (``.json``)."""

    def __init__(self, *args: Any, extension: str = ".json", **kwargs: Any):
        super().__init__(*args, extension=extension, **kwargs)

    def save(self, obj: Any) -> str:
        path = self.get_path()
        text = json.dumps(obj, indent=4, default=str)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        change = round_trip_change(obj, json.loads(text))
        if change is not None:
            message = (f"JsonCacher: the output '{self.name}' of stage '{self.stage}' does not survive the JSON "
                       f"round trip ({change}), so a run that loads it from the cache sees a different value "
                       f"than this run did. Return JSON types (lists, str keys, no sets) or use PickleCacher.")
            logger.warning(message)
            warnings.warn(message, CacheWarning, stacklevel=2)
        return path

    def load(self) -> Any:
        with open(self.get_path(), encoding="utf-8") as handle:
            return json.load(handle)


class RawJupyterNotebookCacher(Cacheable):
    """Saves a list of code cells (each a list of source lines) as a Jupyter notebook
    (``.ipynb``) and the cells themselves beside it (``_cells.json``, which ``load``
    returns). The notebook is written as nbformat 4 JSON directly: no converter is needed.
    """

    def __init__(self, *args: Any, extension: str = ".ipynb", **kwargs: Any):
        super().__init__(*args, extension=extension, **kwargs)

    def save(self, obj: list[list[str]]) -> str:
        cells = [[str(line) for line in cell] for cell in obj]
        notebook = {
            "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                       "source": _source_lines(cell)} for cell in cells],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}},
            "nbformat": 4,
            "nbformat_minor": 2,
        }
        path = self.get_path()
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(notebook, handle, indent=1)
        with open(self.get_path("_cells.json"), "w", encoding="utf-8") as handle:
            json.dump(cells, handle, indent=4)
        return path

    def load(self) -> list[list[str]]:
        with open(self.get_path("_cells.json"), encoding="utf-8") as handle:
            return json.load(handle)  # type: ignore[no-any-return]


def _source_lines(cell: list[str]) -> list[str]:
    """A cell's lines as a notebook stores them: each but the last ends with a newline."""
    text = "\n".join(cell)
    return text.splitlines(keepends=True)


def _where(path: str) -> str:
    return f" at {path}" if path else ""


def round_trip_change(before: Any, after: Any, path: str = "") -> str | None:
    """How a value differs from what JSON gives back (``None`` when it survives whole; NaN
    counts as surviving)."""
    if isinstance(before, float) and isinstance(after, float):
        same = before == after or (before != before and after != after)
        return None if same else f"{before!r} becomes {after!r}{_where(path)}"
    if type(before) is not type(after) and not (isinstance(before, bool) is isinstance(after, bool)
                                                 and isinstance(before, (int, float)) and type(after) in (int, float)
                                                 and before == after):
        return f"a {type(before).__name__} is loaded back as a {type(after).__name__}{_where(path)}"
    if isinstance(before, dict):
        if list(before) != list(after):
            keys = [k for k in before if not isinstance(k, str)]
            what = f"the key {keys[0]!r} becomes a string" if keys else "the keys change"
            return f"{what}{_where(path)}"
        for key, value in before.items():
            change = round_trip_change(value, after[key], f"{path}[{key!r}]")
            if change:
                return change
        return None
    if isinstance(before, list):
        if len(before) != len(after):
            return f"the length changes{_where(path)}"
        for index, (a, b) in enumerate(zip(before, after)):
            change = round_trip_change(a, b, f"{path}[{index}]")
            if change:
                return change
        return None
    return None if before == after else f"{before!r} becomes {after!r}{_where(path)}"


_PANDAS_EXTENSIONS = {
    "pickle": ".pkl",
    "csv": ".csv",
    "json": ".json",
    "parquet": ".parquet",
    "orc": ".orc",
    "hdf5": ".h5",
    "excel": ".xlsx",
    "xml": ".xml",
}
_PANDAS_METHODS = {"hdf5": "hdf", "pickle": "pickle"}
_PANDAS_TO_DEFAULTS = {"json": {"double_precision": 15}, "hdf5": {"key": "df"}, "xml": {"index": False}}
_PANDAS_READ_DEFAULTS = {"csv": {"index_col": 0}, "excel": {"index_col": 0}}


class PandasCacher(Cacheable):
    """Saves a pandas DataFrame in the given ``format`` (pandas imported on use).

    Args:
        format: ``pickle`` (default), ``csv``, ``json``, ``parquet``, ``orc``,
            ``hdf5``, ``excel`` or ``xml``.
        to_args: keyword arguments for ``DataFrame.to_<format>``.
        read_args: keyword arguments for ``pandas.read_<format>``.
    """

    def __init__(
        self,
        path_override: str | None = None,
        format: str = "pickle",
        to_args: dict | None = None,
        read_args: dict | None = None,
        **kwargs: Any,
    ):
        if format not in _PANDAS_EXTENSIONS:
            raise ValueError(
                f"PandasCacher format '{format}' is not supported; use one of {sorted(_PANDAS_EXTENSIONS)}."
            )
        kwargs.setdefault("extension", _PANDAS_EXTENSIONS[format])
        super().__init__(path_override, **kwargs)
        self.format = format
        # as in 0.20: defaults that make a cached frame read back equal, used only
        # when the caller passes no arguments of their own
        self.to_args = dict(to_args) if to_args is not None else dict(_PANDAS_TO_DEFAULTS.get(format, {}))
        self.read_args = dict(read_args) if read_args is not None else dict(_PANDAS_READ_DEFAULTS.get(format, {}))

    def save(self, obj: Any) -> str:
        path = self.get_path()
        method = getattr(obj, "to_" + _PANDAS_METHODS.get(self.format, self.format))
        method(path, **self.to_args)
        return path

    def load(self) -> Any:
        import pandas as pd

        reader = getattr(pd, "read_" + _PANDAS_METHODS.get(self.format, self.format))
        return reader(self.get_path(), **self.read_args)


class PandasCsvCacher(PandasCacher):
    """A DataFrame as CSV, read back with its index (``index_col=0``)."""

    def __init__(self, path_override: str | None = None, to_csv_args: dict | None = None,
                 read_csv_args: dict | None = None, **kwargs: Any):
        read_args = {"index_col": 0, **(read_csv_args or {})}
        super().__init__(path_override, format="csv", to_args=to_csv_args, read_args=read_args, **kwargs)


class PandasJsonCacher(PandasCacher):
    """A DataFrame as JSON."""

    def __init__(self, path_override: str | None = None, to_json_args: dict | None = None,
                 read_json_args: dict | None = None, **kwargs: Any):
        super().__init__(path_override, format="json", to_args=to_json_args, read_args=read_json_args, **kwargs)


class FileReferenceCacher(JsonCacher):
    """Saves a list of file paths (JSON); valid only while every listed file exists."""

    def referenced_files(self) -> list[str]:
        """The paths in the saved list (empty when unreadable)."""
        try:
            files = self.load()
        except (OSError, ValueError):
            return []
        return [files] if isinstance(files, str) else list(files)

    def load(self) -> Any:
        with open(self.get_path(), encoding="utf-8") as handle:
            files = json.load(handle)
        where = self._where()
        if isinstance(files, str):
            return self._relocate(files, where)
        return [self._relocate(f, where) for f in files]

    def _validate(self) -> str | None:
        reason = super()._validate()
        if reason is not None:
            return reason
        for path in self.referenced_files():
            if not os.path.exists(path):
                return f"the referenced file {path} no longer exists"
        return None


class PathRef(Cacheable):
    """Tracks a path the stage writes itself; the stage returns that path.

    Use ``record.stage_cachers[i].get_path()`` inside the stage to get the path to
    write to; the stored and loaded value is the path string.
    """

    def save(self, obj: Any) -> str:
        path = self._final_path()
        if os.fspath(obj) != path:
            raise CacheError(
                f"PathRef '{self.name}' of stage '{self.stage}' expected the stage to return "
                f"the path it wrote, {path}, but it returned {obj!r}."
            )
        return path

    def load(self) -> str:
        return self._final_path()

    def _write_metadata(self, obj: Any, written: list[str]) -> None:
        super()._write_metadata(obj, [self._final_path()])
