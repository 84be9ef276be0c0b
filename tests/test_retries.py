"""Retries with attempts: ``@cf.stage(retries=N, retry_on=..., retry_delay=...)`` end to end,
through the ``experiment`` command, the run log, ``curifactory show`` and the report."""

from __future__ import annotations

import json

import pytest

import curifactory as cf
from curifactory.errors import StageDefinitionError

from conftest import CliProject

FLAKY = """
import builtins, os
import curifactory as cf
from dataclasses import dataclass
from curifactory.caching import JsonCacher

@dataclass
class Params(cf.ExperimentParameters):
    fail_times: int = 2
    error: str = "ConnectionError"

def get_params():
    return [Params(name="flaky")]

def attempt_number():
    path = os.environ["CF_TEST_SIDE"]
    count = (open(path).read().count("fetch") if os.path.exists(path) else 0) + 1
    with open(path, "a") as side:
        side.write(f"fetch:{count}\\n")
    return count

@cf.stage(None, ["data"], [JsonCacher], retries=3, retry_on=(ConnectionError, TimeoutError), retry_delay=0.05)
def fetch(record):
    attempt = attempt_number()
    record.log_metric("tries", attempt)
    record.report(cf.reporting.JsonReporter({"attempt": attempt}, name=f"attempt{attempt}"))
    if attempt <= record.params.fail_times:
        raise getattr(builtins, record.params.error)("flaky network")
    return {"attempt": attempt}

@cf.stage(["data"], ["n"], [JsonCacher])
def count(record, data):
    return data["attempt"]

def run(param_sets, manager):
    for p in param_sets:
        count(fetch(cf.Record(manager, p)))
"""


def _flaky(fail_times: int, error: str = "ConnectionError") -> str:
    return FLAKY.replace("fail_times: int = 2", f"fail_times: int = {fail_times}").replace(
        'error: str = "ConnectionError"', f'error: str = "{error}"')


def _show(project: CliProject, ref: str = "latest") -> dict:
    shown = project.curifactory("show", ref, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_a_flaky_stage_succeeds_on_its_third_attempt_and_every_attempt_is_recorded(tmp_path):
    project = CliProject(tmp_path, {"experiments/flaky.py": _flaky(2), "params/__init__.py": ""})
    done = project.run("flaky")
    assert done.returncode == 0, done.stderr
    assert project.executed() == ["fetch:1", "fetch:2", "fetch:3"]
    assert "attempt 1 of 4" in done.stderr and "trying again in 0.05 s" in done.stderr

    document = _show(project)
    [fetch, count] = document["records"][0]["stages"]
    assert [a["attempt"] for a in fetch["attempts"]] == [1, 2, 3]
    assert [a["status"] for a in fetch["attempts"]] == ["failed", "failed", "executed"]
    assert fetch["attempts"][0]["error"] == "ConnectionError: flaky network"
    assert fetch["attempts"][1]["started_at"] >= fetch["attempts"][0]["ended_at"] + 0.04  # the delay
    assert all(a["duration"] >= 0 for a in fetch["attempts"])
    assert fetch["status"] == "executed" and "attempts" not in count  # a stage without retries keeps none
    # only the last attempt's output is cached, and what it logged and reported
    assert (project.root / "data" / "cache" / f"flaky_{document['records'][0]['hash']}_count_n.json").read_text() \
        == "3"
    text = project.curifactory("show", "latest")
    assert "attempt 2  failed" in text.stdout and "attempt 3  executed" in text.stdout
    page = project.report(document["reference"]).read_text()
    assert "3 attempts" in page and "ConnectionError: flaky network" in page
    assert "attempt3" in page and "attempt1" not in page  # a failed attempt's reportables are dropped

    again = project.run("flaky")
    assert again.returncode == 0 and project.executed() == []  # cached: no attempt at all
    second = _show(project)
    assert second["records"][0]["stages"][0]["status"] == "cached"
    assert second["records"][0]["metrics"] == {"tries": 3}  # the cached call replays its last attempt


def test_attempts_run_out_and_the_run_fails_with_every_attempt_in_its_log(tmp_path):
    project = CliProject(tmp_path, {"experiments/flaky.py": _flaky(9), "params/__init__.py": ""})
    done = project.run("flaky")
    assert done.returncode == 1
    assert "flaky network" in done.stderr and "Traceback" not in done.stderr
    assert project.executed() == ["fetch:1", "fetch:2", "fetch:3", "fetch:4"]
    document = _show(project)
    assert document["status"] == "error" and project.store()[-1]["status"] == "error"
    [fetch] = document["records"][0]["stages"]
    assert fetch["status"] == "failed" and [a["status"] for a in fetch["attempts"]] == ["failed"] * 4
    assert not list((project.root / "data" / "cache").glob("*fetch_data.json"))  # nothing cached


def test_an_exception_not_in_retry_on_fails_at_once(tmp_path):
    project = CliProject(tmp_path, {"experiments/flaky.py": _flaky(1, "KeyError"), "params/__init__.py": ""})
    done = project.run("flaky")
    assert done.returncode == 1
    assert project.executed() == ["fetch:1"]
    [fetch] = _show(project)["records"][0]["stages"]
    assert [a["status"] for a in fetch["attempts"]] == ["failed"]
    assert fetch["attempts"][0]["error"].startswith("KeyError")


@pytest.mark.parametrize("kwargs, wanted", [
    ({"retries": -1}, "retries=-1"),
    ({"retries": 1.5}, "retries=1.5"),
    ({"retries": 2, "retry_on": "ValueError"}, "retry_on='ValueError'"),
    ({"retries": 2, "retry_on": (ValueError, int)}, "retry_on="),
    ({"retries": 2, "retry_delay": -3}, "retry_delay=-3"),
    ({"retry_on": ValueError}, "take effect with retries=N"),
    ({"retries": 1, "retry_on": KeyboardInterrupt}, "never retried"),
])
def test_bad_retry_arguments_are_named_when_the_decorator_is_applied(kwargs, wanted):
    with pytest.raises(StageDefinitionError, match=wanted.replace("(", r"\(").replace(".", r"\.")):
        @cf.stage(None, ["x"], **kwargs)
        def fetch(record):
            return 1
