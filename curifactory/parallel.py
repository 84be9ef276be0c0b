"""``--parallel N``: fill the cache from N worker processes, then run once in the parent.

Each worker (forked, so it shares the loaded experiment code) runs the experiment
on every N-th parameter set with per-artifact file locks: when two workers need
the same artifact (a shared ``path_override``, or two sets with the same hash),
one computes it while the other waits and then loads it. Workers skip aggregates,
which need every record. The parent then runs the whole experiment as usual: what
the workers computed is cached, so it only runs the aggregates and writes the one
store entry and the report.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from curifactory.history import StageStatus

logger = logging.getLogger(__name__)

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK")


def distributed_rank() -> int:
    """The highest of ``RANK``/``LOCAL_RANK``/``NODE_RANK`` (0 when none is set)."""
    ranks = []
    for name in RANK_VARIABLES:
        try:
            ranks.append(int(os.environ.get(name, "0")))
        except ValueError:
            ranks.append(0)
    return max(ranks)


@contextmanager
def artifact_lock(cache_path: str, artifact_path: str) -> Iterator[None]:
    """Hold the inter-process lock of one artifact path."""
    from curifactory.locking import FileLock

    folder = os.path.join(cache_path, ".locks")
    os.makedirs(folder, exist_ok=True)
    name = hashlib.blake2b(os.path.abspath(artifact_path).encode(), digest_size=12).hexdigest()
    with FileLock(os.path.join(folder, name + ".lock")):
        yield


@dataclass(frozen=True)
class WorkerOutcome:
    """What one worker did: its exit code, how many stage calls it executed, and
    (record hash, stage, first artifact path) of each (so the parent reports them as computed)."""

    exit_code: int
    executed: int
    computed: tuple[tuple[str, str, str, str, bool], ...] = ()


def _computed_calls(manager: Any) -> tuple[tuple[str, str, str, str, bool], ...]:
    """(record hash, stage, first artifact path, reason, whether it cascades) of every
    stage call the worker executed."""
    return tuple((record.get_hash(), run.stage, run.outputs[0].path, run.reason, run.cascades)
                 for record in manager.records for run in record.history
                 if run.status is StageStatus.EXECUTED and run.outputs and run.outputs[0].path)


def _die_with(parent: int) -> None:
    """End this worker soon after its parent dies, even by SIGKILL: the kernel's parent-death
    signal on Linux, and everywhere a thread that checks the parent every half second."""
    import signal
    import threading

    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    if os.getppid() != parent:  # it died before the signal was set
        os._exit(1)
    threading.Thread(target=watch, name="curifactory-parent-watch", daemon=True).start()


def _worker(run: Callable[..., Any], param_sets: list[Any], manager_factory: Callable[[], Any], results: Any,
            parent: int | None = None) -> None:
    if parent is not None:
        _die_with(parent)
    executed = 0
    computed: tuple[tuple[str, str, str, str, bool], ...] = ()
    code = 0
    manager = None
    try:
        manager = manager_factory()
        manager.map_experiment(run, param_sets)
        run(param_sets, manager)
    except Exception as exc:  # the parent's own pass reports the failure properly
        logger.info("parallel worker stopped: %s: %s", type(exc).__name__, exc)
        code = 1
    if manager is not None:
        executed = sum(1 for r in manager.records for h in r.history if h.status is StageStatus.EXECUTED)
        computed = _computed_calls(manager)
    results.put((executed, computed))
    os._exit(code)


def fill_cache(run: Callable[..., Any], param_sets: list[Any], workers: int,
               manager_factory: Callable[[], Any]) -> list[WorkerOutcome]:
    """Run ``run`` on interleaved slices of ``param_sets`` in ``workers`` processes.

    Without the ``fork`` start method (Windows, macOS by default) nothing runs in
    parallel and an empty list is returned.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        logger.warning("--parallel needs the 'fork' start method, which this platform lacks; running serially.")
        return []
    workers = max(1, min(workers, len(param_sets)))
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()
    processes = [
        context.Process(target=_worker, args=(run, param_sets[i::workers], manager_factory, results, os.getpid()))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    reports = [results.get() for _ in processes if not results.empty()]
    reports += [(0, ())] * (len(processes) - len(reports))  # a worker killed before reporting
    return [WorkerOutcome(p.exitcode or 0, n, paths) for p, (n, paths) in zip(processes, reports)]
