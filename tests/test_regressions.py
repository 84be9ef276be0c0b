"""Regression tests for bugs found in review: 0.20 idioms and cache decisions.

Every test runs a real experiment in ``tmp_path`` (see ``conftest.project``).
"""

from __future__ import annotations

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
    # 12 significant digits: exact with 0.20's json double_precision=15
    return pd.DataFrame({"x": [0.123456789012, 1.5, 2.25, 3.987654321098][: record.params.n],
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
    # rtol=1e-12: what 0.20's double_precision=15 keeps (pandas' json reader is not exact)
    pd.testing.assert_frame_equal(second, first, check_exact=False, rtol=1e-12, atol=0)


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


# ---------------------------------------------------------------------------------------
# a static path_override shared by every parameter set
# ---------------------------------------------------------------------------------------
SHARED_OVERRIDE = COUNTER + '''
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import JsonCacher


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1


@cf.stage(None, ["raw"], [JsonCacher(path_override="data/raw_download.json")])
def download(record):
    note("run download")
    return {"rows": [1, 2, 3]}


@cf.stage(["raw"], ["total"], [JsonCacher])
def total(record, raw):
    return sum(raw["rows"]) * record.params.n


def get_params():
    return [Params(name=f"p{i}", n=i) for i in range(1, 4)]


def run(param_sets, manager):
    return [total(download(cf.Record(manager, p))).state["total"] for p in param_sets]
'''


def test_shared_path_override_is_computed_once_per_run(project, calls):
    """A cacher instance with a static ``path_override`` (the 0.20 idiom for "download
    the raw data once") is shared by every parameter set. In 0.20 the first set saves
    it and the others load it. Here the plan decided every call before the run started
    ("not cached") and nobody re-checks, so the download runs once per parameter set.
    Same root cause as ``test_same_hash_records_compute_a_cached_stage_once``.
    """
    project({"experiments/shared.py": SHARED_OVERRIDE})
    results, _ = run_experiment("shared", report=False)
    assert results == [6, 12, 18]
    assert calls() == ["run download"]


# ---------------------------------------------------------------------------------------
# suppress_missing_inputs with some inputs always present
# ---------------------------------------------------------------------------------------
SUPPRESS = '''
from dataclasses import dataclass

import curifactory as cf


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1


@cf.stage(None, ["data"])
def load(record):
    return [1, 2, 3]


# "data" is always there; only "weights" is optional, so only it has a default
@cf.stage(["data", "weights"], ["total"], suppress_missing_inputs=True)
def combine(record, data, weights=None):
    return sum(data) if weights is None else sum(d * w for d, w in zip(data, weights))


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    return combine(load(cf.Record(manager, param_sets[0]))).state["total"]
'''


def test_suppress_missing_inputs_needs_defaults_only_for_missing_inputs(project):
    """In 0.20 ``suppress_missing_inputs=True`` only matters for inputs that are
    actually missing: a present input needs no default. ``_check_signature`` demands a
    default for *every* input when the decorator is applied, so such 0.20 modules now
    fail at import time with InputSignatureError.
    """
    project({"experiments/suppress.py": SUPPRESS})
    results, _ = run_experiment("suppress", report=False)
    assert results == 6


# ---------------------------------------------------------------------------------------
# record.make_copy() loses the DAG edge: --overwrite-stage does not cascade
# ---------------------------------------------------------------------------------------
COPY = COUNTER + '''
import os
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import JsonCacher


@dataclass
class Params(cf.ExperimentParameters):
    factor: int = 1


@cf.stage(None, ["data"], [JsonCacher])
def load(record):
    note("run load")
    return [int(os.environ.get("CF_BASE", "1"))] * 3


@cf.stage(["data"], ["scaled"], [JsonCacher])
def scale(record, data):
    note(f"run scale {record.params.name}")
    return [d * record.params.factor for d in data]


def get_params():
    return [Params(name="base", factor=1), Params(name="ten", factor=10)]


def run(param_sets, manager):
    base = load(cf.Record(manager, param_sets[0]))
    other = base.make_copy(param_sets[1])
    return scale(other).state["scaled"]
'''


def test_overwrite_stage_cascades_through_make_copy(project, calls, monkeypatch):
    """The project promises that ``--overwrite-stage S`` reruns every stage downstream
    of S. ``dag.producers`` only links calls on the *same* record index, so a stage run
    on ``record.make_copy(...)`` (a common 0.20 idiom) is not seen as downstream of
    the stage that produced its input on the original record: it keeps its stale
    cached value although its input was recomputed.
    """
    project({"experiments/copying.py": COPY})
    first, _ = run_experiment("copying", report=False)
    assert first == [10, 10, 10]
    calls()
    monkeypatch.setenv("CF_BASE", "2")
    second, _ = run_experiment("copying", report=False, stage_overwrites=["load"])
    assert calls() == ["run load", "run scale ten"]
    assert second == [20, 20, 20]


# ---------------------------------------------------------------------------------------
# a notebook manager stays dry after run_experiment(..., mngr=manager, dry=True)
# ---------------------------------------------------------------------------------------
def test_dry_run_experiment_does_not_leave_the_manager_dry(project, calls):
    """``run_experiment(..., mngr=manager, dry=True)`` is how a notebook peeks at a
    run without writing. It sets ``manager.dry = True`` and never restores it, so every
    later use of the same live manager (another run_experiment, or stages called
    directly in the notebook) silently caches nothing and stores nothing.
    """
    import curifactory as cf

    root = project({"experiments/simple.py": SIMPLE})
    manager = cf.ArtifactManager("simple")
    run_experiment("simple", mngr=manager, dry=True, report=False)
    assert calls() == ["run compute p"]
    run_experiment("simple", mngr=manager, report=False)
    assert calls() == ["run compute p"]
    assert list((root / "data" / "cache").glob("simple_*_compute_value.json")), \
        "the non-dry run on the same manager should have cached its artifact"


# ---------------------------------------------------------------------------------------
# an output named "<other output>_metadata" collides with the other's metadata file
# ---------------------------------------------------------------------------------------
METADATA_NAME = COUNTER + '''
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import JsonCacher, PickleCacher


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1


@cf.stage(None, ["model", "model_metadata"], [PickleCacher, JsonCacher])
def train(record):
    note("run train")
    return [record.params.n] * 3, {"trained_on": 3}


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    return train(cf.Record(manager, param_sets[0])).state["model_metadata"]
'''


def test_output_named_like_a_metadata_file_stays_cached(project, calls):
    """The metadata of output ``model`` is ``<stem>_model_metadata.json``, which is
    exactly the artifact path of an output named ``model_metadata`` with a JsonCacher.
    The second save overwrites the first's metadata, so ``model`` is "corrupt" on every
    later run and the stage recomputes forever (with a warning each time). Metadata
    needs a name no artifact can take (e.g. a ``.cfmeta.json`` suffix, or a check at
    decoration time).
    """
    project({"experiments/metaname.py": METADATA_NAME})
    first, _ = run_experiment("metaname", report=False)
    assert first == {"trained_on": 3}
    assert calls() == ["run train"]
    second, _ = run_experiment("metaname", report=False)
    assert second == {"trained_on": 3}
    assert calls() == []
