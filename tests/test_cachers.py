"""Every built-in cacher, with only an ArtifactLocation (no manager, no record): one suite.

A new cacher proves itself by joining IMPLEMENTATIONS.
"""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from curifactory import caching
from curifactory.caching import ArtifactLocation, Cacheable

FRAME = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})

# (cacher factory, value, how to compare what comes back)
IMPLEMENTATIONS = [
    (caching.PickleCacher, {"k": [1, 2.5, None]}, None),
    (caching.JsonCacher, {"k": [1, 2.5, None], "s": "text"}, None),
    (caching.PandasCsvCacher, FRAME, "frame"),
    (caching.PandasJsonCacher, FRAME, "frame"),
    (lambda: caching.PandasCacher(format="pickle"), FRAME, "frame"),
    (lambda: caching.PandasCacher(format="csv"), FRAME, "frame"),
    (lambda: caching.PandasCacher(format="parquet"), FRAME, "frame"),
    (caching.RawJupyterNotebookCacher, [["import math", "x = math.pi"], ["print(x)"]], None),
]


def location(tmp_path, **changes) -> ArtifactLocation:
    values = dict(cache_path=str(tmp_path / "cache"), prefix="exp", params_hash="0123abcd", stage="fit",
                  experiment="exp", run_reference="exp_3_2026-01-01-T000000", params_name="a")
    values.update(changes)
    return ArtifactLocation(**values)


@pytest.mark.parametrize("make, value, compare", IMPLEMENTATIONS, ids=lambda x: getattr(x, "__name__", None))
def test_a_cacher_saves_and_loads_with_only_a_location(tmp_path, make, value, compare):
    cacher = make()
    cacher.name, cacher.stage, cacher.location = "model", "fit", location(tmp_path)
    assert cacher.record is None
    assert not cacher.check()
    cacher.save(value)
    path = cacher._final_path()
    assert os.path.basename(path).startswith("exp_0123abcd_fit_model")
    assert os.path.dirname(path) == str(tmp_path / "cache") and os.path.exists(path)
    assert cacher.check()
    fresh = make()
    fresh.name, fresh.stage, fresh.location = "model", "fit", location(tmp_path)
    loaded = fresh.load()
    if compare == "frame":
        pd.testing.assert_frame_equal(loaded, value)
    else:
        assert loaded == value
    metadata = json.loads(open(cacher.metadata_path()).read())
    assert metadata["params_hash"] == "0123abcd" and metadata["params_name"] == "a"
    assert metadata["run_reference"] == "exp_3_2026-01-01-T000000" and metadata["stage"] == "fit"
    assert [f for f in os.listdir(tmp_path / "cache") if ".tmp" in f or f.startswith(".")] == []


def test_prefix_subdir_and_templates_come_from_the_location(tmp_path):
    cacher = caching.JsonCacher(name="m", subdir="sub", prefix="other")
    cacher.stage, cacher.location = "fit", location(tmp_path)
    assert cacher._final_path() == str(tmp_path / "cache" / "sub" / "other_0123abcd_fit_m.json")
    templated = caching.JsonCacher(path_override="{cache}/{experiment}/{hash}-{stage}-{name}.json", name="m")
    templated.stage, templated.location = "fit", location(tmp_path)
    assert templated._final_path() == str(tmp_path / "cache" / "exp" / "0123abcd-fit-m.json")


def test_a_dry_location_creates_no_folder(tmp_path):
    cacher = caching.JsonCacher(name="m")
    cacher.stage, cacher.location = "fit", location(tmp_path, cache_path=str(tmp_path / "nowhere"), dry=True)
    cacher.get_path()
    assert not (tmp_path / "nowhere").exists()


def test_a_020_custom_cacher_works_with_a_location(tmp_path):
    class TextCacher(Cacheable):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, extension=".txt", **kwargs)

        def save(self, obj):
            with open(self.get_path(), "w") as handle:
                handle.write(obj)
            self.extra_metadata["length"] = len(obj)

        def load(self):
            with open(self.get_path()) as handle:
                return handle.read()

    cacher = TextCacher(name="note", location=location(tmp_path))
    cacher.stage = "fit"
    cacher.save("hello")
    assert cacher.check() and cacher.load() == "hello"
    assert cacher.metadata["extra"] == {"length": 5}


def test_a_redirect_reads_outside_files_from_a_run_folder(tmp_path):
    class Folder:
        def locate(self, original, project_root=None):
            return str(tmp_path / "copy.json") if original.endswith("outside.json") else None

    (tmp_path / "copy.json").write_text("[1]")
    cacher = caching.JsonCacher(path_override=str(tmp_path / "outside.json"), name="m")
    cacher.location = location(tmp_path, redirect=Folder())
    assert cacher._final_path() == str(tmp_path / "copy.json")


def test_the_notebook_cacher_writes_a_notebook_that_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    cacher = caching.RawJupyterNotebookCacher(name="explore", location=location(tmp_path))
    cacher.save([["# imports", "import math"], ["print(round(math.pi, 2))"]])
    notebook = nbformat.read(cacher._final_path(), as_version=4)
    nbformat.validate(notebook)
    assert [c.source for c in notebook.cells] == ["# imports\nimport math", "print(round(math.pi, 2))"]
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    assert notebook.cells[1].outputs[0]["text"] == "3.14\n"
    assert json.loads(open(cacher.metadata_path()).read())["files"] == [
        "exp_0123abcd_fit_explore.ipynb", "exp_0123abcd_fit_explore_cells.json"]
