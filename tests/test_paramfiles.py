"""YAML parameter files (-p NAME finds params/NAME.yaml) and cf.grid."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import curifactory as cf
from tests.conftest import CliProject

EXPERIMENT = """
import os
import curifactory as cf
from dataclasses import dataclass, field
from curifactory.caching import JsonCacher

@dataclass
class Model:
    depth: int = 2
    kind: str = "ridge"

@dataclass
class Params(cf.ExperimentParameters):
    lr: float = 0.1
    epochs: int = 10
    model: Model = field(default_factory=Model)

def get_params():
    return [Params(name="default")]

@cf.stage(None, ["score"], [JsonCacher])
def score(record):
    with open(os.environ["CF_TEST_SIDE"], "a") as side:
        side.write(f"score:{record.params.name}\\n")
    record.log_metric("score", record.params.lr * record.params.model.depth)
    return record.params.lr * record.params.model.depth

def run(param_sets, manager):
    for p in param_sets:
        score(cf.Record(manager, p))
"""

GRID = """\
base:
  epochs: 5
grid:
  lr: [0.1, 0.01]
  model: [{depth: 2}, {depth: 3, kind: lasso}]
"""


@pytest.fixture
def proj(tmp_path):
    return CliProject(tmp_path, {"experiments/sweep.py": EXPERIMENT, "params/grid.yaml": GRID})


def test_a_yaml_grid_runs_every_combination_and_resumes_from_the_cache(proj):
    result = proj.run("sweep", "-p", "grid")
    assert result.returncode == 0, result.stderr
    assert len(proj.executed()) == 4
    frame = cf.load_runs(store=proj.root / "data")
    assert sorted(frame["params.lr"]) == [0.01, 0.01, 0.1, 0.1]
    assert set(frame["params.epochs"]) == {5} and set(frame["params.model.depth"]) == {2, 3}
    assert {"lr=0.1,model.depth=2", "lr=0.01,model.depth=3,model.kind=lasso"} <= set(frame["params_name"])
    (proj.root / "params" / "grid.yaml").write_text(GRID.replace("[0.1, 0.01]", "[0.1, 0.01, 0.5]"))
    assert proj.run("sweep", "-p", "grid").returncode == 0
    assert len(proj.executed()) == 2  # only the new points
    assert "grid" in proj.run("ls").stdout


@pytest.mark.parametrize("text, expected", [
    ("grid:\n  lr: [0.1]\n  depht: [2]\n", "grid.yaml, line 3: Params has no field 'depht'"),
    ("base:\n  epochs: ten\ngrid:\n  lr: [0.1]\n", "grid.yaml, line 2: field 'epochs' is an int, not str 'ten'"),
    ("- {name: a, lr: 0.1}\n- {name: b, model: {depth: x}}\n", "line 2: field 'model.depth' is an int, not str 'x'"),
    ("grid:\n  lr: [0.1\n", "grid.yaml, line 3: not valid YAML"),
    ("class: experiments.sweep.Nothing\nsets: [{lr: 1.0}]\n", "line 1: class: experiments.sweep.Nothing is not"),
    ("grids:\n  lr: [0.1]\n", "line 1: 'grids' is not a block of a parameter file"),
    ("class: experiments.sweep.Model\nsets: [{depth: 3}]\n", "line 1: class: experiments.sweep.Model is not a parameter set class"),
    ("random:\n  count: 2\n  fields: {lr: {normal: [0, 1]}}\n", "line 3: random value of 'lr'"),
])
def test_bad_yaml_files_are_clear_errors(proj, text, expected):
    (proj.root / "params" / "grid.yaml").write_text(text)
    result = proj.run("sweep", "-p", "grid")
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_random_draws_are_reproducible_and_in_range(proj):
    (proj.root / "params" / "grid.yaml").write_text(
        "class: experiments.sweep.Params\nname: r\nrandom:\n  count: 5\n  seed: 7\n"
        "  fields:\n    lr: {loguniform: [0.001, 0.1]}\n    epochs: {int: [1, 3]}\n")
    assert proj.run("sweep", "-p", "grid").returncode == 0
    assert proj.run("sweep", "-p", "grid").returncode == 0
    frame = cf.load_runs(store=proj.root / "data")
    first, second = (frame[frame["run_number"] == n] for n in (1, 2))
    assert first["params.lr"].tolist() == second["params.lr"].tolist()  # same seed, same draws
    assert all(0.001 <= v <= 0.1 for v in frame["params.lr"]) and set(frame["params.epochs"]) <= {1, 2, 3}
    assert all(name.startswith("r random") for name in frame["params_name"])


@dataclass
class _Inner:
    width: int = 1


@dataclass
class _Params(cf.ExperimentParameters):
    lr: float = 0.1
    depth: int = 3
    inner: _Inner = field(default_factory=_Inner)


def test_cf_grid_builds_named_checked_sets():
    sets = cf.grid(_Params, base=_Params(depth=5), lr=[0.1, 0.01], inner=[{"width": 2}])
    assert [(s.name, s.lr, s.depth, s.inner.width) for s in sets] == [
        ("lr=0.1,inner.width=2", 0.1, 5, 2), ("lr=0.01,inner.width=2", 0.01, 5, 2)]
    assert [s.name for s in cf.grid(_Params, name="sweep", depth=[1, 2])] == ["sweep depth=1", "sweep depth=2"]
    assert cf.grid(_Params, lr=[1])[0].lr == 1.0 and isinstance(cf.grid(_Params, lr=[1])[0].lr, float)
    with pytest.raises(ValueError, match="field 'depth' is an int, not str"):
        cf.grid(_Params, depth=["deep"])
    with pytest.raises(ValueError, match="_Params has no field 'width'"):
        cf.grid(_Params, width=[1])


def test_set_overrides_fields_typed_and_wins_over_the_files(proj):
    result = proj.run("sweep", "-p", "grid", "--set", "epochs=7", "--set", "model.depth=9")
    assert result.returncode == 0, result.stderr
    frame = cf.load_runs(store=proj.root / "data")
    assert set(frame["params.epochs"]) == {7} and set(frame["params.model.depth"]) == {9}  # base said 5
    assert set(frame["params.model.kind"]) == {"ridge", "lasso"} and len(set(frame["params_hash"])) == 4
    wrong = proj.run("sweep", "-p", "grid", "--set", "epochs=many")
    assert wrong.returncode == 2 and "--set epochs=many: field 'epochs' is an int, not str 'many'" in wrong.stderr
    unknown = proj.run("sweep", "--set", "model.width=3")
    assert unknown.returncode == 2 and "--set model.width=3: Model has no field 'width'" in unknown.stderr


def test_params_from_and_rerun_repeat_a_runs_exact_sets(proj):
    assert proj.run("sweep", "-p", "grid", "--set", "lr=0.5", "--tag", "who=me").returncode == 0
    proj.executed()
    [first] = [r["reference"] for r in proj.store()]
    again = proj.run("sweep", "--params-from", f"{first}:lr=0.1,model.depth=2")  # names stay as loaded
    assert again.returncode == 0, again.stderr
    assert proj.executed() == []  # the same set: cached
    rerun = proj.curifactory("rerun", first)
    assert rerun.returncode == 0, rerun.stderr
    assert f"rerun: experiment sweep --tag who=me --params-from {first} --original-run {first}" in rerun.stderr
    frame = cf.load_runs(store=proj.root / "data")
    latest = frame[frame["run_number"] == 3]
    assert set(latest["params_hash"]) == set(frame[frame["run_number"] == 1]["params_hash"])  # duplicates run once
    assert set(latest["original_run"]) == {first} and set(latest["tags.who"]) == {"me"}
    missing = proj.run("sweep", "--params-from", "sweep#9")
    assert missing.returncode == 2 and "No run 'sweep#9'" in missing.stderr and "Traceback" not in missing.stderr


def test_a_sweep_has_an_id_and_a_restart_says_how_many_points_are_done(proj):
    first = proj.run("sweep", "-p", "grid", "--plain")
    assert first.returncode == 0, first.stderr
    frame = cf.load_runs(store=proj.root / "data")
    [sweep] = set(frame["sweep"])
    assert sweep.startswith("grid-") and "sweep " + sweep + ": 0 of 4 points already done" in first.stdout + first.stderr
    (proj.root / "params" / "grid.yaml").write_text(GRID.replace("[0.1, 0.01]", "[0.1, 0.01, 0.5]"))
    grown = proj.run("sweep", "-p", "grid", "--plain")
    [grown_sweep] = set(cf.load_runs(store=proj.root / "data", sweep=None)["sweep"]) - {sweep}
    assert f"sweep {grown_sweep}: 4 of 6 points already done" in grown.stdout + grown.stderr
    again = proj.run("sweep", "-p", "grid", "--plain")  # the same file: the same sweep, all done
    assert f"sweep {grown_sweep}: 6 of 6 points already done" in again.stdout + again.stderr
    assert len(cf.load_runs(store=proj.root / "data", sweep=grown_sweep, level="run")) == 2
    plain = proj.run("sweep")  # not a sweep
    assert "already done" not in plain.stdout + plain.stderr


def test_several_set_values_are_a_sweep(proj):
    result = proj.run("sweep", "--set", "lr=0.1", "--set", "lr=0.2", "--set", "epochs=3", "--set", "model.depth=4",
                      "--set", "model.depth=5", "--plain")
    assert result.returncode == 0, result.stderr
    frame = cf.load_runs(store=proj.root / "data")
    assert sorted(frame["params_name"]) == ["default,lr=0.1,model.depth=4", "default,lr=0.1,model.depth=5",
                                            "default,lr=0.2,model.depth=4", "default,lr=0.2,model.depth=5"]
    assert set(frame["params.epochs"]) == {3}
    [sweep] = set(frame["sweep"])
    assert sweep.startswith("set-") and f"sweep {sweep}: 0 of 4 points already done" in result.stdout
