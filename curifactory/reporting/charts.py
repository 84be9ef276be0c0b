"""Charts of logged metrics: Vega-Lite specifications drawn by vega-embed, offline.

The JavaScript (vega, vega-lite, vega-embed) comes from the ``vl-convert-python``
package (``pip install 'curifactory[charts]'``), which builds it into one classic
script; it is written once per machine to a cache folder and copied to
``<reports>/_assets/vega-embed.js``, so report pages need no network, from
``file://`` too. Without the package, pages say how to get the charts and still
show every final value in their tables.
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Iterable

from curifactory import fileio

logger = logging.getLogger(__name__)

ASSETS_DIR = "_assets"
BUNDLE_NAME = "vega-embed.js"
INSTALL_HINT = "pip install 'curifactory[charts]'"
LOWER_IS_BETTER = re.compile(r"loss|err|rmse|mse|mae|cost|regret|perplexity|time|latency", re.IGNORECASE)
"""Metric names whose smallest value is the best (the bar charts mark it); any other: the largest."""


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "curifactory")


def bundle_source() -> str | None:
    """The vega-embed bundle's text (made by vl-convert once per version, then cached); ``None``
    without the package."""
    try:
        import vl_convert
    except ImportError:
        return None
    version = getattr(vl_convert, "__version__", "unknown")
    cached = os.path.join(_cache_dir(), f"vega-embed-{version}.js")
    try:
        with open(cached, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        pass
    text = vl_convert.javascript_bundle()
    try:
        fileio.atomic_write_text(cached, text)
    except OSError:
        pass  # a read-only home: made again next time
    return text


def ensure_bundle(reports_path: str) -> bool:
    """Put ``_assets/vega-embed.js`` into the reports folder (once); False without vl-convert."""
    target = os.path.join(reports_path, ASSETS_DIR, BUNDLE_NAME)
    if os.path.isfile(target):
        return True
    source = bundle_source()
    if source is None:
        logger.info("Charts are not drawn: %s installs what draws them.", INSTALL_HINT)
        return False
    fileio.atomic_write_text(target, source)
    return True


def _direction(metric: str) -> str:
    return "min" if LOWER_IS_BETTER.search(metric) else "max"


def metric_charts(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Vega-Lite specs for ``points`` (``record, metric, step, value``): a line chart of value
    over step per metric logged at more than one step (a line per record), and a bar chart of
    each metric's final value per record, sorted, with the best bar marked."""
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for point in points:
        by_metric.setdefault(str(point["metric"]), []).append(point)
    charts = []
    for metric, rows in by_metric.items():
        if len({row["step"] for row in rows}) > 1:
            charts.append(_line_chart(metric, rows))
        charts.append(_bar_chart(metric, rows))
    return charts


def _line_chart(metric: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": f"{metric} over steps", "width": 360, "height": 200,
        "data": {"values": [{"record": r["record"], "step": r["step"], "value": r["value"]} for r in rows]},
        "mark": {"type": "line", "point": False},
        "encoding": {"x": {"field": "step", "type": "quantitative"},
                     "y": {"field": "value", "type": "quantitative", "title": metric},
                     "color": {"field": "record", "type": "nominal"}},
    }


def _bar_chart(metric: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    final: dict[str, Any] = {}
    for row in rows:  # points come in logging order: the last one is the final value
        final[row["record"]] = row["value"]
    direction = _direction(metric)
    best = (min if direction == "min" else max)(final.values()) if final else None
    values = [{"record": k, "value": v, "best": v == best} for k, v in final.items()]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": f"final {metric} ({'lower' if direction == 'min' else 'higher'} is better)",
        "width": 360, "height": {"step": 18},
        "data": {"values": values},
        "mark": "bar",
        "encoding": {"y": {"field": "record", "type": "nominal", "title": None,
                           "sort": {"field": "value", "order": "ascending" if direction == "min" else "descending"}},
                     "x": {"field": "value", "type": "quantitative", "title": metric},
                     "color": {"field": "best", "type": "nominal", "title": "best",
                               "scale": {"domain": [True, False], "range": ["#d95f02", "#7570b3"]}},
                     "tooltip": [{"field": "record"}, {"field": "value"}]},
    }


def with_run_points(spec: dict[str, Any], points: list[dict[str, Any]]) -> dict[str, Any]:
    """``spec`` with its data filled by the run's points when it is ``{"name": "metrics"}``
    (written once, filled per run); any other spec is returned as it is."""
    data = spec.get("data")
    if isinstance(data, dict) and data.get("name") == "metrics":
        return {**spec, "data": {"values": points}}
    return spec


def chart_html(spec: dict[str, Any], element_id: str) -> str:
    """A chart's placeholder and its spec (JSON in a data script, ``</`` escaped); the page's
    loader (:func:`loader_html`) draws it."""
    text = json.dumps(spec, default=str).replace("</", "<\\/")
    return (f'<div class="cf-chart" id="{element_id}" data-spec="{element_id}-spec"></div>'
            f'<script type="application/json" id="{element_id}-spec">{text}</script>')


DRAW_SCRIPT = ('<script>document.querySelectorAll(".cf-chart:not([data-drawn])").forEach(function (el) {'
               'el.setAttribute("data-drawn", "1");'
               'var spec = JSON.parse(document.getElementById(el.getAttribute("data-spec")).textContent);'
               'vegaEmbed(el, spec, {actions: false, renderer: "svg"}).catch(function (e) {'
               'el.textContent = "chart error: " + e;});});</script>')


def loader_html(bundle_href: str | None) -> str:
    """The scripts that draw every ``.cf-chart`` of a page (or a note saying how to get them)."""
    if bundle_href is None:
        return (f'<p class="muted cf-chart-note">Charts need vl-convert: <code>{INSTALL_HINT}</code>, then write '
                f'the report again. The values are in the tables.</p>')
    return f'<script src="{bundle_href}"></script>{DRAW_SCRIPT}'


def points_of(tracker: Any, labels: dict[str, str]) -> list[dict[str, Any]]:
    """The run's logged points as rows for charts, records named by ``labels`` (record key ->
    label, see :func:`record_labels`)."""
    folder = getattr(tracker, "folder", None)
    if not folder:
        return []
    tracker.flush_points()
    from curifactory.runlog import read_points, record_key

    rows: list[dict[str, Any]] = []
    for series in read_points(folder):
        label = labels.get(record_key(series.get("record"), series.get("record_name")))
        if label is None:
            continue
        metric = series.get("metric")
        rows.extend({"record": label, "metric": metric, "step": s, "value": v}
                    for s, v in zip(series.get("steps") or [], series.get("values") or []))
    return rows


def charts_section(charts: Iterable[dict[str, Any]], prefix: str = "metric-chart") -> list[str]:
    """The HTML of each chart, with ids unique on the page."""
    return [chart_html(spec, f"{prefix}-{index}") for index, spec in enumerate(charts)]


def standalone_page(specs: list[dict[str, Any]], title: str) -> str:
    """One self-contained HTML page drawing ``specs`` (the vega-embed bundle inlined: it works
    offline and anywhere the file is copied); without vl-convert, a page saying what to install."""
    import html

    charts = "".join(charts_section(specs, "chart"))
    loader = inlined_loader()
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"</head><body><h1>{html.escape(title)}</h1>{charts}{loader}</body></html>")


def runs_charts(rows: list[dict[str, Any]], metric: str, points: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Specs comparing runs on ``metric``: a bar chart of its final value per row (``label``,
    ``value``), best marked; with ``points`` (``label, step, value``) also a line per row over steps."""
    specs = []
    if points and len({p["step"] for p in points}) > 1:
        specs.append(_line_chart(metric, [{"record": p["label"], "step": p["step"], "value": p["value"]}
                                          for p in points]))
    specs.append(_bar_chart(metric, [{"record": r["label"], "value": r["value"]} for r in rows
                                     if isinstance(r.get("value"), (int, float))]))
    return specs


class ChartPage(str):
    """A chart page (HTML text) that notebooks display as itself."""

    def _repr_html_(self) -> str:
        return str(self)


MAX_LINE_ROWS = 20
"""Above this many rows, :func:`plot_runs` draws final values only (no line per row)."""


def plot_runs(frame: Any, metric: str, by: str | None = None, output: str | None = None,
              store: str | None = None) -> ChartPage:
    """Charts comparing the rows of a :func:`curifactory.load_runs` frame on ``metric``: its
    final value per row (sorted, best marked) and, for up to :data:`MAX_LINE_ROWS` rows, its
    value over steps. ``by`` names the column labelling rows (default: reference and set
    name). Returns the page (shown by notebooks); ``output`` also writes it to a file.
    """
    from curifactory.errors import UsageError

    column = metric if metric.startswith("metrics.") else f"metrics.{metric}"
    name = column[len("metrics."):]
    if column not in getattr(frame, "columns", ()):
        known = ", ".join(c[len("metrics."):] for c in getattr(frame, "columns", ()) if c.startswith("metrics."))
        raise UsageError(f"No metric '{name}' in these runs; the metrics are: {known or 'none'}.")
    labels = frame[by].astype(str) if by else (frame["reference"].astype(str) + (
        " " + frame["params_name"].astype(str) if "params_name" in frame.columns else ""))
    rows = [{"label": label, "value": value} for label, value in zip(labels, frame[column])]
    points = _points_of_rows(frame, name, labels, store) if len(frame) <= MAX_LINE_ROWS else None
    page = ChartPage(standalone_page(runs_charts(rows, name, points), f"{name} across {len(rows)} rows"))
    if output:
        fileio.atomic_write_text(output, str(page))
    return page


def _points_of_rows(frame: Any, metric: str, labels: Any, store: str | None) -> list[dict[str, Any]]:
    from curifactory.runs import load_metrics

    points: list[dict[str, Any]] = []
    for reference, record, label in zip(frame["reference"], frame.get("record", [None] * len(frame)), labels):
        try:
            series = load_metrics(reference, store=store)
        except Exception:  # a run without points: its final value is still charted
            continue
        chosen = series[(series["metric"] == metric) & ((series["record"] == record) if record is not None else True)]
        points.extend({"label": label, "step": s, "value": v} for s, v in zip(chosen["step"], chosen["value"]))
    return points


def inline_charts(specs: list[dict[str, Any]], prefix: str) -> str:
    """Charts with the bundle inlined, for a notebook output (no file to link to there)."""
    if not specs:
        return ""
    return "".join(charts_section(specs, prefix)) + inlined_loader()


def inlined_loader() -> str:
    """The bundle inlined and the drawing script (or the install note without vl-convert)."""
    source = bundle_source()
    if source is None:
        return loader_html(None)
    return "<script>" + source.replace("</script", "<\\/script") + "</script>" + DRAW_SCRIPT


def record_labels(records: list[Any], indices: Any = None) -> dict[str, str]:
    """{record key: ``#index name``} of a manager's records (the charts' record names); only
    the records at ``indices`` when given."""
    from curifactory.runlog import record_key

    return {record_key(r.get_hash(), r.name): f"#{i} {r.name}" for i, r in enumerate(records)
            if indices is None or i in indices}
