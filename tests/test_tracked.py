"""``@cf.track()``: every call of a plain function is a run (arguments as parameters, the
result cached by the arguments' content and the code), visible in ``cf.load_runs`` and
``curifactory runs``; ``cf.current()`` logs from inside."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import curifactory as cf
from curifactory.errors import HashingError, TrackingError

from conftest import CliProject

SCRIPT = """
import sys
import numpy as np
import curifactory as cf

calls = []

@cf.track()
def train(lr, epochs=3, name="baseline"):
    calls.append(lr)
    for epoch in range(epochs):
        cf.current().log_metric("loss", lr / (epoch + 1))
    cf.current().set_tag("family", "toy")
    if lr < 0:
        raise ValueError("negative learning rate")
    return {"accuracy": 1 - lr}

@cf.track(cache=False)
def sample(weights):
    calls.append("sample")
    return weights * 2

print(train(0.1))
print(train(0.2, epochs=2))
print(train(0.1))
try:
    train(-1.0)
except ValueError as exc:
    print("raised:", exc)
big = np.zeros(5000)
other = big.copy()
other[2500] = 1.0
@cf.track()
def total(values):
    calls.append("total")
    return float(values.sum())
print(total(big), total(other), total(big))
print(sample(np.ones(3)).tolist(), sample(np.ones(3)).tolist())
print("calls", calls)
"""


@pytest.fixture
def tracked(tmp_path):
    project = CliProject(tmp_path, {"script.py": SCRIPT})
    done = subprocess.run([sys.executable, "script.py"], cwd=project.root, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return project, done.stdout


def test_every_call_is_a_run_and_a_repeated_call_comes_from_the_cache(tracked):
    project, printed = tracked
    assert "{'accuracy': 0.9}\n{'accuracy': 0.8}\n{'accuracy': 0.9}\nraised: negative learning rate" in printed
    # train(0.1) ran once; the middle-differing array is not served the other's cached sum
    assert "calls [0.1, 0.2, -1.0, 'total', 'total', 'sample', 'sample']" in printed
    assert "0.0 1.0 0.0" in printed
    runs = cf.load_runs("train", store=project.root / "data")
    assert list(runs["experiment"].unique()) == ["train"]
    assert list(runs["status"]) == ["complete", "complete", "complete", "error"]
    assert list(runs["params.lr"]) == [0.1, 0.2, 0.1, -1.0] and list(runs["params.epochs"]) == [3, 2, 3, 3]
    assert list(runs["metrics.loss"]) == [pytest.approx(0.1 / 3), 0.1, pytest.approx(0.1 / 3), pytest.approx(-1 / 3)]
    assert set(runs["tags.family"]) == {"toy"}
    assert list(runs["params_name"]) == ["baseline"] * 4  # an argument called name names the record
    first, _, cached, failed = (cf.load_run(ref, store=project.root / "data") for ref in runs["reference"])
    assert first["result"] == {"accuracy": 0.9} and cached["result"] == {"accuracy": 0.9}
    assert first["records"][0]["stages"][0]["status"] == "executed"
    assert cached["records"][0]["stages"][0]["status"] == "cached"
    assert first["metadata"]["git"]["is_repo"] is False and first["metadata"]["git"]["error"] is None  # not a repo
    assert first["metadata"]["python"]["executable"] == sys.executable
    assert first["duration"] >= 0 and first["start"] and first["end"]
    assert failed["error"] == "ValueError: negative learning rate"
    assert failed["traceback"].splitlines()[1].strip().startswith('File "') and "script.py" in \
        failed["traceback"].splitlines()[1]  # from the function's own frame on
    assert "Traceback" in failed["traceback"] and "negative learning rate" in failed["traceback"]
    assert failed["records"][0]["stages"][0]["status"] == "failed"


def test_tracked_runs_are_listed_by_the_runs_command(tracked):
    project, _ = tracked
    listed = project.curifactory("runs", "train", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [row["status"] for row in rows] == ["complete", "complete", "complete", "error"]
    shown = project.curifactory("show", "total#2")
    assert shown.returncode == 0 and "values=" in shown.stdout and "result    1.0" in shown.stdout
    failed = project.curifactory("show", "train#4").stdout
    assert "traceback:" in failed and "ValueError: negative learning rate" in failed
    samples = cf.load_runs("sample", store=project.root / "data")
    assert len(samples) == 2 and set(samples["status"]) == {"complete"}
    document = cf.load_run(samples["reference"][0], store=project.root / "data")
    assert document["result"]["type"] == "ndarray"  # not JSON: a preview
    assert document["records"][0]["stages"][0]["outputs"][0]["path"] is None  # cache=False keeps nothing


def test_a_changed_function_body_computes_again(tmp_path):
    script = textwrap.dedent("""
        import curifactory as cf
        @cf.track()
        def square(x):
            print("computing")
            return x * x
        print(square(4))
    """)
    project = CliProject(tmp_path, {"script.py": script})
    run = lambda: subprocess.run([sys.executable, "script.py"], cwd=project.root, capture_output=True,  # noqa: E731
                                 text=True, timeout=60)
    assert run().stdout == "computing\n16\n"
    assert run().stdout == "16\n"
    (project.root / "script.py").write_text(script.replace("x * x", "x ** 2"))
    assert run().stdout == "computing\n16\n"
    latest = cf.load_run("latest", store=project.root / "data")
    assert "code" in latest["records"][0]["stages"][0]["reason"]


def test_code_without_a_source_file_and_namesakes_in_two_modules_never_share_a_result(tmp_path):
    project = CliProject(tmp_path, {
        "one.py": "import curifactory as cf\n@cf.track()\ndef train(x):\n    return x + 1\n",
        "two.py": "import curifactory as cf\n@cf.track()\ndef train(x):\n    return x + 2\n"})
    inline = "import curifactory as cf\n@cf.track()\ndef scale(x):\n    return x * {}\nprint(scale(3))"

    def python(code: str) -> str:
        done = subprocess.run([sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert python(inline.format(1)) == "3" and python(inline.format(2)) == "6"  # no source: its bytecode counts
    assert python("import one, two; print(one.train(1), two.train(1))") == "2 3"


def test_arguments_that_cannot_be_hashed_are_named(project):
    project({})

    @cf.track()
    def fit(model, epochs=1):
        return epochs

    with pytest.raises(HashingError, match="argument 'model'.*memory address"):
        fit(object())
    with pytest.raises(HashingError, match="argument 'epochs'.*Exceeds the limit"):
        fit(1, epochs=10 ** 5000)
    assert cf.track(cache=False)(fit.__wrapped__)(object()) == 1  # nothing is cached: no hash needed


def test_functions_as_arguments_count_by_their_code_and_closure(project):
    project({})

    @cf.track()
    def apply(fn):
        return fn(10)

    def make(k):
        def add(x):
            return x + k
        return add

    assert (apply(make(1)), apply(make(2)), apply(lambda x: x + 1), apply(lambda x: x + 2)) == (11, 12, 11, 12)
    assert list(cf.load_runs("*apply")["status"]) == ["complete"] * 4
    assert [d["records"][0]["stages"][0]["status"] for d in
            (cf.load_run(ref) for ref in cf.load_runs("*apply")["reference"])] == ["executed"] * 4
    apply(make(1))
    assert cf.load_run("latest")["records"][0]["stages"][0]["status"] == "cached"


def test_current_is_the_innermost_running_record_and_none_after(project):
    project({})
    seen = []

    @cf.stage(None, ["inner_out"])
    def inner(record):
        seen.append(cf.current())
        return 1

    @cf.stage(None, ["outer_out"])
    def outer(record):
        seen.append(cf.current())
        inner(cf.Record(record.manager, None))
        seen.append(cf.current())
        return 2

    manager = cf.ArtifactManager("nested", dry=True)
    record = outer(cf.Record(manager, None))
    assert seen[0] is record and seen[2] is record and seen[1] is not record
    with pytest.raises(TrackingError):
        cf.current()


def test_mistakes_are_clear(project):
    project({})
    with pytest.raises(TrackingError, match="outside a stage|cf.current"):
        cf.current()
    with pytest.raises(TrackingError, match="'hash'"):
        @cf.track()
        def clash(hash):
            return hash

    @cf.track
    def plain(a):
        return a

    with pytest.raises(TypeError, match=r"plain\(\)"):
        plain(1, 2)
    assert plain(3) == 3


def test_a_tracked_method_gets_its_instance(project):
    project({})

    class Model:
        def __init__(self, depth):
            self.depth = depth

        def __repr__(self):
            return f"Model(depth={self.depth})"

        @cf.track()
        def fit(self, lr):
            return self.depth * lr

    assert Model(3).fit(0.5) == 1.5 and Model(4).fit(0.5) == 2.0
    runs = cf.load_runs("*Model.fit")
    assert list(runs["params.self"]) == ["Model(depth=3)", "Model(depth=4)"]
