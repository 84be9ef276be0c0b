"""In-process checks of the CLI pieces: flag mapping, progress displays, logging setup."""

from __future__ import annotations

import io
import logging
import sys
from types import SimpleNamespace

import pytest

from curifactory import cli
from curifactory.cli import run as cli_run
from curifactory.events import RunFinished, RunStarted, StageFinished, StageStarted
from curifactory.history import StageStatus
from curifactory.logs import CliLogging, LogOptions
from curifactory.progress import PlainProgress, QuietProgress, RichProgress


class FakeManager:
    """What the CLI reads from a finished run's manager."""

    def __init__(self, root):
        self.dry = False
        self.map_mode = False
        self.parallel_mode = False
        self.logs_path = str(root / "logs")
        self.reports_path = str(root / "reports")
        self.log_path = None
        self.run_line = ""

    def get_reference_name(self):
        return "x_1_2024-01-01-T000000"

    def get_run_output_path(self):
        return self.logs_path + "-no-run-folder"


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "curifactory_config.json").write_text("{}")
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "__init__.py").write_text("")
    (tmp_path / "experiments" / "cli_flags_exp.py").write_text("def run(param_sets, manager):\n    pass\n")
    monkeypatch.chdir(tmp_path)
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "experiments"}
    for name in saved:
        del sys.modules[name]
    yield tmp_path
    for name in [n for n in sys.modules if n.split(".")[0] == "experiments"]:
        del sys.modules[name]
    sys.modules.update(saved)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def test_every_flag_reaches_run_experiment(project, monkeypatch, capsys):
    seen = {}

    def fake_run_experiment(name, **kwargs):
        seen.update(kwargs, name=name)
        manager = FakeManager(project)
        kwargs["runner"]([], manager)  # the CLI meets the manager through its runner
        return None, manager

    monkeypatch.setattr("curifactory.experiment.run_experiment", fake_run_experiment)
    argv = ["cli_flags_exp", "-p", "a", "-p", "b", "-n", "n1", "--indices", "0-2,4", "--global-indices", "1",
            "-c", "cache2", "-s", "--dry-cache", "--overwrite", "--overwrite-stage", "s1", "--overwrite-stage",
            "s2", "--prefix", "pre", "--lazy", "--ignore-lazy", "--no-dag", "--notes", "hi", "--no-report",
            "--no-log", "--parallel", "2", "--parallel-safe", "--plain"]
    assert cli.main(argv) == 0
    assert seen["name"] == "cli_flags_exp"
    expected = dict(param_files=["a", "b"], param_set_names=["n1"], param_set_indices=["0-2", "4"],
                    global_param_set_indices=["1"], cache_dir_override="cache2", store_full=True, dry=False,
                    dry_cache=True, overwrite_override=True, stage_overwrites=["s1", "s2"], prefix="pre",
                    lazy=True, ignore_lazy=True, no_dag=True, notes="hi", report=False, parallel=2,
                    parallel_safe=True, run_string="experiment " + " ".join(argv))
    assert {k: seen[k] for k in expected} == expected
    assert isinstance(seen["listeners"][0], PlainProgress)


def test_progress_mode():
    def args(**flags):
        return SimpleNamespace(**{"quiet": False, "plain": False, "progress": False, **flags})

    assert cli_run.progress_mode(args(quiet=True, progress=True)) == "quiet"
    assert cli_run.progress_mode(args(plain=True, progress=True)) == "plain"
    assert cli_run.progress_mode(args(progress=True)) == "rich"
    assert cli_run.progress_mode(args()) == "plain"  # stdout is not a terminal under pytest


def events():
    return [
        RunStarted("x_1", "x", 2, 4, 2),
        StageStarted("first", 0, "a", False),
        StageFinished("first", 0, "a", StageStatus.CACHED, 0.0),
        StageStarted("second", 0, "a", True),
        StageFinished("second", 0, "a", StageStatus.EXECUTED, 0.25),
        StageStarted("first", 1, "b", True),
        StageFinished("first", 1, "b", StageStatus.FAILED, 0.5),
        RunFinished("x_1", "error", 1.5, "boom"),
    ]


def test_plain_progress_prints_executed_stages_and_a_summary():
    out = io.StringIO()
    progress = PlainProgress(out)
    for event in events():
        progress.on_event(event)
    lines = out.getvalue().splitlines()
    assert lines[0] == "run x_1: 2 parameter sets, 4 stage calls (2 to run, 2 cached)"
    assert lines[1] == "  executed second on record 0:a (0.25 s)"
    assert lines[2].startswith("  FAILED first on record 1:b")
    assert lines[3] == "failed: 1 stage executed, 1 cached, 1 failed in 1.50 s"


def test_quiet_progress_only_counts():
    progress = QuietProgress()
    for event in events():
        progress.on_event(event)
    assert (progress.counts.executed, progress.counts.cached, progress.counts.failed) == (1, 1, 1)


def test_rich_progress_draws_and_stops():
    from rich.console import Console

    out = io.StringIO()
    progress = RichProgress(console=Console(file=out, width=100, force_terminal=False))
    for event in events():
        progress.on_event(event)
    progress.close()
    text = out.getvalue()
    assert "run x_1" in text and "failed: 1 stage executed, 1 cached, 1 failed" in text
    assert progress._progress is None


def test_cli_logging_buffers_until_the_log_file_opens(tmp_path):
    logs = CliLogging(LogOptions(), ("curifactory", "experiments"))
    manager = FakeManager(tmp_path)
    handlers_before = list(logging.getLogger().handlers)
    logs.start()
    try:
        logging.getLogger("curifactory.test").info("before the file")
        logging.getLogger("experiments.x").info("from the project")
        logging.getLogger("chatty.library").info("dropped")
        logging.getLogger("chatty.library").warning("kept")
        path = logs.attach_run_log(manager)
        logging.getLogger("curifactory.test").info("after the file")
        logs.log_failure("it broke", ValueError("boom"))
    finally:
        logs.close()
    text = open(path, encoding="utf-8").read()
    assert manager.log_path == path and path.endswith("x_1_2024-01-01-T000000.log")
    for message in ("before the file", "from the project", "kept", "after the file", "it broke"):
        assert message in text
    assert "dropped" not in text and "Traceback" not in text
    assert logging.getLogger().handlers == handlers_before


def test_all_loggers_and_log_errors(tmp_path):
    logs = CliLogging(LogOptions(all_loggers=True, log_errors=True))
    logs.start()
    try:
        path = logs.attach_run_log(FakeManager(tmp_path))
        logging.getLogger("chatty.library").info("now kept")
        try:
            raise ValueError("boom")
        except ValueError as exc:
            logs.log_failure("it broke", exc)
    finally:
        logs.close()
    text = open(path, encoding="utf-8").read()
    assert "now kept" in text and "Traceback" in text


def test_no_log_file_when_dry(tmp_path):
    logs = CliLogging(LogOptions())
    manager = FakeManager(tmp_path)
    manager.dry = True
    logs.start()
    try:
        assert logs.attach_run_log(manager) is None
    finally:
        logs.close()
    assert not (tmp_path / "logs").exists()


def test_resolve_notes_never_blocks_without_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("typed\n"))
    assert cli_run.resolve_notes(cli.EDIT_NOTES) == ""
    assert cli_run.resolve_notes("given") == "given"
    assert cli_run.resolve_notes(None) is None


def test_error_paragraph(capsys):
    cli.print_error("one\n  two   three")
    assert capsys.readouterr().err == "error: one two three\n"


def test_the_command_modules_start_light():
    import subprocess

    code = ("import sys, curifactory.cli, curifactory.cli.run, curifactory.cli.project, curifactory.cli.inspect; "
            "print(sorted(m for m in ('rich', 'pandas', 'matplotlib', 'jinja2', 'numpy', 'IPython') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
