"""Notebooks executed by a real Jupyter kernel (nbclient + ipykernel's ``python3``).

Kernel start-ups cost a second or two each, so every notebook is executed in a
module-scoped fixture and the tests only read its outputs: three kernels in all.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

KERNEL = "python3"
TIMEOUT = 180


@pytest.fixture(scope="module")
def kernel_spec(tmp_path_factory):
    """A ``python3`` kernel spec that runs this very interpreter, whatever is installed.

    ipykernel ships a ``python3`` spec whose ``python`` jupyter_client replaces by
    ``sys.executable``; but a user-wide spec of that name may point elsewhere. A
    private spec written by ``ipykernel.kernelspec.install`` (argv = this
    interpreter) on ``JUPYTER_PATH`` shadows both.
    """
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager

    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name=KERNEL, prefix=str(prefix))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
        assert os.path.samefile(spec.argv[0], sys.executable)
        yield spec


def execute(notebook: Any, cwd: Path) -> Any:
    """Execute ``notebook`` in a new kernel started in ``cwd``; raise on any cell error."""
    client = nbclient.NotebookClient(notebook, timeout=TIMEOUT, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(cwd)}})
    return client.execute()


def outputs(notebook: Any) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def html_outputs(notebook: Any) -> list[str]:
    return [o["data"]["text/html"] for o in outputs(notebook) if "text/html" in o.get("data", {})]


def cell_html(notebook: Any, tag: str) -> str:
    """The HTML output of the code cell whose metadata carries ``tag``."""
    for cell in notebook.cells:
        if tag in cell.metadata.get("tags", []):
            return "".join(o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {}))
    raise AssertionError(f"no cell tagged {tag}")


def printed(notebook: Any, marker: str) -> Any:
    """The JSON printed after ``marker`` by a cell."""
    for output in outputs(notebook):
        if output.get("output_type") == "stream":
            for line in output["text"].splitlines():
                if line.startswith(marker + " "):
                    return json.loads(line[len(marker) + 1:])
    raise AssertionError(f"nothing printed with {marker}")


def assert_no_errors(notebook: Any) -> None:
    errors = [o for o in outputs(notebook) if o.get("output_type") == "error"]
    assert not errors, errors


# -- (a) a live manager in a notebook ------------------------------------------------------------
SETUP = '''
import json
import os
from dataclasses import dataclass

import pandas as pd

import curifactory as cf
from curifactory.caching import PickleCacher
from curifactory.reporting import DFReporter, HTMLReporter


def count_call(stage):
    counts = json.load(open("counts.json")) if os.path.exists("counts.json") else {}
    counts[stage] = counts.get(stage, 0) + 1
    with open("counts.json", "w") as handle:
        json.dump(counts, handle)


@dataclass
class Params(cf.ExperimentParameters):
    rows: int = 3


@cf.stage(None, ["table"], [PickleCacher])
def make_table(record):
    count_call("make_table")
    df = pd.DataFrame({"x": range(record.params.rows), "label": ["<b>raw</b>"] * record.params.rows})
    record.report(DFReporter(df, name="the table"))
    return df


@cf.stage(["table"], ["total"], [PickleCacher])
def total(record, table):
    count_call("total")
    for step in range(len(table)):
        record.log_metric("partial", float(table.x[: step + 1].sum()))
    record.set_tag("size", len(table))
    return int(table.x.sum())
'''

RUN = '''
manager = cf.ArtifactManager("nb")
records = [cf.Record(manager, Params(name=name, rows=rows)) for name, rows in [("small", 3), ("large", 5)]]
for record in records:
    total(make_table(record))
print("STATUS", json.dumps([[run.stage, run.status.value] for r in records for run in r.history]))
print("LOADED", json.dumps(records[0].state.is_loaded("table")))
print("MANAGER", json.dumps([manager.status, manager.log_path is not None and os.path.isfile(manager.log_path)]))
'''


def live_notebook() -> Any:
    v4 = nbformat.v4
    cells = [
        v4.new_code_cell(textwrap.dedent(SETUP)),
        v4.new_code_cell(textwrap.dedent(RUN)),
        v4.new_code_cell("manager.display_stage_graph()", metadata={"tags": ["graph"]}),
        v4.new_code_cell("manager.display_all_reportables()", metadata={"tags": ["reportables"]}),
        v4.new_code_cell("records[0]", metadata={"tags": ["record"]}),
        v4.new_code_cell('records[1].report(HTMLReporter("<i id=\'inline\'>shown here</i>", name="inline"))',
                         metadata={"tags": ["inline"]}),
        v4.new_code_cell("manager.display_info()", metadata={"tags": ["info"]}),
        v4.new_code_cell("manager", metadata={"tags": ["manager"]}),
        v4.new_code_cell("manager.display_metrics()", metadata={"tags": ["metrics"]}),
    ]
    return v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": KERNEL, "display_name": "Python 3",
                                                                 "language": "python"}})


@pytest.fixture(scope="module")
def live_runs(tmp_path_factory, kernel_spec):
    """The live notebook executed twice in ``tmp``, each time in a new kernel."""
    root = tmp_path_factory.mktemp("live")
    (root / "curifactory_config.json").write_text("{}")
    first = execute(live_notebook(), root)
    counts_after_first = json.loads((root / "counts.json").read_text())
    second = execute(live_notebook(), root)
    counts_after_second = json.loads((root / "counts.json").read_text())
    return root, first, second, counts_after_first, counts_after_second


def test_live_notebook_runs_without_errors(live_runs):
    _, first, second, _, _ = live_runs
    assert_no_errors(first)
    assert_no_errors(second)


def test_live_notebook_shows_graph_reportables_and_record(live_runs):
    _, first, second, _, _ = live_runs
    for run in (first, second):
        graph = cell_html(run, "graph")
        assert "<svg" in graph and "make_table" in graph and "small" in graph
        reportables = cell_html(run, "reportables")
        assert reportables.count("<table") >= 2  # one DataFrame per record
        assert "&lt;b&gt;raw&lt;/b&gt;" in reportables and "<b>raw</b>" not in reportables
        assert "the table" in reportables
        record = cell_html(run, "record")
        assert "Record #0 small" in record and "Parameters" in record and "rows" in record
        assert "make_table" in record and "total" in record
        assert "id='inline'" in cell_html(run, "inline")  # record.report(...) shows where it is made
        assert "LIVE" in cell_html(run, "info")
        assert "large" in cell_html(run, "manager")


def test_live_notebook_is_a_live_run(live_runs):
    root, first, _, _, _ = live_runs
    assert printed(first, "MANAGER") == ["LIVE", True]
    store = json.loads((root / "data" / "store.json").read_text())
    assert [(run["experiment_name"], run["status"]) for run in store] == [("nb", "LIVE"), ("nb", "LIVE")]


def test_live_notebook_logs_metrics_even_when_cached(live_runs):
    root, first, second, _, _ = live_runs
    for run in (first, second):  # the second kernel took every stage from the cache
        metrics = cell_html(run, "metrics")
        assert "partial" in metrics and ">3<" in metrics and ">10<" in metrics  # final values: 0+1+2, 0+1+2+3+4
        assert "<h4>Metrics</h4>" in cell_html(run, "record")
        assert metrics.count('class="cf-chart"') == 2 and "vegaEmbed" in metrics  # 'partial' over steps, final
    import curifactory as cf

    frame = cf.load_runs(store=root / "data")
    assert frame["status"].tolist() == ["complete"] * 4  # closed when each kernel exited
    assert frame["metrics.partial"].tolist() == [3.0, 10.0, 3.0, 10.0]
    assert frame["tags.size"].tolist() == ["3", "5", "3", "5"]
    assert len(cf.load_metrics("nb#2", store=root / "data")) == 3 + 5


def test_second_kernel_loads_from_cache(live_runs):
    _, first, second, counts_first, counts_second = live_runs
    assert counts_first == {"make_table": 2, "total": 2}
    assert counts_second == counts_first  # nothing ran in the new kernel
    assert {status for _, status in printed(first, "STATUS")} == {"executed"}
    assert {status for _, status in printed(second, "STATUS")} == {"cached"}
    assert printed(first, "LOADED") is True
    assert printed(second, "LOADED") is False  # total was cached too, so the table stayed on disk
    record = cell_html(second, "record")
    assert "(cached, not loaded)" in record and "DataFrame shape=(3, 2)" in record
    assert "from cache" in record


# -- (b) the notebook written by `experiment --notebook` ----------------------------------------
EXPERIMENT = '''
"""A tiny experiment for the notebook tests."""
import pandas as pd

import curifactory as cf
from curifactory.caching import PandasCsvCacher, PickleCacher
from curifactory.reporting import DFReporter


@cf.stage(None, ["points"], [PandasCsvCacher])
def make_points(record):
    df = pd.DataFrame({"x": range(record.params.count)})
    df["y"] = df.x * record.params.slope
    return df


@cf.stage(["points"], ["summary"], [PickleCacher])
def summarize(record, points):
    summary = {"mean_y": float(points.y.mean())}
    record.report(DFReporter(points.describe(), name="points described"))
    return summary


def run(param_sets, manager):
    return [summarize(make_points(cf.Record(manager, p))) for p in param_sets]
'''

PARAMS = '''
from dataclasses import dataclass

import curifactory as cf


@dataclass
class Params(cf.ExperimentParameters):
    count: int = 4
    slope: float = 1.0


def get_params():
    return [Params(name="flat", slope=0.0), Params(name="steep", slope=3.0)]
'''

CONFIG = {"experiments_module_name": "nbk_experiments", "params_module_name": "nbk_params",
          "notebooks_path": "notes/"}


def snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def experiment_notebook_run(tmp_path_factory, kernel_spec):
    """Run the tiny experiment, write its notebook, execute it; return what to check."""
    from curifactory.experiment import run_experiment
    from curifactory.notebook import write_experiment_notebook

    root = tmp_path_factory.mktemp("project")
    (root / "curifactory_config.json").write_text(json.dumps(CONFIG))
    for package, source in (("nbk_experiments", EXPERIMENT), ("nbk_params", PARAMS)):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
        (root / package / "tiny.py").write_text(textwrap.dedent(source))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setattr(sys, "path", list(sys.path))
        try:
            _, manager = run_experiment("tiny", ["tiny"], report=False)
            path = write_experiment_notebook(manager, "tiny", ["tiny"])
        finally:
            for name in [m for m in sys.modules if m.split(".")[0] in CONFIG.values()]:
                del sys.modules[name]
    cache = root / "data" / "cache"
    before = snapshot(cache)
    store_before = (root / "data" / "store.json").read_text()
    notebook = nbformat.read(path, as_version=4)
    executed = execute(notebook, Path(path).parent)
    return {"root": root, "path": Path(path), "manager": manager, "executed": executed, "cache_before": before,
            "cache_after": snapshot(cache), "store_before": store_before,
            "store_after": (root / "data" / "store.json").read_text()}


def test_experiment_notebook_location(experiment_notebook_run):
    run = experiment_notebook_run
    expected = run["root"] / "notes" / "experiments" / f"{run['manager'].get_reference_name()}.ipynb"
    assert run["path"] == expected
    nbformat.validate(nbformat.read(str(expected), as_version=4))


def test_experiment_notebook_executes_with_html(experiment_notebook_run):
    executed = experiment_notebook_run["executed"]
    assert_no_errors(executed)
    pages = html_outputs(executed)
    assert any("<svg" in page and "make_points" in page for page in pages)
    assert any("points described" in page and "<table" in page for page in pages)
    assert any(experiment_notebook_run["manager"].get_reference_name() not in page and "Run tiny_" in page
               for page in pages)  # the notebook's own (dry) run info


def test_experiment_notebook_reruns_no_stage(experiment_notebook_run):
    run = experiment_notebook_run
    assert run["cache_before"] and run["cache_after"] == run["cache_before"]
    assert run["store_after"] == run["store_before"]  # dry: no new store entry
    text = "".join(o.get("text", "") for o in outputs(run["executed"]) if o.get("output_type") == "stream")
    statuses = re.findall(r"\('(\w+)', '(\w+)'\)", text)
    assert statuses and {status for _, status in statuses} == {"cached"}
    assert {stage for stage, _ in statuses} == {"make_points", "summarize"}
    assert not (run["root"] / "reports" / "_live").exists()
