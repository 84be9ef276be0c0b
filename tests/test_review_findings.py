"""Review findings: each test demonstrates a genuine bug (it fails on the current code).

Every test runs a real experiment in ``tmp_path`` (see ``conftest.project``).
"""

from __future__ import annotations

import json
import os

import pytest

from curifactory.experiment import run_experiment

COUNTER = '''
import os


def note(what):
    with open(os.environ["CF_TEST_LOG"], "a") as log:
        log.write(what + "\\n")
'''


@pytest.fixture
def calls(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("CF_TEST_LOG", str(log))

    def read() -> list[str]:
        lines = log.read_text().splitlines() if log.exists() else []
        log.write_text("")
        return lines

    return read


# ---------------------------------------------------------------------------------------
# Records with the same hash inside one run
# ---------------------------------------------------------------------------------------
SAME_HASH = COUNTER + '''
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import PickleCacher


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 3


@cf.stage(None, ["data"], [PickleCacher])
def expensive(record):
    note(f"run expensive {record.params.name}")
    return list(range(record.params.n))


def get_params():
    # two names, same values: the same hash, so the same cache entry
    return [Params(name="a"), Params(name="a_again")]


def run(param_sets, manager):
    return [expensive(cf.Record(manager, p)).state["data"] for p in param_sets]
'''


def test_same_hash_records_compute_a_cached_stage_once(project, calls):
    """Two records whose parameter sets hash the same share one cache entry.

    The first computes and saves it; the second must load it (0.20 checks the cache
    when each stage is called). The planner decided both calls from the cache as it
    was *before* the run (both NOT_CACHED) and ``decide()`` trusts that stale
    decision, so the expensive stage runs twice in one run.
    """
    project({"experiments/samehash.py": SAME_HASH})
    results, _ = run_experiment("samehash", report=False)
    assert results == [[0, 1, 2], [0, 1, 2]]
    assert calls() == ["run expensive a"]


# ---------------------------------------------------------------------------------------
# PandasCacher(format=...) round trips
# ---------------------------------------------------------------------------------------
PANDAS_FORMAT = COUNTER + '''
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import PandasCacher


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 4


@cf.stage(None, ["frame"], [PandasCacher(format="{fmt}")])
def make(record):
    import pandas as pd
    note("run make")
    return pd.DataFrame({"x": [0.1234567890123456 * i for i in range(record.params.n)],
                         "y": list(range(record.params.n))})


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    return make(cf.Record(manager, param_sets[0])).state["frame"]
'''


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_pandas_cacher_format_round_trips_the_frame(project, calls, fmt):
    """``PandasCacher(format=...)`` must give back on a cached run the frame the stage
    returned on the first run.

    0.20 gives csv (and excel) ``read_args={"index_col": 0}`` and json
    ``to_args={"double_precision": 15}`` by default. Here the defaults are empty, so a
    cached csv frame gains an ``Unnamed: 0`` column and a cached json frame loses
    float digits: the second run silently computes with different data.
    """
    import pandas as pd

    project({"experiments/pdfmt.py": PANDAS_FORMAT.replace("{fmt}", fmt)})
    first, _ = run_experiment("pdfmt", report=False)
    assert calls() == ["run make"]
    second, _ = run_experiment("pdfmt", report=False)
    assert calls() == []
    pd.testing.assert_frame_equal(second, first, check_exact=True)


# ---------------------------------------------------------------------------------------
# custom cachers overriding check()
# ---------------------------------------------------------------------------------------
CUSTOM_CHECK = COUNTER + '''
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import JsonCacher


class NeverCached(JsonCacher):
    """A 0.20-style cacher that decides validity itself (e.g. an expiry rule)."""

    def check(self):
        return False


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1


@cf.stage(None, ["value"], [NeverCached])
def compute(record):
    note("run compute")
    return {"n": record.params.n}


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    return compute(cf.Record(manager, param_sets[0])).state["value"]
'''


def test_custom_check_override_is_honoured(project, calls):
    """0.20 decides whether a stage's outputs are cached by calling each cacher's
    ``check()``; custom cachers override it (expiry rules, remote resources, extra
    sanity checks). The executor calls ``validate()`` instead, so an overridden
    ``check()`` returning False is ignored and a stale value is loaded.
    """
    project({"experiments/customcheck.py": CUSTOM_CHECK})
    run_experiment("customcheck", report=False)
    assert calls() == ["run compute"]
    run_experiment("customcheck", report=False)
    assert calls() == ["run compute"]


# ---------------------------------------------------------------------------------------
# run_experiment(..., mngr=manager, cache_dir_override=...)
# ---------------------------------------------------------------------------------------
SIMPLE = COUNTER + '''
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import JsonCacher


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1


@cf.stage(None, ["value"], [JsonCacher])
def compute(record):
    note(f"run compute {record.params.name}")
    return {"n": record.params.n}


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    return compute(cf.Record(manager, param_sets[0])).state["value"]
'''


def test_cache_dir_override_applies_to_a_given_manager(project, calls, tmp_path):
    """0.20's ``run_experiment`` sets ``mngr.cache_path = cache_dir_override`` whether
    or not a manager was passed in (the way a notebook loads a ``--store-full`` run's
    artifacts). Here the override only reaches a manager that run_experiment creates
    itself, so a passed-in manager silently reads and writes the default cache.
    """
    import curifactory as cf

    root = project({"experiments/simple.py": SIMPLE})
    other = tmp_path / "other_cache"
    manager = cf.ArtifactManager("simple")
    run_experiment("simple", mngr=manager, cache_dir_override=str(other), report=False)
    assert calls() == ["run compute p"]
    assert any(other.glob("*_compute_value.json")), "the artifact should be in the override cache"
    assert not list((root / "data" / "cache").glob("*_compute_value.json"))
