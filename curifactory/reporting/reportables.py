"""Reportables: pieces of a run's HTML report that stages hand to ``record.report()``.

A reportable is made inside a stage, attached to its record and stage by
:meth:`Record.report`, pickled into the cache with the stage's outputs (so a fully
cached rerun still shows it) and finally rendered by the report writer:

1. the writer sets :attr:`Reportable.path` to a folder inside the report and calls
   :meth:`Reportable.render`, which writes any files the reportable needs there
   (named after :attr:`Reportable.qualified_name`);
2. the writer then sets ``path`` to the same folder *relative to the report page*
   (``"reportables"``) and includes :meth:`Reportable.html` in the page, so
   ``f"<img src='{self.path}/{self.qualified_name}.png'>"`` works in both steps,
   as in curifactory 0.20.

Every reportable must stay picklable: figures are turned into image bytes (and
closed) when the reportable is made. pandas and matplotlib are imported only inside
the functions that need them.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import shutil
from typing import Any, Sequence


class Reportable:
    """Base of every reportable; subclass it and override :meth:`html` (and :meth:`render`).

    Args:
        name: the title shown above the reportable (and part of its file names).
        group: reportables sharing a group are shown together in the report.

    Attributes:
        record: the record that reported it (set by ``record.report``).
        stage: the name of the stage that reported it (set by ``record.report``).
        qualified_name: a name unique within the report, safe for file names (set by
            ``record.report`` and made unique by the report writer).
        path: the folder :meth:`render` writes to; while :meth:`html` is called, the
            same folder relative to the report page.
    """

    def __init__(self, name: str | None = None, group: str | None = None):
        self.name = name
        self.group = group
        self.record: Any = None
        self.stage: str | None = None
        self.qualified_name: str | None = name
        self.path: str | None = None

    def render(self) -> None:
        """Write any files the reportable needs into :attr:`path` (nothing by default)."""

    def html(self) -> str:
        """The HTML shown in the report (trusted: it is not escaped)."""
        return ""

    def file_path(self, extension: str) -> str:
        """``<path>/<qualified_name><extension>``: where :meth:`render` writes and
        :meth:`html` links to (the same expression works in both steps)."""
        return f"{self.path}/{self.qualified_name}{extension}"

    def __getstate__(self) -> dict[str, Any]:
        # the record drags its manager and every other record along; ``record.report``
        # attaches a cached reportable to its new record when the cache is loaded
        state = dict(self.__dict__)
        state["record"] = None
        return state

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} group={self.group!r} stage={self.stage!r}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: the rendered reportable (see :func:`curifactory.reporting.inline.reportable_html`)."""
        from curifactory.reporting.inline import reportable_html

        return reportable_html(self)


class HTMLReporter(Reportable):
    """The user's own HTML, included as it is (not escaped: it is theirs).

    Args:
        html_string: the HTML to include.
    """

    def __init__(self, html_string: str, name: str | None = None, group: str | None = None):
        super().__init__(name=name, group=group)
        self.html_string = html_string

    def html(self) -> str:
        return self.html_string


class JsonReporter(Reportable):
    """A dictionary (or any JSON-able value) shown as indented JSON.

    Args:
        dictionary: the value to show; values JSON cannot encode are shown with ``str``.
    """

    def __init__(self, dictionary: Any, name: str | None = None, group: str | None = None):
        super().__init__(name=name, group=group)
        self.data = dictionary

    def html(self) -> str:
        text = json.dumps(self.data, indent=2, default=str)
        return f"<pre class='cf-json'>{html_lib.escape(text)}</pre>"


class DFReporter(Reportable):
    """A pandas DataFrame shown as an HTML table (cell values are escaped).

    Args:
        df: the DataFrame.
        float_prec: digits after the decimal point for float columns.
    """

    def __init__(self, df: Any, name: str | None = None, group: str | None = None, float_prec: int = 4):
        super().__init__(name=name, group=group)
        self.df = df
        self.float_prec = float_prec

    def html(self) -> str:
        precision = self.float_prec
        return self.df.to_html(
            classes="cf-table",
            border=0,
            escape=True,
            float_format=lambda value: f"{value:.{precision}f}",
        )


class LatexTableReporter(Reportable):
    """The LaTeX source of a DataFrame table, shown in the report and saved as ``.tex``.

    Args:
        df: the DataFrame.
        **to_latex_kwargs: passed to ``df.to_latex`` (e.g. ``caption``, ``label``,
            ``float_format``).
    """

    def __init__(self, df: Any, name: str | None = None, group: str | None = None, **to_latex_kwargs: Any):
        super().__init__(name=name, group=group)
        self.df = df
        self.to_latex_kwargs = to_latex_kwargs

    def latex(self) -> str:
        """The LaTeX source of the table."""
        return self.df.to_latex(**self.to_latex_kwargs)

    def render(self) -> None:
        with open(self.file_path(".tex"), "w", encoding="utf-8") as handle:
            handle.write(self.latex())

    def html(self) -> str:
        source = html_lib.escape(self.latex())
        link = html_lib.escape(self.file_path(".tex"), quote=True)
        return f"<pre class='cf-latex'>{source}</pre><p><a href=\"{link}\">download .tex</a></p>"


class _ImageBytesReporter(Reportable):
    """A reportable holding image bytes, written at render time and shown with ``<img>``."""

    def __init__(self, name: str | None, group: str | None, data: bytes | None, extension: str):
        super().__init__(name=name, group=group)
        self.image_bytes = data
        self.extension = extension

    def render(self) -> None:
        if self.image_bytes is not None:
            with open(self.file_path(self.extension), "wb") as handle:
                handle.write(self.image_bytes)

    def html(self) -> str:
        if self.image_bytes is None:
            return "<p class='cf-missing'>(image not available)</p>"
        src = html_lib.escape(self.file_path(self.extension), quote=True)
        alt = html_lib.escape(self.name or "figure", quote=True)
        return f"<img class='cf-image' src=\"{src}\" alt=\"{alt}\">"


def figure_bytes(fig: Any, savefig_kwargs: dict[str, Any]) -> tuple[bytes, str]:
    """Save a matplotlib figure into memory; returns the bytes and the file extension."""
    import io

    kwargs = {"bbox_inches": "tight", **savefig_kwargs}
    fmt = str(kwargs.pop("format", "png")).lower()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, **kwargs)
    return buffer.getvalue(), f".{fmt}"


def close_figure(fig: Any) -> None:
    """Release a figure from pyplot's figure manager (if pyplot knows it)."""
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


class FigureReporter(_ImageBytesReporter):
    """A matplotlib figure, saved as an image when the reporter is made.

    The figure is drawn into memory (PNG unless ``format=`` says otherwise) and
    closed at construction, so the reportable pickles small and the figure's memory
    is released.

    Args:
        fig: the matplotlib figure.
        **savefig_kwargs: passed to ``fig.savefig`` (e.g. ``dpi``, ``format="svg"``).
    """

    def __init__(self, fig: Any, name: str | None = None, group: str | None = None, **savefig_kwargs: Any):
        data, extension = figure_bytes(fig, savefig_kwargs)
        close_figure(fig)
        super().__init__(name, group, data, extension)
        self.savefig_kwargs = savefig_kwargs


class ImageReporter(_ImageBytesReporter):
    """An existing image file, copied into the report.

    The file's bytes are read when the reporter is made, so the report still shows
    it after the original moved (or from the cache on a rerun).

    Args:
        path: the image file.
    """

    def __init__(self, path: str | os.PathLike[str], name: str | None = None, group: str | None = None):
        self.image_path = os.fspath(path)
        extension = os.path.splitext(self.image_path)[1] or ".png"
        try:
            with open(self.image_path, "rb") as handle:
                data: bytes | None = handle.read()
        except OSError:
            data = None  # read again at render time; html() says so if still missing
        super().__init__(name, group, data, extension)

    def render(self) -> None:
        if self.image_bytes is None and os.path.isfile(self.image_path):
            shutil.copyfile(self.image_path, self.file_path(self.extension))
            with open(self.image_path, "rb") as handle:
                self.image_bytes = handle.read()
            return
        super().render()


class LinePlotReporter(_ImageBytesReporter):
    """A line plot of one or several series, drawn with matplotlib at render time.

    Args:
        y: the values, or a dict of series name -> values (one line each, with a legend).
        x: shared x values (default: 0, 1, 2, ...).
        plot_kwargs: passed to ``Axes.plot`` for every line.
        savefig_kwargs: passed to ``Figure.savefig``.
    """

    def __init__(
        self,
        y: Sequence[float] | dict[str, Sequence[float]],
        x: Sequence[float] | None = None,
        plot_kwargs: dict[str, Any] | None = None,
        savefig_kwargs: dict[str, Any] | None = None,
        name: str | None = None,
        group: str | None = None,
    ):
        fmt = str((savefig_kwargs or {}).get("format", "png")).lower()
        super().__init__(name, group, None, f".{fmt}")
        self.y = y
        self.x = x
        self.plot_kwargs = dict(plot_kwargs or {})
        self.savefig_kwargs = dict(savefig_kwargs or {})

    def _draw(self) -> bytes:
        from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

        fig = Figure(figsize=(6, 3.5))
        axes = fig.add_subplot()
        series = self.y if isinstance(self.y, dict) else {None: self.y}
        for label, values in series.items():
            values = list(values)
            xs = list(self.x) if self.x is not None else list(range(len(values)))
            axes.plot(xs, values, label=label, **self.plot_kwargs)
        if isinstance(self.y, dict):
            axes.legend()
        if self.name:
            axes.set_title(self.name)
        axes.grid(alpha=0.3)
        data, _ = figure_bytes(fig, self.savefig_kwargs)
        return data

    def render(self) -> None:
        self.image_bytes = self._draw()
        super().render()


class VegaLiteReporter(Reportable):
    """Any Vega-Lite specification, drawn by vega-embed (offline: see :mod:`curifactory.reporting.charts`).

    A spec whose ``data`` is ``{"name": "metrics"}`` is filled with the run's logged
    points (rows of ``record, metric, step, value``) when the report is written, so
    a chart written once shows each run's metrics.

    Args:
        spec: the Vega-Lite specification (a dict).
    """

    def __init__(self, spec: dict, name: str | None = None, group: str | None = None):
        if not isinstance(spec, dict):
            from curifactory.errors import UsageError

            raise UsageError(f"VegaLiteReporter takes a Vega-Lite specification as a dict, not a "
                             f"{type(spec).__name__}; e.g. {{'mark': 'line', 'data': {{'name': 'metrics'}}, ...}}.")
        super().__init__(name=name, group=group)
        self.spec = spec

    def html(self) -> str:
        from curifactory.reporting import charts

        points: list = []
        data = self.spec.get("data")
        manager = getattr(self.record, "manager", None)
        if isinstance(data, dict) and data.get("name") == "metrics" and manager is not None:
            points = charts.points_of(getattr(manager, "tracker", None), charts.record_labels(manager.records))
        element = "vl-" + "".join(c if c.isalnum() else "-" for c in str(self.qualified_name or id(self)))
        return charts.chart_html(charts.with_run_points(self.spec, points), element)
