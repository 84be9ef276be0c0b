"""ArtifactManager: options as one frozen value, an explicit start, the store block, paths."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import pytest

import curifactory as cf
from curifactory.config import load_settings
from curifactory.options import RunOptions
from curifactory.runner import start_run


@dataclass
class P(cf.ExperimentParameters):
    n: int = 1


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "curifactory_config.json").write_text("{}")
    return tmp_path


def store(root) -> list[dict]:
    return json.loads((root / "data" / "store.json").read_text())


def test_options_are_one_frozen_value_behind_0_20_attributes(here):
    manager = cf.ArtifactManager("opts", dry=True, prefix="pre", suppress_live_log=True)
    assert isinstance(manager.options, RunOptions) and manager.options.prefix == "pre"
    with pytest.raises(dataclasses.FrozenInstanceError):
        manager.options.dry = False  # type: ignore[misc]
    before = manager.options
    manager.overwrite_stages = ["fit"]  # 0.20 code sets attributes: the value is replaced
    assert manager.overwrite_stages == ["fit"] and manager.options.overwrite_stages == ("fit",)
    assert before.overwrite_stages == () and manager.options is not before
    assert manager.may_write_cache is False


def test_a_manager_made_with_start_false_touches_nothing_until_started(here):
    manager = cf.ArtifactManager("quiet", status_override="incomplete", settings=load_settings(), start=False)
    assert not (here / "data").exists() and manager.experiment_run_number == 0
    start_run(manager)
    start_run(manager)  # once only
    assert manager.experiment_run_number == 1 and [r["status"] for r in store(here)] == ["incomplete"]
    assert manager.git_info is not None


def test_a_live_manager_starts_at_once_with_its_log(here):
    manager = cf.ArtifactManager("live")
    assert store(here)[0]["reference"] == manager.get_reference_name()
    assert store(here)[0]["status"] == "LIVE"
    assert manager.log_path == os.path.join(manager.logs_path, manager.get_reference_name() + ".log")
    assert os.path.exists(manager.log_path)


def test_the_store_block_and_the_failure_note(here):
    manager = cf.ArtifactManager("block", notes="n", suppress_live_log=True)
    record = cf.Record(manager, P(name="a", n=2))
    manager.note_failure("fit", record, ValueError("bad"))
    manager.note_failure("later", record, ValueError("ignored"))  # the first failure is the one kept
    manager.store()
    block = store(here)[-1]
    assert block["params"] == {"live": [["a", record.get_hash()]]} and block["notes"] == "n"
    assert block["error"] == "ValueError in stage 'fit' of record 0:a: bad"
    assert manager.error_stage["params_hash"] == record.get_hash()


def test_artifact_paths_and_reference(here):
    manager = cf.ArtifactManager("paths", prefix="pre", suppress_live_log=True)
    record = cf.Record(manager, P(name="a"))
    name = manager.get_artifact_filename("model", record, stage_name="fit")
    assert name == f"pre_{record.get_hash()}_fit_model"
    assert manager.get_artifact_path("model", record, subdir="s", stage_name="fit") == \
        os.path.join(manager.cache_path, "s", name)
    assert manager.get_reference_name() == f"paths_1_{manager.get_str_timestamp()}"
    assert manager.record_index(record) == 0 and manager.get_all_param_sets() == [record.params]
