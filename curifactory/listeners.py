"""Listeners that close a run: its HTML report and its ``--store-full`` run folder.

Registered by :func:`curifactory.experiment.run_experiment` (the CLI goes through
it), never by the run loop itself. Each acts on :class:`~curifactory.events.RunFinished`,
after the store holds the run's final block, the report first (the run folder
keeps a copy of it). A failure is logged and never hides the run's own outcome.
"""

from __future__ import annotations

import logging
from typing import Any

from curifactory.events import Event, RunFinished

logger = logging.getLogger(__name__)


class ReportWriter:
    """Writes the run's report (``manager.generate_report()``) when the run finishes."""

    listens_to = (RunFinished,)

    def __init__(self, manager: Any):
        self.manager = manager

    def on_event(self, event: Event) -> None:
        manager = self.manager
        if not isinstance(event, RunFinished) or manager.dry or not manager.writes_store:
            return  # a non-zero distributed rank writes no report
        try:
            manager.generate_report()
        except Exception:  # the run's results matter more than its report
            logger.warning("Could not write the report of %s", manager.get_reference_name(), exc_info=True)


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
