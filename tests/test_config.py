"""Finding and reading curifactory_config.json."""

from __future__ import annotations

import json

import pytest

import curifactory as cf
from curifactory.config import load_settings
from curifactory.errors import ConfigError


def test_found_up_to_three_parents_with_paths_relative_to_it(tmp_path, monkeypatch):
    (tmp_path / "curifactory_config.json").write_text(json.dumps({"cache_path": "store/cache"}))
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    settings = load_settings()
    assert settings.config_file == str(tmp_path / "curifactory_config.json")
    assert settings.cache_path == str(tmp_path / "store" / "cache")
    assert settings.reports_path == str(tmp_path / "reports")
    too_deep = deep / "d"
    too_deep.mkdir()
    monkeypatch.chdir(too_deep)
    assert load_settings().config_file is None


def test_explicit_manager_arguments_win(tmp_path, monkeypatch):
    (tmp_path / "curifactory_config.json").write_text(json.dumps({"cache_path": "from-config"}))
    monkeypatch.chdir(tmp_path)
    manager = cf.ArtifactManager("cfg", cache_path="explicit", suppress_live_log=True)
    assert manager.cache_path == str(tmp_path / "explicit")
    assert manager.manager_cache_path == str(tmp_path / "data")
    assert manager.config["cache_path"] == str(tmp_path / "explicit")


def test_reference_and_live_status(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manager = cf.ArtifactManager("ref", suppress_live_log=True)
    assert manager.status == "LIVE" and manager.interactive
    assert manager.get_reference_name() == f"ref_1_{manager.run_timestamp.strftime('%Y-%m-%d-T%H%M%S')}"
    store = json.loads((tmp_path / "data" / "store.json").read_text())
    assert store[0]["reference"] == manager.get_reference_name() and store[0]["status"] == "LIVE"


def test_broken_config_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "curifactory_config.json").write_text("{not json")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="curifactory_config.json"):
        load_settings()


def test_non_text_setting_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "curifactory_config.json").write_text(json.dumps({"cache_path": 5}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="cache_path must be text"):
        load_settings()


def test_manager_has_the_0_20_surface(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manager = cf.ArtifactManager("surface", suppress_live_log=True)
    names = """artifacts cache_path conda_env config current_stage_name dry dry_cache error error_thrown
    experiment_name experiment_run_number git_commit_hash git_workdir_dirty hostname ignore_lazy interactive lazy
    live_report_path_generated logs_path manager_cache_path map_mode mapped_artifacts notebooks_path notes os
    overwrite overwrite_stages parallel_lock parallel_mode param_file_param_sets parameter_files pip_freeze prefix
    records report_css_path reportables reports_path reproduction_line run_info run_line run_timestamp runs_path
    stage_active status store_full stored display_all_reportables display_group_reportables display_info
    display_record_reportables display_reportable display_stage_graph display_stage_reportables generate_report
    get_all_param_sets get_artifact_filename get_artifact_path get_grouped_reportables get_reference_name
    get_run_output_path get_str_timestamp get_ungrouped_reportables lock map_records store unlock
    update_map_progress write_run_env_output""".split()
    assert [n for n in names if not hasattr(manager, n)] == []
    assert manager.artifacts == [] and manager.mapped_artifacts == []
