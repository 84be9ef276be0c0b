"""Every run as data: :func:`load_runs`, :func:`load_metrics`, :func:`load_run`, :func:`find_run`.

They read the SQLite run index (brought up to date with the run log folders first,
see :mod:`curifactory.runindex`) or a run's own folder. pandas is imported only
by the functions that return a DataFrame.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from typing import Any, Iterable

from curifactory import runlog
from curifactory.errors import RunNotFoundError, UsageError
from curifactory.runindex import RunIndex
from curifactory.runsources import RunSource, resolve

RUN_COLUMNS = ("reference", "experiment", "run_number", "status", "start", "end", "duration", "commit", "dirty",
               "host", "user", "notes", "error")
RECORD_COLUMNS = ("record", "params_name", "params_hash", "aggregate")
GROUPS = ("params.", "metrics.", "tags.", "info.")
LEVELS = ("record", "run")
STATUSES = ("complete", "error", "interrupted", "running", "live")


Store = Any
"""What ``store=`` takes: ``None`` (the project's own), a project or data folder, a glob
(``"~/projects/*/data"``), an fsspec URL (``"s3://bucket/project/data"``), or a list of
them (see :mod:`curifactory.runsources`)."""


def store_dir(store: Store = None) -> str:
    """The folder holding ``store.json`` and the run log: the one ``store`` names, else the
    project's ``manager_cache_path`` (``curifactory_config.json`` here or up to 3 folders above).

    Raises:
        UsageError: ``store`` names several folders (use :func:`store_sources`).
    """
    sources = store_sources(store)
    if len(sources) > 1:
        raise UsageError(f"This reads one store, but {store!r} names {len(sources)}: "
                         f"{', '.join(s.label for s in sources)}.")
    return sources[0].folder


def store_sources(store: Store = None) -> list[RunSource]:
    """The folders ``store`` names (a URL is mirrored locally first)."""
    return resolve(store)


def _index(source: RunSource) -> RunIndex:
    return RunIndex(source.folder, memory=source.index_in_memory)


def _columns(runs: list[tuple[dict[str, Any], dict[str, list[Any]]]], level: str) -> dict[str, list[Any]]:
    """The frame's columns, built column-wise: a run's values repeat once per record;
    a column a run lacks is ``None`` in its rows."""
    columns: dict[str, list[Any]] = {}
    total = 0
    for run, records in runs:
        count = 1 if level == "run" else max((len(v) for v in records.values()), default=0) or 1
        values = dict(run)
        if level == "record":
            values.pop("records", None)
            values.update(records)
        for key, value in values.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * total
            elif len(column) < total:
                column.extend([None] * (total - len(column)))
            column.extend(value if key in records and level == "record" else [value] * count)
        total += count
    for column in columns.values():
        if len(column) < total:
            column.extend([None] * (total - len(column)))
    return columns


def _typed(values: list[Any]) -> Any:
    """A column's values; integers (or booleans) with gaps become a nullable array, not floats."""
    present = [v for v in values if v is not None]
    if len(present) == len(values) or not present:
        return values
    import pandas as pd

    if all(type(v) is int for v in present):
        return pd.array(values, dtype="Int64")
    if all(type(v) is bool for v in present):
        return pd.array(values, dtype="boolean")
    return values


def _ordered(columns: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(columns))
    fixed = [c for c in (*RUN_COLUMNS, "records", *RECORD_COLUMNS) if c in present]
    grouped = [c for prefix in GROUPS for c in sorted(c for c in present if c.startswith(prefix))]
    rest = [c for c in present if c not in fixed and c not in grouped]
    return fixed + grouped + rest


def _when(value: Any, what: str) -> Any:
    import pandas as pd

    try:
        return pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{what}={value!r} is not a date or time ({exc}); use e.g. '2026-12-01' or "
                         f"'2026-12-01 14:00'.") from None


def backticked(where: str, columns: Iterable[str]) -> str:
    """``where`` with every column name that has a dot in it quoted for ``DataFrame.query``
    (so ``metrics.loss < 0.3`` works as typed)."""
    for column in sorted((c for c in columns if "." in c), key=len, reverse=True):
        where = re.sub(rf"(?<![`\w.]){re.escape(column)}(?![\w`])", f"`{column}`", where)
    return where


def query_frame(frame: Any, where: str) -> Any:
    """``frame.query(where)`` with a clear error for a malformed query."""
    try:
        return frame.query(backticked(where, frame.columns), engine="python")
    except Exception as exc:
        columns = list(frame.columns)
        known = ", ".join(columns[:40]) + (f" and {len(columns) - 40} more" if len(columns) > 40 else "")
        level = ("" if any(c.startswith(("params.", "metrics.")) for c in columns) else
                 " (a row per run has no params.* or metrics.* columns: leave out --level run)")
        raise UsageError(f"--where {where!r} is not a valid query over the runs ({type(exc).__name__}: {exc}). "
                         f"Write a pandas query over the columns, e.g. \"metrics.loss < 0.3 and "
                         f"params.depth == 3\"; the columns are: {known}{level}.") from None


def load_runs(experiment: str | None = None, *, status: str | Iterable[str] | None = None,
              tags: dict[str, Any] | None = None, since: Any = None, until: Any = None, where: str | None = None,
              level: str = "record", store: Store = None, sweep: str | None = None) -> Any:
    """Every run as a pandas DataFrame: one row per record of each run (``level="run"``: per run).

    Columns: ``reference, experiment, run_number, status, start, end, duration,
    commit, dirty, host, user, notes, error``, then per record ``record,
    params_name, params_hash, aggregate``, ``params.<field path>``,
    ``metrics.<name>`` (the last logged value), ``tags.<key>`` (the run's tags, a
    record's own tags win) and ``info.<key>``.

    Args:
        experiment: an experiment name or glob pattern (``"poly*"``).
        status: keep runs with this status (or any of these): ``complete``,
            ``error``, ``interrupted``, ``running``, ``live``.
        tags: keep rows whose tags have these values.
        since, until: keep runs started at or after / before this time.
        where: a pandas query over the columns (``"metrics.loss < 0.3"``).
        level: ``"record"`` or ``"run"``.
        sweep: keep the runs of this sweep (the ``sweep`` column: a YAML grid or random
            file's id, the same each time the file is run).
        store: where to read runs: the project's own by default; another project folder
            (or its data folder), a glob (``"~/projects/*/data"``), an fsspec URL
            (``"s3://bucket/project/data"``) or a list of them. A folder without an index
            of its own is indexed in memory; with several, the ``store`` column says
            which each row came from.
    """
    import pandas as pd

    if level not in LEVELS:
        raise UsageError(f"level={level!r}; use 'record' (a row per record) or 'run' (a row per run).")
    sources = store_sources(store)
    rows = []
    for source in sources:
        found = _index(source).query(experiment)
        if len(sources) > 1:
            for run, _ in found:
                run["store"] = source.label
        rows += found
    if len(sources) > 1:
        rows.sort(key=lambda pair: str(pair[0].get("start") or ""))
    frame = pd.DataFrame({name: _typed(values) for name, values in _columns(rows, level).items()})
    if frame.empty:
        frame = pd.DataFrame(columns=list(RUN_COLUMNS) + ([] if level == "run" else list(RECORD_COLUMNS)))
    frame = frame[_ordered(frame.columns)]
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column], errors="coerce")
    if sweep is not None:
        frame = frame[frame["sweep"] == sweep] if "sweep" in frame.columns else frame.iloc[0:0]
    return _filtered(frame, status, tags, since, until, where)


def _filtered(frame: Any, status: Any, tags: dict[str, Any] | None, since: Any, until: Any,
              where: str | None) -> Any:
    if status is not None:
        wanted = [status] if isinstance(status, str) else list(status)
        unknown = [s for s in wanted if s not in STATUSES]
        if unknown:
            raise UsageError(f"status {', '.join(map(repr, unknown))} is not a run status; use "
                             f"{', '.join(STATUSES)}.")
        frame = frame[frame["status"].isin(wanted)]
    for key, value in (tags or {}).items():
        column = f"tags.{key}"
        frame = frame[frame[column] == str(value)] if column in frame.columns else frame.iloc[0:0]
    if since is not None:
        frame = frame[frame["start"] >= _when(since, "since")]
    if until is not None:
        frame = frame[frame["start"] < _when(until, "until")]
    if where:
        frame = query_frame(frame, where)
    return frame.reset_index(drop=True)


# -- one run ------------------------------------------------------------------------------------


def find_run(wanted: str, store: Store = None) -> str:
    """The full reference of the run ``wanted`` names: its reference, a unique prefix,
    ``EXPERIMENT#N``, ``EXPERIMENT#latest`` or ``latest`` (``store`` as for :func:`load_runs`).

    Raises:
        RunNotFoundError: no run, or several, match (the message lists the nearest).
    """
    return locate_run(wanted, store)[1]


def locate_run(wanted: str, store: Store = None) -> tuple[RunSource, str]:
    """(the source holding it, the full reference) of the run ``wanted`` names (see :func:`find_run`)."""
    sources = store_sources(store)
    known: list[tuple[str, str, int]] = []
    where: dict[str, list[RunSource]] = {}
    for source in sources:
        for entry in _index(source).references():
            if entry[0] not in where:
                known.append(entry)
            where.setdefault(entry[0], []).append(source)
    if len(sources) > 1:  # in time order across the stores (a reference ends with its start time)
        known.sort(key=lambda entry: entry[0].rsplit("_", 1)[-1])
    references = [ref for ref, _, _ in known]
    wanted = str(wanted).strip()
    matches = _matches(wanted, known)
    if len(matches) == 1 and len(where[matches[0]]) > 1:
        raise RunNotFoundError(f"Run {matches[0]} is in {len(where[matches[0]])} of the stores read: "
                               f"{', '.join(s.label or s.folder for s in where[matches[0]])}. Name one store.")
    if len(matches) == 1:
        return where[matches[0]][0], matches[0]
    folder = ", ".join(runlog.runlog_root(s.folder) for s in sources)
    if matches:
        stores = len(sources) > 1
        named = [f"{ref} (in {where[ref][0].label or where[ref][0].folder})" if stores else ref for ref in matches]
        raise RunNotFoundError(f"'{wanted}' names {len(matches)} runs: {', '.join(named[:8])}"
                               f"{' ...' if len(matches) > 8 else ''}. Give more of the reference"
                               f"{', or read one store (--store)' if stores else ', or EXPERIMENT#N'}.")
    near = difflib.get_close_matches(wanted, references, n=5, cutoff=0.4) or references[-5:]
    raise RunNotFoundError(f"No run '{wanted}' in {folder}. "
                           f"{'Nearest: ' + ', '.join(near) + '. ' if near else 'There are no runs yet. '}"
                           f"Name a run by its reference, a unique prefix, EXPERIMENT#N or 'latest' "
                           f"(see 'curifactory runs').")


def _matches(wanted: str, known: list[tuple[str, str, int]]) -> list[str]:
    if wanted in ("latest", "last"):
        return [known[-1][0]] if known else []  # the index lists runs by start time
    if "#" in wanted:
        experiment, _, number = wanted.rpartition("#")
        runs = [k for k in known if fnmatch.fnmatchcase(k[1], experiment)]
        if number in ("latest", "last"):  # the newest: by start time, then number (several stores)
            return [max(runs, key=lambda k: (k[0].rsplit("_", 1)[-1], k[2]))[0]] if runs else []
        if number.isdigit():
            return [ref for ref, exp, n in runs if n == int(number) and exp == experiment] or \
                   [ref for ref, _, n in runs if n == int(number)]
        return []
    references = [ref for ref, _, _ in known]
    if wanted in references:
        return [wanted]
    return [r for r in references if r.startswith(wanted + "_")] or [r for r in references if r.startswith(wanted)]


def load_run(reference: str, store: Store = None) -> dict[str, Any]:
    """The whole run document (``run.json``, completed for an unfinished run) of a run reference,
    with ``folder`` (its run log folder) added and artifact paths made absolute (``store`` as
    for :func:`load_runs`)."""
    source, full = locate_run(reference, store)
    folder = source.folder
    document = runlog.read_run(runlog.run_folder(folder, full))
    if document is None:
        raise RunNotFoundError(f"The run log of {full} ({runlog.run_folder(folder, full)}/run.json) is missing or "
                               f"unreadable; 'curifactory runs --reindex' forgets runs whose folder is gone.")
    document["folder"] = runlog.run_folder(folder, full)
    cache = document.get("cache_path") or ""
    for record in document.get("records") or []:
        for stage in record.get("stages") or []:
            for out in stage.get("outputs") or []:
                if out.get("path") and not os.path.isabs(out["path"]):
                    out["path"] = os.path.join(cache, out["path"])  # run.json keeps them relative to the cache
    return document


def load_metrics(reference: str, record: int | str | None = None, store: Store = None) -> Any:
    """Every logged point of a run as a long DataFrame: ``reference, record, params_name,
    stage, metric, step, value, wall_time, cached_from`` (``record``: a record index or a
    parameter-set name to keep only that record's points)."""
    return metrics_frame(load_run(reference, store), record)


def metrics_frame(document: dict[str, Any], record: int | str | None = None) -> Any:
    """:func:`load_metrics` of a run document already loaded (:func:`load_run`)."""
    import pandas as pd

    records = document.get("records") or []
    index_of = {r.get("hash"): r.get("index") for r in records}
    index_of.update({runlog.record_key(r.get("hash"), r.get("name")): r.get("index") for r in records})
    columns: dict[str, list[Any]] = {k: [] for k in ("record", "params_name", "stage", "metric", "step", "value",
                                                     "wall_time", "cached_from")}
    for series in runlog.read_points(document["folder"]):
        count = len(series.get("values") or [])
        own = runlog.record_key(series.get("record"), series.get("record_name"))
        fixed = {"record": index_of.get(own, index_of.get(series.get("record"))),
                 "params_name": series.get("record_name"), "stage": series.get("stage"),
                 "metric": series.get("metric"), "cached_from": series.get("cached_from")}
        for name, value in fixed.items():
            columns[name].extend([value] * count)
        columns["step"].extend(series.get("steps") or [])
        columns["value"].extend(series.get("values") or [])
        columns["wall_time"].extend(series.get("walls") or [])
    frame = pd.DataFrame(columns)
    frame.insert(0, "reference", document["reference"])
    frame["wall_time"] = pd.to_datetime(frame["wall_time"], unit="s", errors="coerce")
    if record is not None:
        if not any(r.get("index") == record or str(r.get("name")) == str(record) for r in records):
            names = ", ".join(f"{r.get('index')}:{r.get('name')}" for r in records) or "none"
            raise RunNotFoundError(f"Run {document['reference']} has no record {record!r}; its records are: {names}.")
        frame = frame[(frame["record"] == record) | (frame["params_name"] == str(record))]
    return frame.sort_values(["record", "metric", "step"], kind="stable").reset_index(drop=True)


def lineage(reference: str, store: Store = None) -> dict[str, Any]:
    """Which runs a run took cached artifacts from (``uses``) and which runs took artifacts it
    produced (``used_by``): ``{"reference": ..., "uses": [(run, artifacts)], "used_by": [...]}``."""
    source, full = locate_run(reference, store)
    uses, used_by = _index(source).lineage(full)
    return {"reference": full, "uses": uses, "used_by": used_by}
