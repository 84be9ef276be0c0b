"""Executors: where a stage call that must run actually runs.

The run loop (:func:`curifactory.execution.run_stage`) decides whether a call
runs; when it does, it hands a :class:`StageJob` to the manager's executor with
:meth:`Executor.submit` and waits for it with :meth:`Executor.gather`. It never
knows which executor it drives. Two ship here:

- :class:`InProcessExecutor` runs each job at once, in this process (the default);
- :class:`ProcessPoolExecutor` (``--parallel N``) first lets N forked workers fill
  the cache with every record's stages (:func:`curifactory.parallel.fill_cache`),
  then runs what is left (the aggregates) in this process.

A new executor implements ``submit`` and ``gather`` (see :class:`Executor`);
subclassing :class:`BaseExecutor` gives it the optional hooks. See
docs/architecture.md, "Adding an executor".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from curifactory.events import WorkersFinished, WorkersStarted, emit
from curifactory.history import ArtifactInfo, StageStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobResult:
    """What running a job did: executed (or found cached under its lock), its artifacts."""

    status: StageStatus
    artifacts: tuple[ArtifactInfo, ...] = ()
    reportables: int = 0


class StageJob:
    """A stage call the run loop decided to run.

    Attributes:
        call: the :class:`curifactory.execution.StageCall` (spec, record, cachers).
        overrides: the keyword arguments the stage was called with.
        decision: why it runs (:class:`curifactory.decision.Decision`).
    """

    def __init__(self, call: Any, overrides: dict[str, Any], decision: Any):
        self.call = call
        self.overrides = overrides
        self.decision = decision

    @property
    def stage(self) -> str:
        return str(self.call.spec.name)

    @property
    def record(self) -> Any:
        return self.call.record

    def run(self) -> JobResult:
        """Execute the call here and now (an executor calls this where it wants it run)."""
        return self.call.run_job(self)  # type: ignore[no-any-return]


@runtime_checkable
class Handle(Protocol):
    """A submitted job; ``result()`` waits for it and returns or raises."""

    def result(self) -> JobResult:  # pragma: no cover - protocol
        ...


@runtime_checkable
class Executor(Protocol):
    """The plug-in point: run submitted stage jobs, hand back their results."""

    def submit(self, job: StageJob) -> Handle:  # pragma: no cover - protocol
        ...

    def gather(self, handles: Sequence[Handle]) -> list[JobResult]:  # pragma: no cover - protocol
        ...


@dataclass(frozen=True)
class RunContext:
    """What an executor may use before the real pass starts (see :meth:`BaseExecutor.start`).

    Attributes:
        manager: the run's manager.
        run: the experiment's ``run(param_sets, manager)``.
        param_sets: the selected parameter sets.
        worker_manager: makes a manager for a worker process of this run.
    """

    manager: Any
    run: Callable[..., Any]
    param_sets: list[Any]
    worker_manager: Callable[[], Any] = field(default=lambda: None)
    mappable: bool = True
    """False with ``--no-dag``: the run is not mapped ahead."""


class Done:
    """The handle of a job that already ran: its result or the exception it raised."""

    def __init__(self, result: JobResult | None = None, error: BaseException | None = None):
        self._result = result
        self._error = error

    def result(self) -> JobResult:
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


class BaseExecutor:
    """Optional hooks with do-nothing defaults, for executors to subclass.

    Attributes:
        prefilled: the record stages of this run were already run elsewhere
            (overwrites then apply to aggregates only; see ``decision``).
        computed: for each call another process computed for this run (shown as
            executed, not cached), keyed by (record hash, stage, first artifact path):
            (its reason, whether the reason cascades downstream).
    """

    name = "base"
    prefilled = False
    plan_is_current = False
    """Set by :meth:`start` when it mapped the run and computed nothing: the manager's plan holds,
    the runner does not map the run again."""
    elsewhere = "in a --parallel worker"
    """Where the calls in :attr:`computed` ran, for the run's stage history."""

    def __init__(self) -> None:
        self.computed: dict[tuple[str, str, str], tuple[str, bool]] = {}

    def start(self, context: RunContext) -> None:
        """Called once before the run's real pass."""

    def finish(self) -> None:
        """Called once after the run's real pass (also when it failed)."""
        self.prefilled, self.computed, self.plan_is_current = False, {}, False

    def gather(self, handles: Sequence[Handle]) -> list[JobResult]:
        return [handle.result() for handle in handles]

    def computed_elsewhere(self, record_hash: str, stage: str, path: str | None) -> tuple[str, bool] | None:
        """(reason, cascades) when another process computed this call for this run, else None."""
        return self.computed.get((record_hash, stage, path or ""))


class InProcessExecutor(BaseExecutor):
    """Runs every job immediately, in this process."""

    name = "in-process"

    def submit(self, job: StageJob) -> Handle:
        try:
            return Done(job.run())
        except BaseException as exc:  # handed back through result(), as any executor does
            return Done(error=exc)


class ProcessPoolExecutor(InProcessExecutor):
    """``--parallel N``: N forked workers fill the cache, this process runs the rest.

    Each worker runs the experiment on every N-th parameter set, under
    per-artifact file locks (a shared artifact is computed once) and without
    aggregates; the real pass then finds their outputs cached.
    """

    name = "process-pool"

    def __init__(self, workers: int):
        super().__init__()
        self.workers = workers

    def start(self, context: RunContext) -> None:
        from curifactory.parallel import fill_cache

        manager = context.manager
        plan = manager.map_experiment(context.run, context.param_sets) if context.mappable else None
        if plan is not None and not any(plan.verdicts[node.key].runs and not node.aggregate for node in plan.nodes):
            self.plan_is_current = True  # every record stage cached: forking workers would only cost
            return
        emit(manager.listeners, WorkersStarted(min(self.workers, len(context.param_sets)), len(context.param_sets)))
        outcomes = fill_cache(context.run, context.param_sets, self.workers, context.worker_manager)
        logger.info("parallel workers finished: %s", outcomes)
        failed = sum(1 for o in outcomes if o.exit_code)
        emit(manager.listeners, WorkersFinished(len(outcomes), sum(o.executed for o in outcomes), failed))
        # the workers applied the overwrites, so only aggregates still need them; if a
        # worker died, this process cannot tell what it redid and applies them itself
        self.prefilled = bool(outcomes) and not failed
        self.computed = {(h, stage, path): (reason, cascades)
                         for o in outcomes for h, stage, path, reason, cascades in o.computed}


class _Adapted(BaseExecutor):
    """Gives an executor that implements only ``submit`` and ``gather`` the hooks."""

    def __init__(self, inner: Executor):
        super().__init__()
        self.inner = inner
        self.name = type(inner).__name__

    def submit(self, job: StageJob) -> Handle:
        return self.inner.submit(job)

    def gather(self, handles: Sequence[Handle]) -> list[JobResult]:
        return self.inner.gather(handles)


EXECUTORS = ("in-process", "process-pool", "dask")


def make_executor(parallel: int | None = None, given: Executor | None = None,
                  name: str | None = None) -> BaseExecutor:
    """The executor ``given`` (with the optional hooks added if it lacks them), else the one
    ``name`` says (``dask`` is made by the runner, :mod:`curifactory.dask_executor`), else the
    one for ``--parallel N`` (a process pool when N > 1, else in-process)."""
    if given is not None:
        return given if isinstance(given, BaseExecutor) else _Adapted(given)
    if name == "in-process":
        return InProcessExecutor()
    if name == "process-pool":
        import os

        return ProcessPoolExecutor(parallel or os.cpu_count() or 2)
    if parallel and parallel > 1:
        return ProcessPoolExecutor(parallel)
    return InProcessExecutor()
