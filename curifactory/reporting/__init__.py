"""HTML reports: reportables, the per-run report, the run index and the report server.

Stages hand reportables to ``record.report(...)``; ``manager.generate_report()``
calls :func:`write_report`. Importing this package loads nothing: each name comes from
its module on first use (``reportables`` and ``render`` load jinja2; none load pandas,
matplotlib, graphviz or IPython until a reportable or a graph needs them).
"""

from __future__ import annotations

from typing import Any

_HOMES = {
    "GraphResult": "graph", "build_dot": "graph", "render_svg": "graph", "stage_graph": "graph",
    "update_index": "index", "render_reportable": "render", "write_report": "render",
    "make_server": "server", "serve_reports": "server",
    **{name: "reportables" for name in ("DFReporter", "FigureReporter", "HTMLReporter", "ImageReporter", "JsonReporter",
                                        "LatexTableReporter", "LinePlotReporter", "Reportable", "VegaLiteReporter")},
}


def __getattr__(name: str) -> Any:
    """Each name from its module on first use: the stage graph's module loads without jinja2
    (a report starts drawing its graph before the templates load), and nothing here loads the
    report server (``http.server``, ``ssl``, ``email``: 15 ms) unless asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'curifactory.reporting' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"curifactory.reporting.{home}"), name)
    globals()[name] = value
    return value


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
