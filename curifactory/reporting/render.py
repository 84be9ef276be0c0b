"""Writing a run's report folder: ``<reports_path>/<reference>/index.html`` and friends.

The report is built in a temporary folder beside its final place and swapped in
when complete, so a reader (or the run index) never sees half a report. Then the
run index (``reports/index.html``) and ``reports/_latest`` (a copy of the newest
report, which works on every file system and web server) are refreshed.
"""

from __future__ import annotations

import logging
import os
import shutil
import traceback
import urllib.parse
from typing import Any

from curifactory import fileio
from curifactory.reporting import context
from curifactory.reporting.graph import PendingGraph, report_graph_cache, stage_graph
from curifactory.reporting.templating import DEFAULT_CSS, environment, safe

logger = logging.getLogger(__name__)

REPORTABLES_DIR = "reportables"
ATTACHMENTS_DIR = "attachments"
CSS_NAME = "style.css"
LATEST_DIR = "_latest"
INDEX_NAME = "index.html"


def render_reportable(reportable: Any, folder: str, display_path: str = REPORTABLES_DIR) -> str:
    """Render one reportable into ``folder`` and return its HTML.

    ``reportable.path`` is ``folder`` while it renders, then ``display_path`` (the
    same folder as the page will link to it) while its HTML is made.
    """
    os.makedirs(folder, exist_ok=True)
    reportable.path = folder
    reportable.render()
    reportable.path = display_path
    return reportable.html()


def reportable_views(manager: Any, folder: str, records: list[context.RecordView]) -> list[context.ReportableView]:
    """Render every reportable of the run into ``folder``; a failing one shows its error."""
    reportables = list(getattr(manager, "reportables", None) or [])
    position = {id(r): i for i, r in enumerate(getattr(manager, "records", None) or [])}
    context.assign_file_names(reportables)
    views = []
    for number, reportable in enumerate(reportables):
        index = position.get(id(getattr(reportable, "record", None)))
        record = records[index] if index is not None else None
        if record is not None and record.hidden:
            continue
        try:
            html, error = render_reportable(reportable, folder), None
        except Exception as exc:  # one broken reportable must not cost the whole report
            logger.warning("Reportable %r could not be rendered: %s", reportable.name, exc)
            html, error = "", "".join(traceback.format_exception_only(type(exc), exc)).strip()
        views.append(
            context.ReportableView(
                anchor=f"reportable-{number}",
                name=str(reportable.name or reportable.qualified_name),
                group=reportable.group,
                stage=reportable.stage,
                record=record,
                html=safe(html),
                error=error,
            )
        )
    return views


def copy_css(manager: Any, folder: str) -> None:
    """The project's ``report_css_path`` when that file exists, else the packaged style."""
    css_path = getattr(manager, "report_css_path", None)
    source = css_path if css_path and os.path.isfile(css_path) else DEFAULT_CSS
    shutil.copyfile(source, os.path.join(folder, CSS_NAME))


def copy_log(log_path: str | None, folder: str) -> dict[str, Any] | None:
    """Copy the run's log into the report folder and describe the link to it.

    The copy keeps the link working wherever the report goes: served by
    ``experiment reports`` (which serves nothing outside the reports folder), in
    ``_latest`` and in a ``--store-full`` run folder. It holds the log as it was
    when the report was written.
    """
    if not log_path:
        return None
    name = os.path.basename(log_path)
    exists = os.path.isfile(log_path)
    if exists:
        shutil.copyfile(log_path, os.path.join(folder, name))
    return {"href": urllib.parse.quote(name), "exists": exists, "name": name}


def copy_attachments(manager: Any, views: list[context.RecordView], folder: str) -> None:
    """Copy the files records attached into the report (``attachments/<record hash>/``), and link them."""
    tracker = getattr(manager, "tracker", None)
    source = getattr(tracker, "folder", None)
    if tracker is None or not source:
        return
    tracker.refresh_attachments()  # files may have been attached since the list was last read
    for view in views:
        for name in tracker.attached_files(view.hash):
            relative = f"{ATTACHMENTS_DIR}/{view.hash}/{name}"
            target = os.path.join(folder, ATTACHMENTS_DIR, view.hash, name)
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(os.path.join(source, "attachments", view.hash, name), target)
            except OSError as exc:
                logger.warning("Could not copy the attached file %s into the report: %s", name, exc)
                continue
            view.attachments.append({"name": name, "href": urllib.parse.quote(relative)})


def _charts(manager: Any, views: list[context.RecordView], reportables: list[context.ReportableView],
            reports_path: str) -> tuple[list[str], str | None]:
    """The metric charts of the page and the script that draws them (and any VegaLiteReporter)."""
    from curifactory.reporting import charts

    labels = charts.record_labels(list(getattr(manager, "records", []) or []), {view.index for view in views})
    points = charts.points_of(getattr(manager, "tracker", None), labels) if any(v.metrics for v in views) else []
    drawn = charts.charts_section(charts.metric_charts(points))
    if not drawn and not any("cf-chart" in str(r.html) for r in reportables):
        return [], None
    available = charts.ensure_bundle(reports_path)
    return drawn, charts.loader_html(f"../{charts.ASSETS_DIR}/{charts.BUNDLE_NAME}" if available else None)


def report_html(manager: Any, folder: str, pending: PendingGraph | None = None) -> str:
    """Render the reportables into ``folder`` and return the page's HTML (``pending``: the stage
    graph, when its drawing was started already)."""
    records = list(getattr(manager, "records", None) or [])
    record_views = context.record_views(records)
    reportables = reportable_views(manager, os.path.join(folder, REPORTABLES_DIR), record_views)
    groups, ungrouped = context.group_reportables(reportables)
    graph = pending.result() if pending is not None else stage_graph(records, cache_dir=report_graph_cache(manager))
    log = copy_log(getattr(manager, "log_path", None), folder)
    visible = [r for r in record_views if not r.hidden]
    copy_attachments(manager, visible, folder)
    charts, loader = _charts(manager, visible, reportables, os.path.dirname(folder))
    return environment().get_template("report.html").render(
        run=context.run_info(manager),
        log=log,
        css=CSS_NAME,
        records=visible,
        groups=groups,
        ungrouped=ungrouped,
        graph=graph,
        graph_svg=safe(graph.svg) if graph.svg else None,
        param_table=context.param_table(context.param_set_views(records, record_views)),
        metric_charts=[safe(c) for c in charts],
        chart_loader=safe(loader) if loader else None,
    )


def write_report(manager: Any, graph: PendingGraph | None = None) -> str:
    """Write the report of ``manager``'s run and refresh the run index and ``_latest``.

    Nothing is written when ``manager.dry`` is true.

    Returns:
        The path of the report's ``index.html`` (where it is, or would be, written).
    """
    reports_path = os.path.abspath(manager.reports_path)
    final = os.path.join(reports_path, manager.get_reference_name())
    page = os.path.join(final, INDEX_NAME)
    if getattr(manager, "dry", False):
        logger.debug("Dry run: no report written (it would be %s)", page)
        return page
    os.makedirs(reports_path, exist_ok=True)
    with fileio.replacing(final) as tmp:
        os.makedirs(tmp)
        copy_css(manager, tmp)
        html = report_html(manager, tmp, graph)
        with open(os.path.join(tmp, INDEX_NAME), "w", encoding="utf-8") as handle:
            handle.write(html)
    fileio.copy_tree(final, os.path.join(reports_path, LATEST_DIR))
    _refresh_index(manager, reports_path)
    logger.info("Report written to %s", page)
    return page




def _refresh_index(manager: Any, reports_path: str) -> None:
    from curifactory.reporting.index import update_index
    from curifactory.store import STORE_FILENAME

    settings = getattr(manager, "settings", None)
    cache_path = getattr(settings, "manager_cache_path", None) or getattr(manager, "manager_cache_path", None)
    store_path = os.path.join(cache_path, STORE_FILENAME) if cache_path else None
    extra = getattr(manager, "run_info", None)
    update_index(reports_path, store_path, extra_runs=[extra] if isinstance(extra, dict) else None)
