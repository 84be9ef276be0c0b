"""Export runs to MLflow: one MLflow run per record (``curifactory export mlflow``).

Each record becomes an MLflow run. Its parameters are flattened (``params.<field
path>`` without the prefix), its metrics carry every logged point with its step
and timestamp, and ``inform`` values become parameters ``info.<key>``. Its tags are
the curifactory reference, experiment, commit, dirty flag, parameter-set name and
hash, and the run's and record's own tags. A record already exported, told by its
``curifactory.record_key`` tag, is skipped, so exporting twice makes no duplicate.
``mlflow`` is an optional extra (``curifactory[mlflow]``) imported only here.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

from curifactory.errors import UsageError

KEY_TAG = "curifactory.record_key"
BATCH = 900  # MLflow takes up to 1000 metrics per log_batch call


@dataclass(frozen=True)
class ExportResult:
    """What an export did: MLflow run ids made, and records skipped as already exported."""

    exported: tuple[str, ...]
    skipped: tuple[str, ...]
    experiment_id: str


def _client(tracking_uri: str | None) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UsageError("Exporting to MLflow needs the mlflow package: pip install 'curifactory[mlflow]'.") from None
    return MlflowClient(tracking_uri=tracking_uri)


def _millis(iso: Any) -> int | None:
    try:
        return int(datetime.datetime.fromisoformat(str(iso)).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    return str(experiment.experiment_id) if experiment is not None else str(client.create_experiment(name))


def _already(client: Any, experiment_id: str, key: str) -> bool:
    found = client.search_runs([experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1)
    return bool(found)


def _tags(document: dict[str, Any], record: dict[str, Any], key: str) -> dict[str, str]:
    tags = {KEY_TAG: key, "curifactory.reference": str(document["reference"]),
            "curifactory.experiment": str(document.get("experiment")),
            "curifactory.commit": str(document.get("commit") or ""), "curifactory.dirty": str(document.get("dirty")),
            "curifactory.params_name": str(record.get("name")), "curifactory.params_hash": str(record.get("hash")),
            "curifactory.status": str(document.get("status")), "mlflow.runName": f"{document['reference']} {record.get('name')}"}
    for source in (document.get("tags") or {}, record.get("tags") or {}):
        tags.update({str(k): str(v) for k, v in source.items()})
    return tags


def _params(record: dict[str, Any]) -> dict[str, str]:
    params = {str(k): str(v)[:6000] for k, v in (record.get("params") or {}).items()}
    params.update({f"info.{k}": str(v)[:6000] for k, v in (record.get("info") or {}).items()})
    return params


def export_record(client: Any, experiment_id: str, document: dict[str, Any], record: dict[str, Any],
                  points: Any) -> str:
    """Make one MLflow run for ``record`` of run ``document`` (``points``: its own logged points);
    returns its run id."""
    from mlflow.entities import Metric, Param, RunTag

    key = f"{document['reference']}#{record.get('index')}"
    run = client.create_run(experiment_id, start_time=_millis(document.get("start")),
                            tags=_tags(document, record, key))
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in _params(record).items()]
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start:start + 100])
    metrics = [Metric(str(m), float(v), int(w.timestamp() * 1000) if w == w else 0, int(s))
               for m, v, w, s in zip(points["metric"], points["value"], points["wall_time"], points["step"])]
    for start in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[start:start + BATCH])
    status = {"complete": "FINISHED", "live": "FINISHED", "running": "RUNNING",
              "interrupted": "KILLED"}.get(str(document.get("status")), "FAILED")
    client.set_terminated(run_id, status=status, end_time=_millis(document.get("end")))
    return str(run_id)


def export_runs(references: list[str], experiment: str | None = None, tracking_uri: str | None = None,
                store: str | None = None, artifacts: bool = False) -> ExportResult:
    """Export these runs (default: every run) to MLflow; returns what was made and skipped.

    Args:
        references: run references as ``curifactory show`` takes them ([] for all).
        experiment: the MLflow experiment (default: each run's curifactory experiment).
        tracking_uri: where MLflow stores runs (default: MLflow's own default).
        store: the curifactory store folder (default: the project's).
        artifacts: also upload each record's attached files.
    """
    from curifactory.runs import find_run, load_run, metrics_frame, store_dir
    from curifactory.runindex import RunIndex

    client = _client(tracking_uri)
    folder = store_dir(store)
    wanted = [find_run(r, folder) for r in references] or [run["reference"] for run, _ in RunIndex(folder).query()]
    exported, skipped, experiment_id = [], [], ""
    for reference in wanted:
        document = load_run(reference, folder)
        experiment_id = _experiment_id(client, experiment or str(document.get("experiment")))
        points = metrics_frame(document)
        by_record = dict(tuple(points.groupby("record"))) if len(points) else {}
        for record in document.get("records") or []:
            key = f"{reference}#{record.get('index')}"
            if _already(client, experiment_id, key):
                skipped.append(key)
                continue
            run_id = export_record(client, experiment_id, document, record, by_record.get(record.get("index"), points[:0]))
            if artifacts:
                for attached in record.get("attachments") or []:
                    client.log_artifact(run_id, os.path.join(document["folder"], attached["path"]))
            exported.append(run_id)
    return ExportResult(tuple(exported), tuple(skipped), experiment_id)
