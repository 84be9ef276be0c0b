"""The bundled example project and the code shown in the README and the docs.

Each test copies the project files into ``tmp_path`` and runs there, so the
repository itself is never written to.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import curifactory
from curifactory.experiment import run_experiment
from curifactory.history import StageStatus

REPO = Path(__file__).resolve().parents[1]
PACKAGE_PARENT = Path(curifactory.__file__).resolve().parents[1]
EXAMPLE_FILES = ["curifactory_config.json", "experiments", "params"]
N_SETS = 12  # params/polyfit.py: 6 degrees, plain and ridge
STAGES = ("generate_data", "fit_model", "evaluate")

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")


def _forget_project_modules() -> None:
    for name in [m for m in sys.modules if m.split(".")[0] in ("experiments", "params")]:
        del sys.modules[name]


@pytest.fixture
def example(tmp_path, monkeypatch):
    """A copy of the example project in tmp_path, as the working directory."""
    root = tmp_path / "example"
    root.mkdir()
    for name in EXAMPLE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))  # as a Python session started in the project root has it
    monkeypatch.setenv("MPLBACKEND", "Agg")
    _forget_project_modules()
    yield root
    _forget_project_modules()


def _cache_files(root: Path) -> dict[str, int]:
    """Every file in the cache with its modification time in nanoseconds."""
    cache = root / "data" / "cache"
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in sorted(cache.rglob("*")) if p.is_file()}


def _store(root: Path) -> list[dict]:
    return json.loads((root / "data" / "store.json").read_text())


def _statuses(manager) -> set[StageStatus]:
    return {run.status for record in manager.records for run in record.history}


# -- in process ---------------------------------------------------------------------


def test_example_runs_then_is_fully_cached(example):
    results, manager = run_experiment("polyfit", ["polyfit"])

    assert manager.status == "complete"
    assert _statuses(manager) == {StageStatus.EXECUTED}
    assert len(manager.records) == N_SETS + 1
    for record in manager.records[:N_SETS]:
        assert [run.stage for run in record.history] == list(STAGES)

    # the analysis itself: a cubic needs degree 3, and the ridge penalty tames degree 12
    assert len(results) == N_SETS
    assert results.loc["degree-3", "test_rmse"] < results.loc["degree-1", "test_rmse"]
    assert results.loc["degree-12-ridge", "test_rmse"] < results.loc["degree-12", "test_rmse"]
    assert (results["train_rmse"] > 0).all()

    reference = manager.get_reference_name()
    assert (example / "reports" / reference / "index.html").is_file()
    assert (example / "reports" / "_latest" / "index.html").is_file()
    first_files = _cache_files(example)
    # a stage call's reportables and logged metrics are kept beside its outputs, as '__reportables'
    artifacts = [f for f in first_files if not f.endswith("_metadata.json") and "__reportables" not in f]
    for stage in STAGES:
        assert sum(f"_{stage}_" in f for f in artifacts) == N_SETS
    for artifact in artifacts:
        stem = os.path.splitext(artifact)[0]
        assert stem + "_metadata.json" in first_files

    _forget_project_modules()
    again, manager2 = run_experiment("polyfit", ["polyfit"])

    assert manager2.status == "complete"
    assert _statuses(manager2) == {StageStatus.CACHED}
    assert _cache_files(example) == first_files  # nothing rewritten, nothing added
    assert again.equals(results)
    store = _store(example)
    assert [entry["status"] for entry in store] == ["complete", "complete"]
    assert [entry["run_number"] for entry in store] == [1, 2]
    assert (example / "reports" / manager2.get_reference_name() / "index.html").is_file()


def test_changing_one_set_reruns_only_that_set_and_the_aggregate(example):
    run_experiment("polyfit", ["polyfit"], report=False)
    (example / "params" / "changed.py").write_text(
        "from params.polyfit import get_params as original\n\n\n"
        "def get_params():\n"
        "    param_sets = original()\n"
        "    param_sets[0].degree = 4\n"
        "    return param_sets\n"
    )
    _forget_project_modules()
    _, manager = run_experiment("polyfit", ["changed"], report=False)

    executed = [(record.name, run.stage) for record in manager.records for run in record.history
                if run.status is StageStatus.EXECUTED]
    assert executed == [("degree-1", stage) for stage in STAGES] + [("aggregate", "compare_models")]


def test_readme_script_reuses_the_cache(example):
    run_experiment("polyfit", ["polyfit"], report=False)
    _forget_project_modules()
    before = _cache_files(example)

    readme = (REPO / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)

    record = namespace["record"]
    assert {run.status for run in record.history} == {StageStatus.CACHED}
    assert record.state["metrics"]["degree"] == 3
    assert _cache_files(example) == before


def test_getting_started_project_runs(tmp_path, monkeypatch):
    """The experiment and parameter file written out in docs/getting-started.md."""
    guide = (REPO / "docs" / "getting-started.md").read_text()
    experiment_code, params_code = re.findall(r"```python\n(.*?)```", guide, re.S)[:2]
    root = tmp_path / "pi-project"
    for package, code, name in (("experiments", experiment_code, "pi"), ("params", params_code, "sizes")):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
        (root / package / f"{name}.py").write_text(code)
    (root / "curifactory_config.json").write_text("{}")
    monkeypatch.chdir(root)
    _forget_project_modules()
    try:
        _, first = run_experiment("pi", ["sizes"], report=False)
        _forget_project_modules()
        _, second = run_experiment("pi", ["sizes"], report=False)
    finally:
        _forget_project_modules()
    assert _statuses(first) == {StageStatus.EXECUTED}
    assert _statuses(second) == {StageStatus.CACHED}
    table = first.records[-1].state["table"]
    assert list(table.index) == ["n100", "n1000", "n10000"]
    assert table.loc["n10000", "error"] < 0.1


# -- through the command line ---------------------------------------------------------

needs_cli = pytest.mark.skipif(
    importlib.util.find_spec("curifactory.__main__") is None,
    reason="the experiment command line (curifactory/__main__.py) is not there yet",
)


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_PARENT),
                                                                     os.environ.get("PYTHONPATH")]))}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "curifactory", *args], cwd=root, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


@needs_cli
def test_cli_runs_the_example_twice(example):
    first = _cli(example, "polyfit", "-p", "polyfit")
    assert first.returncode == 0, first.stdout + first.stderr

    store = _store(example)
    assert len(store) == 1 and store[0]["status"] == "complete"
    reference = store[0]["reference"]
    report = example / "reports" / reference / "index.html"
    assert report.is_file()
    assert (example / "reports" / "_latest" / "index.html").is_file()
    assert (example / "logs" / f"{reference}.log").is_file()
    # the run says where its report is
    assert f"{reference}{os.sep}index.html" in first.stdout + first.stderr
    first_files = _cache_files(example)
    assert sum(not f.endswith("_metadata.json") for f in first_files) >= N_SETS * len(STAGES) + 1

    second = _cli(example, "polyfit", "-p", "polyfit")
    assert second.returncode == 0, second.stdout + second.stderr
    store = _store(example)
    assert [entry["status"] for entry in store] == ["complete", "complete"]
    assert store[1]["run_number"] == 2
    assert (example / "reports" / store[1]["reference"] / "index.html").is_file()
    assert _cache_files(example) == first_files  # fully cached: nothing rewritten


@needs_cli
def test_cli_lists_the_example_with_its_docstrings(example):
    listing = _cli(example, "ls")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    for module in ("experiments/polyfit.py", "params/polyfit.py"):
        first_line = (example / module).read_text().split('"""')[1].splitlines()[0]
        assert first_line in listing.stdout


def test_example_tracks_its_metrics(example):
    import curifactory as cf

    results, manager = run_experiment("polyfit", ["polyfit"], report=False)
    frame = cf.load_runs("polyfit")
    sets = frame[frame["params_name"].isin(results.index)].set_index("params_name")
    assert len(sets) == N_SETS
    for name in results.index:
        assert sets.loc[name, "metrics.test_rmse"] == results.loc[name, "test_rmse"]
    assert set(sets["tags.variant"]) == {"plain", "ridge 0.01"}
    assert str(frame["params.degree"].dtype) == "Int64"  # the aggregate's gap does not make it float
