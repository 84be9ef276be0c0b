"""HTML reports: reportables, the per-run report, the run index and the report server.

Stages hand reportables to ``record.report(...)``; ``manager.generate_report()``
calls :func:`write_report`. Importing this package loads jinja2 but none of pandas,
matplotlib, graphviz or IPython: reportables import those only when used.
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
from curifactory.reporting.server import make_server, serve_reports

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
