"""A run leaves the interpreter as it found it: sys.path, warning filters, signal handlers,
bytecode writing and the root logger (a notebook kernel or a script calls us in-process)."""

from __future__ import annotations

import logging
import signal
import sys
import warnings

import curifactory as cf
from curifactory import cli
from curifactory.experiment import run_experiment
from conftest import CHAIN_EXPERIMENT as EXPERIMENT


def snapshot() -> dict:
    root = logging.getLogger()
    return {
        "sys.path": list(sys.path),
        "warnings": list(warnings.filters),
        "SIGTERM": signal.getsignal(signal.SIGTERM),
        "dont_write_bytecode": sys.dont_write_bytecode,
        "root handlers": list(root.handlers),
        "root level": root.level,
    }


def test_the_command_line_in_process_restores_everything(project, capsys):
    root = project({"experiments/tiny.py": EXPERIMENT})
    sys.path.remove(str(root))  # as in a kernel started elsewhere
    before = snapshot()
    assert cli.main(["tiny", "--no-report"]) == 0
    assert snapshot() == before
    assert cli.main(["tiny", "--map"]) == 0  # a dry command stops bytecode writing while it runs
    assert snapshot() == before
    assert cli.main(["tiny", "--overwrite", "--dry"]) == 0
    assert snapshot() == before
    assert "plan of tiny" in capsys.readouterr().out


def test_run_experiment_and_a_live_manager_restore_sys_path(project):
    root = project({"experiments/tiny.py": EXPERIMENT})
    sys.path.remove(str(root))
    before = snapshot()
    results, manager = run_experiment("tiny", report=False)
    assert results.state["total"] == 6
    live = cf.ArtifactManager("tiny", suppress_live_log=True)
    run_experiment("tiny", mngr=live, dry=True, report=False)
    assert snapshot() == before
