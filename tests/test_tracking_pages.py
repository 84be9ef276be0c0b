"""Logged metrics, tags and attachments in the report, the run index page (sorted and
filtered in headless Chromium, from file:// and served) and the notebook views."""

from __future__ import annotations

import threading

import pytest

import curifactory as cf
from tests.test_report_browser import CHROMIUM_ARGS, _chromium
from tests.test_tracking import CHANGED_PARAMS, TRACKED, TrackedProject


@pytest.fixture
def tracked(tmp_path):
    from tests.conftest import write_project

    root = write_project(tmp_path / "proj", {"experiments/tracked.py": TRACKED, "params/changed.py": CHANGED_PARAMS})
    project = TrackedProject(root, tmp_path / "side.log")
    assert project.experiment("--tag", "team=vision").returncode == 0
    assert project.experiment("-p", "changed", "--tag", "team=<b>audio</b>").returncode == 0
    return project


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_report_shows_metrics_tags_info_and_attached_files(tracked, browser):
    first, _ = tracked.references()
    page = browser.new_page()
    page.goto((tracked.root / "reports" / first / "index.html").as_uri())
    assert page.locator("td.run-tags .tag").inner_text() == "team=vision"
    small = page.locator("details.record", has_text="small").first
    metrics = small.locator("table.metrics tbody tr")
    assert metrics.count() == 3  # loss, acc, score
    assert small.locator("table.metrics tr", has_text="score").locator("td.num").inner_text() == "2"
    assert "family=poly" in small.locator(".record-tags").inner_text()
    link = small.locator(".attachments a", has_text="summary.txt")
    link.click()
    assert page.locator("body").inner_text().strip() == "lr=0.1"  # the attached file, copied into the report


def test_the_run_index_sorts_and_filters_in_the_page(tracked, browser):
    first, second = tracked.references()
    page = browser.new_page()
    page.goto((tracked.root / "reports" / "index.html").as_uri())
    table = page.locator("table.runs").first
    rows = table.locator("tbody tr")
    assert rows.count() == 4  # two runs of two records
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    assert {"team", "family", "loss", "acc", "score"} <= set(headers)  # run and record tags
    score = headers.index("score")

    def scores():
        return [float(text) for text in table.locator(f"tbody tr td:nth-child({score + 1})").all_inner_texts()]

    table.locator("thead th", has_text="score").click()
    assert scores() == sorted(scores()) == [2.0, 8.0, 8.0, 10.0]
    table.locator("thead th", has_text="score").click()
    assert scores() == [10.0, 8.0, 8.0, 2.0]
    assert table.locator("tbody tr").first.get_attribute("data-reference") == second

    page.locator("input.row-filter").first.fill("<b>audio</b> small")
    visible = table.locator("tbody tr:not([hidden])")
    assert visible.count() == 1 and visible.get_attribute("data-reference") == second
    assert page.locator("table.runs b").count() == 0  # the tag was escaped

    page.locator("input.row-filter").first.fill("")
    table.locator(f"tr[data-reference='{first}'] input.pick").first.check()
    table.locator(f"tr[data-reference='{second}'] input.pick").first.check()
    page.locator("#compare").click()  # from file:// the page says how to get the diff
    assert f"curifactory diff {first} {second}" in page.locator("#compare-note").inner_text()


def test_the_report_server_serves_the_diff_of_two_picked_runs(tracked, browser):
    from curifactory.reporting.server import make_server

    first, second = tracked.references()
    server = make_server(str(tracked.root / "reports"), port=0, store_dir=str(tracked.store))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        page = browser.new_page()
        page.goto(f"{base}/index.html")
        page.locator(f"tr[data-reference='{first}'] input.pick").first.check()
        page.locator(f"tr[data-reference='{second}'] input.pick").first.check()
        page.locator("#compare").click()
        page.wait_for_url("**/diff?a=*")
        assert page.locator("h1").inner_text() == f"diff {first} → {second}"
        small = page.locator("section.record[data-record=small]")
        assert small.locator("table.metrics tr.changed", has_text="score").count() == 1
        missing = page.goto(f"{base}/diff?a={first}&b=nothing_9")
        assert missing.status == 404 and "No run 'nothing_9'" in page.locator("body").inner_text()
    finally:
        server.shutdown()
        server.server_close()


@cf.stage(None, ["value"])
def _scored(record):
    record.log_metrics({"loss": 0.25, "acc": 0.75})
    record.set_tag("kind", "<i>probe</i>")
    return 1


def test_notebook_views_show_metrics(project):
    project({})
    manager = cf.ArtifactManager("nb", suppress_live_log=True)
    manager.set_tag("session", "s1")
    record = _scored(cf.Record(manager, None))
    html = record._repr_html_()
    assert "<h4>Metrics</h4>" in html and ">0.25<" in html and ">0.75<" in html
    assert "&lt;i&gt;probe&lt;/i&gt;" in html and "<i>probe</i>" not in html
    table = manager.display_metrics()
    text = getattr(table, "data", table)
    assert "session=s1" in text and "<th style='text-align:left;vertical-align:top;padding:2px 8px'>loss</th>" in text
    assert ">0.75<" in text


def test_metric_charts_draw_offline_in_chromium(tracked, browser):
    first, _ = tracked.references()
    page = browser.new_page()
    outside = []

    def only_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_files)  # no network: the JavaScript must come from the reports folder
    page.goto((tracked.root / "reports" / first / "index.html").as_uri())
    charts = page.locator("#metric-charts .cf-chart")
    assert charts.count() == 5  # loss and acc: over steps and final; score: final only
    page.wait_for_function("document.querySelectorAll('#metric-charts .cf-chart svg').length === 5")
    lines = page.locator("#metric-charts g.mark-line path")
    assert lines.count() == 4  # two metrics over steps, a line per record
    bars = page.locator("#metric-charts g.mark-rect path")
    assert bars.count() == 6  # three metrics, a bar per record
    titles = page.locator("#metric-charts svg text", has_text="is better").all_text_contents()
    assert "final loss (lower is better)" in titles and "final acc (higher is better)" in titles
    assert outside == []


VEGA_EXPERIMENT = """
import curifactory as cf
from curifactory.reporting import VegaLiteReporter

SPEC = {"data": {"name": "metrics"}, "mark": "point",
        "encoding": {"x": {"field": "step", "type": "quantitative"}, "y": {"field": "value", "type": "quantitative"}}}

@cf.stage(None, ["done"])
def train(record):
    for step in range(7):
        record.log_metric("loss", 1.0 / (step + 1))
    record.report(VegaLiteReporter(SPEC, name="my chart"))
    return True

def get_params():
    return [cf.ExperimentParameters(name="only")]

def run(param_sets, manager):
    for p in param_sets:
        train(cf.Record(manager, p))
"""


def test_a_vega_lite_reporter_is_filled_with_the_runs_points(tmp_path, browser):
    from tests.conftest import CliProject

    proj = CliProject(tmp_path, {"experiments/vega.py": VEGA_EXPERIMENT})
    assert proj.run("vega").returncode == 0
    [reference] = [r["reference"] for r in proj.store()]
    page = browser.new_page()
    page.goto(proj.report(reference).as_uri())
    page.wait_for_function("document.querySelectorAll('#reportables .cf-chart svg').length === 1")
    assert page.locator("#reportables g.mark-symbol path").count() == 7  # one point per logged step
    with pytest.raises(cf.errors.UsageError, match="takes a Vega-Lite specification as a dict, not a str"):
        from curifactory.reporting import VegaLiteReporter

        VegaLiteReporter("mark: line")


def test_runs_chart_compares_runs_offline(tracked, browser, tmp_path):
    page_path = tmp_path / "score.html"
    result = tracked.curifactory("runs", "tracked", "--chart", "score", "-o", str(page_path))
    assert result.returncode == 0, result.stderr
    assert f"chart of score across 4 rows: {page_path}" in result.stdout
    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    page.goto(page_path.as_uri())
    page.wait_for_function("document.querySelectorAll('.cf-chart svg').length === 1")  # one step: bars only
    assert page.locator("g.mark-rect path").count() == 4  # a bar per row
    frame = cf.load_runs("tracked", store=tracked.store)
    chart = cf.plot_runs(frame, "loss", store=tracked.store)
    assert chart._repr_html_().count('class="cf-chart"') == 2  # over steps (4 rows) and final values
    missing = tracked.curifactory("runs", "--chart", "nope")
    assert missing.returncode == 2 and "No metric 'nope' in these runs; the metrics are: acc, loss, score" in missing.stderr
