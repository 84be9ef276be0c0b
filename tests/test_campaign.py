"""The reliability campaign, repeatable: kill -9 at random moments of cold runs, corrupted
store / registry / artifacts, a full disk (a small tmpfs), a read-only cache, 8 processes at
once, fuzzed parameter values and the XSS corpus on the fields a report shows. Each case
runs the real ``experiment`` command in a project under ``tmp_path`` and checks that no
stage is handed a wrong value and nothing is left behind."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SIDE_HELPER, CliProject
from hypothesis import given, settings
from hypothesis import strategies as st

import curifactory as cf
from curifactory import hashing, maintenance

CHAIN = """
import os
import curifactory as cf
from dataclasses import dataclass
from curifactory.caching import JsonCacher, PickleCacher

@dataclass
class Params(cf.ExperimentParameters):
    n: int = 0

def get_params():
    return [Params(name=f"s{n}", n=n) for n in range(int(os.environ.get("CF_SETS", "6")))]

""" + SIDE_HELPER + """
@cf.stage(None, ["values"], [PickleCacher])
def make(record):
    side(f"make:{record.params.n}")
    return list(range(record.params.n * 1000, record.params.n * 1000 + int(os.environ.get("CF_SIZE", "1000"))))

@cf.stage(["values"], ["total"], [JsonCacher])
def add(record, values):
    side(f"add:{record.params.n}")
    assert values[0] == record.params.n * 1000, "a stage was handed another set's values"
    return {"total": sum(values), "n": record.params.n}

def run(param_sets, manager):
    for p in param_sets:
        add(make(cf.Record(manager, p)))
"""


def expected_total(n: int, size: int = 1000) -> int:
    return sum(range(n * 1000, n * 1000 + size))


def cached_totals(root: Path) -> dict[int, int]:
    totals = {}
    for path in (root / "data" / "cache").glob("*_add_total.json"):
        value = json.loads(path.read_text())
        totals[value["n"]] = value["total"]
    return totals


@pytest.fixture
def chain(tmp_path):
    return CliProject(tmp_path, {"experiments/chain.py": CHAIN})


def test_kill_9_at_random_moments_of_cold_runs_never_leaves_a_wrong_value(chain):
    rng = random.Random(20261202)
    env = dict(chain.env(), CF_SIZE="200000")
    for _ in range(6):  # bounded: each cold run is killed somewhere between start-up and its end
        process = subprocess.Popen([sys.executable, "-m", "curifactory", "chain"], cwd=chain.root, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 2.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    result = subprocess.run([sys.executable, "-m", "curifactory", "chain"], cwd=chain.root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert cached_totals(chain.root) == {n: expected_total(n, 200000) for n in range(6)}
    cache = str(chain.root / "data" / "cache")
    assert maintenance.verify(cache) == []
    assert maintenance.leftovers(cache) == []  # the complete run swept what the killed ones left
    assert list((chain.root / "reports").glob(".cftmp-*")) == []
    statuses = [block["status"] for block in chain.store()]
    assert statuses[-1] == "complete" and all(s in ("complete", "error", "running") for s in statuses)
    listed = chain.curifactory("runs", "--level", "run", "--format", "json")
    assert listed.returncode == 0
    assert {row["status"] for row in json.loads(listed.stdout)} <= {"complete", "interrupted"}


@pytest.mark.parametrize("content, needle", [
    ('{"runs": []}', "should hold a JSON list of runs"),
    ("[5, 6]", "should hold a list of run blocks"),
    ('[{"reference": "x", ', "store.json"),
])
def test_a_corrupt_store_is_named_and_kept(chain, content, needle):
    assert chain.run("chain").returncode == 0
    store = chain.root / "data" / "store.json"
    store.write_text(content)
    result = chain.run("chain")
    assert result.returncode != 0
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert "loading experiment" not in result.stderr
    assert store.read_text() == content  # nothing lost: the user can still recover it


@pytest.mark.parametrize("content", ["[1, 2]", '{"abc": ', "null"])
def test_a_corrupt_registry_is_found_before_any_stage_runs(chain, content):
    registry = chain.root / "data" / "params_registry.json"
    registry.parent.mkdir(parents=True, exist_ok=True)
    registry.write_text(content)
    result = chain.run("chain")
    assert result.returncode != 0
    assert "params_registry.json" in result.stderr and "Traceback" not in result.stderr
    assert chain.executed() == []
    assert registry.read_text() == content


def test_a_corrupt_artifact_is_recomputed_not_loaded(chain):
    assert chain.run("chain").returncode == 0
    chain.executed()
    artifact = sorted((chain.root / "data" / "cache").glob("chain_*_make_values.pkl"))[0]
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    result = chain.run("chain", "--overwrite-stage", "add")
    assert result.returncode == 0, result.stderr
    assert "not usable" in result.stderr
    assert len([c for c in chain.executed() if c.startswith("make:")]) == 1
    assert cached_totals(chain.root) == {n: expected_total(n) for n in range(6)}


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs mounted at tmp_path/disk (root only); unmounted at the end."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip() or 'not root'})")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_full_disk_names_the_path_and_enospc_and_the_store_agrees(tmp_path, small_disk):
    cli = CliProject(tmp_path, {"experiments/chain.py": CHAIN})
    config = {"cache_path": str(small_disk / "cache")}
    (cli.root / "curifactory_config.json").write_text(json.dumps(config))
    result = subprocess.run([sys.executable, "-m", "curifactory", "chain"], cwd=cli.root,
                            env=dict(cli.env(), CF_SIZE="400000", CF_SETS="3"), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    assert "ENOSPC" in result.stderr and str(small_disk / "cache") in result.stderr
    assert "Choose a cacher" not in result.stderr and "Traceback" not in result.stderr
    assert cli.store()[-1]["status"] == "error"  # as the CLI said
    assert maintenance.verify(str(small_disk / "cache")) == []  # what was committed is whole
    assert not [p for p in (small_disk / "cache").iterdir() if p.name.startswith(".cftmp-")]


def test_a_read_only_cache_serves_a_warm_run_and_a_cold_one_fails_clearly(tmp_path, small_disk):
    cli = CliProject(tmp_path, {"experiments/chain.py": CHAIN})
    (cli.root / "curifactory_config.json").write_text(json.dumps({"cache_path": str(small_disk / "cache")}))
    env = dict(cli.env(), CF_SETS="2")
    assert subprocess.run([sys.executable, "-m", "curifactory", "chain"], cwd=cli.root, env=env,
                          capture_output=True, timeout=120).returncode == 0
    cli.executed()
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True).returncode == 0
    warm = subprocess.run([sys.executable, "-m", "curifactory", "chain"], cwd=cli.root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert warm.returncode == 0, warm.stderr
    assert cli.executed() == []
    cold = subprocess.run([sys.executable, "-m", "curifactory", "chain"], cwd=cli.root,
                          env=dict(env, CF_SETS="3"), capture_output=True, text=True, timeout=120)
    assert cold.returncode == 1
    assert "EROFS" in cold.stderr and "read-only" in cold.stderr and "Traceback" not in cold.stderr
    assert cli.store()[-1]["status"] == "error"


def test_eight_processes_at_once_share_the_project(chain):
    env = dict(chain.env(), CF_SETS="4")
    processes = [subprocess.Popen([sys.executable, "-m", "curifactory", "chain"], cwd=chain.root, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    assert [code for code, _ in results] == [0] * 8, [err for _, err in results]
    blocks = chain.store()
    assert sorted(b["run_number"] for b in blocks) == list(range(1, 9))
    assert {b["status"] for b in blocks} == {"complete"}
    assert cached_totals(chain.root) == {n: expected_total(n) for n in range(4)}
    assert maintenance.verify(str(chain.root / "data" / "cache")) == []
    registry = json.loads((chain.root / "data" / "params_registry.json").read_text())
    assert len(registry) == 4


@dataclasses.dataclass
class Fuzzed(cf.ExperimentParameters):
    value: object = None


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


def _same(a: object, b: object) -> bool:
    """Equal, with the same types all the way down (1 and 1.0 and True are different values)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=150, deadline=None)
@given(JSONISH, JSONISH)
def test_fuzzed_values_hash_stably_and_apart(a, b):
    first = hashing.compute_hash(Fuzzed(value=a))
    assert first == hashing.compute_hash(Fuzzed(value=copy.deepcopy(a)))
    if not _same(a, b) and a is not None and b is not None:
        assert first != hashing.compute_hash(Fuzzed(value=b))


@settings(max_examples=150, deadline=None)
@given(JSONISH)
def test_a_json_cached_value_comes_back_equal_or_a_warning_says_it_does_not(tmp_path_factory, value):
    import warnings

    from curifactory.caching import JsonCacher

    cacher = JsonCacher(path_override=str(tmp_path_factory.mktemp("j") / "v.json"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cacher.save(value)
    loaded = cacher.load()
    warned = any("round trip" in str(w.message) for w in caught)
    assert warned or _same(value, loaded) or value != value


XSS = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(2)>", "javascript:alert(3)",
       "</textarea><svg onload=alert(4)>", "{{7*7}}<b>bold</b>"]


@pytest.fixture(scope="module")
def browser():
    from test_report_browser import CHROMIUM_ARGS, _chromium

    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_the_xss_corpus_is_escaped_in_every_field_of_the_report(tmp_path, browser):
    payloads = json.dumps(XSS)
    cli = CliProject(tmp_path, {"experiments/xss.py": f"""
        import curifactory as cf
        from dataclasses import dataclass, field
        from curifactory.caching import JsonCacher
        from curifactory.reporting import JsonReporter

        PAYLOADS = {payloads}

        @dataclass
        class Params(cf.ExperimentParameters):
            text: str = ""
            items: list = field(default_factory=list)

        def get_params():
            return [Params(name=p, text=p, items=[p]) for p in PAYLOADS]

        @cf.stage(None, ["out"], [JsonCacher])
        def make(record):
            p = record.params.text
            record.set_tag("t", p)
            record.inform(note=p)
            record.log_metric("score", 1.0)
            record.report(JsonReporter({{"value": p}}, name=p))
            return {{"value": p}}

        def run(param_sets, manager):
            for p in param_sets:
                make(cf.Record(manager, p))
    """})
    result = cli.run("xss", "--notes", XSS[0], "--tag", f"k={XSS[1]}")
    assert result.returncode == 0, result.stderr
    [report] = (cli.root / "reports").glob("xss_1_*/index.html")
    for page_path in (report, cli.root / "reports" / "index.html"):
        text = page_path.read_text()
        dialogs, injected = open_in_chromium(browser, page_path)
        assert dialogs == [], f"{page_path.name}: a payload ran ({dialogs})"
        assert injected == 0, f"{page_path.name}: a payload became an element"
        assert XSS[0] in text or "&lt;script&gt;" in text  # the payload is shown, as text


def open_in_chromium(browser, path: Path) -> tuple[list[str], int]:
    """The dialogs a page opened and how many payload elements it holds, in headless Chromium."""
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_timeout(300)
    injected = page.evaluate("document.querySelectorAll('img[src=\"x\"], svg[onload]').length + "
                             "[...document.querySelectorAll('b')].filter(e => e.textContent === 'bold').length")
    page.close()
    return dialogs, injected


def test_a_registry_that_breaks_during_the_run_leaves_the_store_agreeing_with_the_cli(tmp_path):
    cli = CliProject(tmp_path, {"experiments/breaker.py": """
        import os, shutil
        import curifactory as cf
        from curifactory.caching import JsonCacher

        def get_params():
            return [cf.ExperimentParameters(name="a")]

        @cf.stage(None, ["x"], [JsonCacher])
        def breaks_the_registry(record):
            path = os.path.join("data", "params_registry.json")
            if os.path.isfile(path):
                os.remove(path)
            os.makedirs(path, exist_ok=True)  # the registry can no longer be read or written
            return 1

        def run(param_sets, manager):
            for p in param_sets:
                breaks_the_registry(cf.Record(manager, p))
    """})
    result = cli.run("breaker")
    assert result.returncode == 1
    assert "params_registry.json" in result.stderr and "Traceback" not in result.stderr
    assert "stored with status 'error'" in result.stderr
    assert cli.store()[-1]["status"] == "error"
    listed = json.loads(cli.curifactory("runs", "--level", "run", "--format", "json").stdout)
    assert listed[-1]["status"] == "error"
