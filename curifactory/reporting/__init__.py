"""HTML reports: reportables, the per-run report, the run index and the report server.

Stages hand reportables to ``record.report(...)``; ``manager.generate_report()``
calls :func:`write_report`. Importing this package loads jinja2 but none of pandas,
matplotlib, graphviz or IPython (reportables import those only when used), nor the
report server (loaded on first use of ``make_server`` / ``serve_reports``).
"""

from __future__ import annotations

from curifactory.reporting.graph import GraphResult, build_dot, render_svg, stage_graph
from curifactory.reporting.index import update_index
from curifactory.reporting.render import render_reportable, write_report
from curifactory.reporting.reportables import (
    DFReporter,
    FigureReporter,
    HTMLReporter,
    ImageReporter,
    JsonReporter,
    LatexTableReporter,
    LinePlotReporter,
    Reportable,
    VegaLiteReporter,
)
from typing import Any


def __getattr__(name: str) -> Any:
    """The report server (``http.server``, ``ssl``, ``email``: 15 ms to import) only when asked for:
    a run writing its report never needs it."""
    if name in ("make_server", "serve_reports"):
        from curifactory.reporting import server

        return getattr(server, name)
    raise AttributeError(f"module 'curifactory.reporting' has no attribute {name!r}")

__all__ = [
    "DFReporter",
    "FigureReporter",
    "GraphResult",
    "HTMLReporter",
    "ImageReporter",
    "JsonReporter",
    "LatexTableReporter",
    "LinePlotReporter",
    "Reportable",
    "VegaLiteReporter",
    "build_dot",
    "make_server",
    "render_reportable",
    "render_svg",
    "serve_reports",
    "stage_graph",
    "update_index",
    "write_report",
]
