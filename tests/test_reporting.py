"""HTML reports of real runs: reportables, the report page, the stage graph and the run index."""

from __future__ import annotations

import html
import json
import os
import pickle
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import curifactory as cf
from curifactory import reporting
from curifactory.caching import JsonCacher, PickleCacher
from curifactory.config import load_settings
from curifactory.reporting import graph, index, render


@dataclass
class Inner:
    width: int = 3
    label: str = "<b>inner</b>"


@dataclass
class Params(cf.ExperimentParameters):
    seed: int = 0
    comment: str = "<script>alert('param')</script>"
    inner: Inner = field(default_factory=Inner)


@cf.stage(None, ["numbers"], [JsonCacher])
def make_numbers(record):
    return [record.params.seed * i for i in range(5)]


@cf.stage(["numbers"], ["total"], [PickleCacher])
def add_up(record, numbers):
    import pandas as pd

    record.report(reporting.DFReporter(pd.DataFrame({"n": numbers, "half": [v / 3 for v in numbers]}),
                                       name="numbers table", group="tables"))
    record.report(reporting.JsonReporter({"total": sum(numbers)}, name="total"))
    return sum(numbers)


@cf.aggregate(["total"], ["totals"], [JsonCacher])
def collect(record, records, total):
    record.report(reporting.HTMLReporter("<p class='mine'>all <em>totals</em></p>", name="raw html"))
    return {r.params.name: v for r, v in total.items()}


def make_run(root, names=("alpha", "beta", "gamma"), **manager_kwargs):
    """A finished real run: one record per name (2 stages each) and an aggregate."""
    os.makedirs(root, exist_ok=True)
    config = os.path.join(root, "curifactory_config.json")
    if not os.path.exists(config):
        with open(config, "w") as handle:
            handle.write("{}")
    manager_kwargs.setdefault("status_override", "complete")
    manager = cf.ArtifactManager("rep", settings=load_settings(root), run_line="experiment rep -p params",
                                 **manager_kwargs)
    records = [add_up(make_numbers(cf.Record(manager, Params(name=n, seed=i + 1)))) for i, n in enumerate(names)]
    collect(cf.Record(manager, None), records)
    manager.finish("complete")
    return manager


@pytest.fixture
def run(tmp_path):
    return make_run(str(tmp_path / "proj"))


def read(path) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def counting_dot(folder) -> str:
    """A ``dot`` in ``folder`` that appends a line to ``folder/calls`` on each call, then runs the real one."""
    import shutil

    real = shutil.which("dot")
    if real is None:
        pytest.skip("graphviz's dot is not installed")
    counting = folder / "dot"
    counting.write_text(f'#!/bin/sh\necho drawn >> "{folder}/calls"\nexec "{real}" "$@"\n')
    counting.chmod(0o755)
    return str(counting)


# -- import hygiene --------------------------------------------------------------------------


def test_import_leaves_heavy_libraries_out():
    code = (
        "import sys, curifactory.reporting\n"
        "heavy = [m for m in ('pandas', 'matplotlib', 'graphviz', 'IPython') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- reportables -------------------------------------------------------------------------------


def test_every_reportable_pickles_renders_and_links_its_files(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, axes = plt.subplots()
    axes.plot([1, 2, 3])
    image = tmp_path / "picture.png"
    fig.savefig(image)
    df = pd.DataFrame({"a": [1.123456789, 2.0], "b": ["<i>x</i>", "y"]})
    reportables = [
        reporting.HTMLReporter("<b>mine</b>", name="h"),
        reporting.DFReporter(df, name="df", float_prec=2),
        reporting.JsonReporter({"k": [1, 2], "when": object()}, name="json"),
        reporting.FigureReporter(fig, name="fig", dpi=50),
        reporting.ImageReporter(image, name="img"),
        reporting.LinePlotReporter({"up": [1, 2, 3], "down": [3, 2, 1]}, x=[0, 1, 2], name="lines",
                                   plot_kwargs={"marker": "o"}),
        reporting.LinePlotReporter([1, 4, 9], name="line"),
        reporting.LatexTableReporter(df, name="latex"),
    ]
    assert plt.get_fignums() == []  # FigureReporter closed the figure it drew
    image.unlink()  # the ImageReporter keeps the image's bytes
    folder = tmp_path / "report" / "reportables"
    for original in reportables:
        reportable = pickle.loads(pickle.dumps(original))
        reportable.qualified_name = reportable.name
        page = render.render_reportable(reportable, str(folder))
        assert reportable.path == "reportables"
        for src in re.findall(r'(?:src|href)="([^"]+)"', page):
            assert (tmp_path / "report" / src).is_file(), (reportable, src)
    assert len(pickle.dumps(reportables[3])) < 200_000
    assert sorted(p.name for p in folder.iterdir()) == [
        "fig.png", "img.png", "latex.tex", "line.png", "lines.png"]


def test_reportable_html_escaping_and_formats():
    import pandas as pd

    df = pd.DataFrame({"a": [1.123456789], "b": ["<i>x</i>"]})
    table = reporting.DFReporter(df, float_prec=3).html()
    assert table.lstrip().startswith("<table") and "1.123" in table and "1.1235" not in table
    assert "&lt;i&gt;x&lt;/i&gt;" in table and "<i>x</i>" not in table
    assert reporting.HTMLReporter("<b>raw</b>").html() == "<b>raw</b>"
    assert "&lt;tag&gt;" in reporting.JsonReporter({"k": "<tag>"}).html()
    latex = reporting.LatexTableReporter(df)
    latex.path, latex.qualified_name = "reportables", "t"
    assert "\\begin{tabular}" in html.unescape(latex.html())
    base = reporting.Reportable(name="n", group="g")
    assert (base.name, base.group, base.record, base.stage, base.path) == ("n", "g", None, None, None)
    assert base.html() == "" and base.render() is None


# -- the report page ---------------------------------------------------------------------------


def test_report_of_a_real_run(run):
    path = run.generate_report()
    report_dir = os.path.join(run.reports_path, run.get_reference_name())
    assert path == os.path.join(report_dir, "index.html")
    page = read(path)
    for section in ("run-info", "reportables", "stage-graph", "stage-detail", "parameters", "contents"):
        assert f'id="{section}"' in page
    assert run.get_reference_name() in page and "experiment rep -p params" in page
    assert 'status-complete' in page
    # reportables: grouped first, then ungrouped; each rendered by its own html()
    assert page.index("numbers table") < page.index("raw html")
    assert len(re.findall(r"<table[^>]*class=\"dataframe cf-table\"", page)) == 3
    assert "<p class='mine'>all <em>totals</em></p>" in page
    # the stage graph is inlined SVG with one cluster per record
    assert "<svg" in page and "<?xml" not in page
    assert page.count('class="cluster"') == 4
    # the stage detail lists artifacts with their cache paths
    total_path = next(a.path for a in run.records[0].history[1].outputs)
    shown = os.path.relpath(total_path, run.settings.root)  # paths relative to the project
    assert html.escape(shown) in page and not shown.startswith("..") and html.escape(total_path) not in page
    # nested parameter dataclasses are shown field by field
    assert "width" in page and "inner" in page
    assert os.path.isfile(os.path.join(report_dir, "style.css"))
    assert read(os.path.join(report_dir, "style.css")) == read(render.DEFAULT_CSS)


def test_html_in_parameters_is_shown_as_text(tmp_path):
    manager = make_run(str(tmp_path / "proj"), names=("<img src=x onerror=alert(1)>", "ok"))
    page = read(manager.generate_report())
    assert "<script>alert('param')</script>" not in page
    assert "<img src=x onerror" not in page
    assert "&lt;script&gt;alert(" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>inner</b>" not in page


def test_fully_cached_rerun_still_shows_reportables(tmp_path):
    root = str(tmp_path / "proj")
    make_run(root)
    again = make_run(root)
    assert {run.status.value for r in again.records for run in r.history} == {"cached"}
    page = read(again.generate_report())
    assert "numbers table" in page and "all <em>totals</em>" in page
    assert page.count("stage-status stage-cached") == 7
    assert graph.STAGE_FILL["cached"] in page


def test_cached_reportables_do_not_carry_the_manager(tmp_path):
    manager = make_run(str(tmp_path / "proj"))
    reportable = manager.records[0].reportables[0]
    assert reportable.record is manager.records[0]
    data = pickle.dumps(reportable)
    assert b"ArtifactManager" not in data and len(data) < 5000
    assert pickle.loads(data).record is None and reportable.record is manager.records[0]
    cached = [p for p in os.listdir(manager.cache_path) if p.endswith("_reportables.pkl")]
    assert cached and all(os.path.getsize(os.path.join(manager.cache_path, p)) < 5000 for p in cached)


def test_run_warnings_log_link_notes_and_reproduction_line(tmp_path):
    manager = make_run(str(tmp_path / "proj"), notes="tried <b>this</b>\nsecond line")
    manager.git_workdir_dirty = True
    manager.git_commit_hash = "0123456789abcdef"
    manager.status = "LIVE"
    manager.store_full = False
    manager.reproduction_line = "experiment rep --cache somewhere"
    os.makedirs(manager.logs_path, exist_ok=True)
    manager.log_path = os.path.join(manager.logs_path, manager.get_reference_name() + ".log")
    with open(manager.log_path, "w") as handle:
        handle.write("log\n")
    page = read(manager.generate_report())
    assert "Uncommitted changes" in page and "Live run" in page and 'class="dirty"' in page
    assert "tried &lt;b&gt;this&lt;/b&gt;" in page
    assert "experiment rep --cache somewhere" not in page  # only for store-full runs
    href = re.search(r'<a href="([^"]+)">[^<]*\.log</a>', page).group(1)
    report_dir = os.path.dirname(os.path.join(manager.reports_path, manager.get_reference_name(), "x"))
    assert os.path.isfile(os.path.normpath(os.path.join(report_dir, href)))
    manager.store_full = True
    manager.runs_path = str(tmp_path / "runs")
    page = read(manager.generate_report())
    assert "experiment rep --cache somewhere" in page


def test_custom_css_is_copied(tmp_path):
    root = tmp_path / "proj"
    (root / "reports").mkdir(parents=True)
    (root / "reports" / "style.css").write_text("body { color: rebeccapurple; }")
    manager = make_run(str(root))
    report_dir = os.path.dirname(manager.generate_report())
    assert read(os.path.join(report_dir, "style.css")) == "body { color: rebeccapurple; }"
    assert '<link rel="stylesheet" href="style.css">' in read(root / "reports" / "index.html")


def test_dry_run_writes_nothing(tmp_path):
    root = tmp_path / "proj"
    manager = make_run(str(root))
    manager.dry = True
    before = sorted(p for p in root.rglob("*"))
    assert render.write_report(manager).endswith("index.html")
    assert sorted(p for p in root.rglob("*")) == before
    assert not (root / "reports").exists()


def test_missing_dot_shows_install_hint_and_source(run, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    page = read(run.generate_report())
    assert "apt-get install graphviz" in page and "conda install graphviz" in page
    assert "brew install graphviz" in page
    assert "<svg" not in page and "digraph stages" in page and "subgraph cluster_r0" in page


def test_a_broken_reportable_shows_its_error(run):
    class Broken(reporting.Reportable):
        def render(self):
            raise RuntimeError("cannot draw <this>")

    run.records[0].report(Broken(name="broken"))
    page = read(run.generate_report())
    assert "could not be rendered" in page and "RuntimeError: cannot draw &lt;this&gt;" in page
    assert "numbers table" in page


def test_same_qualified_names_get_distinct_files(run, tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG fake")
    for record in run.records[:2]:
        record.report(reporting.ImageReporter(image, name="same/name?"))
    report_dir = os.path.dirname(run.generate_report())
    files = sorted(os.listdir(os.path.join(report_dir, "reportables")))
    assert len(files) == 2 and all(re.fullmatch(r"[A-Za-z0-9_.-]+", f) for f in files)


def test_hidden_records_stay_out(tmp_path):
    root = str(tmp_path / "proj")
    manager = make_run(root)
    hidden = cf.Record(manager, Params(name="secret-set", seed=9), hide=True)
    add_up(make_numbers(hidden))
    page = read(manager.generate_report())
    assert page.count('class="cluster"') == 4
    assert "secret-set" not in page


# -- the stage graph ---------------------------------------------------------------------------


def test_dot_source_has_clusters_shapes_and_aggregate_links(run):
    source = graph.build_dot(run.records)
    assert source.count("subgraph cluster_r") == 4
    assert source.count("shape=box") == 7 and source.count("shape=note") == 7
    # stage -> artifact -> next stage, and each record's total -> the aggregate's stage
    edges = {line.strip() for line in source.splitlines() if "->" in line}
    assert "r0_s0 -> r0_s0_a0" in edges and "r0_s0_a0 -> r0_s1" in edges
    for i in range(3):
        assert f"r{i}_s1_a0 -> r3_s0" in edges
    assert graph.STAGE_FILL["executed"] in source
    result = graph.render_svg(source)
    assert result.error is None and result.svg.lstrip().startswith("<svg")


def test_dot_labels_survive_hostile_names():
    spec = graph.GraphSpec((("cluster", "cluster_r0", 'rec "1" \\ x\ny <b>', "#123456"),
                            ("node", "n0", "<i>stage</i> \\", "box"), ("end",)))
    result = graph.draw(spec)
    if result.svg is None:
        pytest.skip("graphviz's dot is not installed")
    assert result.error is None
    assert 'rec &quot;1&quot; \\ x' in result.svg and "&lt;i&gt;stage&lt;/i&gt; \\" in result.svg
    assert ">y &lt;b&gt;<" in result.svg  # the line break kept, never HTML


def test_a_rerun_reuses_the_layout_and_colours_it_by_status(tmp_path):
    counting = counting_dot(tmp_path)
    cache = str(tmp_path / "graphs")
    statements = (("node", "s0", "load", "box"), ("node", "a0", "data", "note"), ("edge", "s0", "a0", False))
    cold = graph.draw(graph.GraphSpec(statements, (("s0", graph.STAGE_FILL["executed"]),
                                                   ("a0", graph.ARTIFACT_FILL[True]))), counting, cache)
    warm = graph.draw(graph.GraphSpec(statements, (("s0", graph.STAGE_FILL["cached"]),
                                                   ("a0", graph.ARTIFACT_FILL[False]))), counting, cache)
    assert (tmp_path / "calls").read_text().split() == ["drawn"]  # one layout for both runs
    assert f'fill="{graph.STAGE_FILL["executed"]}"' in cold.svg and f'fill="{graph.ARTIFACT_FILL[True]}"' in cold.svg
    assert graph.STAGE_FILL["executed"] not in warm.svg and f'fill="{graph.STAGE_FILL["cached"]}"' in warm.svg
    assert cold.svg.replace(graph.STAGE_FILL["executed"], "").replace(graph.ARTIFACT_FILL[True], "") == \
        warm.svg.replace(graph.STAGE_FILL["cached"], "").replace(graph.ARTIFACT_FILL[False], "")
    assert graph.STAGE_FILL["executed"] in cold.dot and "s0 -> a0" in warm.dot  # the DOT source on demand


def test_dot_failure_is_reported_not_raised(tmp_path):
    result = graph.render_svg("digraph { this is not dot")
    assert result.svg is None and "dot failed" in result.error
    result = graph.render_svg("digraph {}", dot_binary=str(tmp_path / "no-such-dot"))
    assert result.svg is None and result.error


def test_a_graph_drawn_before_is_not_drawn_again(tmp_path):
    counting = counting_dot(tmp_path)
    cache = tmp_path / "graphs"
    first = graph.render_svg("digraph { a -> b }", dot_binary=counting, cache_dir=str(cache))
    again = graph.render_svg("digraph { a -> b }", dot_binary=counting, cache_dir=str(cache))
    other = graph.render_svg("digraph { a -> c }", dot_binary=counting, cache_dir=str(cache))
    assert first.svg == again.svg and first.svg.lstrip().startswith("<svg") and other.svg != first.svg
    assert (tmp_path / "calls").read_text().split() == ["drawn", "drawn"]  # the repeat came from the cache
    for n in range(graph.SVG_CACHE_KEEP + 3):
        graph.render_svg(f"digraph {{ n{n} }}", dot_binary=counting, cache_dir=str(cache))
    assert len(list(cache.glob("*.svg"))) == graph.SVG_CACHE_KEEP  # only the newest are kept
    failed = graph.render_svg("digraph { this is not dot", dot_binary=counting, cache_dir=str(cache))
    assert failed.svg is None and len(list(cache.glob("*.svg"))) == graph.SVG_CACHE_KEEP  # a failure is not kept


# -- the run index -----------------------------------------------------------------------------


def test_run_index_groups_experiments_newest_first(tmp_path):
    reports = tmp_path / "reports"
    runs = [
        {"reference": "exp_1_2024-01-01-T100000", "experiment_name": "exp", "run_number": 1,
         "timestamp": "2024-01-01-T100000", "status": "complete", "workdir_dirty": False,
         "hostname": "h1", "notes": "first <b>note</b>\nmore", "cli": "experiment exp"},
        {"reference": "exp_2_2024-01-02-T100000", "experiment_name": "exp", "run_number": 2,
         "timestamp": "2024-01-02-T100000", "status": "error", "workdir_dirty": True,
         "hostname": "h2", "notes": None, "cli": "experiment exp --overwrite", "error": "ValueError: bad"},
        {"reference": "other_1_2024-01-03-T100000", "experiment_name": "other", "run_number": 1,
         "timestamp": "2024-01-03-T100000", "status": "LIVE", "workdir_dirty": False,
         "hostname": "h3", "notes": "", "cli": ""},
    ]
    store = tmp_path / "data" / "store.json"
    store.parent.mkdir()
    store.write_text(json.dumps(runs))
    (reports / "exp_2_2024-01-02-T100000").mkdir(parents=True)
    (reports / "exp_2_2024-01-02-T100000" / "index.html").write_text("report")
    page = read(index.update_index(str(reports), str(store)))
    assert page.index(">other<") < page.index(">exp<")
    assert page.index("exp_2_2024-01-02-T100000") < page.index("exp_1_2024-01-01-T100000")
    assert 'href="exp_2_2024-01-02-T100000/index.html"' in page
    assert 'href="exp_1_2024-01-01-T100000/index.html"' not in page
    assert "first &lt;b&gt;note&lt;/b&gt;" in page and "more" not in page
    assert "status-error" in page and "status-live" in page and 'class="dirty"' in page
    assert "ValueError: bad" in page and "experiment exp --overwrite" in page
    # the store's folder works too, and a missing store gives an empty index
    assert index.update_index(str(reports), str(store.parent)) == str(reports / "index.html")
    assert "No runs stored yet" in read(index.update_index(str(tmp_path / "empty"), None))


def test_report_refreshes_index_and_latest(tmp_path):
    root = str(tmp_path / "proj")
    first = make_run(root)
    first.generate_report()
    second = make_run(root)
    second.generate_report()
    reports = second.reports_path
    page = read(os.path.join(reports, "index.html"))
    for manager in (first, second):
        assert f'href="{manager.get_reference_name()}/index.html"' in page
    latest = read(os.path.join(reports, "_latest", "index.html"))
    assert second.get_reference_name() in latest
    assert not os.path.islink(os.path.join(reports, "_latest"))
    assert os.path.isdir(os.path.join(reports, "_latest", "reportables"))
    leftovers = [n for n in os.listdir(reports) if n.startswith(".")]
    assert leftovers == []


def test_one_dot_call_per_report_and_none_for_a_report_drawn_before(tmp_path, monkeypatch):
    tools = tmp_path / "bin"
    tools.mkdir()
    counting_dot(tools)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    manager = make_run(str(tmp_path / "proj"), names=[f"set-{i}" for i in range(60)])
    first = read(manager.generate_report())
    assert (tools / "calls").read_text().split() == ["drawn"]  # 61 records, one layout
    assert first.count('class="cluster"') == 61
    again = make_run(str(tmp_path / "proj"), names=[f"set-{i}" for i in range(60)])  # all cached now
    second = read(again.generate_report())
    assert (tools / "calls").read_text().split() == ["drawn"]  # the same records: no dot at all
    assert second.count('class="cluster"') == 61 and graph.STAGE_FILL["executed"] not in second.split("<svg")[1]


def test_large_runs_get_a_per_stage_summary_graph(tmp_path):
    from curifactory.reporting.graph import stage_graph

    manager = make_run(str(tmp_path / "proj"))
    full = stage_graph(manager.records)
    summary = stage_graph(manager.records, max_clusters=2)
    assert full.dot.count("subgraph cluster_") == 4
    assert "subgraph" not in summary.dot and "3 executed" in summary.dot
    assert "4 records" in summary.dot
    if summary.svg is not None:
        assert summary.svg.count("<g id=\"node") == len({r.stage for rec in manager.records for r in rec.history}) + \
            len({a.name for rec in manager.records for r in rec.history for a in r.outputs})


def test_the_run_index_lists_the_newest_runs_of_a_long_store_and_counts_the_rest(tmp_path):
    from curifactory.reporting import index as run_index

    extra = 7
    blocks = [{"reference": f"long_{i}_2026-01-01-T{i:06d}", "experiment_name": "long", "run_number": i,
               "timestamp": f"2026-01-01-T{i:06d}", "status": "complete"}
              for i in range(1, run_index.RUNS_PER_EXPERIMENT + extra + 1)]
    blocks.insert(3, {"reference": "other_1_2026-01-01-T000000", "experiment_name": "other", "run_number": 1,
                      "status": "error"})
    for layout in ("lines", "indented"):  # as we write the store, and as 0.20 did
        store = tmp_path / layout / "store.json"
        store.parent.mkdir()
        store.write_text("[\n" + ",\n".join(json.dumps(b) for b in blocks) + "\n]\n" if layout == "lines"
                         else json.dumps(blocks, indent=4))
        page = Path(run_index.update_index(str(tmp_path / layout / "reports"), str(store))).read_text()
        assert f"{run_index.RUNS_PER_EXPERIMENT + extra + 1} runs, newest first" in page
        assert f"{extra} older runs of long are not listed here" in page
        assert f"long_{run_index.RUNS_PER_EXPERIMENT + extra}_" in page and f"long_{extra + 1}_2026" in page
        assert f"long_{extra}_2026" not in page and "other_1_2026-01-01-T000000" in page


def test_parameter_sets_are_one_table_with_the_differing_fields_marked(run):
    from html.parser import HTMLParser

    page = read(run.generate_report())

    class Table(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside, self.rows, self.head, self.cell = False, [], [], None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "table" and attrs.get("class") == "param-table":
                self.inside = True
            elif self.inside and tag == "tr":
                self.rows.append([])
            elif self.inside and tag in ("th", "td"):
                self.cell = [attrs.get("class") or "", ""]

        def handle_endtag(self, tag):
            if tag == "table":
                self.inside = False
            elif self.inside and tag in ("th", "td") and self.cell is not None:
                self.rows[-1].append((self.cell[0], self.cell[1].strip()))
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell[1] += data

    table = Table()
    table.feed(page)
    header, *rows = table.rows
    columns = [text for _, text in header]
    assert columns[:3] == ["set", "hash", "used by"] and "seed" in columns
    assert len(rows) == 3 and [row[0][1].split()[0] for row in rows] == ["alpha", "beta", "gamma"]
    seed = columns.index("seed")
    assert header[seed][0] == "differs" and any(c.startswith("inner.") for c in columns)  # nested: dotted
    assert [row[seed] for row in rows] == [("differs", "1"), ("differs", "2"), ("differs", "3")]
    same = [i for i, (kind, _) in enumerate(header) if i >= 3 and kind != "differs"]
    assert all(rows[0][i][1] == rows[1][i][1] == rows[2][i][1] for i in same)


def test_nested_fields_become_dotted_columns():
    from curifactory.reporting.context import ParamSetView, param_table

    one = ParamSetView("a", "h1", "P", [("lr", "0.1"), ("model", [("depth", "2"), ("width", "8")])])
    two = ParamSetView("b", "h2", "P", [("lr", "0.1"), ("model", [("depth", "3"), ("width", "8")])])
    table = param_table([one, two])
    assert table.columns == ("lr", "model.depth", "model.width") and table.differs == {"model.depth"}
