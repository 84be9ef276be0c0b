"""The run loop: the report and run folder are listeners, a manager passed in keeps its options."""

from __future__ import annotations

import os
import sys

import curifactory as cf
from curifactory.loading import project_on_path
from curifactory.runner import RunHooks, RunRequest, run
from conftest import CHAIN_EXPERIMENT as EXPERIMENT


def test_the_run_loop_alone_writes_no_report(project):
    root = project({"experiments/r.py": EXPERIMENT})
    results, manager = run(RunRequest("r"), RunHooks(cf.ArtifactManager))
    assert results.state["total"] == 6 and manager.status == "complete"
    assert not os.path.exists(root / "reports")  # the report is a listener run_experiment adds


def test_run_experiment_adds_the_report_listener(project):
    from curifactory.experiment import run_experiment

    root = project({"experiments/r.py": EXPERIMENT})
    _, manager = run_experiment("r")
    assert (root / "reports" / manager.get_reference_name() / "index.html").exists()


def test_a_given_manager_gets_the_runs_options_only_for_the_run(project):
    project({"experiments/r.py": EXPERIMENT})
    live = cf.ArtifactManager("r", suppress_live_log=True)
    options, listeners = live.options, live.listeners
    run(RunRequest("r", dry=True, stage_overwrites=("load",)), RunHooks(cf.ArtifactManager), mngr=live)
    assert live.options == options and live.listeners is listeners


def test_project_on_path_adds_and_removes_only_what_it_added(tmp_path):
    before = list(sys.path)
    with project_on_path(str(tmp_path)):
        assert sys.path[0] == str(tmp_path)
    assert sys.path == before
    with project_on_path(before[0]):
        assert sys.path == before
    assert sys.path == before
