"""Cachers: one suite run against every built-in implementation, plus paths and Lazy."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pandas as pd
import pytest

import curifactory as cf
from curifactory import caching


@dataclass
class P(cf.ExperimentParameters):
    n: int = 3


def frame():
    return pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]}, index=[10, 11, 12])


IMPLEMENTATIONS = [
    pytest.param(caching.PickleCacher, {"k": [1, 2]}, lambda a, b: a == b, ".pkl", id="pickle"),
    pytest.param(caching.JsonCacher, {"k": [1, 2]}, lambda a, b: a == b, ".json", id="json"),
    pytest.param(caching.PandasCsvCacher, frame(), lambda a, b: a.equals(b), ".csv", id="pandas-csv"),
    pytest.param(caching.PandasJsonCacher, frame(), lambda a, b: a.values.tolist() == b.values.tolist(), ".json",
                 id="pandas-json"),
    pytest.param(lambda: caching.PandasCacher(format="pickle"), frame(), lambda a, b: a.equals(b), ".pkl",
                 id="pandas-pickle"),
    pytest.param(lambda: caching.PandasCacher(format="parquet"), frame(), lambda a, b: a.equals(b), ".parquet",
                 id="pandas-parquet"),
]


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return cf.ArtifactManager("cachetest", suppress_live_log=True)


def make(factory, manager, name="thing"):
    cacher = factory()
    cacher.name, cacher.stage, cacher.record = name, "make", cf.Record(manager, P())
    return cacher


@pytest.mark.parametrize("factory,value,same,ext", IMPLEMENTATIONS)
def test_roundtrip_path_metadata_and_integrity(factory, value, same, ext, manager, tmp_path):
    if "parquet" in ext:
        pytest.importorskip("pyarrow")
    cacher = make(factory, manager)
    assert not cacher.check() and cacher.invalid_reason == "missing"
    cacher.save(value)
    path = cacher.get_path()
    h = cacher.record.get_hash()
    assert path == os.path.join(manager.cache_path, f"cachetest_{h}_make_thing{ext}")
    assert cacher.check()
    assert same(make(factory, manager).load(), value)
    meta = json.loads(open(cacher.metadata_path()).read())
    assert meta["files"] == [os.path.basename(path)] and meta["params_hash"] == h
    assert not [f for f in os.listdir(manager.cache_path) if f.startswith(".cftmp-")]
    with open(path, "ab") as handle:
        handle.write(b"tampered")
    fresh = make(factory, manager)
    assert not fresh.check() and "does not match" in fresh.invalid_reason
    os.remove(cacher.metadata_path())
    assert not make(factory, manager).check()


def test_subdir_prefix_and_path_override_templates(manager):
    sub = make(lambda: caching.JsonCacher(subdir="raw/x", prefix="shared"), manager)
    h = sub.record.get_hash()
    assert sub.get_path() == os.path.join(manager.cache_path, "raw", "x", f"shared_{h}_make_thing.json")
    templated = make(lambda: caching.JsonCacher(path_override="{cache}/t/{params.n}_{stage}_{name}_{hash}.json"),
                     manager)
    assert templated.get_path() == os.path.join(manager.cache_path, "t", f"3_make_thing_{h}.json")
    templated.save({"v": 1})
    assert templated.check() and os.path.exists(templated.metadata_path())
    filename = make(lambda: caching.JsonCacher(path_override="elsewhere/{artifact_filename}"), manager)
    assert filename.get_path() == f"elsewhere/cachetest_{h}_make_thing.json"
    with pytest.raises(cf.errors.CacheError, match="unknown"):
        make(lambda: caching.JsonCacher(path_override="{nope}.json"), manager).get_path()


def test_custom_cacher_with_several_files_is_atomic_and_validated(manager):
    class TwoFiles(caching.Cacheable):
        def save(self, obj):
            with open(self.get_path("_a.txt"), "w") as f:
                f.write(obj[0])
            with open(self.get_path("_b.txt"), "w") as f:
                f.write(obj[1])

        def load(self):
            return open(self.get_path("_a.txt")).read(), open(self.get_path("_b.txt")).read()

    cacher = make(TwoFiles, manager)
    cacher.save(("one", "two"))
    fresh = make(TwoFiles, manager)
    assert fresh.check() and fresh.load() == ("one", "two")
    os.remove(cacher.cache_paths[1])
    assert not make(TwoFiles, manager).check()


def test_file_reference_cacher_requires_referenced_files(manager, tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("x")
    cacher = make(caching.FileReferenceCacher, manager)
    cacher.save([str(target)])
    assert make(caching.FileReferenceCacher, manager).check()
    target.unlink()
    fresh = make(caching.FileReferenceCacher, manager)
    assert not fresh.check() and "no longer exists" in fresh.invalid_reason


def test_pathref_tracks_a_file_the_stage_writes(manager):
    @cf.stage(None, ["report"], [caching.PathRef(extension=".txt")])
    def write(record):
        path = record.stage_cachers[0].get_path()
        with open(path, "w") as f:
            f.write("hello")
        return path

    record = write(cf.Record(manager, P()))
    path = record.state["report"]
    assert open(path).read() == "hello"
    again = write(cf.Record(manager, P()))
    assert again.history[-1].status.value == "cached" and again.state["report"] == path


def test_lazy_outputs_are_dropped_and_reloaded(manager):
    loads = []

    class Counting(caching.PickleCacher):
        def load(self):
            loads.append(1)
            return super().load()

    @cf.stage(None, [cf.Lazy("big"), cf.Lazy("raw", resolve=False)], [Counting, Counting])
    def produce(record):
        return list(range(1000)), "raw-value"

    @cf.stage(["big", "raw"], ["size"])
    def use(record, big, raw):
        assert isinstance(raw, cf.Lazy) and raw.load() == "raw-value"
        assert os.path.exists(raw.cacher.get_path())
        return len(big)

    record = use(produce(cf.Record(manager, P())))
    assert isinstance(record.state.raw("big"), cf.Lazy)
    assert record.state["size"] == 1000 and len(loads) == 2


def test_dry_manager_saves_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manager = cf.ArtifactManager("dry", dry=True)

    @cf.stage(None, ["v"], [caching.PickleCacher])
    def value(record):
        record.report(cf.reporting.JsonReporter({"a": 1}))
        return 5

    assert value(cf.Record(manager, P())).state["v"] == 5
    manager.generate_report()
    assert list(tmp_path.iterdir()) == []
