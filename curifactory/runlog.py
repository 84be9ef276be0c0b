"""The run log: one folder of files per run, the source of truth of run tracking.

``<manager_cache_path>/runlog/<reference>/`` holds

    run.json              the run: identity, status, timing, git, host, tags, info, and per
                          record its parameters, final metrics, stage calls and artifacts
                          (a stage call, and each of its outputs, is a list of values in the
                          order ``stage_fields`` / ``output_fields`` name; readers get dicts)
    points-<pid>-<n>.jsonl  logged metric points, one line per (record, stage, metric)
                          series of a flush; written whole and renamed (never one file per
                          point, never a half line); a --parallel worker writes its own
    stages-<pid>-<n>.jsonl  stage calls finished so far (only while the run is going: a
                          killed run keeps them)
    attachments/<record hash>/<file>  files a stage attached

A folder copied in from another machine (rsync) is a complete run; the SQLite index
(:mod:`curifactory.runindex`) is built from these files and can always be rebuilt.
"""

from __future__ import annotations

import glob
import json
import os
import socket
import time
from contextlib import contextmanager
from typing import IO, Any, Iterator

from curifactory import fileio

RUNLOG_DIR = "runlog"
RUN_FILE = "run.json"
FORMAT = 2
STAGE_FIELDS = ("stage", "status", "started_at", "ended_at", "duration", "reason", "error", "outputs", "attempts")
"""The order of a stage call's values in ``run.json`` (``stage_fields`` there says it too)."""
OUTPUT_FIELDS = ("name", "path", "cacher", "content_hash", "size", "computed", "produced_by", "preview")
"""The order of an output's values in a stage call."""
FLUSH_SECONDS = float(os.environ.get("CURIFACTORY_FLUSH_SECONDS", "5"))
"""A long stage's points reach the disk at least this often (when it logs)."""
ACTIVE = ("running", "live")


def runlog_root(manager_cache_path: str) -> str:
    """The folder holding every run's log folder."""
    return os.path.join(manager_cache_path, RUNLOG_DIR)


def run_folder(manager_cache_path: str, reference: str) -> str:
    """The log folder of run ``reference``."""
    return os.path.join(runlog_root(manager_cache_path), reference)


Series = tuple[str, str, str, str]  # record hash, record name, stage, metric


class PointBuffer:
    """The points one stage call logged, kept until the call ends.

    Points are grouped per (record, stage, metric) series, three parallel lists each,
    so logging a point is a dictionary lookup and three appends. :meth:`take` hands
    out what was not written yet (a flush); :meth:`lines` every series whole (what
    the call's cache entry keeps, so a cached rerun shows the same points).
    """

    def __init__(self) -> None:
        self.series: dict[Series, tuple[list[Any], list[float], list[float]]] = {}
        self.written: dict[Series, int] = {}
        self.pending = 0

    def add(self, key: Series, value: float, step: Any, wall: float) -> None:
        lists = self.series.get(key)
        if lists is None:
            lists = self.series[key] = ([], [], [])
        lists[0].append(step)
        lists[1].append(value)
        lists[2].append(wall)
        self.pending += 1

    @staticmethod
    def _line(key: Series, steps: list[Any], values: list[float], walls: list[float]) -> dict[str, Any]:
        return {"record": key[0], "record_name": key[1], "stage": key[2], "metric": key[3],
                "steps": steps, "values": values, "walls": walls}

    def take(self) -> list[dict[str, Any]]:
        """The points not written yet, as chunk lines."""
        lines = []
        for key, (steps, values, walls) in self.series.items():
            done = self.written.get(key, 0)
            if done < len(steps):
                lines.append(self._line(key, steps[done:], values[done:], walls[done:]))
                self.written[key] = len(steps)
        self.pending = 0
        return lines

    def lines(self) -> list[dict[str, Any]]:
        """Every series whole."""
        return [self._line(key, *lists) for key, lists in self.series.items()]


class RunLogWriter:
    """Writes one run's log folder (a worker process writes only its chunks)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.pid = os.getpid()
        self.sequence = 0
        self.pending_stages: list[Any] = []  # finished stage calls, made into lines when written
        self.to_line: Any = None  # what makes a pending stage call a line (set by the tracker)
        self.pending_points: list[dict[str, Any]] = []  # e.g. points replayed from cache entries
        self.last_flush = time.monotonic()

    def write_chunk(self, kind: str, lines: list[dict[str, Any]]) -> None:
        """Write ``lines`` as one new ``<kind>-<pid>-<n>.jsonl`` file, atomically."""
        if not lines:
            return
        os.makedirs(self.folder, exist_ok=True)
        self.sequence += 1
        path = os.path.join(self.folder, f"{kind}-{self.pid}-{self.sequence:06d}.jsonl")
        text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        fileio.atomic_write_text(path, text)

    def flush(self, points: PointBuffer | None, stages: bool = True) -> None:
        """Write the points not written yet and (``stages``) the stage calls finished since
        the last flush that wrote them."""
        lines, self.pending_points = self.pending_points, []
        if points is not None and points.pending:
            lines += points.take()
        self.write_chunk("points", lines)
        if stages:
            self.last_flush = time.monotonic()
            rows, self.pending_stages = self.pending_stages, []
            self.write_chunk("stages", [self.to_line(row) for row in rows] if self.to_line else rows)

    def due(self) -> bool:
        """Whether the last flush is longer ago than :data:`FLUSH_SECONDS`."""
        return time.monotonic() - self.last_flush > FLUSH_SECONDS

    def write_run(self, document: dict[str, Any]) -> None:
        """(Re)write ``run.json`` atomically."""
        os.makedirs(self.folder, exist_ok=True)
        fileio.atomic_write_json(os.path.join(self.folder, RUN_FILE), document, indent=None)

    def drop_stage_chunks(self) -> None:
        """A finished ``run.json`` holds every stage call: the interim chunks go."""
        self.pending_stages = []
        for path in glob.glob(os.path.join(glob.escape(self.folder), "stages-*.jsonl")):
            try:
                os.remove(path)
            except OSError:
                pass

    @contextmanager
    def attach(self, record_hash: str, filename: str, mode: str, encoding: str | None) -> Iterator[IO[Any]]:
        """A file under ``attachments/<record hash>/``, renamed into place when the block ends."""
        if os.path.basename(filename) != filename or filename in ("", ".", ".."):
            raise ValueError(f"attach() takes a plain file name, not {filename!r}")
        if not any(flag in mode for flag in "wax") or "+" in mode or "r" in mode:
            raise ValueError(f"attach() writes a new file: use mode 'w' or 'wb', not {mode!r}")
        final = os.path.join(self.folder, "attachments", record_hash, filename)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        with fileio.replacing(final) as tmp:
            with open(tmp, mode.replace("x", "w").replace("a", "w"),
                      encoding=None if "b" in mode else (encoding or "utf-8")) as handle:
                yield handle


# -- reading ------------------------------------------------------------------------------------


def _read_lines(path: str) -> Iterator[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a foreign, damaged line: the others still count
    except OSError:
        return


def chunk_files(folder: str, kind: str) -> list[str]:
    """The folder's chunk files of ``kind`` (``points`` or ``stages``), oldest first per process."""
    return sorted(glob.glob(os.path.join(glob.escape(folder), f"{kind}-*.jsonl")))


def read_points(folder: str) -> Iterator[dict[str, Any]]:
    """Every series line of every points chunk of a run folder."""
    for path in chunk_files(folder, "points"):
        yield from _read_lines(path)


def record_key(record_hash: Any, name: Any) -> str:
    """What points are grouped by: a record's hash and name (two records of one run may
    share a hash under different names)."""
    return f"{record_hash}/{name}"


def final_metrics(folder: str) -> dict[str, dict[str, float]]:
    """{record key (:func:`record_key`): {metric: last logged value}} over every chunk of the run."""
    last: dict[str, dict[str, tuple[float, float]]] = {}
    for series in read_points(folder):
        walls, values = series.get("walls") or [], series.get("values") or []
        if not values:
            continue
        metrics = last.setdefault(record_key(series.get("record"), series.get("record_name")), {})
        name = str(series.get("metric"))
        wall = walls[-1] if walls else 0.0
        if name not in metrics or wall >= metrics[name][0]:
            metrics[name] = (wall, values[-1])
    return {record: {name: value for name, (_, value) in metrics.items()} for record, metrics in last.items()}


def pid_alive(pid: Any, host: Any) -> bool:
    """Whether process ``pid`` on ``host`` still runs (True when it cannot be told from here)."""
    if not isinstance(pid, int) or host != socket.gethostname():
        return True
    return pid == os.getpid() or fileio.pid_alive(pid)


def read_run(folder: str) -> dict[str, Any] | None:
    """The run document of a log folder, completed from its chunks; ``None`` without ``run.json``.

    A run that is still marked running but whose process is gone is reported
    ``interrupted``, with the stage calls and points it wrote before it stopped.
    """
    try:
        with open(os.path.join(folder, RUN_FILE), encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or "reference" not in document:
        return None
    _expand_stages(document)
    if document.get("status") in ACTIVE:
        if not pid_alive(document.get("pid"), document.get("host")):
            document["status"] = "interrupted"
            document.setdefault("error", "the process ended without closing the run (killed?)")
        _complete_from_chunks(document, folder)
    return document


def expand_stage(values: Any, stage_fields: Any = STAGE_FIELDS, output_fields: Any = OUTPUT_FIELDS) -> dict[str, Any]:
    """A stage call of ``run.json`` as a dict (its outputs too); a dict is returned as it is."""
    if isinstance(values, dict):
        return values
    row = dict(zip(stage_fields, values))
    row["outputs"] = [dict(zip(output_fields, out)) for out in row.get("outputs") or []]
    if not row.get("error"):
        row.pop("error", None)
    if not row.get("attempts"):
        row.pop("attempts", None)
    return row


def _expand_stages(document: dict[str, Any]) -> None:
    stage_fields = document.pop("stage_fields", STAGE_FIELDS)
    output_fields = document.pop("output_fields", OUTPUT_FIELDS)
    for record in document.get("records") or []:
        record["stages"] = [expand_stage(s, stage_fields, output_fields) for s in record.get("stages") or []]


def _complete_from_chunks(document: dict[str, Any], folder: str) -> None:
    """Fill the records, stage calls and final metrics of an unfinished run from its chunks."""
    records: dict[str, dict[str, Any]] = {record_key(r.get("hash"), r.get("name")): r
                                          for r in document.get("records") or []}
    order = list(records)
    for path in chunk_files(folder, "stages"):
        for row in _read_lines(path):
            key = record_key(row.get("record"), row.get("record_name"))
            if key not in records:
                records[key] = {"index": row.get("record_index", len(order)), "name": row.get("record_name"),
                                "hash": row.get("record"), "aggregate": bool(row.get("aggregate")), "params": {},
                                "stages": [], "metrics": {}, "tags": {}, "info": {}, "attachments": []}
                order.append(key)
            record = records[key]
            record.setdefault("stages", []).append(row.get("call", {}))
            for field in ("params", "tags", "info"):
                if row.get(field):
                    record.setdefault(field, {}).update(row[field])
    for key, metrics in final_metrics(folder).items():
        if key not in records:  # it logged points, but no stage call of it was written yet
            record_hash, _, name = key.partition("/")
            records[key] = {"index": len(order), "name": name, "hash": record_hash, "aggregate": False,
                            "params": {}, "stages": [], "metrics": {}, "tags": {}, "info": {}, "attachments": []}
            order.append(key)
        records[key].setdefault("metrics", {}).update(metrics)
    document["records"] = [records[key] for key in order]
