"""The run index ``reports/index.html``: every stored run, grouped by experiment.

Built from the run blocks of ``store.json`` and the run index (tags and final
metrics, :mod:`curifactory.runindex`), so it can be rebuilt without a manager
(``experiment reports --update``). A run links to its report only when the report
folder exists. Each experiment's table has a row per record (a run of more than
:data:`curifactory.runindex.SUMMARY_RECORDS` records gets one row with each metric's range) and is
sorted and filtered by a small inline script, so the page works from ``file://``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

from curifactory import fileio
from curifactory.reporting.templating import default_css, environment, first_line, safe

logger = logging.getLogger(__name__)

INDEX_NAME = "index.html"
CSS_NAME = "style.css"
RUNS_PER_EXPERIMENT = 200
"""The index lists at most this many runs of each experiment, the newest; the page says how
many older ones it leaves out (``curifactory runs EXPERIMENT`` lists them all), so a store of
thousands of runs neither slows every run's report nor makes the page unusable."""


@dataclass
class RecordRow:
    """One record of a run as the index shows it (or, ``count`` > 1, a summary of many)."""

    name: str
    metrics: dict[str, Any] = field(default_factory=dict)
    sort_values: dict[str, Any] = field(default_factory=dict)
    count: int = 1
    tags: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunEntry:
    """One run as the index shows it."""

    reference: str
    experiment: str
    run_number: Any
    timestamp: str
    status: str
    dirty: bool
    hostname: str
    notes: str
    cli: str
    error: str
    full_store: bool
    has_report: bool
    tags: dict[str, Any] = field(default_factory=dict)
    rows: list[RecordRow] = field(default_factory=list)


@dataclass
class ExperimentRuns:
    """The runs of one experiment, newest first."""

    name: str
    runs: list[RunEntry] = field(default_factory=list)
    older: int = 0
    """Older runs of the experiment that the page leaves out (see :data:`RUNS_PER_EXPERIMENT`)."""

    @property
    def metric_names(self) -> list[str]:
        """Every metric a record of these runs logged."""
        return sorted({name for run in self.runs for row in run.rows for name in row.metrics})

    @property
    def tag_keys(self) -> list[str]:
        """Every tag key of these runs."""
        return sorted({key for run in self.runs for key in run.tags}
                      | {key for run in self.runs for row in run.rows for key in row.tags})


def load_runs(store_path: str | None, per_experiment: int | None = None) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The run blocks of ``store.json`` (a file, or the folder holding it; [] if missing), and
    how many older runs of each experiment were left out to keep ``per_experiment`` (the
    newest ones; a store written one block per line is read without parsing the others)."""
    if not store_path:
        return [], {}
    if os.path.isdir(store_path):
        from curifactory.store import STORE_FILENAME

        store_path = os.path.join(store_path, STORE_FILENAME)
    from curifactory.store import stamp_of

    try:  # read, not mapped: without the lock, another tool may truncate the file meanwhile
        with open(store_path, "rb") as handle:
            data, stamp = handle.read(), stamp_of(os.fstat(handle.fileno()))
        newest = _newest_blocks(data, per_experiment, store_path, stamp) if per_experiment is not None else None
        if newest is not None:
            return newest
        runs = json.loads(data)
    except FileNotFoundError:
        return [], {}
    except (OSError, ValueError) as exc:
        logger.warning("Could not read the experiment store %s (%s); the run index lists no runs.", store_path, exc)
        return [], {}
    if not isinstance(runs, list):
        logger.warning("%s does not hold a list of runs; the run index lists no runs.", store_path)
        return [], {}
    runs = [run for run in runs if isinstance(run, dict) and run.get("reference")]
    if per_experiment is None:
        return runs, {}
    kept, older = _newest_per_experiment([str(run.get("experiment_name")) for run in runs], per_experiment)
    return [runs[position] for position in kept], older


def _newest_per_experiment(experiments: list[str], per_experiment: int) -> tuple[list[int], dict[str, int]]:
    """The positions (in order) of the newest ``per_experiment`` blocks of each experiment, given
    each block's experiment oldest first, and how many older blocks each experiment leaves out."""
    positions: dict[str, list[int]] = {}
    for position, experiment in enumerate(experiments):
        positions.setdefault(experiment, []).append(position)
    kept = sorted(p for found in positions.values() for p in found[-per_experiment:])
    return kept, {name: len(found) - per_experiment for name, found in positions.items() if len(found) > per_experiment}


def _newest_blocks(data: bytes, per_experiment: int, path: str | None = None,
                   stamp: str | None = None) -> tuple[list[dict[str, Any]], dict[str, int]] | None:
    """The newest ``per_experiment`` blocks of each experiment, parsing only their lines (``None``
    when the store is not written one block per line)."""
    from curifactory.store import block_experiments, last_blocks, line_end

    experiments = block_experiments(data, path, stamp)
    if experiments is None:
        return None
    kept, older = _newest_per_experiment(experiments, per_experiment)
    offsets = last_blocks(data, experiments, kept[0]) if kept else {}  # the newest are near the end
    if offsets is None:
        return None
    return [json.loads(data[offsets[p]:line_end(data, offsets[p])]) for p in kept], older


def run_entry(run: dict[str, Any], reports_path: str) -> RunEntry:
    """The index line of one run block."""
    reference = str(run["reference"])
    report = os.path.join(reports_path, reference, INDEX_NAME)
    return RunEntry(
        reference=reference,
        experiment=str(run.get("experiment_name") or "(unnamed)"),
        run_number=run.get("run_number", ""),
        timestamp=str(run.get("timestamp") or ""),
        status=str(run.get("status") or "unknown"),
        dirty=bool(run.get("workdir_dirty")),
        hostname=str(run.get("hostname") or ""),
        notes=first_line(run.get("notes")),
        cli=str(run.get("cli") or ""),
        error=first_line(run.get("error")),
        full_store=bool(run.get("full_store")),
        has_report=os.path.isfile(report),
    )


def tracked_runs(store_dir: str | None,
                 references: list[str] | None = None) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """{reference: (run row, summary of its records)} from the run index ({} when there is none),
    of ``references`` only when given."""
    if not store_dir or not os.path.isdir(os.path.join(store_dir, "runlog")):
        return {}
    import sqlite3

    from curifactory.runindex import RunIndex

    try:
        return {str(run["reference"]): (run, summary) for run, summary in RunIndex(store_dir).summaries(references)}
    except (sqlite3.Error, OSError, ValueError) as exc:
        logger.warning("The run index of %s could not be read (%s); the run list shows no metrics.", store_dir, exc)
        return {}


def record_rows(summary: dict[str, Any]) -> list[RecordRow]:
    """The index rows of a run (one summary row for a run of many records)."""
    if "count" in summary:
        row = RecordRow(f"{summary['count']} records", count=int(summary["count"]))
        for name, (low, high) in (summary.get("ranges") or {}).items():
            row.metrics[name] = f"{low:.4g} – {high:.4g}"
            row.sort_values[name] = low
        return [row]
    rows = []
    for name, metrics, *tags in summary.get("records") or []:
        row = RecordRow(str(name), tags=dict(tags[0]) if tags else {})
        for metric, value in metrics.items():
            if isinstance(value, (int, float)):
                row.metrics[metric] = f"{value:.6g}"
                row.sort_values[metric] = value
        rows.append(row)
    return rows


def group_runs(entries: Iterable[RunEntry]) -> list[ExperimentRuns]:
    """Runs grouped by experiment, newest first; the experiment run most recently first."""
    ordered = sorted(entries, key=lambda e: (e.timestamp, _number(e.run_number)), reverse=True)
    groups: dict[str, ExperimentRuns] = {}
    for entry in ordered:
        groups.setdefault(entry.experiment, ExperimentRuns(entry.experiment)).runs.append(entry)
    return list(groups.values())


def _number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def update_index(reports_path: str, store_path: str | None, extra_runs: list[dict[str, Any]] | None = None) -> str:
    """Rewrite ``<reports_path>/index.html`` from the store's run blocks.

    Args:
        reports_path: the reports folder (created if missing).
        store_path: ``store.json`` or the folder holding it (``manager_cache_path``).
        extra_runs: run blocks to list even if the store does not hold them yet
            (e.g. a live run's block); a stored block with the same reference wins.

    Returns:
        The path of the written index.
    """
    reports_path = os.path.abspath(reports_path)
    os.makedirs(reports_path, exist_ok=True)
    runs, older = load_runs(store_path, RUNS_PER_EXPERIMENT)
    known = {run["reference"] for run in runs}
    runs += [r for r in extra_runs or [] if isinstance(r, dict) and r.get("reference") and r["reference"] not in known]
    store_dir = os.path.dirname(store_path) if store_path and not os.path.isdir(store_path) else store_path
    tracked = tracked_runs(store_dir, [str(run["reference"]) for run in runs])
    entries = []
    for run in runs:
        entry = run_entry(run, reports_path)
        row, summary = tracked.get(entry.reference, ({}, {}))
        entry.tags = {k[len("tags."):]: v for k, v in row.items() if k.startswith("tags.")}
        if row.get("status"):  # the run log knows better than a live run's 'LIVE' in store.json
            entry.status = str(row["status"])
        entry.rows = record_rows(summary) or [RecordRow("")]
        entries.append(entry)
    experiments = group_runs(entries)
    for experiment in experiments:
        experiment.older = older.get(experiment.name, 0)
    has_css = os.path.isfile(os.path.join(reports_path, CSS_NAME))
    latest = os.path.isfile(os.path.join(reports_path, "_latest", INDEX_NAME))
    html = environment().get_template("index.html").render(
        experiments=experiments,
        run_count=sum(len(e.runs) + e.older for e in experiments),
        css=CSS_NAME if has_css else None,
        inline_css=None if has_css else safe(default_css()),
        latest=latest,
    )
    path = os.path.join(reports_path, INDEX_NAME)
    fileio.atomic_write_text(path, html)
    return path
