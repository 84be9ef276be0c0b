"""Run tracking end to end: stages log metrics, tags, info and files; runs are queried
through cf.load_runs / load_metrics and the `curifactory runs|show|diff` commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import curifactory as cf
from curifactory.errors import RunNotFoundError, TrackingError
from curifactory.runindex import INDEX_NAME

from conftest import CURIFACTORY

TRACKED = """
import os, time
import curifactory as cf
from dataclasses import dataclass
from curifactory.caching import JsonCacher

@dataclass
class Params(cf.ExperimentParameters):
    lr: float = 0.1
    depth: int = 3

def get_params():
    return [Params(name="small", lr=0.1, depth=2), Params(name="large", lr=0.2, depth=4)]

@cf.stage(None, ["model"], [JsonCacher])
def train(record):
    with open(os.environ["CF_TEST_SIDE"], "a") as side:
        side.write(f"train:{record.params.name}\\n")
    for step in range(50):
        record.log_metrics({"loss": record.params.lr / (step + 1), "acc": step / 50})
    record.set_tag("family", "poly")
    record.inform(epochs=50, layers=[record.params.depth])
    with record.attach("summary.txt") as handle:
        handle.write(f"lr={record.params.lr}")
    with record.attach("weights.bin", mode="wb") as handle:
        handle.write(bytes([1, 2, 3]))
    return {"w": record.params.lr * record.params.depth}

@cf.stage(["model"], ["score"], [JsonCacher])
def evaluate(record, model):
    if os.environ.get("CF_TEST_HANG") == record.params.name:
        for i in range(1200):
            record.log_metric("partial", i)
            time.sleep(0.1)
    record.log_metric("score", model["w"] * 10)
    return model["w"] * 10

def run(param_sets, manager):
    for p in param_sets:
        evaluate(train(cf.Record(manager, p)))
"""

CHANGED_PARAMS = """
from experiments.tracked import Params

def get_params():
    return [Params(name="small", lr=0.5, depth=2), Params(name="large", lr=0.2, depth=4)]
"""


class TrackedProject:
    def __init__(self, root: Path, side: Path):
        self.root, self.side = root, side

    def env(self, **extra: str) -> dict:
        return dict(os.environ, CF_TEST_SIDE=str(self.side), COLUMNS="200", **extra)

    def experiment(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "curifactory", "tracked", *args], cwd=self.root,
                              env=self.env(**env), capture_output=True, text=True, timeout=180)

    def curifactory(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", CURIFACTORY, *args], cwd=self.root, env=self.env(),
                              capture_output=True, text=True, timeout=180)

    @property
    def store(self) -> Path:
        return self.root / "data"

    def references(self) -> list[str]:
        return [run["reference"] for run in json.loads((self.store / "store.json").read_text())]


@pytest.fixture
def tracked(tmp_path):
    from tests.conftest import write_project

    root = write_project(tmp_path / "proj", {"experiments/tracked.py": TRACKED, "params/changed.py": CHANGED_PARAMS})
    return TrackedProject(root, tmp_path / "side.log")


def test_stages_log_metrics_tags_info_and_files(tracked):
    result = tracked.experiment("--tag", "team=vision", "--tag", "note=first try")
    assert result.returncode == 0, result.stderr
    [reference] = tracked.references()
    frame = cf.load_runs(store=tracked.store)
    assert list(frame["params_name"]) == ["small", "large"]
    assert set(frame["reference"]) == {reference}
    assert list(frame["metrics.loss"]) == pytest.approx([0.1 / 50, 0.2 / 50])
    assert list(frame["metrics.score"]) == pytest.approx([2.0, 8.0])
    assert list(frame["params.lr"]) == [0.1, 0.2] and list(frame["params.depth"]) == [2, 4]
    assert list(frame["tags.team"]) == ["vision", "vision"] and list(frame["tags.note"]) == ["first try"] * 2
    assert list(frame["tags.family"]) == ["poly", "poly"] and list(frame["info.epochs"]) == [50, 50]
    assert frame["status"].tolist() == ["complete", "complete"]
    assert frame["duration"].iloc[0] > 0 and frame["start"].iloc[0] <= frame["end"].iloc[0]

    points = cf.load_metrics(reference, store=tracked.store)
    loss = points[(points["metric"] == "loss") & (points["params_name"] == "small")]
    assert loss["step"].tolist() == list(range(50))  # steps count up per metric when none is given
    assert loss["value"].iloc[-1] == pytest.approx(0.1 / 50)
    assert loss["wall_time"].notna().all() and loss["cached_from"].isna().all()
    assert len(cf.load_metrics(reference, record="large", store=tracked.store)) == 101
    with pytest.raises(RunNotFoundError, match="has no record 'medium'; its records are: 0:small, 1:large"):
        cf.load_metrics(reference, record="medium", store=tracked.store)

    folder = tracked.store / "runlog" / reference
    raw = json.loads((folder / "run.json").read_text())
    assert raw["stage_fields"][:2] == ["stage", "status"] and raw["records"][0]["stages"][0][:2] == ["train", "executed"]
    from curifactory.runlog import read_run

    document = read_run(str(folder))  # stage calls as dicts
    small = document["records"][0]
    assert small["info"] == {"epochs": 50, "layers": [2]}
    assert {a["name"] for a in small["attachments"]} == {"summary.txt", "weights.bin"}
    assert (folder / small["attachments"][0]["path"]).exists()
    assert (folder / "attachments" / small["hash"] / "weights.bin").read_bytes() == bytes([1, 2, 3])
    stage = small["stages"][0]
    assert stage["stage"] == "train" and stage["status"] == "executed" and stage["started_at"] > 1e9
    assert stage["ended_at"] == pytest.approx(stage["started_at"] + stage["duration"], abs=0.002)
    [model] = stage["outputs"]
    assert model["content_hash"] and model["size"] > 0 and model["computed"] and model["produced_by"] == reference
    assert list(folder.glob("points-*.jsonl")) and not list(folder.glob("stages-*.jsonl"))


def test_a_cached_rerun_shows_what_the_stages_logged_when_computed(tracked):
    assert tracked.experiment().returncode == 0
    tracked.side.unlink()
    assert tracked.experiment().returncode == 0
    assert not tracked.side.exists()  # nothing executed
    first, second = tracked.references()
    frame = cf.load_runs(store=tracked.store)
    rerun = frame[frame["reference"] == second]
    assert list(rerun["metrics.score"]) == pytest.approx([2.0, 8.0])
    assert list(rerun["tags.family"]) == ["poly", "poly"]
    points = cf.load_metrics(second, store=tracked.store)
    assert len(points) == 2 * 101 and set(points["cached_from"]) == {first}
    document = cf.load_run(second, store=tracked.store)
    [model] = document["records"][0]["stages"][0]["outputs"]
    assert not model["computed"] and model["produced_by"] == first
    assert (Path(document["folder"]) / document["records"][0]["attachments"][0]["path"]).exists()


def test_the_commands_list_show_and_diff_runs(tracked):
    assert tracked.experiment("--tag", "team=a").returncode == 0
    assert tracked.experiment("-p", "changed").returncode == 0
    first, second = tracked.references()

    table = tracked.curifactory("runs")
    assert table.returncode == 0, table.stderr
    assert "metrics.loss" in table.stdout and "params.lr" in table.stdout and first in table.stdout
    assert "metrics.acc" not in table.stdout  # the same everywhere: left out
    csv = tracked.curifactory("runs", "tracked", "--format", "csv", "--where", "params.lr > 0.15",
                              "--columns", "reference,params_name,params.lr")
    assert csv.stdout.splitlines() == ["reference,params_name,params.lr", f"{first},large,0.2",
                                       f"{second},small,0.5", f"{second},large,0.2"]
    rows = json.loads(tracked.curifactory("runs", "--tag", "team=a", "--format", "json").stdout)
    assert {r["reference"] for r in rows} == {first}
    assert rows[0]["params.depth"] == 2 and rows[0]["host"]  # machine formats carry every column
    assert "| reference |" in tracked.curifactory("runs", "--format", "markdown").stdout

    show = tracked.curifactory("show", "tracked#1")
    assert show.returncode == 0 and first in show.stdout and "loss=0.002" in show.stdout
    assert "summary.txt" in show.stdout and "rerun: experiment tracked --tag team=a" in show.stdout
    assert tracked.curifactory("show", "latest").stdout.startswith(f"run {second}")
    assert json.loads(tracked.curifactory("show", first[:-3], "--format", "json").stdout)["reference"] == first

    diff = tracked.curifactory("diff", "tracked#1", "tracked#2")
    assert diff.returncode == 0
    assert "~ lr: 0.1 -> 0.5" in diff.stdout and "metric score: 2 -> 10 (+8)" in diff.stdout
    assert "stage train: executed -> cached" in diff.stdout  # 'large' came from the cache the second time
    as_json = json.loads(tracked.curifactory("diff", first, second, "--format", "json").stdout)
    small = next(r for r in as_json["records"] if r["name"] == "small")
    assert small["params"] == [{"name": "lr", "a": 0.1, "b": 0.5, "kind": "changed"}]
    assert {a["name"] for a in small["artifacts"]} == {"model", "score"}
    same = tracked.curifactory("diff", second, second)
    assert same.stdout.strip().endswith("are identical (parameters, metrics, artifacts, code and environment).")


def test_python_diff_of_two_runs(tracked):
    assert tracked.experiment().returncode == 0
    assert tracked.experiment("-p", "changed").returncode == 0
    diff = cf.diff_runs("tracked#1", "latest", store=tracked.store)
    small = next(r for r in diff.records if r.name == "small")
    [metric] = [m for m in small.metrics if m.name == "score"]
    assert (metric.a, metric.b, metric.delta) == pytest.approx((2.0, 10.0, 8.0))
    [artifact] = [a for a in small.artifacts if a.name == "score"]
    assert artifact.preview_a == "2.0" and artifact.preview_b == "10.0"
    assert not diff.identical and not diff.added_records and not diff.removed_records


@pytest.mark.parametrize("args, expected", [
    (("show", "nope"), "No run 'nope'"),
    (("show", "tracked"), "names 2 runs"),
    (("diff", "tracked#1", "tracked#9"), "No run 'tracked#9'"),
    (("runs", "--where", "metrics.loss <"), "is not a valid query"),
    (("runs", "--sort", "nothing"), "--sort nothing: there is no such column"),
    (("runs", "--tag", "novalue"), "is not KEY=VALUE"),
    (("runs", "--status", "done"), "status 'done' is not a run status"),
    (("diff", "latest", "latest", "-o", "/nonexistent/folder/diff.html"), "the folder /nonexistent/folder does not"),
])
def test_bad_references_and_queries_are_usage_errors(tracked, args, expected):
    assert tracked.experiment().returncode == 0
    assert tracked.experiment().returncode == 0
    result = tracked.curifactory(*args)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_a_tag_without_a_value_separator_is_a_usage_error(tracked):
    result = tracked.experiment("--tag", "oops")
    assert result.returncode == 2 and "'oops' is not KEY=VALUE" in result.stderr
    assert not (tracked.store / "store.json").exists()


BAD_METRIC = """
import curifactory as cf
from dataclasses import dataclass

@dataclass
class Params(cf.ExperimentParameters):
    value: object = 1.0

def get_params():
    return [Params(name="p")]

@cf.stage(None, ["x"])
def stage(record):
    record.log_metric("good", 1.0)
    record.log_metric("loss", record.params.value)
    return 1

def run(param_sets, manager):
    for p in param_sets:
        stage(cf.Record(manager, p))
"""


@cf.stage(None, ["x"])
def _informs(record):
    record.inform(model=object())


@cf.stage(None, ["x"])
def _informs_badly(record):
    record.log_metrics([("loss", 1.0)])


@cf.stage(None, ["x"])
def _names_badly(record):
    record.log_metric(3, 1.0)


def test_logging_mistakes_are_clear_errors(project):
    project({"experiments/bad.py": BAD_METRIC,
             "params/text.py": "from experiments.bad import Params\ndef get_params():\n"
                               "    return [Params(name='p', value='high')]\n"})
    from curifactory.experiment import run_experiment

    with pytest.raises(TrackingError, match=r"Metric 'loss' got the value 'high' \(str\)"):
        run_experiment("bad", ["text"])
    manager = cf.ArtifactManager("live_checks", suppress_live_log=True)
    record = cf.Record(manager, None)
    with pytest.raises(TrackingError, match="outside a stage"):
        record.log_metric("loss", 0.1)
    for call in (lambda: record.set_tag("k", 1), lambda: record.inform(k=1), lambda: record.attach("f.txt")):
        with pytest.raises(TrackingError, match="outside a stage"):
            call()
    with pytest.raises(TrackingError, match="non-empty string"):
        manager.set_tag("", "x")
    with pytest.raises(TrackingError, match="inform\\(model=...\\) got a object, which is not JSON"):
        _informs(cf.Record(manager, None))
    with pytest.raises(TrackingError, match="log_metrics\\(\\) takes a dict"):
        _informs_badly(cf.Record(manager, None))
    with pytest.raises(TrackingError, match="A metric name must be a non-empty string, not 3"):
        _names_badly(cf.Record(manager, None))
    manager.finish("complete")
    with pytest.raises(TrackingError, match="after run live_checks_1_.* ended"):
        manager.set_tag("late", 1)


@cf.stage(None, ["value"])
def _live_stage(record):
    for step in range(3):
        record.log_metric("loss", 1.0 / (step + 1), step=step * 10)
    record.set_tag("where", "notebook")
    return 1


def test_a_live_managers_records_log_too(project):
    project({})
    manager = cf.ArtifactManager("notebook", suppress_live_log=True)
    manager.set_tag("session", "morning")
    record = _live_stage(cf.Record(manager, None))
    manager.store()
    frame = cf.load_runs("note*")
    assert frame["status"].tolist() == ["live"] and frame["tags.session"].tolist() == ["morning"]
    assert frame["metrics.loss"].tolist() == [pytest.approx(1 / 3)] and frame["tags.where"].tolist() == ["notebook"]
    points = cf.load_metrics("notebook#1")
    assert points["step"].tolist() == [0, 10, 20]
    assert record.manager.tracker.metrics_of(record) == {"loss": pytest.approx(1 / 3)}


def test_eight_runs_at_once_all_land_in_the_index(tracked):
    processes = [subprocess.Popen([sys.executable, "-m", "curifactory", "tracked", "--tag", f"worker={i}"],
                                  cwd=tracked.root, env=tracked.env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for i in range(8)]
    errors = [p.communicate(timeout=300)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, errors
    import sqlite3

    with sqlite3.connect(tracked.store / INDEX_NAME) as connection:
        rows = connection.execute("SELECT reference, status FROM runs").fetchall()
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"
    assert len(rows) == 8 and {status for _, status in rows} == {"complete"}
    frame = cf.load_runs(level="run", store=tracked.store)
    assert sorted(frame["tags.worker"]) == [str(i) for i in range(8)]
    assert sorted(frame["run_number"]) == list(range(1, 9))


def test_a_killed_run_keeps_the_points_of_finished_stages(tracked):
    process = subprocess.Popen([sys.executable, "-m", "curifactory", "tracked"], cwd=tracked.root,
                               env=tracked.env(CF_TEST_HANG="large", CURIFACTORY_FLUSH_SECONDS="0.3"),
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "train:large" not in (tracked.side.read_text() if tracked.side.exists() else ""):
        time.sleep(0.1)
    time.sleep(2.0)  # inside evaluate('large') now, logging 'partial' every 0.1 s
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    [reference] = tracked.references()
    frame = cf.load_runs(store=tracked.store)
    assert set(frame["status"]) == {"interrupted"}
    assert frame["params.lr"].tolist() == [0.1, 0.2] and frame["tags.family"].tolist() == ["poly", "poly"]
    points = cf.load_metrics(reference, store=tracked.store)
    counts = points.groupby(["params_name", "metric"]).size().to_dict()
    partial = counts.pop(("large", "partial"))
    assert counts == {("small", "loss"): 50, ("small", "acc"): 50, ("small", "score"): 1,
                      ("large", "loss"): 50, ("large", "acc"): 50}
    assert 5 <= partial <= 25  # the stage that was killed: what it logged up to its last flush
    shown = tracked.curifactory("show", reference)
    assert "status    interrupted" in shown.stdout and "stage train" in shown.stdout


def test_run_folders_copied_in_appear_and_the_index_is_rebuilt(tracked, tmp_path):
    assert tracked.experiment().returncode == 0
    [reference] = tracked.references()
    other = tmp_path / "other" / "data"
    (other / "runlog").mkdir(parents=True)
    import shutil

    shutil.copytree(tracked.store / "runlog" / reference, other / "runlog" / reference)
    assert cf.load_runs(store=other)["reference"].tolist() == [reference] * 2  # indexed on first query
    (other / INDEX_NAME).write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(other / INDEX_NAME) + suffix).unlink(missing_ok=True)
    assert cf.load_runs(store=other)["reference"].tolist() == [reference] * 2  # damaged: moved aside, rebuilt
    assert list(other.glob(f"{INDEX_NAME}.damaged-*"))
    result = tracked.curifactory("runs", "--reindex", "--format", "csv", "--columns", "reference")
    assert "reindexed 1 runs" in result.stderr and result.stdout.splitlines()[1:] == [reference] * 2
    shutil.rmtree(tracked.store / "runlog" / reference)
    assert cf.load_runs(store=tracked.store).empty  # a deleted run folder leaves the index


def test_the_diff_page_renders_escaped_in_chromium(tracked, tmp_path):
    from tests.test_report_browser import CHROMIUM_ARGS, _chromium

    sync_api = pytest.importorskip("playwright.sync_api")
    assert tracked.experiment("--tag", "note=<script>alert(1)</script>").returncode == 0
    assert tracked.experiment("-p", "changed").returncode == 0
    page_path = tmp_path / "diff.html"
    result = tracked.curifactory("diff", "tracked#1", "tracked#2", "--format", "html", "-o", str(page_path))
    assert result.returncode == 0
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            dialogs = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(page_path.as_uri())
            assert page.locator("section.record").count() == 2
            small = page.locator("section.record[data-record=small]")
            assert "0.5" in small.locator("table.changes tr.changed").first.inner_text()
            assert small.locator("table.metrics tr.changed").count() == 2  # loss and score
            assert "<script>alert(1)</script>" in page.locator("table.changes").first.inner_text()
            assert not dialogs
        finally:
            browser.close()


def test_an_unknown_reference_names_the_nearest(tracked):
    assert tracked.experiment().returncode == 0
    [reference] = tracked.references()
    with pytest.raises(RunNotFoundError, match=f"Nearest: {reference}"):
        cf.load_run(reference[:-1] + "X", store=tracked.store)


def test_diff_of_full_store_runs_names_dirty_files_and_package_changes(tracked):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=tracked.root, check=True)
    (tracked.root / ".gitignore").write_text("data/\nreports/\nlogs/\n")
    subprocess.run([*git, "add", "-A"], cwd=tracked.root, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=tracked.root, check=True)
    assert tracked.experiment("-s").returncode == 0
    (tracked.root / "notes.md").write_text("an uncommitted note\n")
    subprocess.run([*git, "add", "notes.md"], cwd=tracked.root, check=True)  # staged: in `git diff HEAD`
    assert tracked.experiment("-s").returncode == 0
    first, second = tracked.references()
    requirements = tracked.root / "data" / "runs" / second / "requirements.txt"
    lines = requirements.read_text().splitlines()
    requirements.write_text("\n".join([*lines, "extra-package==1.0"]) + "\n")  # as if installed in between
    diff = cf.diff_runs(first, second, store=tracked.store)
    assert diff.dirty_files == ((), ("notes.md",))
    assert [(c.name, c.kind, c.b) for c in diff.packages] == [("extra-package", "added", "1.0")]
    assert any(c.name == "dirty" and (c.a, c.b) == (False, True) for c in diff.run)
    text = tracked.curifactory("diff", first, second).stdout
    assert "dirty files: - -> notes.md" in text and "+ extra-package = 1.0" in text


def test_querying_a_project_without_runs_writes_nothing(tmp_path):
    (tmp_path / "curifactory_config.json").write_text("{}")
    frame = cf.load_runs(store=tmp_path / "data")
    assert frame.empty and "metrics.loss" not in frame.columns and "reference" in frame.columns
    assert not (tmp_path / "data").exists()
    with pytest.raises(RunNotFoundError, match="There are no runs yet"):
        cf.load_run("latest", store=tmp_path / "data")


def test_lineage_across_three_runs(tracked):
    assert tracked.experiment().returncode == 0                        # 1 computes everything
    assert tracked.experiment("-p", "changed").returncode == 0         # 2 recomputes 'small', loads 'large'
    assert tracked.experiment("-p", "changed").returncode == 0         # 3 loads everything
    first, second, third = tracked.references()
    from curifactory.runs import lineage

    assert lineage(first, tracked.store) == {"reference": first, "uses": [], "used_by": [(second, 2), (third, 2)]}
    assert lineage(second, tracked.store)["uses"] == [(first, 2)]
    assert lineage(third, tracked.store)["uses"] == [(first, 2), (second, 2)]
    shown = tracked.curifactory("show", third, "--lineage").stdout
    assert f"loaded cached artifacts from:\n  {first}  (2 artifacts)\n  {second}  (2 artifacts)" in shown
    assert "its artifacts were loaded by:\n  no later run" in shown
    report = (tracked.root / "reports" / third / "index.html").read_text()
    assert f'loaded from run <a class="produced-by" href="../{first}/index.html">{first}</a>' in report


def test_export_to_a_real_mlflow_store_twice_makes_no_duplicate(tracked, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    assert tracked.experiment("--tag", "team=a").returncode == 0
    assert tracked.experiment("-p", "changed").returncode == 0
    first, second = tracked.references()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = tracked.curifactory("export", "mlflow", "--tracking-uri", uri, "--artifacts")
    assert result.returncode == 0, result.stderr
    assert "exported 4 records to MLflow" in result.stdout
    again = tracked.curifactory("export", "mlflow", first, "--tracking-uri", uri)
    assert "exported 0 records to MLflow; 2 were exported before (skipped)" in again.stdout

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tracked"])
    assert len(runs) == 4
    small = runs[(runs["tags.curifactory.reference"] == first) & (runs["tags.curifactory.params_name"] == "small")]
    [row] = small.to_dict("records")
    assert row["params.lr"] == "0.1" and row["params.depth"] == "2" and row["params.info.epochs"] == "50"
    assert row["metrics.score"] == pytest.approx(2.0) and row["tags.team"] == "a" and row["tags.family"] == "poly"
    assert row["status"] == "FINISHED" and row["tags.curifactory.dirty"] == "None"
    client = mlflow.tracking.MlflowClient(uri)
    history = client.get_metric_history(row["run_id"], "loss")
    assert [m.step for m in history] == list(range(50)) and history[-1].value == pytest.approx(0.1 / 50)
    assert all(m.timestamp > 1e12 for m in history)
    assert {a.path for a in client.list_artifacts(row["run_id"])} == {"summary.txt", "weights.bin"}


SAME_HASH_PARAMS = """
from experiments.tracked import Params

def get_params():
    return [Params(name="one", lr=0.3), Params(name="two", lr=0.3)]
"""


def test_records_sharing_a_hash_keep_their_own_metrics(tracked):
    (tracked.root / "params" / "twins.py").write_text(SAME_HASH_PARAMS)
    assert tracked.experiment("-p", "twins").returncode == 0
    [reference] = tracked.references()
    points = cf.load_metrics(reference, store=tracked.store)
    assert points.groupby("params_name")["record"].unique().to_dict() == {"one": [0], "two": [1]}
    assert points.groupby("params_name").size().to_dict() == {"one": 101, "two": 101}
    frame = cf.load_runs(store=tracked.store)
    assert frame["metrics.score"].tolist() == pytest.approx([9.0, 9.0]) and frame["tags.family"].notna().all()
    again = tracked.experiment("--params-from", reference)
    assert again.returncode == 0
    assert sorted(cf.load_runs(store=tracked.store)["params_name"]) == ["one", "one", "two", "two"]


def test_a_run_killed_before_any_stage_call_was_written_still_lists_its_records(tracked):
    process = subprocess.Popen([sys.executable, "-m", "curifactory", "tracked"], cwd=tracked.root,
                               env=tracked.env(CF_TEST_HANG="small"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # stage calls are written every 5 s: none yet
    deadline = time.monotonic() + 60
    folder = tracked.store / "runlog"
    while time.monotonic() < deadline and not list(folder.glob("*/points-*.jsonl")):
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    frame = cf.load_runs(store=tracked.store)
    assert set(frame["status"]) == {"interrupted"} and frame["params_name"].tolist() == ["small"]
    assert frame["metrics.loss"].tolist() == [pytest.approx(0.1 / 50)]
