"""Unit tests of curifactory/notebook.py (no kernel; see test_notebook_kernel.py for those)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

import pytest

import curifactory as cf
from curifactory import notebook
from curifactory.caching import PickleCacher
from curifactory.config import load_settings
from curifactory.reporting import HTMLReporter, Reportable


@dataclass
class Inner:
    depth: int = 2


@dataclass
class Params(cf.ExperimentParameters):
    size: int = 3
    label: str = "<script>alert(1)</script>"
    inner: Inner = field(default_factory=Inner)


@cf.stage(None, ["numbers"], [PickleCacher])
def make_numbers(record):
    record.report(HTMLReporter("<b id='own'>numbers made</b>", name="made <it>"))
    return list(range(record.params.size))


@cf.stage(["numbers"], ["total"], [PickleCacher])
def add_up(record, numbers):
    return sum(numbers)


class PixelReporter(Reportable):
    """Writes a tiny file at render time and links to it through ``path``."""

    def render(self) -> None:
        with open(self.file_path(".png"), "wb") as handle:
            handle.write(b"\x89PNG fake")

    def html(self) -> str:
        return f"<img src='{self.file_path('.png')}'><a href=\"https://example.org/x.png\">elsewhere</a>"


class BrokenReporter(Reportable):
    def html(self) -> str:
        raise ValueError("cannot draw <this>")


@pytest.fixture
def root(tmp_path, monkeypatch):
    (tmp_path / "curifactory_config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_stages(experiment_name: str = "nbunit", **manager_args):
    manager = cf.ArtifactManager(experiment_name, settings=load_settings(), suppress_live_log=True, **manager_args)
    record = cf.Record(manager, Params(name="first <one>"))
    add_up(make_numbers(record))
    return manager, record


def text_of(display) -> str:
    return display if isinstance(display, str) else display.data


def test_record_html_escapes_and_shows_history(root):
    _, record = run_stages()
    markup = notebook.record_html(record)
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert "first &lt;one&gt;" in markup
    assert "depth" in markup  # nested parameter dataclass
    assert "numbers" in markup and "total" in markup
    assert "executed" in markup and "in memory" in markup
    assert record._repr_html_() == markup


def test_record_html_does_not_load_cached_values(root):
    run_stages()
    _, record = run_stages()
    assert [run.status.value for run in record.history] == ["cached", "cached"]
    markup = notebook.record_html(record)
    assert not record.state.is_loaded("numbers") and not record.state.is_loaded("total")
    assert "(cached, not loaded)" in markup
    assert "[0, 1, 2]" in markup  # the preview saved with the artifact
    assert "cached" in markup and "from cache" in markup


def test_manager_html_lists_records(root):
    manager, _ = run_stages()
    markup = notebook.manager_html(manager)
    assert manager.get_reference_name() in markup
    assert "first &lt;one&gt;" in markup and "make_numbers" in markup
    assert manager._repr_html_() == markup


def test_display_info(root):
    manager, _ = run_stages()
    manager.notes = "a <note>"
    markup = text_of(manager.display_info())
    assert "LIVE" in markup and "a &lt;note&gt;" in markup and manager.get_reference_name() in markup


def test_display_stage_graph_is_inline_svg(root):
    manager, _ = run_stages()
    markup = text_of(manager.display_stage_graph())
    if notebook_has_dot():
        assert "<svg" in markup and "make_numbers" in markup
    else:
        assert "digraph" in markup


def notebook_has_dot() -> bool:
    import shutil

    return shutil.which("dot") is not None


def test_reportables_render_under_live_folder_and_embed_files(root):
    manager, record = run_stages()
    record.report(PixelReporter(name="pixel"))
    markup = text_of(manager.display_all_reportables())
    assert "<b id='own'>numbers made</b>" in markup  # the reportable's own HTML, unescaped
    assert "made &lt;it&gt;" in markup  # its title, escaped
    assert "src='data:image/png;base64," in markup
    assert 'href="https://example.org/x.png"' in markup  # links elsewhere are left alone
    folder = root / "reports" / "_live" / manager.get_reference_name() / "reportables"
    assert [p.suffix for p in folder.iterdir()] == [".png"]


def test_display_variants_select_reportables(root):
    manager, record = run_stages()
    other = record.report(HTMLReporter("<i>grouped</i>", name="g", group="grp"))
    assert "grouped" in text_of(manager.display_group_reportables("grp"))
    assert "numbers made" not in text_of(manager.display_group_reportables("grp"))
    assert "numbers made" in text_of(manager.display_stage_reportables("make_numbers"))
    assert "grouped" in text_of(manager.display_record_reportables(record))
    assert "grouped" in text_of(manager.display_reportable(other))
    assert "No reportables" in text_of(manager.display_stage_reportables("nothing"))


def test_dry_manager_writes_nothing(root):
    first, _ = run_stages()
    first.metadata_capture.results()  # its providers (pip, conda) finish writing their caches first
    before = sorted(str(p) for p in root.rglob("*"))
    manager, record = run_stages(dry=True)
    record.report(PixelReporter(name="pixel"))
    markup = text_of(manager.display_all_reportables())
    assert "data:image/png;base64," in markup
    text_of(manager.display_stage_graph())
    notebook.record_html(record)
    assert sorted(str(p) for p in root.rglob("*")) == before


def test_broken_reportable_shows_its_error(root):
    manager, record = run_stages()
    record.report(BrokenReporter(name="broken"))
    markup = text_of(manager.display_all_reportables())
    assert "cannot draw &lt;this&gt;" in markup and "numbers made" in markup


def test_plain_strings_without_ipython(root, monkeypatch):
    manager, _ = run_stages()
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    monkeypatch.setitem(sys.modules, "IPython", None)
    for result in (manager.display_info(), manager.display_stage_graph(), manager.display_all_reportables()):
        assert isinstance(result, str)


def test_write_experiment_notebook(root):
    import nbformat

    manager = cf.ArtifactManager("tiny", settings=load_settings(), dry=True, prefix="pre")
    path = notebook.write_experiment_notebook(manager, "tiny", ["p1", "p2"], names=["a"])
    assert path == os.path.join(str(root), "notebooks", "experiments", f"{manager.get_reference_name()}.ipynb")
    loaded = nbformat.read(path, as_version=4)
    nbformat.validate(loaded)
    source = "\n".join(cell.source for cell in loaded.cells)
    assert "PROJECT_ROOT = os.path.abspath('../..')" in source
    assert "cf.ArtifactManager('tiny', dry=True, prefix='pre')" in source
    assert "['p1', 'p2']" in source and "param_set_names=['a']" in source and "mngr=manager" in source
    for call in ("display_info()", "display_stage_graph()", "display_all_reportables()"):
        assert f"manager.{call}" in source
    for cell in loaded.cells:
        if cell.cell_type == "code":
            compile(cell.source, "<cell>", "exec")
    assert json.loads(open(path).read())["nbformat"] == 4
    assert not [p for p in os.listdir(os.path.dirname(path)) if p.startswith(".cftmp")]


NOTEBOOK_EXPERIMENT = """
import curifactory as cf
from dataclasses import dataclass
from curifactory.caching import JsonCacher

@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1

def get_params():
    return [Params(name="one", n=1), Params(name="two", n=2), Params(name="three", n=3)]

@cf.stage(None, ["my_output"], [JsonCacher])
def make(record):
    return record.params.n * 10 + 1

def run(param_sets, manager):
    return [make(cf.Record(manager, p)) for p in param_sets]
"""


def test_write_experiment_notebook_in_020s_form_reloads_the_run(project):
    """0.20's ``write_experiment_notebook(manager, path, leave_script=True)``: a notebook and its
    percent script, whose state_<i> names reload each record's values from the cache."""
    import nbformat
    from curifactory.experiment import run_experiment, write_experiment_notebook

    root = project({"experiments/nbexp.py": NOTEBOOK_EXPERIMENT})
    _, manager = run_experiment("nbexp", ["nbexp"], param_set_names=["one", "three"], build_notebook=True,
                                report=False)
    assert (root / "notebooks" / "experiments" / f"{manager.get_reference_name()}.ipynb").exists()
    path = write_experiment_notebook(manager, "notebooks/experiment", leave_script=True)
    assert path == "notebooks/experiment.ipynb"
    loaded = nbformat.read(path, as_version=4)
    nbformat.validate(loaded)
    script = (root / "notebooks" / "experiment.py").read_text()
    assert script.startswith("# %%\n'''") and "%cd ../.." in script
    assert "not made with `--store-full`" in script  # the cache may have changed since
    assert [c.source for c in loaded.cells if c.cell_type == "code"][0] == "%cd ../.."
    scope: dict = {}
    exec(script.replace("%cd ../..", ""), None, scope)  # as 0.20's own test does
    assert scope["state_0"]["my_output"] == 11 and scope["state_1"]["my_output"] == 31
    assert scope["record_1"].params.name == "three"
    write_experiment_notebook(manager, "notebooks/quiet", 1, suppress_global_warning=True, errored=True)
    quiet = nbformat.read("notebooks/quiet.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in quiet.cells)
    assert "%cd .." in text and "--store-full" not in text and "did not complete" in text
    assert not (root / "notebooks" / "quiet.py").exists()
