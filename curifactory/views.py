"""The notebook views of a manager (0.20's ``display_*`` methods), as a mixin.

``ArtifactManager`` inherits them; each renders through :mod:`curifactory.notebook`,
imported only when a view is asked for, so ``import curifactory`` stays light.
"""

from __future__ import annotations

from typing import Any


class ManagerViews:
    """``display_*`` and ``_repr_html_`` for a manager with ``reportables``."""

    reportables: list[Any]

    def display_info(self) -> Any:
        """The report's run-info block, for a notebook."""
        from curifactory import notebook

        return notebook.display_info(self)

    def display_metrics(self, charts: bool = True) -> Any:
        """Every record's final metric values (and the run's tags), with the report's metric
        charts, for a notebook."""
        from curifactory import notebook

        return notebook.display_metrics(self, charts)

    def display_all_reportables(self) -> Any:
        """Every reportable, for a notebook."""
        return self._show(self.reportables)

    def display_record_reportables(self, record: Any) -> Any:
        """The reportables of one record, for a notebook."""
        return self._show(record.reportables)

    def display_group_reportables(self, group_name: str) -> Any:
        """The reportables of one group, for a notebook."""
        return self._show([r for r in self.reportables if r.group == group_name])

    def display_stage_reportables(self, stage_name: str) -> Any:
        """The reportables produced by one stage, for a notebook."""
        return self._show([r for r in self.reportables if r.stage == stage_name])

    def display_reportable(self, reportable: Any) -> Any:
        """One reportable, for a notebook."""
        return self._show([reportable])

    def display_stage_graph(self) -> Any:
        """The stage graph as SVG, for a notebook."""
        from curifactory import notebook

        return notebook.display_stage_graph(self)

    def record_html(self, record: Any) -> str:
        """Jupyter's view of one of this manager's records (``Record._repr_html_``)."""
        from curifactory import notebook

        return notebook.record_html(record)

    def _show(self, reportables: list[Any]) -> Any:
        from curifactory import notebook

        return notebook.display_reportables(self, reportables)

    def _repr_html_(self) -> str:
        from curifactory import notebook

        return notebook.manager_html(self)
