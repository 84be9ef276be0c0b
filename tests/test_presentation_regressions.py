"""Regression tests for bugs found in review of the CLI, progress, reports and notebooks.

Each test states the behaviour it protects; all run real experiments in ``tmp_path``.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import CliProject, files_under

EXPERIMENT = '''
"""Two chained stages and an aggregate; every executed stage is noted in CF_TEST_SIDE."""
import os
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import JsonCacher


@dataclass
class P(cf.ExperimentParameters):
    a: int = 1


def note(stage, record):
    with open(os.environ["CF_TEST_SIDE"], "a") as handle:
        handle.write(f"{stage}:{record.params.name if record.params else 'agg'}\\n")


@cf.stage(None, ["one"], [JsonCacher])
def first(record):
    note("first", record)
    return record.params.a


@cf.stage(["one"], ["two"], [JsonCacher])
def second(record, one):
    note("second", record)
    return one * 2


@cf.aggregate(["two"], ["total"], [JsonCacher])
def total(record, records, two):
    note("total", record)
    return sum(two.values())


def run(param_sets, manager):
    records = [second(first(cf.Record(manager, p))) for p in param_sets]
    total(cf.Record(manager, None), records)
'''

PARAMS = '''
"""Three parameter sets."""
from experiments.x import P


def get_params():
    return [P(name="a", a=1), P(name="b", a=2), P(name="c", a=3)]
'''

BROKEN_RUN = '''
from dataclasses import dataclass

import curifactory as cf


@dataclass
class P(cf.ExperimentParameters):
    a: int = 1


def get_params():
    return [P(name="only")]


def run(param_sets, manager):
    raise RuntimeError("run() reads a file that is missing")
'''


@pytest.fixture
def proj(tmp_path) -> CliProject:
    return CliProject(tmp_path, {"experiments/x.py": textwrap.dedent(EXPERIMENT),
                                 "experiments/brokenrun.py": textwrap.dedent(BROKEN_RUN),
                                 "params/y.py": textwrap.dedent(PARAMS)})


def log_href(report_html: str) -> str:
    match = re.search(r'href="([^"]*\.log)"', report_html)
    assert match, "the report links to the run's log"
    return urllib.parse.unquote(match.group(1))


# -- progress display ---------------------------------------------------------------------------


def test_rich_progress_shows_parameter_set_names_literally():
    """A parameter set name is user data, not rich markup.

    With a name such as ``a[/x]`` (square brackets are common in names like
    ``lr[0.1]`` or ``model[/base]``), the live display must still print the
    failed-stage line and the final summary, and show the name as typed.
    """
    from rich.console import Console

    from curifactory.events import RunFinished, RunStarted, StageFinished, StageStarted, emit
    from curifactory.history import StageStatus
    from curifactory.progress import RichProgress

    out = io.StringIO()
    progress = RichProgress(console=Console(file=out, width=120, force_terminal=False))
    name = "a[/x]"
    emit([progress], RunStarted("x_1", "x", 1, 1, 1))
    emit([progress], StageStarted("first", 0, name, True))
    emit([progress], StageFinished("first", 0, name, StageStatus.FAILED, 0.1))
    emit([progress], RunFinished("x_1", "error", 0.2, "boom"))
    progress.close()
    text = out.getvalue()
    assert f"first on record 0:{name}" in text, text
    assert "failed: 0 stages executed, 0 cached, 1 failed" in text, text


def test_progress_flag_prints_the_summary_for_bracketed_names(proj):
    """``experiment NAME --progress`` ends with the ``done: ...`` summary line, whatever the set names."""
    (proj.root / "experiments" / "single.py").write_text(textwrap.dedent('''
        import curifactory as cf
        from experiments.x import P, first

        def get_params():
            return [P(name="model[/base]", a=1)]

        def run(param_sets, manager):
            for param_set in param_sets:
                first(cf.Record(manager, param_set))
        '''))
    result = proj.run("single", "--progress")
    assert result.returncode == 0, result.stderr
    assert "done: 1 stage executed, 0 cached" in result.stdout, result.stdout


# -- CLI flags ----------------------------------------------------------------------------------


def test_quiet_does_not_skip_the_notebook(proj):
    """``--notebook`` writes the notebook even with ``--quiet`` (quiet only silences output)."""
    result = proj.run("x", "-p", "y", "--notebook", "--quiet")
    assert result.returncode == 0, result.stderr
    reference = proj.store()[-1]["reference"]
    assert (proj.root / "notebooks" / "experiments" / f"{reference}.ipynb").exists()


def test_dry_parallel_safe_writes_no_file(proj):
    """``--dry`` writes nothing at all, also with ``--parallel-safe`` (no lock files in the cache)."""
    before = files_under(proj.root, with_pycache=False)
    result = proj.run("x", "-p", "y", "--dry", "--parallel-safe")
    assert result.returncode == 0, result.stderr
    assert files_under(proj.root, with_pycache=False) == before


def test_map_warns_about_an_unknown_overwrite_stage(proj):
    """docs/cli.md: '--overwrite-stage STAGE ... A name no stage has prints a warning.'

    ``--map`` is where a user checks what an overwrite would do, so a typo must be
    reported there too, not only on a real run.
    """
    result = proj.run("x", "-p", "y", "--map", "--overwrite-stage", "secnod")
    assert result.returncode == 0, result.stderr
    assert "secnod" in result.stderr, (result.stdout, result.stderr)


def test_map_of_an_unmappable_run_says_why(proj):
    """``--map`` on an experiment whose ``run()`` raises names the exception (without needing -v)."""
    result = proj.run("brokenrun", "--map")
    assert "run() reads a file that is missing" in result.stdout + result.stderr, (result.stdout, result.stderr)


# -- notebooks ----------------------------------------------------------------------------------


def _exec_notebook_code(notebook: Path, env: dict, cells: int = 3) -> subprocess.CompletedProcess:
    """Execute the first ``cells`` cells' code of ``notebook`` in a fresh interpreter, from its folder."""
    data = json.loads(notebook.read_text())
    code = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in data["cells"][:cells] if c["cell_type"] == "code")
    code += "\nprint('RECORDS', len(manager.records))\n"
    return subprocess.run([sys.executable, "-c", code], cwd=notebook.parent, env=env, capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL)


def test_notebook_of_an_indices_run_reruns_no_stage(proj):
    """The ``--notebook`` of a run made with ``--indices`` reloads that run's records from the
    cache: executing it reruns no stage (issue 6, item 4) and has the same records."""
    result = proj.run("x", "-p", "y", "--indices", "0-2", "--notebook", "--no-report")
    assert result.returncode == 0, result.stderr
    assert sorted(proj.executed()) == ["first:a", "first:b", "second:a", "second:b", "total:agg"]
    reference = proj.store()[-1]["reference"]
    notebook = proj.root / "notebooks" / "experiments" / f"{reference}.ipynb"
    executed = _exec_notebook_code(notebook, proj.env())
    assert executed.returncode == 0, executed.stderr
    assert proj.executed() == [], "executing the notebook reran stages"
    assert "RECORDS 3" in executed.stdout, executed.stdout


# -- reports ------------------------------------------------------------------------------------


def test_log_link_works_when_the_reports_are_served(proj):
    """A report served by ``experiment reports`` links to a log the server can deliver.

    issue 4: the report has 'a link to the log'; the server refuses anything outside
    the reports folder, so the link must point inside it (e.g. a copy of the log).
    """
    from curifactory.reporting.server import make_server

    result = proj.run("x", "-p", "y")
    assert result.returncode == 0, result.stderr
    reference = proj.store()[-1]["reference"]
    server = make_server(str(proj.root / "reports"), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/{reference}/index.html"
        page = urllib.request.urlopen(base, timeout=10).read().decode()
        url = urllib.parse.urljoin(base, log_href(page))
        try:
            status = urllib.request.urlopen(url, timeout=10).status
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == 200, f"{url} -> {status}"
    finally:
        server.shutdown()
        server.server_close()


def test_store_full_report_copy_links_to_the_copied_log(proj):
    """The report inside a ``--store-full`` run folder links to a log that exists from there
    (the run folder holds its own copy of the log)."""
    result = proj.run("x", "-p", "y", "--store-full")
    assert result.returncode == 0, result.stderr
    reference = proj.store()[-1]["reference"]
    report = proj.root / "data" / "runs" / reference / "report" / "index.html"
    href = log_href(report.read_text())
    assert (report.parent / href).resolve().is_file(), href


def test_parallel_report_marks_worker_computed_stages_as_executed(proj):
    """A cold ``--parallel 2`` run computes every stage in this run: its report must not say
    that they came from the cache (issue 4: 'cached or computed this run')."""
    result = proj.run("x", "-p", "y", "--parallel", "2")
    assert result.returncode == 0, result.stderr
    reference = proj.store()[-1]["reference"]
    page = proj.report(reference).read_text()
    statuses = re.findall(r'class="stage-status stage-([a-z]+)"', page)
    assert len(statuses) == 7
    assert statuses.count("cached") == 0, statuses


SHARED = '''
"""Eight sets share one fixed-path artifact."""
from dataclasses import dataclass
import curifactory as cf
from curifactory.caching import JsonCacher

@dataclass
class P(cf.ExperimentParameters):
    n: int = 0

@cf.stage(None, ["raw"], [JsonCacher(path_override="{cache}/shared_raw.json")])
def load(record):
    return [1, 2, 3]

@cf.stage(["raw"], ["value"], [JsonCacher])
def compute(record, raw):
    return sum(raw) * record.params.n

def get_params():
    return [P(name=f"s{i}", n=i) for i in range(8)]

def run(param_sets, manager):
    for p in param_sets:
        compute(load(cf.Record(manager, p)))
'''


def test_parallel_run_reports_a_shared_artifact_computed_once(proj):
    """With ``--parallel``, the console says what the workers do while they work, and a
    shared artifact computed once by one worker counts as executed once, not per record."""
    (proj.root / "experiments" / "shared.py").write_text(SHARED)
    result = proj.run("shared", "--parallel", "2", "--plain")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "parallel: 2 workers are computing 8 parameter sets..."
    assert "workers just computed 9 of them" in result.stdout
    assert "done: 9 stages executed, 7 cached" in result.stdout


def test_no_color_environment_variable_is_honoured(monkeypatch):
    """``NO_COLOR`` (https://no-color.org) turns colours off like ``--no-color``."""
    from curifactory.progress import RichProgress

    monkeypatch.setenv("NO_COLOR", "1")
    assert RichProgress().console.no_color
    monkeypatch.delenv("NO_COLOR")
    assert not RichProgress().console.no_color and RichProgress(no_color=True).console.no_color


def test_reports_outside_a_project_is_a_usage_error(tmp_path):
    """``experiment reports`` where there is no project says so (exit 2) and creates nothing."""
    result = subprocess.run([sys.executable, "-m", "curifactory", "reports"], cwd=tmp_path, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 2 and "No reports to serve" in result.stderr
    assert list(tmp_path.iterdir()) == []
