"""Code-aware caching end to end: the ``experiment`` command in a project in tmp_path."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conftest import CliProject

HELPERS = """
OFFSET = 10

def clean(x):
    return x + 1

def prepare(x):
    return clean(x) * 2
"""

EXPERIMENT = """
import os
from dataclasses import dataclass

import curifactory as cf
from curifactory.caching import JsonCacher
from experiments.helpers import OFFSET, prepare


def note(name):
    with open(os.environ["CF_TEST_SIDE"], "a") as handle:
        handle.write(name + "\\n")


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1


def get_params():
    return [Params(name="a", n=1)]


@cf.stage(None, ["raw"], [JsonCacher])
def load(record):
    note("load")
    return prepare(record.params.n) + int(os.environ.get("CF_TEST_NOISE", "0"))  # a noisy stage, when set


@cf.stage(["raw"], ["shifted"], [JsonCacher])
def shift(record, raw):
    note("shift")
    return raw + OFFSET


@cf.stage(["shifted"], ["pinned"], [JsonCacher], version="1")
def pinned(record, shifted):
    note("pinned")
    return shifted * 1


def run(param_sets, manager):
    return [pinned(shift(load(cf.Record(manager, p)))) for p in param_sets]
"""


@pytest.fixture
def proj(tmp_path) -> CliProject:
    return CliProject(tmp_path, {"experiments/x.py": EXPERIMENT, "experiments/helpers.py": HELPERS})


def edit(project: CliProject, name: str, old: str, new: str) -> None:
    path = project.root / "experiments" / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    later = time.time_ns() + 2 * 10**9
    os.utime(path, ns=(later, later))


def run(project: CliProject, *flags: str):
    result = project.run("x", "--no-report", *flags)
    assert result.returncode == 0, result.stderr
    return sorted(project.executed()), result


def test_a_helper_edit_two_calls_deep_reruns_and_is_explained(proj):
    assert run(proj)[0] == ["load", "pinned", "shift"]
    edit(proj, "helpers.py", "return x + 1", "return x + 2")
    plan = proj.run("x", "--map")
    assert "load    run     code of helper 'clean' (experiments/helpers.py:4) changed" in plan.stdout
    assert "shift   run     an upstream stage reruns ('load')" in plan.stdout
    assert run(proj)[0] == ["load", "pinned", "shift"]  # the cascade goes down the chain
    assert run(proj)[0] == []


def test_comments_and_reformatting_do_not_rerun(proj):
    run(proj)
    edit(proj, "helpers.py", "    return x + 1", "    # one more than x\n    return (x\n            + 1)")
    edit(proj, "x.py", "def shift(record, raw):", 'def shift(record, raw):\n    """Shift it."""')
    assert run(proj)[0] == []


def test_a_module_constant_reruns_its_users(proj):
    run(proj)
    edit(proj, "helpers.py", "OFFSET = 10", "OFFSET = 11")
    assert run(proj)[0] == ["pinned", "shift"]


def test_a_pinned_version_holds_until_it_changes(proj):
    run(proj)
    edit(proj, "x.py", "return shifted * 1", "return shifted * 1 + 0")
    assert run(proj)[0] == []
    edit(proj, "x.py", 'version="1"', 'version="2"')
    assert run(proj)[0] == ["pinned"]


def test_warn_uses_the_cache_and_says_so_and_ignore_is_silent(proj):
    run(proj)
    edit(proj, "helpers.py", "return x + 1", "return x + 5")
    executed, warned = run(proj, "--code-changes", "warn")
    assert executed == []
    assert "uses its cache although code of helper 'clean'" in warned.stderr
    executed, ignored = run(proj, "--code-changes", "ignore")
    assert executed == [] and "code" not in ignored.stderr
    (proj.root / "curifactory_config.json").write_text(json.dumps({"code_changes": "warn"}))
    assert run(proj)[0] == []
    (proj.root / "curifactory_config.json").write_text(json.dumps({"code_changes": "sometimes"}))
    bad = proj.run("x")
    assert bad.returncode == 2 and "code_changes is 'sometimes'" in bad.stderr and "Traceback" not in bad.stderr


def test_entries_without_a_fingerprint_are_reused(proj):
    run(proj)
    for meta in Path(proj.root, "data", "cache").glob("*_metadata.json"):
        data = json.loads(meta.read_text())
        data.pop("code", None)  # as written by curifactory 0.20 or before fingerprints
        meta.write_text(json.dumps(data))
    edit(proj, "helpers.py", "return x + 1", "return x + 3")
    assert run(proj)[0] == []


def test_metadata_names_the_covered_helpers(proj):
    run(proj)
    meta = next(Path(proj.root, "data", "cache").glob("*_load_raw_metadata.json"))
    code = json.loads(meta.read_text())["code"]
    assert {"experiments.x.load", "experiments.helpers.prepare", "experiments.helpers.clean"} <= set(code["helpers"])
    assert code["helpers"]["experiments.helpers.clean"][1] == "experiments/helpers.py:4"


def corrupt_raw(proj):
    """Change the bytes of load's entry (its content hash no longer matches): load is recomputed."""
    [artifact] = Path(proj.root, "data", "cache").glob("*_load_raw.json")
    artifact.write_text(artifact.read_text() + " ")


def test_a_recomputed_input_reruns_downstream_only_when_its_content_changed(proj, monkeypatch):
    run(proj)
    # a corrupt entry is recomputed (a missing one would not be: its readers are cached)
    corrupt_raw(proj)
    plan = proj.run("x", "--map").stdout
    assert "load    run     a cache entry is corrupt ('raw')" in plan
    assert "shift   cached  (unless an input's content changes when its stage reruns)" in plan
    assert run(proj)[0] == ["load"]  # the same content again: nothing downstream reruns
    corrupt_raw(proj)
    monkeypatch.setenv("CF_TEST_NOISE", "5")  # this time the stage gives another result
    executed, result = run(proj, "-v")
    assert executed == ["load", "pinned", "shift"]
    assert "shift' on record 0:a runs (input 'raw' changed content (upstream 'load' recomputed))" in result.stderr
    assert run(proj)[0] == []


def test_why_explains_a_past_runs_decisions(proj):
    run(proj)
    edit(proj, "helpers.py", "return x + 1", "return x + 2")
    result = proj.run("x")  # with its report
    assert result.returncode == 0, result.stderr
    reference = proj.store()[-1]["reference"]
    load = proj.curifactory("why", "latest", "load")
    assert load.returncode == 0, load.stderr
    assert f"run {reference}, stage load:" in load.stdout
    assert "executed  code of helper 'clean' (experiments/helpers.py:4) changed" in load.stdout
    shift = proj.curifactory("why", reference.rsplit("_", 1)[0], "shift", "a")
    assert "executed  an upstream stage reruns ('load')" in shift.stdout
    experiment, number = reference.split("_")[:2]
    assert f"run {reference}, stage load:" in proj.curifactory("why", f"{experiment}#{number}", "load").stdout
    assert f"run {reference}, stage load:" in proj.curifactory("why", f"{experiment}#latest", "load").stdout
    report = proj.report(reference).read_text()
    assert "code of helper &#39;clean&#39; (experiments/helpers.py:4) changed" in report
    run(proj)
    assert "cached    cached" in proj.curifactory("why", "latest", "load").stdout
    unknown = proj.curifactory("why", "nosuch", "load")
    assert unknown.returncode == 2 and "No run 'nosuch'" in unknown.stderr and "latest runs are" in unknown.stderr
    stage = proj.curifactory("why", "latest", "nostage")
    assert stage.returncode == 2 and "its stages are: load, shift, pinned" in stage.stderr
    assert "Traceback" not in unknown.stderr + stage.stderr


def test_explain_says_which_parameter_changed(proj):
    run(proj)
    edit(proj, "x.py", 'Params(name="a", n=1)', 'Params(name="a", n=2)')
    explained = proj.run("x", "--explain")
    assert explained.returncode == 0, explained.stderr
    assert "load    run     parameter 'n' changed 1 -> 2" in explained.stdout
    mapped = proj.run("x", "--map")
    assert "load    run     parameter 'n' changed 1 -> 2" in mapped.stdout
    assert run(proj)[0] == ["load", "pinned", "shift"]
    assert "executed  parameter 'n' changed 1 -> 2" in proj.curifactory("why", "latest", "load").stdout
    assert "shift   run     upstream stage 'load' reruns" not in explained.stdout  # its own entry is missing too
    assert "shift   run     parameter 'n' changed 1 -> 2" in explained.stdout
    again = proj.run("x", "--explain", "--overwrite-stage", "shift", "-n", "a")
    run(proj)
    over = proj.run("x", "--explain", "--overwrite-stage", "shift")
    assert "load    cached  cached" in over.stdout and "shift   run     --overwrite-stage shift" in over.stdout
    assert "pinned  run     upstream stage 'shift' reruns" in over.stdout
    assert again.returncode == 0


def test_parallel_workers_follow_code_changes_ignore(proj):
    run(proj)
    edit(proj, "helpers.py", "return x + 1", "return x + 4")
    assert run(proj, "--parallel", "2", "--code-changes", "ignore")[0] == []
    assert run(proj, "--parallel", "2")[0] == ["load", "pinned", "shift"]


def test_a_stage_skipped_by_the_plan_still_passes_on_its_content(proj, monkeypatch):
    """A -> B -> C: C reruns alone (A, B from the plan's cache); then A gives other content:
    B and C both rerun, because C's entry knows the content of B it was computed from."""
    run(proj)
    edit(proj, "x.py", "return shifted * 1", "return shifted * 1 + 0")
    edit(proj, "x.py", 'version="1"', 'version="2"')
    assert run(proj)[0] == ["pinned"]
    corrupt_raw(proj)
    monkeypatch.setenv("CF_TEST_NOISE", "7")
    assert run(proj)[0] == ["load", "pinned", "shift"]


def test_with_parallel_workers_a_code_change_reruns_the_aggregate_and_keeps_its_reason(tmp_path):
    from conftest import CHAIN_EXPERIMENT

    project = CliProject(tmp_path, {"experiments/chain.py": CHAIN_EXPERIMENT})
    assert project.run("chain", "--parallel", "2", "--no-report").returncode == 0
    path = project.root / "experiments" / "chain.py"
    path.write_text(path.read_text().replace("return 2 * x", "return x * 2"))  # same values
    later = time.time_ns() + 2 * 10**9
    os.utime(path, ns=(later, later))
    assert project.run("chain", "--parallel", "2", "--no-report").returncode == 0
    double = project.curifactory("why", "latest", "double").stdout
    assert "executed  code of stage 'double' (experiments/chain.py:" in double and "(in a --parallel worker)" in double
    assert "executed  an upstream stage reruns ('double')" in project.curifactory("why", "latest", "total").stdout
