"""The SQLite index of the run log (``<manager_cache_path>/runindex.sqlite``, WAL mode).

It answers queries over many runs quickly and holds nothing the run log folders do
not: :func:`RunIndex.reindex` rebuilds it from them, and every query first indexes
run folders the index does not know yet (e.g. copied in from another machine) and
forgets runs whose folder is gone. SQLite's own locking (with a busy timeout)
keeps concurrent writers from losing each other's rows. A damaged index file is
moved aside and rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from typing import Any, Iterable

from curifactory import runlog

logger = logging.getLogger(__name__)

INDEX_NAME = "runindex.sqlite"
SCHEMA_VERSION = 4
SUMMARY_RECORDS = 20
"""A run of at most this many records keeps each record's metrics in its summary, else their ranges."""
BUSY_SECONDS = 60.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    reference TEXT PRIMARY KEY, experiment TEXT, run_number INTEGER, status TEXT, start TEXT,
    host TEXT, pid INTEGER, row TEXT NOT NULL, indexed REAL, summary TEXT);
CREATE TABLE IF NOT EXISTS records (reference TEXT PRIMARY KEY, count INTEGER NOT NULL, columns TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lineage (reference TEXT NOT NULL, producer TEXT NOT NULL, artifacts INTEGER NOT NULL,
    PRIMARY KEY (reference, producer));
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs (experiment, run_number);
CREATE INDEX IF NOT EXISTS lineage_by_producer ON lineage (producer);
"""


def producers(document: dict[str, Any]) -> dict[str, int]:
    """{run: how many of the artifacts this run loaded from the cache it produced}."""
    from curifactory.runlog import OUTPUT_FIELDS, STAGE_FIELDS, expand_stage

    found: dict[str, int] = {}
    own = document.get("reference")
    stage_fields = document.get("stage_fields") or STAGE_FIELDS
    fields = document.get("output_fields") or OUTPUT_FIELDS
    for record in document.get("records") or []:
        for stage in record.get("stages") or []:
            for out in expand_stage(stage, stage_fields, fields)["outputs"]:
                producer = out.get("produced_by")
                if producer and not out.get("computed") and producer != own:
                    found[producer] = found.get(producer, 0) + 1
    return found


def run_row(document: dict[str, Any]) -> dict[str, Any]:
    """The run-level columns of a run document (flat: ``tags.<key>``, ``info.<key>``)."""
    row = {key: document.get(key) for key in ("reference", "experiment", "run_number", "status", "start", "end",
                                               "duration", "commit", "dirty", "host", "user", "notes", "error",
                                               "original_run", "sweep")}
    row["records"] = len(document.get("records") or [])
    for group in ("tags", "info"):
        for key, value in (document.get(group) or {}).items():
            row[f"{group}.{key}"] = value
    return row


def run_summary(document: dict[str, Any]) -> dict[str, Any]:
    """What the run list page shows of a run's records, small whatever the run's size:
    ``{"records": [[name, {metric: value}, {tag: value}], ...]}``, or for a run of more than
    :data:`SUMMARY_RECORDS` records ``{"count": n, "ranges": {metric: [min, max]}}``."""
    records = document.get("records") or []
    if len(records) <= SUMMARY_RECORDS:
        return {"records": [[r.get("name"), r.get("metrics") or {}, r.get("tags") or {}] for r in records]}
    ranges: dict[str, list[float]] = {}
    for record in records:
        for name, value in (record.get("metrics") or {}).items():
            if isinstance(value, (int, float)):
                low, high = ranges.get(name, [value, value])
                ranges[name] = [min(low, value), max(high, value)]
    return {"count": len(records), "ranges": ranges}


def record_columns(document: dict[str, Any]) -> dict[str, list[Any]]:
    """The record-level columns of a run document, column-wise: ``{column: [value per record]}``."""
    rows = record_rows(document)
    columns: dict[str, list[Any]] = {}
    for position, row in enumerate(rows):
        for key, value in row.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * len(rows)
            column[position] = value
    return columns


def record_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The record-level columns of each record of a run document."""
    rows = []
    for record in document.get("records") or []:
        row: dict[str, Any] = {"record": record.get("index"), "params_name": record.get("name"),
                               "params_hash": record.get("hash"), "aggregate": bool(record.get("aggregate"))}
        for key, value in (record.get("params") or {}).items():
            row[f"params.{key}"] = value
        for group in ("metrics", "tags", "info"):
            for key, value in (record.get(group) or {}).items():
                row[f"{group}.{key}"] = value
        rows.append(row)
    return rows


class RunIndex:
    """The index of the runs under one ``manager_cache_path``."""

    def __init__(self, manager_cache_path: str, memory: bool = False):
        self.store_dir = manager_cache_path
        self.path = os.path.join(manager_cache_path, INDEX_NAME)
        self.memory = memory  # built in memory from the run log on each query: nothing is written

    def connect(self) -> sqlite3.Connection:
        """An open connection (the schema made, WAL on); a damaged file is moved aside first."""
        if self.memory:
            return self._open()
        os.makedirs(self.store_dir, exist_ok=True)
        try:
            return self._open()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            aside = f"{self.path}.damaged-{int(time.time())}"
            logger.warning("The run index %s is damaged (%s); it was moved to %s and is rebuilt from %s.",
                           self.path, exc, aside, runlog.runlog_root(self.store_dir))
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.replace(self.path + suffix, aside + suffix)
            return self._open()

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(":memory:" if self.memory else self.path, timeout=BUSY_SECONDS,
                                     isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                connection.executescript("DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS records; "
                                         "DROP TABLE IF EXISTS lineage;")
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            connection.close()
            raise
        return connection

    def _nothing_yet(self) -> bool:
        """No run log and no index: a query answers [] without creating files."""
        return not os.path.isdir(runlog.runlog_root(self.store_dir)) and (self.memory or not os.path.exists(self.path))

    def upsert(self, documents: Iterable[dict[str, Any]], connection: sqlite3.Connection | None = None) -> int:
        """Write (or replace) the rows of these run documents in one transaction."""
        own = connection is None
        connection = connection or self.connect()
        count = 0
        try:
            connection.execute("BEGIN IMMEDIATE")
            for document in documents:
                self._write(connection, document)
                count += 1
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            if own:
                connection.close()
        return count

    @staticmethod
    def _write(connection: sqlite3.Connection, document: dict[str, Any]) -> None:
        reference = document["reference"]
        row = run_row(document)
        connection.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (reference, row["experiment"], row["run_number"], row["status"], row["start"], document.get("host"),
             document.get("pid"), json.dumps(row, default=str), time.time(),
             json.dumps(run_summary(document), default=str)))
        connection.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                           (reference, row["records"], json.dumps(record_columns(document), default=str)))
        connection.execute("DELETE FROM lineage WHERE reference = ?", (reference,))
        connection.executemany("INSERT INTO lineage VALUES (?, ?, ?)",
                               [(reference, producer, count) for producer, count in producers(document).items()])

    def sync(self, connection: sqlite3.Connection) -> None:
        """Index run folders the index lacks, drop runs whose folder is gone, and re-read
        runs still marked running (they may have ended, or been killed)."""
        root = runlog.runlog_root(self.store_dir)
        try:
            on_disk = {name for name in os.listdir(root) if not name.startswith(".")}
        except FileNotFoundError:
            on_disk = set()
        known = dict(connection.execute("SELECT reference, status FROM runs").fetchall())
        reread = [ref for ref, status in known.items() if status in runlog.ACTIVE and ref in on_disk]
        missing = sorted(on_disk - known.keys()) + reread
        gone = [ref for ref in known if ref not in on_disk]
        if gone:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany("DELETE FROM runs WHERE reference = ?", [(r,) for r in gone])
            connection.executemany("DELETE FROM records WHERE reference = ?", [(r,) for r in gone])
            connection.executemany("DELETE FROM lineage WHERE reference = ?", [(r,) for r in gone])
            connection.execute("COMMIT")
        documents = (runlog.read_run(os.path.join(root, ref)) for ref in missing)
        self.upsert((d for d in documents if d is not None), connection)

    def reindex(self) -> int:
        """Rebuild the index from the run log folders; returns how many runs it holds."""
        connection = self.connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("DELETE FROM runs")
            connection.execute("DELETE FROM records")
            connection.execute("DELETE FROM lineage")
            connection.execute("COMMIT")
            self.sync(connection)
            return int(connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        finally:
            connection.close()

    def query(self, experiment_glob: str | None = None) -> list[tuple[dict[str, Any], dict[str, list[Any]]]]:
        """(run row, record columns) of every indexed run, oldest first, after a :meth:`sync`.

        Each table is read as one JSON array built by SQLite (``group_concat``), so
        Python decodes one string instead of one per row; records are stored
        column-wise per run, so a column name is decoded once per run.
        """
        if self._nothing_yet():
            return []
        connection = self.connect()
        try:
            self.sync(connection)
            where, args = ("WHERE experiment GLOB ?", (experiment_glob,)) if experiment_glob else ("", ())
            order = "ORDER BY runs.start, runs.reference"
            runs_sql = (f"SELECT '[' || coalesce(group_concat(row, ','), '') || ']' FROM "
                        f"(SELECT row FROM runs {where} {order})")
            records_sql = ("SELECT '[' || coalesce(group_concat(columns, ','), '') || ']' FROM (SELECT "
                           f"coalesce(records.columns, '{{}}') AS columns FROM runs LEFT JOIN records "
                           f"USING (reference) {where} {order})")
            runs = json.loads(connection.execute(runs_sql, args).fetchone()[0])
            records = json.loads(connection.execute(records_sql, args).fetchone()[0])
        finally:
            connection.close()
        return list(zip(runs, records))

    def summaries(self, references: list[str] | None = None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(run row, :func:`run_summary`) of every indexed run (or of these ``references``), after
        a :meth:`sync` (for the run list page)."""
        if self._nothing_yet():
            return []
        connection = self.connect()
        pairs: list[Any] = []
        try:
            self.sync(connection)
            chunks = [None] if references is None else [references[i:i + 500] for i in range(0, len(references), 500)]
            for chunk in chunks:
                where = "" if chunk is None else f"WHERE reference IN ({', '.join('?' * len(chunk))})"
                sql = ("SELECT '[' || coalesce(group_concat('[' || row || ',' || coalesce(summary, '{}') || ']', ','), "
                       f"'') || ']' FROM (SELECT row, summary FROM runs {where} ORDER BY start, reference)")
                pairs += json.loads(connection.execute(sql, chunk or ()).fetchone()[0])
        finally:
            connection.close()
        return [(row, summary) for row, summary in pairs]

    def lineage(self, reference: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """(runs ``reference`` loaded artifacts from, runs that loaded artifacts it produced),
        each as (run, number of artifacts), oldest first."""
        if self._nothing_yet():
            return [], []
        connection = self.connect()
        try:
            self.sync(connection)
            uses = connection.execute("SELECT producer, artifacts FROM lineage LEFT JOIN runs ON "
                                      "runs.reference = lineage.producer WHERE lineage.reference = ? "
                                      "ORDER BY runs.start, producer", (reference,)).fetchall()
            used_by = connection.execute("SELECT lineage.reference, artifacts FROM lineage JOIN runs USING (reference) "
                                         "WHERE producer = ? ORDER BY runs.start, lineage.reference",
                                         (reference,)).fetchall()
        finally:
            connection.close()
        return [(str(r), int(n)) for r, n in uses], [(str(r), int(n)) for r, n in used_by]

    def references(self) -> list[tuple[str, str, int]]:
        """(reference, experiment, run number) of every indexed run, oldest first, after a :meth:`sync`."""
        if self._nothing_yet():
            return []
        connection = self.connect()
        try:
            self.sync(connection)
            rows = connection.execute("SELECT reference, experiment, run_number FROM runs "
                                      "ORDER BY start, reference").fetchall()
        finally:
            connection.close()
        return [(str(r), str(e), int(n or 0)) for r, e, n in rows]
