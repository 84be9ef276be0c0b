"""Plain values for the report templates, read from a manager through the documented contract.

Nothing here writes files; :mod:`curifactory.reporting.render` does. Every value is
left as text for the templates to escape, except reportable HTML and the stage
graph's SVG, which the writer marks safe.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any

from curifactory.reporting.colors import record_color

MAX_VALUE_CHARS = 2000
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_SKIPPED_FIELDS = {"hash_representations", "hash", "name"}  # name and hash head each table


@dataclass
class RecordView:
    """What the report shows about one record."""

    index: int
    label: str
    color: str
    hash: str
    is_aggregate: bool
    hidden: bool
    input_labels: list[str]
    stage_runs: list[dict[str, Any]]
    reportable_count: int = 0
    metrics: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    info: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[dict[str, str]] = field(default_factory=list)

    @property
    def status_counts(self) -> str:
        """E.g. ``"2 executed, 1 cached"``."""
        counts: dict[str, int] = {}
        for run in self.stage_runs:
            counts[run["status"]] = counts.get(run["status"], 0) + 1
        return ", ".join(f"{n} {status}" for status, n in counts.items())

    @property
    def anchor(self) -> str:
        """The HTML id of the record's stage detail."""
        return f"record-{self.index}"


@dataclass
class ReportableView:
    """One rendered reportable and where it came from."""

    anchor: str
    name: str
    group: str | None
    stage: str | None
    record: RecordView | None
    html: Any
    error: str | None = None

    @property
    def color(self) -> str:
        """The colour of its record (grey without one)."""
        return self.record.color if self.record is not None else record_color(None)


@dataclass
class ParamSetView:
    """One distinct parameter set and the records that used it."""

    name: str
    hash: str
    type_name: str
    fields: list[tuple[str, Any]]
    records: list[RecordView] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        """The HTML id of the parameter set."""
        return f"params-{self.hash}"

    @property
    def values(self) -> dict[str, str]:
        """Every field's text by its dotted path (nested parameter sets flattened: ``model.depth``)."""
        return dict(_flatten(self.fields, ""))


def _flatten(rows: list[tuple[str, Any]], prefix: str) -> list[tuple[str, str]]:
    flat: list[tuple[str, str]] = []
    for name, value in rows:
        if isinstance(value, list):
            flat.extend(_flatten(value, f"{prefix}{name}."))
        else:
            flat.append((f"{prefix}{name}", value))
    return flat


@dataclass(frozen=True)
class ParamTable:
    """All parameter sets of a report as one table: a row per set, a column per field (dotted
    paths for nested sets); ``differs`` names the columns whose value is not the same in every row."""

    columns: tuple[str, ...]
    differs: frozenset[str]
    rows: tuple[tuple[ParamSetView, dict[str, str]], ...]
    """Each set with its :attr:`ParamSetView.values`."""


def param_table(views: list[ParamSetView]) -> ParamTable:
    """The :class:`ParamTable` of ``views`` (columns in order of first appearance)."""
    rows = tuple((view, view.values) for view in views)
    columns = tuple(dict.fromkeys(column for _, values in rows for column in values))
    differs = frozenset(c for c in columns if len({values.get(c) for _, values in rows}) > 1)
    return ParamTable(columns, differs, rows)


def safe_file_stem(text: str) -> str:
    """``text`` reduced to characters safe in file names and URLs."""
    stem = _UNSAFE_FILE_CHARS.sub("_", text).strip("._")
    return stem[:120] or "reportable"


def assign_file_names(reportables: list[Any]) -> None:
    """Give every reportable a ``qualified_name`` that is a unique, safe file stem."""
    seen: set[str] = set()
    for position, reportable in enumerate(reportables):
        base = reportable.qualified_name or reportable.name or f"{type(reportable).__name__}_{position}"
        stem = safe_file_stem(str(base))
        candidate, counter = stem, 1
        while candidate in seen:
            counter += 1
            candidate = f"{stem}_{counter}"
        seen.add(candidate)
        reportable.qualified_name = candidate


def record_label(record: Any) -> str:
    """``<param set name> (<short hash>)``, marking aggregates."""
    params = getattr(record, "params", None)
    name = getattr(params, "name", None) if params is not None else "no parameters"
    label = f"{name} ({record.get_hash()[:8]})"
    return f"aggregate: {label}" if getattr(record, "is_aggregate", False) else label


def _value_text(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + " ..."


def field_tree(obj: Any) -> list[tuple[str, Any]]:
    """(name, text) pairs of a dataclass's fields; a nested dataclass gives a nested list."""
    rows: list[tuple[str, Any]] = []
    for f in dataclasses.fields(obj):
        if f.name in _SKIPPED_FIELDS:
            continue
        value = getattr(obj, f.name, None)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            rows.append((f.name, field_tree(value)))
        else:
            rows.append((f.name, _value_text(value)))
    return rows


def project_path(path: str | None, root: str | None) -> str | None:
    """``path`` relative to the project folder ``root`` when it is inside it (as written otherwise)."""
    if not path or not root or not os.path.isabs(path):
        return path
    from curifactory.fileio import relative_inside

    return relative_inside(path, root)


def _stage_run_view(run: Any, root: str | None = None) -> dict[str, Any]:
    status = str(getattr(run.status, "value", run.status))
    artifacts = [
        {
            "name": a.name,
            "preview": a.preview,
            "path": project_path(a.path, root),
            "cacher": a.cacher,
            "computed": bool(a.computed),
            "produced_by": str(getattr(a, "produced_by", "") or ""),
        }
        for a in run.outputs
    ]
    return {
        "stage": run.stage,
        "status": status,
        "reason": str(getattr(run, "reason", "") or ""),
        "seconds": float(getattr(run, "seconds", 0.0) or 0.0),
        "inputs": list(run.inputs),
        "aggregate": bool(getattr(run, "aggregate", False)),
        "artifacts": artifacts,
        "attempts": [attempt.as_dict() for attempt in getattr(run, "attempts", ())],
    }


def record_views(records: list[Any]) -> list[RecordView]:
    """A view of every record of the manager, in order (hidden ones marked)."""
    position = {id(r): i for i, r in enumerate(records)}
    views = []
    manager = getattr(records[0], "manager", None) if records else None
    root = getattr(getattr(manager, "settings", None), "root", None)
    for index, record in enumerate(records):
        inputs = [
            f"#{position[id(r)]} {record_label(r)}" if id(r) in position else record_label(r)
            for r in (getattr(record, "input_records", None) or [])
        ]
        views.append(
            RecordView(
                index=index,
                label=record_label(record),
                color=record_color(index),
                hash=record.get_hash(),
                is_aggregate=bool(getattr(record, "is_aggregate", False)),
                hidden=bool(getattr(record, "hide", False)),
                input_labels=inputs,
                stage_runs=[_stage_run_view(run, root) for run in (getattr(record, "history", None) or [])],
                reportable_count=len(getattr(record, "reportables", None) or []),
                metrics=[(k, _metric_text(v)) for k, v in (getattr(record, "metrics", None) or {}).items()],
                tags=[(str(k), str(v)) for k, v in (getattr(record, "tags", None) or {}).items()],
                info=[(str(k), _value_text(v)) for k, v in (getattr(record, "info", None) or {}).items()],
            )
        )
    return views


def _metric_text(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def param_set_views(records: list[Any], views: list[RecordView]) -> list[ParamSetView]:
    """The distinct parameter sets of the visible records, in order of first use."""
    by_hash: dict[str, ParamSetView] = {}
    for record, view in zip(records, views):
        params = getattr(record, "params", None)
        if view.hidden or params is None or not dataclasses.is_dataclass(params):
            continue
        own_hash = str(getattr(params, "hash", None) or view.hash)
        entry = by_hash.get(own_hash)
        if entry is None:
            entry = ParamSetView(
                name=str(getattr(params, "name", "")),
                hash=own_hash,
                type_name=type(params).__qualname__,
                fields=field_tree(params),
            )
            by_hash[own_hash] = entry
        entry.records.append(view)
    return list(by_hash.values())


def param_files(manager: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """(file, [(set name, hash), ...]) for each parameter file of the run."""
    sets = getattr(manager, "param_file_param_sets", None) or {}
    files = list(getattr(manager, "parameter_files", None) or [])
    for name in sets:
        if name not in files:
            files.append(name)
    result = []
    for name in files:
        pairs = []
        for entry in sets.get(name, []) if isinstance(sets, dict) else []:
            if isinstance(entry, (list, tuple)) and len(entry) >= 2:
                pairs.append((str(entry[0]), str(entry[1])))
            elif hasattr(entry, "name"):
                pairs.append((str(entry.name), str(getattr(entry, "hash", "") or "")))
            else:
                pairs.append((str(entry), ""))
        result.append((str(name), pairs))
    return result


def run_info(manager: Any) -> dict[str, Any]:
    """The run's identity and provenance, for the report header."""
    timestamp = getattr(manager, "run_timestamp", None)
    status = str(getattr(manager, "status", "") or "")
    return {
        "experiment": getattr(manager, "experiment_name", None),
        "run_number": getattr(manager, "experiment_run_number", None),
        "reference": manager.get_reference_name(),
        "timestamp": timestamp.strftime("%Y-%m-%d %H:%M:%S") if timestamp is not None else "",
        "hostname": getattr(manager, "hostname", None),
        "status": status,
        "live": status.upper() == "LIVE" or bool(getattr(manager, "interactive", False)),
        "commit": getattr(manager, "git_commit_hash", None),
        "dirty": bool(getattr(manager, "git_workdir_dirty", False)),
        "param_files": param_files(manager),
        "run_line": getattr(manager, "run_line", "") or "",
        "reproduction_line": (getattr(manager, "reproduction_line", "") or "")
        if getattr(manager, "store_full", False)
        else "",
        "store_full": bool(getattr(manager, "store_full", False)),
        "notes": getattr(manager, "notes", None) or "",
        "error": getattr(manager, "error", None),
        "traceback": getattr(manager, "error_traceback", None),
        "tags": sorted((getattr(getattr(manager, "tracker", None), "tags", None) or {}).items()),
        "info": sorted((k, _value_text(v)) for k, v in (getattr(getattr(manager, "tracker", None), "info", None) or {}).items()),
    }


def group_reportables(views: list[ReportableView]) -> tuple[dict[str, list[ReportableView]], list[ReportableView]]:
    """Reportables by group (in order of first appearance), then the ungrouped ones."""
    groups: dict[str, list[ReportableView]] = {}
    ungrouped: list[ReportableView] = []
    for view in views:
        if view.group:
            groups.setdefault(str(view.group), []).append(view)
        else:
            ungrouped.append(view)
    return groups, ungrouped
