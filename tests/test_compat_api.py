"""curifactory 0.20's public helpers that existing code imports (issue 15, item 1, part)."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys

import pytest
from conftest import CURIFACTORY, write_project

import curifactory as cf
from curifactory import hashing
from curifactory.experiment import list_experiments, list_params
from curifactory.procedure import NoArtifactManagerError
from curifactory.errors import UsageError


@dataclasses.dataclass
class Inner(cf.ExperimentParameters):
    depth: int = 3


@dataclasses.dataclass
class Outer(cf.ExperimentParameters):
    rate: float = 0.1
    skipped: object = None
    inner: Inner = dataclasses.field(default_factory=Inner)
    seed: int = 1
    hash_representations: dict = cf.set_hash_functions(seed=None)


def test_params_hash_and_its_dry_form():
    params = Outer(name="a")
    assert params.params_hash() == hashing.hash_param_set(params)
    dry = params.params_hash(dry=True)
    assert dry["name"] == ("SKIPPED: blacklist", None)
    assert dry["skipped"] == ("SKIPPED: value is None", None)
    assert dry["seed"] == ("SKIPPED: set to None in hash_representations", None)
    assert dry["rate"] == ("repr(rate)", "0.1")
    how, nested = dry["inner"]
    assert how.startswith("get_param_set_hash_values") and nested["depth"] == ("repr(depth)", "3")
    assert set(hashing.PARAMETERS_BLACKLIST) == {"name", "hash", "overwrite", "hash_representations"}


def test_add_params_combo_hash_is_the_aggregate_hash(tmp_path):
    manager = cf.ArtifactManager("combo", cache_path=str(tmp_path / "cache"), manager_cache_path=str(tmp_path))
    records = [cf.Record(manager, Outer(name=n, rate=r)) for n, r in (("a", 0.1), ("b", 0.2))]
    aggregate = cf.Record(manager, None)
    aggregate.set_aggregate(records)
    assert hashing.add_params_combo_hash(aggregate, records, str(tmp_path)) == aggregate.get_hash()


def test_no_artifact_manager_error_is_a_usage_error():
    assert issubclass(NoArtifactManagerError, UsageError)


def test_list_experiments_and_params(tmp_path):
    root = write_project(tmp_path / "p", {
        "experiments/alpha.py": "def run(param_sets, manager):\n    pass\n\ndef get_params():\n    return []\n",
        "experiments/helpers.py": "X = 1\n",
        "params/grid.py": "def get_params():\n    return []\n",
        "params/notes.py": "Y = 2\n",
    })
    from curifactory.config import load_settings

    settings = load_settings(root)
    assert list_experiments(settings) == ["alpha"]
    assert list_params(settings) == ["alpha", "grid"]


@pytest.mark.parametrize("form", [["--bash"], ["bash"]])
def test_completion_takes_the_shell_as_a_flag_too(tmp_path, form):
    result = subprocess.run([sys.executable, "-c", CURIFACTORY, "completion", *form], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "complete" in result.stdout


def test_completion_without_a_shell_says_how(tmp_path):
    result = subprocess.run([sys.executable, "-c", CURIFACTORY, "completion"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--bash" in result.stderr


def test_a_replaced_get_configuration_points_a_manager_elsewhere(tmp_path, monkeypatch):
    from curifactory import utils

    monkeypatch.chdir(tmp_path)
    config = {"cache_path": "elsewhere/cache", "manager_cache_path": "elsewhere", "reports_path": "elsewhere/r"}
    monkeypatch.setattr(utils, "get_configuration", lambda: config)  # as 0.20's own tests do
    manager = cf.ArtifactManager("moved")
    assert manager.cache_path == str(tmp_path / "elsewhere" / "cache")
    assert manager.manager_cache_path == str(tmp_path / "elsewhere")


def test_get_configuration_gives_0_20_keys(tmp_path, monkeypatch):
    from curifactory import utils

    (tmp_path / "curifactory_config.json").write_text('{"cache_path": "c"}')
    monkeypatch.chdir(tmp_path)
    config = utils.get_configuration()
    assert config["cache_path"] == str(tmp_path / "c") and config["experiments_module_name"] == "experiments"
    assert utils.settings_from_configuration(config).cache_path == str(tmp_path / "c")


def test_utils_helpers_as_0_20_prints_them(capfd):
    from curifactory import utils

    assert utils.human_readable_mem_usage(1_500_000) == "1.50MB"
    assert utils.human_readable_mem_usage(-2_000) == "-2.00KB"
    assert utils.human_readable_time(150) == "2.50m" and utils.human_readable_time(0.002) == "2.00ms"
    assert utils.get_py_opening_comment(['"""The first line.\n', 'More."""\n', "x = 1\n"]) == "The first line.\nMore."
    assert utils.get_py_opening_comment(["# a note\n", "# two\n", "x = 1\n"]) == "a note\ntwo"
    utils.get_command_output(["git", "rev-pars", "HEAD"])
    assert capfd.readouterr() == ("", "")
    assert utils.get_command_output(["no-such-command-here"]) == ""


def test_collect_parameter_sets_filters_hashes_and_books(project):
    from conftest import CHAIN_EXPERIMENT

    from curifactory.experiment import collect_parameter_sets

    project({"experiments/chain.py": CHAIN_EXPERIMENT, "params/more.py": (
        "from experiments.chain import Params\n"
        "def get_params():\n    return [Params(name='c', n=3), Params(name='d', n=4), Params(name='e', n=5)]\n")})
    manager = cf.ArtifactManager("chain")
    manager.param_file_param_sets = {}
    sets = collect_parameter_sets(manager, ["more", "chain"], overwrite_override=True, parallel=None,
                                  param_set_names=None, param_set_indices_resolved=[0, 2], dry=True,
                                  store_full=False, parallel_mode=False)
    assert [s.name for s in sets] == ["c", "e", "a"] and all(s.overwrite for s in sets)
    assert manager.param_file_param_sets["more"] == [("c", hashing.hash_param_set(sets[0])),
                                                      ("e", hashing.hash_param_set(sets[1]))]
    named = collect_parameter_sets(manager, ["more"], param_set_names=["d"])
    assert [s.name for s in named] == ["d"] and not named[0].overwrite


def test_the_project_module_of_020(tmp_path, monkeypatch, capsys):
    from curifactory import project

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    # 0.20's questions, in its order: six paths, docker [Y/n], git init [y/N], .gitignore [Y/n]
    answers = ["myexp", "", "mydata", "", "", "", "maybe", "n", "", "y"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(a + "\n" for a in answers)))
    assert project.initialize_project() == 0
    config = json.loads((tmp_path / "curifactory_config.json").read_text())
    assert config["experiments_module_name"] == "myexp" and config["params_module_name"] == "params"
    assert config["cache_path"] == "mydata/cache" and config["runs_path"] == "mydata/runs"
    for folder in ("myexp", "params", "mydata/cache", "mydata/runs", "logs", "notebooks/experiments", "reports"):
        assert (tmp_path / folder).is_dir(), folder
    assert (tmp_path / "reports" / "style.css").exists()
    assert not (tmp_path / "docker").exists() and not (tmp_path / ".git").exists()
    assert (tmp_path / ".gitignore").read_text().splitlines()[:2] == ["# curifactory paths", "mydata/"]
    assert "Please answer 'y' or 'n'" in capsys.readouterr().out  # "maybe" was asked again
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n" * 10))  # again: the config's values are the defaults
    assert project.initialize_project() == 0
    assert json.loads((tmp_path / "curifactory_config.json").read_text()) == config
    assert (tmp_path / "docker" / "dockerfile").exists()
    assert (tmp_path / ".gitignore").read_text().count("# curifactory paths") == 1  # nothing new to add
    assert project.add_completion_to_rc(bash=True) == [str(tmp_path / ".bashrc")]
    assert project.add_completion_to_rc(bash=True) == []  # once only
    assert (tmp_path / ".bashrc").read_text().count("curifactory completion bash") == 1


def test_a_path_asked_for_outside_a_stage_has_an_empty_stage_part_as_in_020(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manager = cf.ArtifactManager("paths", suppress_live_log=True)
    record = cf.Record(manager, cf.ExperimentParameters(name="s", hash="h0"))
    assert __import__("os").path.basename(record.get_path("out.txt")) == "paths_h0__out.txt"
    assert __import__("os").path.basename(record.get_path("out.txt", stage_name="st")) == "paths_h0_st_out.txt"


def test_run_experiment_020_inspection_flags_print_and_run_nothing(project, capsys):
    from conftest import CHAIN_EXPERIMENT
    from curifactory.dag import DAG
    from curifactory.experiment import run_experiment

    root = project({"experiments/chain.py": CHAIN_EXPERIMENT})
    hashes, manager = run_experiment("chain", hashes_only=True)
    lines = capsys.readouterr().out.splitlines()
    assert hashes == {line.split()[0]: line.split()[1] for line in lines} and sorted(hashes.values()) == ["a", "b"]
    dag, _ = run_experiment("chain", map_only=True)
    assert isinstance(dag, DAG) and len(dag.execution_list) == 5
    assert "plan of chain: 5 stage calls, 5 to run" in capsys.readouterr().out
    chosen, _ = run_experiment("chain", print_params="a")
    assert [entry["name"] for entry in chosen.values()] == ["a"]
    assert json.loads(capsys.readouterr().out) == chosen
    assert not (root / "data" / "cache").exists() or not any((root / "data" / "cache").iterdir())
    run_experiment("chain", report=False)  # now for real
    capsys.readouterr()
    paths, _ = run_experiment("chain", paths_only=True)
    printed = capsys.readouterr().out.split()
    assert len(paths) == len(printed) == 10 and all(__import__("os").path.exists(p) for p in paths)
