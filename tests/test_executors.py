"""Executors are a plug-in point: a toy one runs a real experiment; the built-in ones."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from curifactory.executors import InProcessExecutor, ProcessPoolExecutor, make_executor
from curifactory.experiment import run_experiment
from conftest import CHAIN_EXPERIMENT as EXPERIMENT


class ThreadExecutor:
    """A toy executor: each job runs on a worker thread (under 30 lines with the import)."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.threads = []

    def submit(self, job):
        def work():
            self.threads.append((job.stage, threading.current_thread().name))
            return job.run()

        return self.pool.submit(work)

    def gather(self, handles):
        return [handle.result() for handle in handles]


def test_a_toy_executor_runs_an_experiment(project):
    project({"experiments/toy.py": EXPERIMENT})
    toy = ThreadExecutor()
    record, manager = run_experiment("toy", report=False, executor=toy)
    assert record.state["total"] == 6
    assert sorted(stage for stage, _ in toy.threads) == ["double", "double", "load", "load", "total"]
    assert all(name != threading.main_thread().name for _, name in toy.threads)
    assert {run.status.value for r in manager.records for run in r.history} == {"executed"}
    # a second run on the toy executor submits nothing: the decision comes first
    again = ThreadExecutor()
    run_experiment("toy", report=False, executor=again)
    assert again.threads == []


def test_a_failing_job_is_raised_by_the_run_loop(project):
    project({"experiments/toy.py": EXPERIMENT.replace("return 2 * x", "raise ValueError('boom')")})
    try:
        run_experiment("toy", report=False, executor=ThreadExecutor())
    except ValueError as exc:
        assert "boom" in str(exc)
    else:
        raise AssertionError("the stage's error must reach the caller")
    store = json.load(open("data/store.json"))
    assert store[-1]["status"] == "error"


def test_make_executor_chooses_by_parallel():
    assert isinstance(make_executor(None), InProcessExecutor)
    assert isinstance(make_executor(1), InProcessExecutor)
    pool = make_executor(3)
    assert isinstance(pool, ProcessPoolExecutor) and pool.workers == 3
    toy = ThreadExecutor()
    adapted = make_executor(4, given=toy)
    assert adapted.inner is toy and adapted.prefilled is False and not adapted.computed_elsewhere("h", "s", "p")


def test_in_process_executor_hands_back_errors_through_the_handle():
    class Job:
        def run(self):
            raise KeyError("k")

    handle = InProcessExecutor().submit(Job())
    try:
        handle.result()
    except KeyError:
        pass
    else:
        raise AssertionError("result() must raise the job's error")
