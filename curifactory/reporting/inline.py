"""Reportables rendered inline: files embedded as ``data:`` URIs (notebooks, ``_repr_html_``).

Reportables are rendered into a folder (``<reports_path>/_live/<reference>/reportables``
for a run that may write, a temporary folder for a dry one) and every file they
link to from there is embedded as a ``data:`` URI, so images show in Jupyter, in
executed notebooks and in exported HTML without serving any file.
"""

from __future__ import annotations

import base64
import html
import logging
import mimetypes
import os
import re
import tempfile
import traceback
from typing import Any, Iterable

logger = logging.getLogger(__name__)

LIVE_REPORTS_DIR = "_live"
REPORTABLES_DIR = "reportables"
MAX_EMBED_BYTES = 20 * 1024 * 1024
"""Files a reportable links to are embedded up to this size; larger ones keep their path."""

_LINK_ATTRIBUTE = re.compile(r"""\b(src|href)(\s*=\s*)(["'])(.*?)\3""", re.IGNORECASE | re.DOTALL)


def escape(value: Any) -> str:
    """``value`` as text, HTML-escaped (quotes too)."""
    return html.escape(str(value), quote=True)


def as_display(markup: str) -> Any:
    """``IPython.display.HTML(markup)``, or ``markup`` itself without IPython."""
    try:
        from IPython.display import HTML
    except ImportError:
        return markup
    return HTML(markup)


def _live_folder(manager: Any) -> str | None:
    """Where a live run renders reportables (``None`` when it may not write)."""
    if manager is None or getattr(manager, "dry", False) or not getattr(manager, "reports_path", None):
        return None
    return os.path.join(manager.reports_path, LIVE_REPORTS_DIR, manager.get_reference_name(), REPORTABLES_DIR)


def _data_uri(path: str) -> str:
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    with open(path, "rb") as handle:
        encoded = base64.b64encode(handle.read()).decode("ascii")
    return f"data:{kind};base64,{encoded}"


def embed_files(markup: str, folder: str) -> str:
    """Replace ``src``/``href`` links to files inside ``folder`` by ``data:`` URIs.

    Args:
        markup: a reportable's HTML.
        folder: the folder it was rendered into (absolute).
    """
    root = os.path.realpath(folder)

    def replace(match: re.Match[str]) -> str:
        target = html.unescape(match.group(4))
        if "://" in target or target.startswith(("data:", "#")):
            return match.group(0)
        path = os.path.realpath(os.path.join(folder, target) if not os.path.isabs(target) else target)
        inside = os.path.commonpath([root, path]) == root
        if not inside or not os.path.isfile(path) or os.path.getsize(path) > MAX_EMBED_BYTES:
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{match.group(3)}{_data_uri(path)}{match.group(3)}"

    return _LINK_ATTRIBUTE.sub(replace, markup)


def _name_files(manager: Any, reportables: list[Any]) -> None:
    """Unique, file-safe ``qualified_name``s, stable across calls (the report uses the same rule)."""
    from curifactory.reporting.context import assign_file_names

    known = list(getattr(manager, "reportables", None) or []) if manager is not None else []
    known_ids = {id(r) for r in known}
    assign_file_names(known + [r for r in reportables if id(r) not in known_ids])


def _render_one(reportable: Any, folder: str) -> str:
    """Render ``reportable`` into ``folder`` and return its HTML with files embedded."""
    os.makedirs(folder, exist_ok=True)
    previous, reportable.path = getattr(reportable, "path", None), folder
    try:
        reportable.render()
        # html() links to files through ``path``; an absolute folder lets us find and embed them
        return embed_files(reportable.html(), folder)
    finally:
        reportable.path = previous  # the report writer sets its own; leave no scratch folder behind


def _reportable_section(reportable: Any, folder: str) -> str:
    """One reportable with its title and origin; a failing one shows its error instead."""
    from curifactory.reporting.context import record_label

    try:
        body = _render_one(reportable, folder)
    except Exception as exc:  # one broken reportable must not hide the others
        logger.warning("Reportable %r could not be rendered: %s", getattr(reportable, "name", None), exc)
        message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        body = f"<pre style='color:#a00'>{escape(message)}</pre>"
    title = getattr(reportable, "name", None) or getattr(reportable, "qualified_name", None) or type(reportable).__name__
    origin = []
    record = getattr(reportable, "record", None)
    if record is not None:
        origin.append(f"record {record_label(record)}")
    if getattr(reportable, "stage", None):
        origin.append(f"stage {reportable.stage}")
    if getattr(reportable, "group", None):
        origin.append(f"group {reportable.group}")
    meta = f"<p style='font-size:smaller;color:#666;margin:0'>{escape(', '.join(origin))}</p>" if origin else ""
    return (f"<div class='cf-nb-reportable' style='margin-bottom:1em'>"
            f"<h4 style='margin-bottom:0'>{escape(title)}</h4>{meta}<div>{body}</div></div>")


def reportables_html(manager: Any, reportables: Iterable[Any]) -> str:
    """Render ``reportables`` and return them as one HTML string.

    Files go to ``<reports_path>/_live/<reference>/reportables``; with a dry (or
    missing) manager, to a temporary folder removed afterwards, so nothing is written.
    """
    reportables = list(reportables)
    if not reportables:
        return "<p class='cf-nb-reportables'><em>No reportables.</em></p>"
    _name_files(manager, reportables)
    folder = _live_folder(manager)
    if folder is not None:
        sections = [_reportable_section(r, os.path.abspath(folder)) for r in reportables]
    else:
        with tempfile.TemporaryDirectory(prefix="cf-reportables-") as scratch:
            sections = [_reportable_section(r, scratch) for r in reportables]
    return f"<div class='cf-nb-reportables'>{''.join(sections)}</div>"


def display_reportables(manager: Any, reportables: Iterable[Any]) -> Any:
    """Render reportables for a notebook (the target of every ``display_*_reportables``).

    Args:
        manager: the ``ArtifactManager`` (decides where files are rendered; a dry
            manager writes nothing).
        reportables: the reportables to show, in order.

    Returns:
        An ``IPython.display.HTML`` (the HTML string without IPython).
    """
    return as_display(reportables_html(manager, reportables))


def reportable_html(reportable: Any) -> str:
    """One reportable as HTML (for ``Reportable._repr_html_``), rendered via its record's manager."""
    manager = getattr(getattr(reportable, "record", None), "manager", None)
    return reportables_html(manager, [reportable])
