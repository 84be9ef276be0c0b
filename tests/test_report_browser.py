"""A real run's report, opened in headless Chromium (Debian's ``chromium`` package).

Skipped only when the playwright package or a Chromium executable cannot be found.
"""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from curifactory.experiment import run_experiment
from curifactory.reporting import make_server

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

EXPERIMENT = '''
"""Three parameter sets, two stages each, a table per set and an aggregate."""
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import PandasCsvCacher, PickleCacher
from curifactory.reporting import DFReporter, HTMLReporter


@dataclass
class Params(cf.ExperimentParameters):
    rows: int = 3
    factor: float = 1.5


@cf.stage(None, ["frame"], [PandasCsvCacher])
def make_frame(record):
    import pandas as pd

    n = record.params.rows
    frame = pd.DataFrame({"x": range(n), "y": [record.params.factor * i for i in range(n)]})
    record.report(DFReporter(frame, name=f"frame of {record.params.name}", group="frames"))
    return frame


@cf.stage(["frame"], ["total"], [PickleCacher])
def total(record, frame):
    return float(frame.y.sum())


@cf.aggregate(["total"], ["totals"], [PickleCacher])
def compare(record, records, total):
    rows = "".join(f"<li>{r.params.name}: {v:.2f}</li>" for r, v in total.items())
    record.report(HTMLReporter(f"<ul>{rows}</ul>", name="totals"))
    return {r.params.name: v for r, v in total.items()}


def get_params():
    return [Params(name="small", rows=3), Params(name="medium", rows=6, factor=2.0),
            Params(name="<b>large</b>", rows=9, factor=0.5)]


def run(param_sets, manager):
    records = [total(make_frame(cf.Record(manager, p))) for p in param_sets]
    return compare(cf.Record(manager, None), records)
'''


def _chromium() -> str:
    candidates = [os.environ.get("CF_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                  shutil.which("google-chrome")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return candidate
    pytest.skip("no Chromium executable found (install Debian's 'chromium' package or set CF_CHROMIUM)")


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def served_report(project):
    """A real run's report, served by the report server on a free local port."""
    project({"experiments/frames.py": EXPERIMENT})
    _, manager = run_experiment("frames", run_string="experiment frames")
    httpd = make_server(manager.reports_path, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    yield manager, f"http://{host}:{port}/{manager.get_reference_name()}/index.html"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def distinct_colours(png: bytes) -> int:
    """How many distinct colours a PNG has (pillow ships with matplotlib)."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return len(image.getcolors(maxcolors=1 << 24) or [])


def test_report_renders_in_chromium(browser, served_report, tmp_path):
    manager, url = served_report
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"failed request {request.url}"))
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    assert problems == []

    assert "frames" in page.title()
    graph = page.locator("#stage-graph svg").first
    assert graph.is_visible()
    visible_records = [r for r in manager.records if not r.hide]
    assert page.locator("#stage-graph svg g.cluster").count() == len(visible_records) == 4
    assert page.locator("#stage-graph svg g.node").count() == 3 * 4 + 2

    tables = page.locator("#reportables .reportable table.cf-table")
    assert tables.count() == 3 and tables.first.is_visible()
    assert tables.first.locator("tbody tr").count() == 3
    # a parameter set name holding HTML is text in the report's own markup...
    assert page.locator("#reportables h4 b, #parameters h3 b, #stage-graph b").count() == 0
    assert page.locator("#reportables h4", has_text="frame of <b>large</b>").is_visible()
    # ...while the user's own HTML reportable is real HTML
    assert page.locator("#reportables ul li b", has_text="large").count() == 1

    shot = page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert len(shot) > 20_000
    assert distinct_colours(shot) > 50

    index = page.goto(url.rsplit("/", 2)[0] + "/index.html")
    assert index is not None and index.status == 200
    rows = page.locator(f"tr[data-reference='{manager.get_reference_name()}']")  # a row per record
    assert rows.count() == 4 and rows.first.locator(f"a[href='{manager.get_reference_name()}/index.html']").count() == 1
    assert problems == []
