"""Progress displays for the command line: listeners of :mod:`curifactory.events`.

* :class:`PlainProgress`: one line per executed (or failed) stage and a summary;
  for logs, pipes and CI.
* :class:`RichProgress`: a live bar over every planned stage call (records x
  stages) with executed and cached counts; for a terminal. rich is imported only
  when one is created.
* :class:`QuietProgress`: counts, prints nothing.

Every display ends with the same summary line (see :meth:`Counts.summary`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TextIO

from curifactory.events import (
    Event,
    LegacyEntry,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
    WorkersFinished,
    WorkersStarted,
)
from curifactory.history import StageStatus


@dataclass
class Counts:
    """What happened to the stage calls of a run so far."""

    executed: int = 0
    cached: int = 0
    failed: int = 0
    skipped: int = 0
    adopted: int = 0
    refused: int = 0
    seconds: float = 0.0
    status: str | None = None

    def add(self, status: StageStatus, was: StageStatus | None = None) -> None:
        if was is StageStatus.SKIPPED:  # counted as not needed, then computed when read
            self.skipped -= 1
        if status is StageStatus.EXECUTED:
            self.executed += 1
        elif status is StageStatus.CACHED:
            self.cached += 1
        elif status is StageStatus.SKIPPED:
            self.skipped += 1
        else:
            self.failed += 1

    def summary(self) -> str:
        """``N stages executed, M cached in T s`` (and failures)."""
        text = f"{self.executed} stage{'s' if self.executed != 1 else ''} executed, {self.cached} cached"
        if self.skipped:
            text += f", {self.skipped} not needed"
        if self.failed:
            text += f", {self.failed} failed"
        if self.adopted or self.refused:
            text += f" (0.20 cache: {self.adopted} adopted"
            text += f", {self.refused} refused: recorded parameters differ)" if self.refused else ")"
        return f"{text} in {self.seconds:.2f} s"


def outcome(status: str) -> str:
    """The word a summary line starts with for a run's store status."""
    return {"complete": "done", "error": "failed"}.get(status, status)


def started_text(event: RunStarted, reference: str) -> str:
    """``run <ref>: N parameter sets, M stage calls (R to run, C cached)``."""
    if event.planned_stages:
        cached = event.planned_stages - event.planned_to_run - event.planned_not_needed
        unneeded = f", {event.planned_not_needed} not needed" if event.planned_not_needed else ""
        workers = f"; --parallel workers just computed {event.computed_by_workers} of them" \
            if event.computed_by_workers else ""
        plan = (f"{_count(event.planned_stages, 'stage call')} ({event.planned_to_run} to run, "
                f"{cached} cached{unneeded}{workers})")
    else:
        plan = "stages decide as they are called (not mapped)"
    sweep = ""
    if event.sweep and event.points_done >= 0:
        sweep = f"; sweep {event.sweep}: {event.points_done} of {event.records} points already done"
    return f"run {reference}: {_count(event.records, 'parameter set')}, {plan}{sweep}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def workers_started_text(event: WorkersStarted) -> str:
    """``parallel: N workers are computing M parameter sets...``."""
    verb = "is" if event.workers == 1 else "are"
    return f"{event.executor}: {_count(event.workers, 'worker')} {verb} computing {_count(event.param_sets, event.unit)}..."


def workers_text(event: WorkersFinished) -> str:
    """``parallel: N workers executed M stage calls`` (the parent then finds them cached)."""
    text = f"{event.executor}: {_count(event.workers, 'worker')} executed {_count(event.executed, 'stage call')}"
    if event.by_worker:
        text += " (" + ", ".join(f"{address}: {count}" for address, count in event.by_worker) + ")"
    if event.failed_workers:
        text += f" ({event.failed_workers} stopped early; the run below reports why)"
    return text


class QuietProgress:
    """Counts stage calls; prints nothing (``--quiet``)."""

    def __init__(self) -> None:
        self.counts = Counts()
        self.reference: str | None = None

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.reference = event.reference
        elif isinstance(event, StageFinished):
            self.counts.add(event.status, event.was)
        elif isinstance(event, LegacyEntry):
            if event.adopted:
                self.counts.adopted += 1
            else:
                self.counts.refused += 1
        elif isinstance(event, RunFinished):
            self.counts.seconds, self.counts.status = event.seconds, event.status

    def close(self) -> None:
        """Stop any live display (nothing to do here)."""


class PlainProgress(QuietProgress):
    """One line per executed or failed stage call, then a summary line.

    Args:
        stream: where to print (``sys.stdout`` when it is printed to).
    """

    def __init__(self, stream: TextIO | None = None):
        super().__init__()
        self.stream = stream

    def _print(self, text: str) -> None:
        stream = self.stream or sys.stdout
        print(text, file=stream, flush=True)

    def on_event(self, event: Event) -> None:
        super().on_event(event)
        if isinstance(event, WorkersStarted):
            self._print(workers_started_text(event))
        elif isinstance(event, WorkersFinished):
            self._print(workers_text(event))
        elif isinstance(event, RunStarted):
            self._print(started_text(event, event.reference))
        elif isinstance(event, StageFinished) and event.status not in (StageStatus.CACHED, StageStatus.SKIPPED):
            word = "executed" if event.status is StageStatus.EXECUTED else "FAILED"
            self._print(f"  {word} {event.stage} on record {event.record_index}:{event.record_name} "
                        f"({event.seconds:.2f} s)")
        elif isinstance(event, RunFinished):
            self._print(f"{outcome(event.status)}: {self.counts.summary()}")


class RichProgress(QuietProgress):
    """A live progress bar over the planned stage calls (rich, imported on creation).

    Args:
        no_color: print without colors.
        console: a ``rich.console.Console`` to draw on (a new one on stdout otherwise).
    """

    def __init__(self, no_color: bool = False, console: Any = None):
        super().__init__()
        from rich.console import Console

        # None lets rich honour the NO_COLOR environment variable
        self.console = console or Console(no_color=True if no_color else None, highlight=False)
        self._progress: Any = None
        self._task: Any = None

    def _start(self, event: RunStarted) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=self.console.is_terminal,
        )
        self._progress.start()
        total = event.planned_stages or None
        self._task = self._progress.add_task(_escape(event.experiment_name), total=total, counts="")

    def _counts_text(self) -> str:
        text = f"[green]{self.counts.executed} executed[/] [cyan]{self.counts.cached} cached[/]"
        if self.counts.failed:
            text += f" [red]{self.counts.failed} failed[/]"
        return text

    def on_event(self, event: Event) -> None:
        super().on_event(event)
        if isinstance(event, WorkersStarted):
            self.console.print(workers_started_text(event))
        elif isinstance(event, WorkersFinished):
            self.console.print(workers_text(event))
        elif isinstance(event, RunStarted):
            self.console.print(started_text(event, f"[bold]{_escape(event.reference)}[/]"))
            self._start(event)
        elif self._progress is None:
            return
        elif isinstance(event, StageStarted):
            verb = "running" if event.will_execute else "loading"
            self._progress.update(self._task, description=_escape(f"{verb} {event.stage} on {event.record_name}"))
        elif isinstance(event, StageFinished):
            if event.status is StageStatus.FAILED:
                where = _escape(f"{event.stage} on record {event.record_index}:{event.record_name}")
                self.console.print(f"[red]failed[/] {where}")
            self._progress.update(self._task, advance=1, counts=self._counts_text())
        elif isinstance(event, RunFinished):
            self.close()
            style = "green" if event.status == "complete" else "red"
            self.console.print(f"[{style}]{outcome(event.status)}[/]: {self.counts.summary()}")

    def close(self) -> None:
        """Stop the live display (idempotent)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _escape(text: str) -> str:
    """User text (set names, stage names) shown literally inside rich markup."""
    from rich.markup import escape

    return escape(text)


def make_progress(mode: str, no_color: bool = False) -> QuietProgress:
    """The display for ``mode`` (``rich``, ``plain`` or ``quiet``)."""
    if mode == "rich":
        return RichProgress(no_color=no_color)
    if mode == "plain":
        return PlainProgress()
    return QuietProgress()
