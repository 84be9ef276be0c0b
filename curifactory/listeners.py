"""Listeners that close a run: its HTML report and its ``--store-full`` run folder.

Registered by :func:`curifactory.experiment.run_experiment` (the CLI goes through
it), never by the run loop itself. Each acts on :class:`~curifactory.events.RunFinished`,
after the store holds the run's final block, the report first (the run folder
keeps a copy of it). A failure is logged and never hides the run's own outcome.
"""

from __future__ import annotations

import logging
from typing import Any

from curifactory.events import Event, RunFinished, RunFinishing

logger = logging.getLogger(__name__)


class ReportWriter:
    """Writes the run's report (``manager.generate_report()``) when the run finishes; starts
    drawing its stage graph as soon as the last stage call is done, so ``dot`` works while the
    run's store entry and run log are written."""

    listens_to = (RunFinishing, RunFinished)

    def __init__(self, manager: Any):
        self.manager = manager
        self.graph: Any = None

    def on_event(self, event: Event) -> None:
        manager = self.manager
        if manager.dry or not manager.writes_store:
            return  # a non-zero distributed rank writes no report
        if isinstance(event, RunFinishing):
            self.graph = self._start_graph()
            return
        if not isinstance(event, RunFinished):
            return
        graph, self.graph = self.graph, None
        try:
            manager.generate_report(graph)
        except Exception:  # the run's results matter more than its report
            logger.warning("Could not write the report of %s", manager.get_reference_name(), exc_info=True)


    def _start_graph(self) -> Any:
        from curifactory.reporting import graph

        try:
            return graph.PendingGraph(self.manager.records, graph.report_graph_cache(self.manager))
        except Exception:  # drawn again when the report is written
            logger.debug("Could not start drawing the stage graph", exc_info=True)
            return None


class RunFolderWriter:
    """Completes a ``--store-full`` run folder when the run finishes."""

    listens_to = (RunFinished,)

    def __init__(self, manager: Any):
        self.manager = manager

    def on_event(self, event: Event) -> None:
        if not isinstance(event, RunFinished) or not self.manager.store_full:
            return
        try:
            self.manager.write_run_env_output()
        except Exception:
            logger.warning("Could not complete the run folder of %s", self.manager.get_reference_name(),
                           exc_info=True)


def closing_listeners(manager: Any, report: bool = True) -> list[Any]:
    """The listeners that close a run of ``manager``: the report (if wanted), then the run folder."""
    return [*([ReportWriter(manager)] if report else []), RunFolderWriter(manager)]
